package arq

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// RTT estimates the round-trip time from samples: the minimum seen, a
// windowed minimum, a smoothed value and its mean deviation as RFC 6298 §2
// computes them (gains 1/8 and 1/4), and the latest sample. Its zero value
// is ready to use. Memory: 104 bytes.
type RTT struct {
	min, smoothed, variation, latest time.Duration
	samples                          int
	lastSample                       clock.Time
	win                              [3]rttSample // windowed minimum: best, second and third choice
}

type rttSample struct {
	at clock.Time
	v  time.Duration
}

// InitialRTT is the estimate before any sample (RFC 9002 §6.2.2 uses 333 ms;
// a real-time transport's handshake always gives a sample first).
const InitialRTT = 333 * time.Millisecond

// MinRTTWindow is the window of WindowedMin: BBR's min_rtt filter window
// (draft-ietf-ccwg-bbr §5.3.1, "MinRTTFilterLen" of 10 s), also the order of
// libwebrtc's windowed minimum RTT.
const MinRTTWindow = 10 * time.Second

// Add records a sample taken at now. Non-positive samples are ignored.
func (r *RTT) Add(now clock.Time, sample time.Duration) {
	if sample <= 0 {
		return
	}
	r.latest = sample
	r.lastSample = now
	if r.samples == 0 {
		r.min, r.smoothed, r.variation = sample, sample, sample/2
		r.samples = 1
		r.resetWindow(now, sample)
		return
	}
	r.samples++
	if sample < r.min {
		r.min = sample
	}
	diff := r.smoothed - sample
	if diff < 0 {
		diff = -diff
	}
	r.variation = (3*r.variation + diff) / 4
	r.smoothed = (7*r.smoothed + sample) / 8
	r.updateWindow(now, sample)
}

func (r *RTT) resetWindow(now clock.Time, v time.Duration) {
	s := rttSample{at: now, v: v}
	r.win = [3]rttSample{s, s, s}
}

// updateWindow is Kathleen Nichols' windowed min filter as Linux keeps it
// for BBR (lib/minmax.c, minmax_running_min): three samples, the best, the
// best of the window's later part and of its last part, so the minimum of
// the last MinRTTWindow is known in constant memory and time.
func (r *RTT) updateWindow(now clock.Time, v time.Duration) {
	s := rttSample{at: now, v: v}
	w := MinRTTWindow
	if v <= r.win[0].v || now.Sub(r.win[2].at) > w {
		r.resetWindow(now, v) // a new minimum, or nothing left in the window
		return
	}
	if v <= r.win[1].v {
		r.win[1], r.win[2] = s, s
	} else if v <= r.win[2].v {
		r.win[2] = s
	}
	dt := now.Sub(r.win[0].at)
	switch {
	case dt > w:
		// The best choice left the window: promote the others.
		r.win[0], r.win[1], r.win[2] = r.win[1], r.win[2], s
		if now.Sub(r.win[0].at) > w {
			r.win[0], r.win[1], r.win[2] = r.win[1], r.win[2], s
		}
	case r.win[1].at == r.win[0].at && dt > w/4:
		// A quarter of the window passed without a second choice.
		r.win[1], r.win[2] = s, s
	case r.win[2].at == r.win[1].at && dt > w/2:
		r.win[2] = s
	}
}

// Samples returns how many samples were taken.
func (r *RTT) Samples() int { return r.samples }

// Min returns the smallest sample ever, or InitialRTT before any.
func (r *RTT) Min() time.Duration {
	if r.samples == 0 {
		return InitialRTT
	}
	return r.min
}

// WindowedMin returns the smallest sample of roughly the last MinRTTWindow
// (as of the latest sample), or InitialRTT before any. Unlike Min it
// follows a path whose delay grew (a route change), so deadline checks built
// on it do not keep trusting a delay the path no longer has.
func (r *RTT) WindowedMin() time.Duration {
	if r.samples == 0 {
		return InitialRTT
	}
	return r.win[0].v
}

// Smoothed returns the smoothed RTT, or InitialRTT before any sample.
func (r *RTT) Smoothed() time.Duration {
	if r.samples == 0 {
		return InitialRTT
	}
	return r.smoothed
}

// Variation returns the RTT's mean deviation, or InitialRTT/2 before any
// sample.
func (r *RTT) Variation() time.Duration {
	if r.samples == 0 {
		return InitialRTT / 2
	}
	return r.variation
}

// Latest returns the last sample, or InitialRTT before any.
func (r *RTT) Latest() time.Duration {
	if r.samples == 0 {
		return InitialRTT
	}
	return r.latest
}
