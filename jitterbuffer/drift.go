package jitterbuffer

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Clock drift between sender and receiver shows as a slope in transit
// times (receiver's arrival clock minus sender's timestamp): +1000 ppm
// (the receiver's clock 0.1 % fast) adds a millisecond of apparent transit
// every second. The estimator keeps the least transit of each second, the
// floor jitter cannot lower, and fits a least-squares line through the
// last 128 of them.

const (
	driftBucket     = time.Second
	driftBuckets    = 128
	driftMinBuckets = 10
	// MaxDrift bounds the drift estimate (±0.5 %): beyond it, the slope
	// comes from queueing, not clocks.
	MaxDrift = 5000e-6
)

type driftEstimator struct {
	started bool
	origin  clock.Time // times are seconds since origin
	ref     time.Duration
	bucket  clock.Time // start of the bucket being filled
	cur     time.Duration
	curSet  bool
	t, y    [driftBuckets]float64
	n, head int
	slope   float64 // seconds of transit per second
}

func (d *driftEstimator) add(now clock.Time, transit time.Duration) {
	if !d.started {
		d.started, d.origin, d.bucket, d.ref = true, now, now, transit
	}
	if now.Sub(d.bucket) >= driftBucket {
		d.close()
		gap := now.Sub(d.bucket)
		d.bucket = d.bucket.Add(gap - gap%driftBucket)
	}
	if !d.curSet || transit < d.cur {
		d.cur, d.curSet = transit, true
	}
}

func (d *driftEstimator) close() {
	if !d.curSet {
		return
	}
	d.curSet = false
	i := (d.head + d.n) % driftBuckets
	if d.n == driftBuckets {
		i = d.head
		d.head = (d.head + 1) % driftBuckets
	} else {
		d.n++
	}
	d.t[i] = d.bucket.Add(driftBucket / 2).Sub(d.origin).Seconds()
	d.y[i] = (d.cur - d.ref).Seconds()
	if d.n < driftMinBuckets {
		return
	}
	var mt, my float64
	for k := 0; k < d.n; k++ {
		mt += d.t[k]
		my += d.y[k]
	}
	mt /= float64(d.n)
	my /= float64(d.n)
	var sxy, sxx float64
	for k := 0; k < d.n; k++ {
		dt := d.t[k] - mt
		sxy += dt * (d.y[k] - my)
		sxx += dt * dt
	}
	if sxx > 0 {
		d.slope = min(max(sxy/sxx, -MaxDrift), MaxDrift)
	}
}

// ppm returns the estimated drift in parts per million (0 until 10 s of
// samples), positive when the receiver's clock runs fast.
func (d *driftEstimator) ppm() float64 { return d.slope * 1e6 }

// floor is a stream's least transit over the last floorBuckets seconds,
// drift-compensated: each second's least transit, carried to now along the
// drift slope.
const floorBuckets = 32

type floor struct {
	t       [floorBuckets]clock.Time
	v       [floorBuckets]time.Duration
	n, head int
	bucket  clock.Time
	curT    clock.Time
	cur     time.Duration
	curSet  bool
}

func (f *floor) add(now clock.Time, transit time.Duration) {
	if f.n == 0 && !f.curSet {
		f.bucket = now
	}
	if now.Sub(f.bucket) >= driftBucket {
		if f.curSet {
			i := (f.head + f.n) % floorBuckets
			if f.n == floorBuckets {
				i = f.head
				f.head = (f.head + 1) % floorBuckets
			} else {
				f.n++
			}
			f.t[i], f.v[i] = f.curT, f.cur
			f.curSet = false
		}
		gap := now.Sub(f.bucket)
		f.bucket = f.bucket.Add(gap - gap%driftBucket)
	}
	if !f.curSet || transit < f.cur {
		f.cur, f.curT, f.curSet = transit, now, true
	}
}

// at returns the floor carried to now along slope; ok is false before the
// first sample.
func (f *floor) at(now clock.Time, slope float64) (time.Duration, bool) {
	best, ok := time.Duration(0), false
	carry := func(t clock.Time, v time.Duration) {
		x := v + time.Duration(slope*float64(now.Sub(t)))
		if !ok || x < best {
			best, ok = x, true
		}
	}
	for k := 0; k < f.n; k++ {
		i := (f.head + k) % floorBuckets
		carry(f.t[i], f.v[i])
	}
	if f.curSet {
		carry(f.curT, f.cur)
	}
	return best, ok
}
