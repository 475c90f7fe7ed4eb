package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
)

func samples(transits ...time.Duration) []playSample {
	s := make([]playSample, len(transits))
	for i, t := range transits {
		s[i] = playSample{capture: clock.Time(time.Duration(i) * 20 * time.Millisecond), transit: t}
	}
	return s
}

func TestFixedAdded(t *testing.T) {
	ms := time.Millisecond
	s := samples(0, 10*ms, 20*ms, 30*ms)
	// One late frame allowed: the offset 20 ms; the 30 ms frame plays at
	// its completion.
	assert.InDelta(t, (20+20+20+30)/4.0, fixedAdded(s, 0, 1), 1e-9)
	assert.InDelta(t, 30.0, fixedAdded(s, 0, 0), 1e-9)
}

func TestOptimumAdded(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		transits []time.Duration
		late     int
		want     float64
		wantLate int
	}{
		{"constant", []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms}, 0, 0, 0},
		// A spike it may leave late: everything else plays at the floor.
		{"spike late", []time.Duration{10 * ms, 10 * ms, 200 * ms, 10 * ms, 10 * ms}, 1, 190.0 / 5, 1},
		// No late frame allowed: the five frames share one 100 ms step's
		// offset, which must cover the spike.
		{"spike on time", []time.Duration{10 * ms, 10 * ms, 30 * ms, 10 * ms, 10 * ms}, 0, 20.0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := samples(tt.transits...)
			got, late := optimumAdded(s, 10*ms, 0.10, tt.late)
			assert.InDelta(t, tt.want, got, 0.5)
			assert.Equal(t, tt.wantLate, late)
		})
	}
}

func TestNetEqAdded(t *testing.T) {
	ms := time.Millisecond
	s := samples(10*ms, 10*ms, 10*ms, 10*ms, 10*ms)
	got, late := netEqAdded(s, 10*ms, 0.10)
	// Its target is a 20 ms bucket's upper edge above the least.
	assert.InDelta(t, 20.0, got, 1e-9)
	assert.Zero(t, late)
}
