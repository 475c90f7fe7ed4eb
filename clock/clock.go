package clock

import (
	"math"
	"time"
)

// Time is a monotonic instant: nanoseconds since an epoch chosen by the
// driver. Only differences between Times are meaningful. The zero Time is a
// valid instant (the simulator starts there).
type Time int64

// Never is the Time that never comes: a NextTimeout of Never means "no timer".
const Never Time = math.MaxInt64

// Add returns t+d, saturating at Never (and at the most negative Time).
func (t Time) Add(d time.Duration) Time {
	if t == Never {
		return Never
	}
	s := t + Time(d)
	if d > 0 && s < t {
		return Never
	}
	if d < 0 && s > t {
		return Time(math.MinInt64)
	}
	return s
}

// Sub returns the duration t-u.
func (t Time) Sub(u Time) time.Duration { return time.Duration(t - u) }

// Before reports whether t is before u.
func (t Time) Before(u Time) bool { return t < u }

// After reports whether t is after u.
func (t Time) After(u Time) bool { return t > u }

// Min returns the earlier of t and u.
func Min(t, u Time) Time {
	if u < t {
		return u
	}
	return t
}

// Max returns the later of t and u.
func Max(t, u Time) Time {
	if u > t {
		return u
	}
	return t
}

// Since converts a wall-clock reading into a Time relative to epoch. It is a
// helper for drivers (the cores never call it): the UDP driver keeps one
// epoch per socket and converts its wall-clock reading once per loop turn.
func Since(epoch, wall time.Time) Time { return Time(wall.Sub(epoch)) }

// String formats t as a duration since the epoch, e.g. "1.5s".
func (t Time) String() string {
	if t == Never {
		return "never"
	}
	return time.Duration(t).String()
}
