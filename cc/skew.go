package cc

import (
	"math"
	"slices"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// skewEstimator estimates the rate the receiver's clock runs at against
// the sender's (clock skew) from one-way delays (arrival on the receiver's
// clock minus send on the sender's): the least delay of each skewSlotLen
// slot is the path's base delay plus the clocks' offset, and the offset
// drifts by the skew. The estimate is the median slope between the minima
// of every pair of the last skewSlots slots (Theil-Sen), trusted once
// skewMinSlots slots are in and the slopes agree (their interquartile
// range under skewSpreadPPM): queues that come and go scatter the slopes,
// a skew moves them all. A 1000 ppm skew is 1 ms a second: 10 ms over the
// 10 s the queue estimate's base looks back, which GCC would otherwise
// read as a queue that never drains.
type skewEstimator struct {
	slots [skewSlots]skewSlot
	n     int     // slots ever started
	ppm   float64 // the estimate, ppm (receiver fast: positive)
	ok    bool    // ppm is trusted
	pairs [skewSlots * (skewSlots - 1) / 2]float64
}

type skewSlot struct {
	mid clock.Time // the middle of the slot (sender's clock)
	ms  float64    // the least one-way delay in it
}

const (
	skewSlots     = 12
	skewSlotLen   = 4 * time.Second
	skewMinSlots  = 8 // 32 s of minima before the estimate counts
	skewMaxPPM    = 2000
	skewSpreadPPM = 300
)

// add takes a packet's one-way delay (ms) and its send time.
func (s *skewEstimator) add(send clock.Time, owdMS float64) {
	k := int64(send) / int64(skewSlotLen)
	if int64(send) < 0 {
		k-- // floor
	}
	mid := clock.Time(k*int64(skewSlotLen) + int64(skewSlotLen)/2)
	if s.n > 0 {
		cur := &s.slots[(s.n-1)%skewSlots]
		switch {
		case cur.mid == mid:
			cur.ms = min(cur.ms, owdMS)
			return
		case mid < cur.mid:
			return // an old packet (reordered, or a repeat): its slot is done
		}
		s.estimate() // the current slot is complete
	}
	s.slots[s.n%skewSlots] = skewSlot{mid: mid, ms: owdMS}
	s.n++
}

// estimate recomputes ppm from the complete slots (all but the newest).
func (s *skewEstimator) estimate() {
	n := min(s.n, skewSlots)
	if n < skewMinSlots {
		return
	}
	k := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			a, b := s.slots[i], s.slots[j]
			dt := b.mid.Sub(a.mid).Seconds()
			if dt == 0 {
				continue
			}
			s.pairs[k] = (b.ms - a.ms) / dt * 1000 // ms/s to ppm
			k++
		}
	}
	p := s.pairs[:k]
	slices.Sort(p)
	q1, med, q3 := p[k/4], p[k/2], p[3*k/4]
	if q3-q1 > skewSpreadPPM {
		return // the slopes disagree: queues, not the clocks; keep the last estimate
	}
	s.ppm = math.Max(-skewMaxPPM, math.Min(skewMaxPPM, med))
	s.ok = true
}

// correction returns the skew's share (ms) of a one-way delay measured at
// send time at, relative to one measured at ref: subtract it to compare
// delays measured apart.
func (s *skewEstimator) correction(at, ref clock.Time) float64 {
	if !s.ok {
		return 0
	}
	return s.ppm / 1000 * at.Sub(ref).Seconds()
}
