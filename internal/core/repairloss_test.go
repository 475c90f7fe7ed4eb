package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestRecoveryRounds: the rounds the recovery allowance counts follow
// f p1 p^(r-1) <= the residual (RTC's default 6e-4; Live's LiveRecoveryResidual), with
// the first round's failure p1 from firstRoundLoss, and, for a budget of
// a second or more, rounds after lateRoundsAfter (2) failing with 2p^2,
// their copies doubled.
func TestRecoveryRounds(t *testing.T) {
	const rtc, live = 300 * time.Millisecond, 3 * time.Second
	tests := []struct {
		name     string
		f, p     float64 // frames needing retransmission, packets lost
		burst    float64 // mean loss burst
		latency  time.Duration
		residual float64
		rounds   int
	}{
		{"clean", 0, 0, 1, rtc, 6e-4, 1},
		{"2 %, FEC mends most", 0.025, 0.02, 1, rtc, 6e-4, 1},         // 5e-4
		{"5 %, first round doubled", 0.07, 0.05, 1.05, rtc, 6e-4, 1},  // 0.07 x 5e-3 = 3.5e-4
		{"5 %, Live: single copies", 0.07, 0.05, 1.05, live, 6e-4, 2}, // 3.5e-3, then 1.75e-4
		{"5 % in bursts: single copies", 0.07, 0.05, 2, rtc, 6e-4, 2},
		{"audio 5 %", 0.01, 0.05, 1.05, rtc, 6e-4, 1},                                                     // 2.5e-5
		{"GE 10 %", 0.2, 0.1, 3, rtc, 6e-4, 3},                                                            // 2e-2, 2e-3, 2e-4: RTC, late rounds single
		{"10 %: single copies", 0.2, 0.1, 1.1, rtc, 6e-4, 3},                                              // 2e-2, 2e-3, 2e-4
		{"Live, 20 %", 0.7, 0.2, 1.25, live, LiveRecoveryResidual, 7},                                     // 0.7 x 0.2^2 x 0.08^4 = 1.1e-6, x 0.08 = 9.2e-8
		{"Live, 10 %", 0.5, 0.1, 1.1, live, LiveRecoveryResidual, 5},                                      // 0.5 x 0.1^2 x 0.02^2 = 2e-6, x 0.02 = 4e-8
		{"Live, 50 %: late rounds single", 0.9, 0.5, 1, live, LiveRecoveryResidual, maxRecoveryRounds},    // 2p^2 = 0.5 = p: doubling gains nothing counted
		{"Live, 20 % in bursts: not doubled", 0.7, 0.2, 2, live, LiveRecoveryResidual, maxRecoveryRounds}, // 0.7 x 0.2^8 = 1.8e-6: the bound
		{"every frame, 40 %", 1, 0.4, 1, live, LiveRecoveryResidual, maxRecoveryRounds},                   // never under: the bound
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p1 := firstRoundLoss(tt.p, dupFirst(tt.p, tt.burst, tt.latency))
			assert.Equal(t, tt.rounds, recoveryRounds(tt.f, tt.p, p1, tt.residual, lateRounds(tt.latency, tt.burst)))
		})
	}
}

// TestDupFirst: first retransmissions go twice for frequent, short losses
// under a budget of less than a second, once the rate has counted enough
// packets; the first round then counts as failing with 2p^2.
func TestDupFirst(t *testing.T) {
	const rtc = 300 * time.Millisecond
	tests := []struct {
		name        string
		loss, burst float64
		latency     time.Duration
		want        bool
	}{
		{"5 % random, RTC", 0.05, 1.05, rtc, true},
		{"3 %, the threshold", dupFirstLoss, 1, rtc, true},
		{"2 %: rare enough", 0.02, 1, rtc, false},
		{"10 %: too many", 0.1, 1.1, rtc, false},
		{"bursts of 3", 0.05, 3, rtc, false},
		{"Live", 0.05, 1.05, 3 * time.Second, false},
		{"800 ms budget", 0.05, 1, 800 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, dupFirst(tt.loss, tt.burst, tt.latency))
		})
	}
	// Not settled: no loss yet, as far as dupFirst is told.
	p, b := (&lossRate{p: 0.05, runs: 0.05, seen: lossRateSettle - 1}).settled()
	assert.False(t, dupFirst(p, b, rtc), "5 %%, %d packets counted", lossRateSettle-1)
	p, b = (&lossRate{p: 0.05, runs: 0.05, seen: lossRateSettle}).settled()
	assert.True(t, dupFirst(p, b, rtc), "5 %%, %d packets counted", lossRateSettle)

	assert.InDelta(t, 0.005, firstRoundLoss(0.05, true), 1e-12, "2p^2")
	assert.InDelta(t, 0.05, firstRoundLoss(0.05, false), 1e-12)
	assert.InDelta(t, 0.6, firstRoundLoss(0.6, true), 1e-12, "never above p")
}

// TestLossTally: the sender's tally counts packets, losses and runs of
// losses as the receive window counts packet numbers.
func TestLossTally(t *testing.T) {
	var tl lossTally
	// 1000 packets: a run of 3 losses every 100, and a single one.
	for i := range 1000 {
		tl.add((i%100 >= 10 && i%100 < 13) || i%100 == 50)
	}
	assert.Equal(t, int64(1000), tl.n)
	assert.Equal(t, int64(40), tl.lost)
	assert.Equal(t, int64(20), tl.gaps)
	assert.InDelta(t, 0.04, tl.rate.p, 0.005)
	assert.InDelta(t, 2, tl.rate.burst(), 0.2)
	p, b := tl.rate.settled()
	assert.Equal(t, tl.rate.p, p, "1000 packets: settled")
	assert.Equal(t, tl.rate.burst(), b)
}

// TestLossRate: the mean follows the counters' rate, updates wait for a
// batch, and counters that go backwards (a late packet fills a gap counted
// lost) or claim more lost than expected keep it within [0, 1].
func TestLossRate(t *testing.T) {
	var l lossRate
	assert.Equal(t, 1.0, l.burst(), "no losses: bursts of 1")
	l.update(0, 0, 0)
	for i := int64(1); i <= 100; i++ {
		l.update(i*1000, i*50, i*20)
	}
	assert.InDelta(t, 0.05, l.p, 1e-6)
	assert.InDelta(t, 2.5, l.burst(), 1e-6, "50 lost in 20 runs per 1000")

	// The first batch counts in full: the rate is known at once.
	l = lossRate{}
	l.update(0, 0, 0)
	l.update(100, 20, 20)
	assert.InDelta(t, 0.2, l.p, 1e-9)
	assert.InDelta(t, 1.0, l.burst(), 1e-9)

	l = lossRate{}
	l.update(0, 0, 0)
	l.update(10, 5, 1) // under a batch: not yet
	assert.Zero(t, l.p)
	l.update(100, 500, 500) // more lost than expected
	assert.LessOrEqual(t, l.p, 1.0)
	assert.Greater(t, l.p, 0.0)
	assert.LessOrEqual(t, l.runs, 1.0)
	l.update(200, 10, 10) // lost went down
	assert.GreaterOrEqual(t, l.p, 0.0)
	assert.GreaterOrEqual(t, l.burst(), 1.0)
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

// TestLateRounds: late rounds go twice under a budget of a second or more
// while the losses come in bursts shorter than dupFirstBurst (behind a
// drop-tail queue's overflow the copy shares its round's fate).
func TestLateRounds(t *testing.T) {
	tests := []struct {
		latency time.Duration
		burst   float64
		want    int
	}{
		{300 * time.Millisecond, 1, 0},
		{999 * time.Millisecond, 1, 0},
		{time.Second, 1, lateRoundsAfter},
		{3 * time.Second, 1.25, lateRoundsAfter},
		{3 * time.Second, dupFirstBurst, 0},
		{3 * time.Second, 3, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, lateRounds(tt.latency, tt.burst), "%v, burst %v", tt.latency, tt.burst)
	}
}
