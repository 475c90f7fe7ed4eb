package jitterbuffer

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Clock drift between sender and receiver shows as a slope in transit
// times (receiver's arrival clock minus sender's timestamp): +1000 ppm
// (the receiver's clock 0.1 % fast) adds a millisecond of apparent transit
// every second. The estimator keeps the least transit of each second, the
// floor jitter cannot lower, and fits the line under those of the last
// 21 minutes (fit).

const (
	driftBucket     = time.Second
	driftBuckets    = 1280 // 21 min: the floor's noise (about a millisecond) weighs 1/T
	driftMinBuckets = 10
	floorBucket     = time.Second
	// MaxDrift bounds the drift estimate (±0.5 %): beyond it, the slope
	// comes from queueing, not clocks.
	MaxDrift = 5000e-6
)

// secondMins keeps the least value of each interval of width for its
// last len(v) intervals, plus the one being filled. Its storage is
// allocated once.
type secondMins struct {
	width   time.Duration
	started bool
	bucket  clock.Time // start of the second being filled
	curT    clock.Time // when the least value of that second came
	cur     time.Duration
	curSet  bool
	start   []clock.Time // each kept second's start
	at      []clock.Time // when its least value came
	v       []time.Duration
	n, head int
}

func newSecondMins(width time.Duration, n int) secondMins {
	return secondMins{width: width, start: make([]clock.Time, n), at: make([]clock.Time, n), v: make([]time.Duration, n)}
}

// add records v at now and reports whether a second was closed (and
// kept) first.
func (s *secondMins) add(now clock.Time, v time.Duration) (closed bool) {
	if !s.started {
		s.started, s.bucket = true, now
	}
	if now.Sub(s.bucket) >= s.width {
		if s.curSet {
			i := (s.head + s.n) % len(s.v)
			if s.n == len(s.v) {
				i = s.head
				s.head = (s.head + 1) % len(s.v)
			} else {
				s.n++
			}
			s.start[i], s.at[i], s.v[i] = s.bucket, s.curT, s.cur
			s.curSet, closed = false, true
		}
		gap := now.Sub(s.bucket)
		s.bucket = s.bucket.Add(gap - gap%s.width)
	}
	if !s.curSet || v < s.cur {
		s.cur, s.curT, s.curSet = v, now, true
	}
	return closed
}

type driftEstimator struct {
	mins   secondMins
	xs, ys []float64 // when each kept second's least transit came, and that transit, seconds (by ring index)
	hull   []int     // scratch: the lower hull's seconds, by ring index
	origin clock.Time
	ref    time.Duration
	closed int     // seconds closed so far
	slope  float64 // seconds of transit per second
}

// driftRefit is how often (in seconds closed) the line is refitted once a
// minute is kept: the drift moves slowly, and a fit walks every second.
const driftRefit = 10

func newDriftEstimator() driftEstimator {
	return driftEstimator{mins: newSecondMins(driftBucket, driftBuckets),
		xs: make([]float64, driftBuckets), ys: make([]float64, driftBuckets), hull: make([]int, 0, driftBuckets)}
}

func (d *driftEstimator) add(now clock.Time, transit time.Duration) {
	m := &d.mins
	if !m.started {
		d.origin, d.ref = now, transit
	}
	if !m.add(now, transit) {
		return
	}
	k := (m.head + m.n - 1) % len(m.v) // the second just kept
	// The least value's own time, not the second's middle: at 1000 ppm the
	// floor moves a millisecond within a second. (Seeds 1-5 of the bench's
	// four jb-drift rows, the estimate after 60 s: rms error 13.4 ppm with
	// the middle, 10.0 with the time.)
	d.xs[k] = m.at[k].Sub(d.origin).Seconds()
	d.ys[k] = (m.v[k] - d.ref).Seconds()
	d.closed++
	if m.n >= driftMinBuckets && (m.n < 60 || d.closed%driftRefit == 0) {
		d.fit()
	}
}

// fit sets the slope of the line lying under every kept second's least
// transit with the least total distance to them: the lower convex hull's
// edge over the seconds' mean time (Moon, Skelly and Towsley's linear
// program for clock skew, 1999). Queueing and jitter only ever add delay,
// so the floor's lowest points carry the clock's slope; a least-squares
// line through the minima would carry their noise too (several ms a
// second when the jitter forbids reordering).
func (d *driftEstimator) fit() {
	m := &d.mins
	x, y := d.xs, d.ys
	// Monotone chain over the seconds in time order (the ring from head).
	hull := d.hull[:0]
	var mean float64
	k := m.head
	for j := 0; j < m.n; j++ {
		mean += x[k]
		for len(hull) >= 2 {
			a, b := hull[len(hull)-2], hull[len(hull)-1]
			// Drop b unless it lies strictly below the line from a to k.
			if (x[b]-x[a])*(y[k]-y[a])-(y[b]-y[a])*(x[k]-x[a]) > 0 {
				break
			}
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, k)
		if k++; k == len(x) {
			k = 0
		}
	}
	d.hull = hull
	mean /= float64(m.n)
	for i := 0; i+1 < len(hull); i++ {
		a, b := hull[i], hull[i+1]
		if x[b] >= mean || i+2 == len(hull) {
			d.slope = min(max((y[b]-y[a])/(x[b]-x[a]), -MaxDrift), MaxDrift)
			return
		}
	}
}

// ppm returns the estimated drift in parts per million (0 until 10 s of
// samples), positive when the receiver's clock runs fast.
func (d *driftEstimator) ppm() float64 { return d.slope * 1e6 }

// floorBuckets is the seconds a stream's least transit remembers.
const floorBuckets = 32

// floor is a stream's least transit over the last floorBuckets seconds,
// drift-compensated: each second's least transit, carried to now along the
// drift slope.
type floor struct {
	mins secondMins
	// The least of the kept seconds' v - slope x t, for the slope it was
	// computed with: a second closing, or a new slope, recomputes it.
	cached     bool
	cacheSlope float64
	cacheMin   float64 // ns
}

func newFloor() floor { return floor{mins: newSecondMins(floorBucket, floorBuckets)} }

func (f *floor) add(now clock.Time, transit time.Duration) {
	if f.mins.add(now, transit) {
		f.cached = false
	}
}

// at returns the floor carried to now along slope; ok is false before the
// first sample.
func (f *floor) at(now clock.Time, slope float64) (time.Duration, bool) {
	m := &f.mins
	best := math.Inf(1)
	if m.n > 0 {
		if !f.cached || slope != f.cacheSlope {
			f.cacheMin, f.cacheSlope, f.cached = math.Inf(1), slope, true
			for k := 0; k < m.n; k++ { // order does not matter to a minimum
				f.cacheMin = min(f.cacheMin, float64(m.v[k])-slope*float64(m.at[k]))
			}
		}
		best = f.cacheMin
	}
	if m.curSet {
		best = min(best, float64(m.cur)-slope*float64(m.curT))
	}
	if math.IsInf(best, 1) {
		return 0, false
	}
	return time.Duration(math.Round(best + slope*float64(now))), true
}
