package jitterbuffer

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Clock drift between sender and receiver shows as a slope in transit
// times (receiver's arrival clock minus sender's timestamp): +1000 ppm
// (the receiver's clock 0.1 % fast) adds a millisecond of apparent transit
// every second, and takes one from the transit of the pings this side
// sends back. The estimator keeps the least transit of each second on
// each path, the floor jitter cannot lower, fits the line under those of
// the last 21 minutes (lineFit.fit), and weighs the two lines
// (driftEstimator).

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

// lineFit keeps one path's least transit of each second and fits the
// line under them (fit).
type lineFit struct {
	mins   secondMins
	xs, ys []float64 // when each kept second's least transit came, and that transit, seconds (by ring index)
	hull   []int     // scratch: the lower hull's seconds, by ring index
	origin clock.Time
	ref    time.Duration
	closed int     // seconds closed so far
	fitted bool    // slope, spread and sxx hold a fit
	slope  float64 // seconds of transit per second
	spread float64 // the kept seconds' mean height above the line, seconds
	sxx    float64 // sum of the kept seconds' squared distance from their mean time, s²
}

func newLineFit() lineFit {
	return lineFit{mins: newSecondMins(driftBucket, driftBuckets),
		xs: make([]float64, driftBuckets), ys: make([]float64, driftBuckets), hull: make([]int, 0, driftBuckets)}
}

// add records one transit at now and reports whether the line was refitted.
func (l *lineFit) add(now clock.Time, transit time.Duration) bool {
	m := &l.mins
	if !m.started {
		l.origin, l.ref = now, transit
	}
	if !m.add(now, transit) {
		return false
	}
	k := (m.head + m.n - 1) % len(m.v) // the second just kept
	// The least value's own time, not the second's middle: at 1000 ppm the
	// floor moves a millisecond within a second. (Seeds 1-5 of the bench's
	// four jb-drift rows, the estimate after 60 s: rms error 13.4 ppm with
	// the middle, 10.0 with the time.)
	l.xs[k] = m.at[k].Sub(l.origin).Seconds()
	l.ys[k] = (m.v[k] - l.ref).Seconds()
	l.closed++
	if m.n >= driftMinBuckets && (m.n < 60 || l.closed%driftRefit == 0) {
		l.fit()
		return true
	}
	return false
}

// fit sets the slope of the line lying under every kept second's least
// transit with the least total distance to them: the lower convex hull's
// edge over the seconds' mean time (Moon, Skelly and Towsley's linear
// program for clock skew, 1999). Queueing and jitter only ever add delay,
// so the floor's lowest points carry the clock's slope; a least-squares
// line through the minima would carry their noise too (several ms a
// second when the jitter forbids reordering). It also sets spread and
// sxx, from which the estimator weighs this path against the other.
func (l *lineFit) fit() {
	m := &l.mins
	x, y := l.xs, l.ys
	// Monotone chain over the seconds in time order (the ring from head).
	hull := l.hull[:0]
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
	l.hull = hull
	mean /= float64(m.n)
	a := hull[0]
	l.slope = 0
	for i := 0; i+1 < len(hull); i++ {
		a = hull[i]
		b := hull[i+1]
		if x[b] >= mean || i+2 == len(hull) {
			l.slope = (y[b] - y[a]) / (x[b] - x[a])
			break
		}
	}
	var above, sxx float64
	for j := 0; j < m.n; j++ {
		above += y[j] - y[a] - l.slope*(x[j]-x[a])
		sxx += (x[j] - mean) * (x[j] - mean)
	}
	l.spread, l.sxx, l.fitted = above/float64(m.n), sxx, true
}

// weight is the fit's inverse variance, up to a common factor: a line
// through points spread s above it, over times whose squared distances
// from their mean sum to sxx, has a slope error about s²/sxx (the
// least-squares formula; the hull's edge does better, but alike on both
// paths).
func (l *lineFit) weight() float64 {
	s := max(l.spread, driftSpreadFloor.Seconds())
	return l.sxx / (s * s)
}

// driftSpreadFloor is the least spread a fit is credited with: below it,
// timestamp resolution (4 µs on data packets, 1 µs on pongs) and when a
// packet is stamped rather than sent dominate.
const driftSpreadFloor = 50 * time.Microsecond

// driftEstimator fits two lines: the data packets' transit on the path
// from the sender (forward: it rises as the receiver's clock gains), and
// the pongs' on the path back (reverse, docs/PROTOCOL.md §8: it falls as
// the receiver's clock gains). Each gives the drift; the estimate weighs
// them by their inverse variance, so a path with less jitter than the
// other sets the slope sooner. A path's floor under 30 ms of jitter
// without reordering moves 1.6 ms (standard deviation) from second to
// second: 30 seconds of those cannot fix a slope to 10 ppm (0.3 ms over
// the 30 s), whatever line is drawn under them.
type driftEstimator struct {
	fwd, rev lineFit
	revLast  clock.Time // the last reverse sample's send time
	revSet   bool
	slope    float64 // seconds of transit per second on the forward path, clamped to ±MaxDrift
}

// driftRefit is how often (in seconds closed) the line is refitted once a
// minute is kept: the drift moves slowly, and a fit walks every second.
const driftRefit = 10

func newDriftEstimator() driftEstimator {
	return driftEstimator{fwd: newLineFit(), rev: newLineFit()}
}

// add records a forward transit (arrival on this side's clock, now, minus
// the send timestamp on the sender's).
func (d *driftEstimator) add(now clock.Time, transit time.Duration) {
	if d.fwd.add(now, transit) {
		d.combine()
	}
}

// addReverse records a reverse transit: a pong's arrival time on the
// sender's clock minus its ping's send time, sent, on this side's. Pongs
// arriving out of order are left out: the fit needs its times in order.
func (d *driftEstimator) addReverse(sent clock.Time, transit time.Duration) {
	if d.revSet && sent <= d.revLast {
		return
	}
	d.revLast, d.revSet = sent, true
	if d.rev.add(sent, transit) {
		d.combine()
	}
}

func (d *driftEstimator) combine() {
	var s float64
	switch {
	case d.fwd.fitted && d.rev.fitted:
		wf, wr := d.fwd.weight(), d.rev.weight()
		s = (wf*d.fwd.slope - wr*d.rev.slope) / (wf + wr)
	case d.fwd.fitted:
		s = d.fwd.slope
	case d.rev.fitted:
		s = -d.rev.slope
	}
	if math.IsNaN(s) {
		return // a vertical hull edge (two floors at one float time): keep the last estimate
	}
	d.slope = min(max(s, -MaxDrift), MaxDrift)
}

// ppm returns the estimated drift in parts per million (0 until 10 s of
// samples on either path), positive when the receiver's clock runs fast.
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
