package bench

import (
	"math"
	"slices"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Baselines sets the receiver's playout beside three others computed
// offline from the same run's frame completions (the jitterbuffer issue's
// "near-optimal" rows): each frame's added delay is its playout (or its
// completion, if later: played late) minus its capture minus the least
// transit of the run. Every frame the receiver played counts, audio and
// video together (they share one playout offset).
type Baselines struct {
	Frames    int64   `json:"frames"`
	LateRatio float64 `json:"late_ratio"` // ours: frames played after their playout time
	AddedMS   float64 `json:"added_ms"`   // ours: mean added delay
	// A fixed offset with the same number of late frames.
	FixedAddedMS float64 `json:"fixed_added_ms"`
	// A NetEq-style target (the 0.95 quantile of each 500 ms's largest
	// relative delay, in 20 ms buckets forgetting 0.983 an interval),
	// moving at the profile's rate, lifted at once by a late frame as ours
	// is. (Until 2026-11-27 it added every frame, forgetting 0.983 a frame:
	// 0.7 s of memory at 80 frames a second instead of about 30 s.)
	NetEqAddedMS   float64 `json:"neteq_added_ms"`
	NetEqLateRatio float64 `json:"neteq_late_ratio"`
	// The offline optimum: the least mean added delay of any offset
	// schedule changing no faster than the profile's rate (held for 100 ms
	// steps, on a 1 ms grid) within the profile's MaxPlayoutDelay, with at
	// most our number of late frames, by dynamic programming over a
	// Lagrangian weight on lateness. The weight reaches only the convex
	// hull of the (late frames, delay) curve: OptimumAddedMS is the best
	// schedule found with at most our late frames (OptimumLateRatio, which
	// may be fewer), OptimumBoundMS the hull at our late count, which no
	// schedule beats. The optimum lies between them.
	OptimumAddedMS   float64 `json:"optimum_added_ms"`
	OptimumLateRatio float64 `json:"optimum_late_ratio"`
	OptimumBoundMS   float64 `json:"optimum_bound_ms"`
	// A constant offset per jitter period, known in advance: the periods
	// are the spans between the schedule's changes of forward jitter (the
	// whole run without any), each offset the one that, with at most our
	// number of late frames in all, gives the least mean added delay (a
	// Lagrangian weight shared by the periods: PeriodLateRatio may be
	// fewer), jumping from one period's to the next at once. The issue's
	// "per-period quantile" with the late frames where they cost least: a
	// buffer that knew each period's jitter from its first frame and
	// needed no time to learn or drain.
	PeriodAddedMS   float64 `json:"period_added_ms"`
	PeriodLateRatio float64 `json:"period_late_ratio"`
}

type playSample struct {
	capture clock.Time
	transit time.Duration // completion - capture
	offset  time.Duration // ours: release - capture
	late    bool
}

// baselines computes Baselines for the frames the receiver played, or nil
// if it played none. rate is the profile's drain rate, maxDelay its
// MaxPlayoutDelay.
func (r *run) baselines(rate float64, maxDelay time.Duration) *Baselines {
	var s []playSample
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for _, fr := range st.frames {
			if fr.playout == clock.Never || fr.completed == clock.Never {
				continue
			}
			s = append(s, playSample{capture: fr.submit, transit: fr.completed.Sub(fr.submit),
				offset: fr.playout.Sub(fr.submit), late: fr.late})
		}
	}
	if len(s) == 0 {
		return nil
	}
	slices.SortStableFunc(s, func(a, b playSample) int { return int(a.capture - b.capture) })
	least := s[0].transit
	for _, x := range s {
		least = min(least, x.transit)
	}
	n := float64(len(s))
	b := &Baselines{Frames: int64(len(s))}
	var late int
	var added float64
	for _, x := range s {
		if x.late {
			late++
		}
		added += ms(max(x.offset, x.transit) - least)
	}
	b.LateRatio = round6(float64(late) / n)
	b.AddedMS = round4(added / n)
	b.FixedAddedMS = round4(fixedAdded(s, least, late))
	neteq, neteqLate := netEqAdded(s, least, rate)
	b.NetEqAddedMS, b.NetEqLateRatio = round4(neteq), round6(float64(neteqLate)/n)
	opt, optLate, bound := optimumAdded(s, least, rate, late, maxDelay)
	b.OptimumAddedMS, b.OptimumLateRatio, b.OptimumBoundMS = round4(opt), round6(float64(optLate)/n), round4(bound)
	per, perLate := periodAdded(s, least, late, r.jitterPeriods())
	b.PeriodAddedMS, b.PeriodLateRatio = round4(per), round6(float64(perLate)/n)
	return b
}

// jitterPeriods returns when, in capture time, the schedule changes the
// forward link's jitter (Baselines.PeriodAddedMS).
func (r *run) jitterPeriods() []clock.Time {
	var at []clock.Time
	j := r.sc.Forward.Jitter
	for _, st := range r.sc.Schedule {
		if st.Forward != nil && st.Forward.Jitter != j {
			j = st.Forward.Jitter
			at = append(at, r.acct.origin.Add(st.At))
		}
	}
	return at
}

// periodDPWork bounds periodAdded's exact search: late frames x frames
// (the jitterbuffer rows': up to about 3e8).
const periodDPWork = 1e9

// periodAdded is Baselines.PeriodAddedMS: s split at bounds (ascending
// capture times), a constant offset per part, at most maxLate late frames
// in all (played at completion). It returns the mean added delay and the
// late frames: exact (periodExact) unless that is too much work, then on
// the convex hull (periodHull).
func periodAdded(s []playSample, least time.Duration, maxLate int, bounds []clock.Time) (float64, int) {
	parts := periodParts(s, least, bounds)
	var sum float64
	var late int
	if int64(maxLate)*int64(len(s)) <= periodDPWork {
		sum, late = periodExact(parts, maxLate)
	} else {
		sum, late = periodHull(parts, maxLate)
	}
	return sum / float64(len(s)), late
}

// periodPart is one period's transits above the least, ascending, and
// their suffix sums.
type periodPart struct{ t, suf []float64 }

// cost is the part's total added delay, ms, with its l largest transits
// late (l < len(t)): the others wait for the offset t[n-1-l].
func (p periodPart) cost(l int) float64 {
	n := len(p.t)
	return float64(n-l)*p.t[n-1-l] + p.suf[n-l]
}

// periodParts splits s at bounds.
func periodParts(s []playSample, least time.Duration, bounds []clock.Time) []periodPart {
	var parts []periodPart
	bi := 0
	for i := 0; i < len(s); {
		for bi < len(bounds) && bounds[bi] <= s[i].capture {
			bi++
		}
		j := i + 1
		for j < len(s) && (bi == len(bounds) || s[j].capture < bounds[bi]) {
			j++
		}
		t := make([]float64, j-i)
		for k, x := range s[i:j] {
			t[k] = ms(x.transit - least)
		}
		slices.Sort(t)
		suf := make([]float64, len(t)+1)
		for k := len(t) - 1; k >= 0; k-- {
			suf[k] = suf[k+1] + t[k]
		}
		parts = append(parts, periodPart{t, suf})
		i = j
	}
	return parts
}

// periodExact returns the least total cost with at most maxLate late
// frames, and its late frames, by dynamic programming over the parts
// (the least cost with k late so far).
func periodExact(parts []periodPart, maxLate int) (float64, int) {
	inf := math.Inf(1)
	dp := make([]float64, maxLate+1)
	nd := make([]float64, maxLate+1)
	for k := range dp {
		dp[k] = inf
	}
	dp[0] = 0
	for _, p := range parts {
		for k := range nd {
			nd[k] = inf
		}
		for l := 0; l < len(p.t) && l <= maxLate; l++ {
			c := p.cost(l)
			for k := 0; k+l <= maxLate; k++ {
				if v := dp[k] + c; v < nd[k+l] {
					nd[k+l] = v
				}
			}
		}
		dp, nd = nd, dp
	}
	best := 0
	for k := range dp {
		if dp[k] < dp[best] {
			best = k
		}
	}
	return dp[best], best
}

// periodHull is periodExact by a Lagrangian weight shared by the parts:
// O(frames) a weight, but it reaches only the (late, cost) curve's convex
// hull, with at most maxLate late frames.
func periodHull(parts []periodPart, maxLate int) (float64, int) {
	solve := func(lambda float64) (float64, int) {
		var sum float64
		late := 0
		for _, p := range parts {
			bestC, bestL := 0.0, -1
			for l := range len(p.t) {
				c := p.cost(l)
				if bestL < 0 || c+lambda*float64(l) < bestC+lambda*float64(bestL) {
					bestC, bestL = c, l
				}
			}
			sum += bestC
			late += bestL
		}
		return sum, late
	}
	sum, late, _, _ := lagrangian(solve, maxLate)
	return sum, late
}

// lagrangian bisects the weight on lateness that solve (the least cost
// plus lambda per late frame: the cost and the late frames) takes, and
// returns the schedules either side of maxLate late frames: the cheapest
// found with at most maxLate, and the one just over.
func lagrangian(solve func(lambda float64) (float64, int), maxLate int) (sum float64, late int, overSum float64, overLate int) {
	lo, hi := 0.0, 1e7
	sum, late = solve(hi)
	overSum, overLate = solve(lo)
	for range 40 {
		mid := (lo + hi) / 2
		s2, l2 := solve(mid)
		if l2 <= maxLate {
			hi, sum, late = mid, s2, l2
		} else {
			lo, overSum, overLate = mid, s2, l2
		}
	}
	return sum, late, overSum, overLate
}

// fixedAdded is the mean added delay of the fixed offset that leaves late
// frames late (those with the largest transits).
func fixedAdded(s []playSample, least time.Duration, late int) float64 {
	t := make([]time.Duration, len(s))
	for i, x := range s {
		t[i] = x.transit
	}
	slices.Sort(t)
	d := t[len(t)-1-min(late, len(t)-1)]
	var sum float64
	for _, v := range t {
		sum += ms(max(d, v) - least)
	}
	return sum / float64(len(t))
}

// netEqAdded plays the samples with a NetEq-style target (libwebrtc's
// delay manager, as the jitterbuffer issue describes it): each 500 ms of
// capture time adds its largest relative delay (transit above the least so
// far) to a histogram of 20 ms buckets whose weights forget 0.983 an
// interval, and the target is the histogram's 0.95 quantile (until one
// interval is complete, the largest so far, at least one bucket).
func netEqAdded(s []playSample, least time.Duration, rate float64) (float64, int) {
	const (
		bucket   = 20 * time.Millisecond
		forget   = 0.983
		interval = 500 * time.Millisecond
	)
	var h [150]float64 // 3 s
	var total float64
	var sum float64
	late := 0
	runLeast := s[0].transit
	off := s[0].transit
	prev := s[0].capture
	intStart, intMax, inInt := s[0].capture, time.Duration(0), false
	target, stale := bucket, false // one bucket until the first frame says more
	bucketOf := func(d time.Duration) int { return min(int(d/bucket), len(h)-1) }
	for i, x := range s {
		for x.capture >= intStart.Add(interval) {
			if inInt {
				for j := range h {
					h[j] *= forget
				}
				h[bucketOf(intMax)] += 1 - forget
				total = total*forget + (1 - forget)
				stale = true
			}
			intStart, intMax, inInt = intStart.Add(interval), 0, false
			if x.capture.Sub(intStart) > time.Hour {
				intStart = x.capture // a gap: no intervals to close in between
			}
		}
		switch {
		case stale:
			var acc float64
			for k, p := range h {
				acc += p
				if acc >= 0.95*total {
					target = time.Duration(k+1) * bucket
					break
				}
			}
			stale = false
		case total == 0 && inInt:
			target = max(target, time.Duration(bucketOf(intMax)+1)*bucket)
		}
		want := runLeast + target
		if i == 0 {
			off = want
		}
		step := time.Duration(rate * float64(x.capture.Sub(prev)))
		off = min(max(want, off-step), off+step)
		if x.transit > off {
			late++
			off = x.transit
		}
		sum += ms(off - least)
		prev = x.capture
		runLeast = min(runLeast, x.transit)
		intMax, inInt = max(intMax, x.transit-runLeast), true
	}
	return sum / float64(len(s)), late
}

// optimumAdded is the offline optimum with at most maxLate late frames and
// offsets (capture to playout) of at most maxDelay: the mean added delay
// of the best schedule found and its late frames, and a lower bound on the
// optimum (Baselines.OptimumBoundMS).
func optimumAdded(s []playSample, least time.Duration, rate float64, maxLate int, maxDelay time.Duration) (float64, int, float64) {
	const step = 100 * time.Millisecond
	const grid = time.Millisecond
	var top time.Duration
	for _, x := range s {
		top = max(top, x.transit)
	}
	states := int(max(0, min(top, maxDelay)-least)/grid) + 2
	w := int(rate * float64(step) / float64(grid))
	// Buckets of capture time, each with its frames' transits sorted.
	start := s[0].capture
	nb := int(s[len(s)-1].capture.Sub(start)/step) + 1
	idx := make([]int, nb+1)
	for _, x := range s {
		idx[int(x.capture.Sub(start)/step)+1]++
	}
	for i := 1; i <= nb; i++ {
		idx[i] += idx[i-1]
	}
	t := make([]float64, len(s)) // transit above least, ms, by bucket then ascending
	for i, x := range s {
		t[i] = ms(x.transit - least)
	}
	for bi := 0; bi < nb; bi++ {
		slices.Sort(t[idx[bi]:idx[bi+1]])
	}
	v := make([]float64, states)
	vl := make([]int, states)
	nv := make([]float64, states)
	nl := make([]int, states)
	dq := make([]int, 0, states)
	solve := func(lambda float64) (float64, int) {
		for k := range v {
			v[k], vl[k] = 0, 0
		}
		for bi := 0; bi < nb; bi++ {
			ts := t[idx[bi]:idx[bi+1]]
			// Sliding minimum of v over [k-w, k+w].
			dq = dq[:0]
			hi := 0
			for k := 0; k < states; k++ {
				for ; hi < states && hi <= k+w; hi++ {
					for len(dq) > 0 && v[dq[len(dq)-1]] >= v[hi] {
						dq = dq[:len(dq)-1]
					}
					dq = append(dq, hi)
				}
				for dq[0] < k-w {
					dq = dq[1:]
				}
				nv[k], nl[k] = v[dq[0]], vl[dq[0]]
			}
			// This bucket's cost at each offset: frames above it are late
			// (played at completion), the others wait for it.
			j, above := 0, 0.0
			for _, x := range ts {
				above += x
			}
			for k := 0; k < states; k++ {
				o := float64(k) * ms(grid)
				for j < len(ts) && ts[j] <= o {
					above -= ts[j]
					j++
				}
				lateN := len(ts) - j
				nv[k] += float64(j)*o + above + lambda*float64(lateN)
				nl[k] += lateN
			}
			v, nv = nv, v
			vl, nl = nl, vl
		}
		best := 0
		for k := range v {
			if v[k] < v[best] {
				best = k
			}
		}
		return v[best] - lambda*float64(vl[best]), vl[best]
	}
	sum, late, loSum, loLate := lagrangian(solve, maxLate)
	// The weights converge on the hull's edge over maxLate: its two ends
	// are the schedules either side, and the edge at maxLate is the bound.
	bound := sum
	if late < maxLate && loLate > maxLate {
		bound = sum + (loSum-sum)*float64(maxLate-late)/float64(loLate-late)
	}
	n := float64(len(s))
	return sum / n, late, bound / n
}
