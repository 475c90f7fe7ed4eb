package fec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
)

// Clocks may start anywhere, negative times included (only differences
// mean anything): the estimator measures the same loss at any offset.
func TestLossEstimatorAnyClockOffset(t *testing.T) {
	for _, offset := range []time.Duration{0, -100 * time.Second, -50 * time.Millisecond, 3 * time.Hour} {
		var l LossEstimator
		now := clock.Time(offset)
		for i := range 2000 {
			now = now.Add(5 * time.Millisecond)
			l.OnPacket(now, i%20 == 0)
		}
		loss, burst := l.Estimate(now)
		assert.InDelta(t, 0.05, loss, 0.002, "offset %v", offset)
		assert.Equal(t, 1.0, burst, "offset %v", offset)
	}
}
