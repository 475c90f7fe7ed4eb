package core

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRecoveryRounds: the rounds the recovery allowance counts follow
// f p^r <= the residual (RTC's default 6e-4; Live's 1e-5).
func TestRecoveryRounds(t *testing.T) {
	tests := []struct {
		name     string
		f, p     float64 // frames needing retransmission, packets lost
		residual float64
		rounds   int
	}{
		{"clean", 0, 0, 6e-4, 1},
		{"2 %, FEC mends most", 0.025, 0.02, 6e-4, 1},          // 5e-4
		{"5 %, FEC mends most", 0.07, 0.05, 6e-4, 2},           // 3.5e-3, then 1.75e-4
		{"audio 5 %", 0.01, 0.05, 6e-4, 1},                     // 5e-4
		{"GE 10 %", 0.2, 0.1, 6e-4, 3},                         // 2e-2, 2e-3, 2e-4
		{"Live, 20 %", 0.7, 0.2, 1e-5, 7},                      // 0.7 x 0.2^7 = 9e-6
		{"every frame, 40 %", 1, 0.4, 1e-5, maxRecoveryRounds}, // never under: the bound
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.rounds, recoveryRounds(tt.f, tt.p, tt.residual))
		})
	}
}

// TestLossRate: the mean follows the counters' rate, updates wait for a
// batch, and counters that go backwards (a late packet fills a gap counted
// lost) or claim more lost than expected keep it within [0, 1].
func TestLossRate(t *testing.T) {
	var l lossRate
	l.update(0, 0)
	for i := int64(1); i <= 100; i++ {
		l.update(i*1000, i*50)
	}
	assert.InDelta(t, 0.05, l.p, 1e-6)

	// The first batch counts in full: the rate is known at once.
	l = lossRate{}
	l.update(0, 0)
	l.update(100, 20)
	assert.InDelta(t, 0.2, l.p, 1e-9)

	l = lossRate{}
	l.update(0, 0)
	l.update(10, 5) // under a batch: not yet
	assert.Zero(t, l.p)
	l.update(100, 500) // more lost than expected
	assert.LessOrEqual(t, l.p, 1.0)
	assert.Greater(t, l.p, 0.0)
	l.update(200, 10) // lost went down
	assert.GreaterOrEqual(t, l.p, 0.0)
}

// TestRepairNeed: the plain mean over the first frames, then a mean that
// forgets: after a clean stretch of many memories, the share is near 0.
func TestRepairNeed(t *testing.T) {
	var r repairNeed
	for i := range 100 {
		r.frame(i%10 == 0)
	}
	assert.InDelta(t, 0.1, r.f, 1e-9, "plain mean at first")
	for range 10 * repairFrames {
		r.frame(false)
	}
	assert.Less(t, r.f, 1e-4)
	for range 10 * repairFrames {
		r.frame(true)
	}
	assert.InDelta(t, 1, r.f, 1e-4)
}
