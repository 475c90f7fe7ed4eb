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
			got, late, _ := optimumAdded(s, 10*ms, 0.10, tt.late, time.Second)
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

// The NetEq-style target keeps each 500 ms's largest relative delay: a
// 100 ms spike every 500 ms sets a 120 ms target (the bucket's upper edge)
// after the first, and no later spike is late. Added frame by frame,
// forgetting 0.983 a frame (0.7 s of memory at 50 frames a second), it
// left all 40 spikes late.
func TestNetEqKeepsHalfSecondMaxima(t *testing.T) {
	tr := make([]time.Duration, 1000) // 20 s of frames 20 ms apart
	for i := range tr {
		if i%25 == 12 {
			tr[i] = 100 * time.Millisecond
		}
	}
	added, late := netEqAdded(samples(tr...), 0, 0.10)
	assert.Equal(t, 1, late, "the first spike only")
	assert.InDelta(t, 120.0, added, 5, "the offset holds at 120 ms")
}

// The Lagrangian weight reaches only the convex hull of (late frames,
// delay): here the best schedule with one late frame (offset 150 ms, the
// 200 ms frame late: 160 ms) is off the hull, and the weight finds only
// 200 ms with none late. The bound (the hull at one late frame) is no more
// than the true 160, the schedule found no less.
func TestOptimumBound(t *testing.T) {
	ms := time.Millisecond
	s := samples(0, 0, 150*ms, 200*ms, 0) // one 100 ms step
	got, late, bound := optimumAdded(s, 0, 0.10, 1, time.Second)
	assert.InDelta(t, 200.0, got, 0.5)
	assert.Zero(t, late)
	assert.LessOrEqual(t, bound, 160.0+0.5)
	assert.Greater(t, bound, 0.0)
}

// Offsets go up to the profile's MaxPlayoutDelay, not a fixed 2 s: a
// 2.5 s transit is on time in Live (3 s), late in RTC (0.8 s).
func TestOptimumWithinMaxPlayoutDelay(t *testing.T) {
	s := samples(0, 0, 2500*time.Millisecond, 0, 0)
	got, late, _ := optimumAdded(s, 0, 0.03, 0, 3*time.Second)
	assert.InDelta(t, 2500.0, got, 0.5)
	assert.Zero(t, late)
	_, late, _ = optimumAdded(s, 0, 0.10, 0, 800*time.Millisecond)
	assert.Equal(t, 1, late, "beyond any offset RTC allows")
}
