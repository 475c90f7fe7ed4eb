package jitterbuffer

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// quantile tracks a high quantile of delay samples with exponential
// forgetting in time: a histogram of 1 ms buckets whose newer samples weigh
// more (a sample at time t weighs e^(t/tau)), and a pointer kept on the
// bucket holding the quantile. An update adds one weight and moves the
// pointer by the buckets the quantile moved, so it costs O(1) in steady
// state; the weights are rescaled, O(buckets), about once every 230 tau.
//
// With a horizon, samples older than it leave the histogram altogether
// (a ring of the recent samples' buckets and times, each taken out once):
// forgetting alone keeps a share e^(-age/tau) of an old regime, and a high
// quantile waits until that share falls under 1 - q, tau ln(1/(1-q)): 43 s
// at 0.999 with its 6.3 s memory, longer than the bench's jitter periods.
type quantile struct {
	q     float64
	tau   float64 // seconds
	h     []float64
	total float64
	below float64 // weight in buckets under idx
	idx   int
	t0    clock.Time // the time weights are relative to
	n     int64      // samples seen

	horizon time.Duration // 0: none
	ringB   []int32       // the samples within the horizon: bucket
	ringT   []clock.Time  // and time, oldest at head
	head, m int
}

const bucketWidth = time.Millisecond

// A quantile with a horizon keeps the samples within it to take out: as
// many as horizonRate frames a second bring, within minHorizonSamples and
// maxHorizonSamples (12 bytes each; 48 KiB at most). At higher rates the
// oldest leave early.
const (
	horizonRate       = 60
	minHorizonSamples = 64
	maxHorizonSamples = 4096
)

func newQuantile(q float64, window, span, horizon time.Duration) quantile {
	n := int(span/bucketWidth) + 1
	s := quantile{q: q, tau: window.Seconds(), h: make([]float64, n), horizon: horizon}
	if horizon > 0 {
		m := int(min(max(horizon.Seconds()*horizonRate, minHorizonSamples), maxHorizonSamples))
		s.ringB = make([]int32, m)
		s.ringT = make([]clock.Time, m)
	}
	return s
}

// span returns the largest value the quantile tells apart.
func (s *quantile) span() time.Duration { return time.Duration(len(s.h)-1) * bucketWidth }

// expire takes out the samples older than the horizon, and the oldest
// if the ring is full.
func (s *quantile) expire(now clock.Time) {
	for s.m > 0 && (s.m == len(s.ringB) || now.Sub(s.ringT[s.head]) > s.horizon) {
		b := int(s.ringB[s.head])
		w := math.Exp(s.ringT[s.head].Sub(s.t0).Seconds() / s.tau)
		s.h[b] = max(s.h[b]-w, 0)
		s.total = max(s.total-w, 0)
		if b < s.idx {
			s.below = max(s.below-w, 0)
		}
		s.head = (s.head + 1) % len(s.ringB)
		s.m--
	}
}

func (s *quantile) add(now clock.Time, v time.Duration) {
	if s.n == 0 {
		s.t0 = now
	}
	s.n++
	w := math.Exp(now.Sub(s.t0).Seconds() / s.tau)
	if w > 1e100 { // every 230 tau: far from float64's 1e308
		s.rescale(now)
		w = 1
	}
	b := int(v / bucketWidth)
	b = min(max(b, 0), len(s.h)-1)
	if s.horizon > 0 {
		s.expire(now)
		i := (s.head + s.m) % len(s.ringB)
		s.ringB[i], s.ringT[i] = int32(b), now
		s.m++
	}
	s.h[b] += w
	s.total += w
	if b < s.idx {
		s.below += w
	}
	want := s.q * s.total
	for s.idx > 0 && s.below > want {
		s.idx--
		s.below -= s.h[s.idx]
	}
	for s.idx < len(s.h)-1 && s.below+s.h[s.idx] <= want {
		s.below += s.h[s.idx]
		s.idx++
	}
	if s.below < 0 {
		s.below = 0
	}
}

// rescale divides every weight by the weight of a sample at now, so weights
// stay finite; it also recomputes the running sums exactly.
func (s *quantile) rescale(now clock.Time) {
	f := math.Exp(-now.Sub(s.t0).Seconds() / s.tau)
	s.total, s.below = 0, 0
	for i := range s.h {
		s.h[i] *= f
		if s.h[i] < 1e-300 {
			s.h[i] = 0
		}
		s.total += s.h[i]
		if i < s.idx {
			s.below += s.h[i]
		}
	}
	s.t0 = now
}

// weight returns the samples' weight at now in units of one fresh
// sample: about how many samples the last tau held.
func (s *quantile) weight(now clock.Time) float64 {
	if s.n == 0 {
		return 0
	}
	return s.total * math.Exp(-now.Sub(s.t0).Seconds()/s.tau)
}

// value returns the quantile: the upper edge of the bucket holding it.
func (s *quantile) value() time.Duration {
	return time.Duration(s.idx+1) * bucketWidth
}

func (s *quantile) reset() {
	clear(s.h)
	s.total, s.below, s.idx, s.n = 0, 0, 0, 0
	s.head, s.m = 0, 0
}
