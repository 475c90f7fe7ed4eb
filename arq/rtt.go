package arq

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// RTT estimates the round-trip time from samples: the minimum seen, a
// smoothed value and its mean deviation as RFC 6298 §2 computes them
// (gains 1/8 and 1/4), and the latest sample.
type RTT struct {
	min, smoothed, variation, latest time.Duration
	samples                          int
	lastSample                       clock.Time
}

// InitialRTT is the estimate before any sample (RFC 9002 §6.2.2 uses 333 ms;
// a real-time transport's handshake always gives a sample first).
const InitialRTT = 333 * time.Millisecond

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
}

// Samples returns how many samples were taken.
func (r *RTT) Samples() int { return r.samples }

// Min returns the smallest sample, or InitialRTT before any.
func (r *RTT) Min() time.Duration {
	if r.samples == 0 {
		return InitialRTT
	}
	return r.min
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
