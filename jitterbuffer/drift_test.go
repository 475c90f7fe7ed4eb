package jitterbuffer

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// driftPaths feeds d secs seconds of transits on the two paths of a
// receiver whose clock runs fast by ppm: data packets every 5 ms on the
// forward path and one ping a second on the reverse path, each path
// skipped when its noise is 0. A path's noise is how far a second's floor
// may rise above the true transit (drawn per second, as the floor under
// jitter without reordering moves); on the forward path, each packet also
// rises above that floor by up to six times the noise (jitter).
func driftPaths(d *driftEstimator, secs int, ppm float64, fwdNoise, revNoise time.Duration, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	draw := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max) + 1)) }
	skew := func(at clock.Time) time.Duration { return time.Duration(ppm * 1e-6 * float64(at)) }
	for s := range secs {
		sec := clock.Time(time.Duration(s) * time.Second)
		if fwdNoise > 0 {
			floor := draw(fwdNoise)
			for i := range 200 {
				at := sec.Add(time.Duration(i) * 5 * time.Millisecond)
				d.add(at, 50*time.Millisecond+skew(at)+floor+draw(6*fwdNoise))
			}
		}
		if revNoise > 0 {
			at := sec.Add(time.Duration(s%7) * 100 * time.Millisecond)
			d.addReverse(at, 3*time.Second+50*time.Millisecond-skew(at)+draw(revNoise))
		}
	}
}

func TestDriftFromBothPaths(t *testing.T) {
	const (
		noisy = 5 * time.Millisecond  // the bench's jb-drift floors move 0-9 ms from second to second
		clean = 20 * time.Microsecond // a path without jitter: stamping and serialisation
	)
	tests := []struct {
		name     string
		fwd, rev time.Duration // 0: no samples on that path
		within   float64       // ppm, after 30 s
	}{
		{"clean forward only", clean, 0, 1},
		{"clean reverse only", 0, clean, 1},
		{"noisy forward, clean reverse", noisy, clean, 2},
		{"clean forward, noisy reverse", clean, noisy, 2},
	}
	for _, tt := range tests {
		for _, ppm := range []float64{1000, -1000, 100, -100} {
			for seed := range uint64(5) {
				d := newDriftEstimator()
				driftPaths(&d, 30, ppm, tt.fwd, tt.rev, seed)
				assert.InDelta(t, ppm, d.ppm(), tt.within, "%s, %+.0f ppm, seed %d", tt.name, ppm, seed)
			}
		}
	}
}

// TestDriftNoisyForwardAloneIsNotEnough: the same noisy floors without the
// reverse path leave the estimate off by more than 10 ppm on some seeds
// after 30 s: that is what the reverse path buys (and why the test above
// is not passing on the forward path alone).
func TestDriftNoisyForwardAloneIsNotEnough(t *testing.T) {
	var worst float64
	for seed := range uint64(5) {
		d := newDriftEstimator()
		driftPaths(&d, 30, 100, 7*time.Millisecond, 0, seed)
		worst = max(worst, math.Abs(d.ppm()-100))
	}
	assert.Greater(t, worst, 10.0)
}

func TestDriftReverseOutOfOrderLeftOut(t *testing.T) {
	d := newDriftEstimator()
	for s := range 20 {
		at := clock.Time(time.Duration(s) * time.Second)
		d.addReverse(at, time.Second-time.Duration(100e-6*float64(at)))
	}
	require.InDelta(t, 100, d.ppm(), 1)
	kept := d.rev.mins.n
	// A pong overtaken by the next one: its ping's send time is older than
	// the last one's. Its transit (5 s less) would drag the floor down.
	d.addReverse(clock.Time(15*time.Second), -4*time.Second)
	d.addReverse(clock.Time(21*time.Second), time.Second-time.Duration(100e-6*float64(21*time.Second)))
	assert.Equal(t, kept+1, d.rev.mins.n, "the second closed by the 21 s sample is kept, the 15 s one is not")
	assert.InDelta(t, 100, d.ppm(), 1)
}

// The group passes reverse transits on to its estimator.
func TestGroupObserveReverseTransit(t *testing.T) {
	g := NewGroup(0)
	for s := range 30 {
		at := clock.Time(time.Duration(s) * time.Second)
		g.ObserveReverseTransit(at, time.Second+time.Duration(500e-6*float64(at)))
	}
	assert.InDelta(t, -500, g.DriftPPM(), 1, "the path back grows: this side's clock runs slow")
}
