package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
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

// TestPeriodAdded: a constant offset per period between the bounds, the
// late frames placed where they save most, exactly (a single period is
// the fixed offset).
func TestPeriodAdded(t *testing.T) {
	ms := time.Millisecond
	twoParts := []time.Duration{0, 10 * ms, 20 * ms, 30 * ms, 100 * ms, 110 * ms, 120 * ms, 300 * ms}
	split := []clock.Time{clock.Time(80 * ms)} // samples are 20 ms apart: frames 4-7 in the second
	tests := []struct {
		name     string
		transits []time.Duration
		bounds   []clock.Time
		late     int
		want     float64 // mean added, ms
		wantLate int
	}{
		{"one period, none late", twoParts[:4], nil, 0, 30, 0},
		{"one period, one late", twoParts[:4], nil, 1, (20 + 20 + 20 + 30) / 4.0, 1},
		{"bounds after the run: one period", twoParts[:4], []clock.Time{clock.Time(time.Hour)}, 1, (20 + 20 + 20 + 30) / 4.0, 1},
		{"two periods, none late", twoParts, split, 0, (4*30 + 4*300) / 8.0, 0},
		// The 300 ms frame late saves 540 ms in the second period.
		{"two periods, one late", twoParts, split, 1, (4*30 + 3*120 + 300) / 8.0, 1},
		// Then the first period's 30 ms frame (saves 30) before the
		// second's 120 ms one (saves 20).
		{"two periods, two late", twoParts, split, 2, (3*20 + 30 + 3*120 + 300) / 8.0, 2},
		// A single late frame saves nothing here, two save 400 ms: a
		// Lagrangian weight would skip from 0 to 2.
		{"non-convex, two allowed", []time.Duration{0, 0, 0, 0, 100 * ms, 100 * ms}, nil, 2, 200 / 6.0, 2},
		{"non-convex, one allowed", []time.Duration{0, 0, 0, 0, 100 * ms, 100 * ms}, nil, 1, 600 / 6.0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := samples(tt.transits...)
			got, late := periodAdded(s, 0, tt.late, tt.bounds)
			assert.InDelta(t, tt.want, got, 1e-9)
			assert.Equal(t, tt.wantLate, late)
			if len(tt.bounds) == 0 {
				assert.InDelta(t, fixedAdded(s, 0, late), got, 1e-9, "one period is the fixed offset")
			}
		})
	}
	// The hull (periodAdded's way for runs too large to search): the same
	// where the curve is convex, the cheapest hull point at or under the
	// late frames allowed where it is not.
	parts := periodParts(samples(twoParts...), 0, split)
	for late := range 3 {
		wantSum, wantLate := periodExact(parts, late)
		sum, l := periodHull(parts, late)
		assert.InDelta(t, wantSum, sum, 1e-9, "%d late", late)
		assert.Equal(t, wantLate, l)
	}
	nonConvex := periodParts(samples(0, 0, 0, 0, 100*ms, 100*ms), 0, nil)
	sum, l := periodHull(nonConvex, 1)
	assert.Equal(t, []any{600.0, 0}, []any{sum, l})
	sum, l = periodHull(nonConvex, 2)
	assert.Equal(t, []any{200.0, 2}, []any{sum, l})
}

// TestJitterPeriods: the periods split where the schedule changes the
// forward jitter, counted from the schedule's origin; a stall's steps
// (the same jitter) and reverse-only steps do not split.
func TestJitterPeriods(t *testing.T) {
	ms := time.Millisecond
	link := func(j time.Duration, hold time.Duration) *netem.LinkConfig {
		return &netem.LinkConfig{Delay: 50 * ms, Jitter: j, HoldUntil: hold}
	}
	sc := Scenario{Forward: *link(20*ms, 0), Schedule: []LinkStep{
		{At: 30 * time.Second, Forward: link(80*ms, 0)},
		{At: 40 * time.Second, Forward: link(80*ms, 41*time.Second)}, // a stall
		{At: 41 * time.Second, Forward: link(80*ms, 0)},
		{At: 50 * time.Second, Reverse: link(5*ms, 0)},
		{At: 60 * time.Second, Forward: link(10*ms, 0)},
	}}
	r := &run{sc: sc, acct: newFlowAcct(1)}
	r.acct.origin = clock.Time(time.Second)
	assert.Equal(t, []clock.Time{clock.Time(31 * time.Second), clock.Time(61 * time.Second)}, r.jitterPeriods())
	r.sc.Schedule = nil
	assert.Empty(t, r.jitterPeriods())
}
