package cc

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Pacer is a token bucket: it lets bytes out at Rate, in bursts of at most
// Burst worth of the rate. It decides when the next packet may leave; which
// packet leaves is the session core's choice (priority order). The zero
// Pacer is unusable: call SetRate first.
type Pacer struct {
	rate   int64 // bit/s
	burst  time.Duration
	tokens float64 // bytes; may go negative by one packet
	last   clock.Time
	primed bool
}

// NewPacer returns a pacer at rate bit/s with the given burst (DefaultBurst
// if burst <= 0).
func NewPacer(rate int64, burst time.Duration) Pacer {
	if burst <= 0 {
		burst = DefaultBurst
	}
	p := Pacer{burst: burst}
	p.SetRate(rate)
	return p
}

// Rate returns the pacing rate in bit/s.
func (p *Pacer) Rate() int64 { return p.rate }

// SetRate changes the pacing rate (bit/s, at least 1).
func (p *Pacer) SetRate(rate int64) {
	if rate < 1 {
		rate = 1
	}
	p.rate = rate
	if max := p.maxTokens(); p.tokens > max {
		p.tokens = max
	}
}

func (p *Pacer) maxTokens() float64 {
	return float64(p.rate) / 8 * p.burst.Seconds()
}

func (p *Pacer) refill(now clock.Time) {
	if !p.primed {
		p.primed = true
		p.last = now
		p.tokens = p.maxTokens()
		return
	}
	if now <= p.last {
		return
	}
	p.tokens += float64(p.rate) / 8 * now.Sub(p.last).Seconds()
	if max := p.maxTokens(); p.tokens > max {
		p.tokens = max
	}
	p.last = now
}

// CanSend reports whether a packet may leave now.
func (p *Pacer) CanSend(now clock.Time) bool {
	p.refill(now)
	return p.tokens > 0
}

// OnSent charges size bytes that left at now (paced or not: control packets
// are charged too, so they share the rate).
func (p *Pacer) OnSent(now clock.Time, size int) {
	p.refill(now)
	p.tokens -= float64(size)
}

// NextSend returns when a packet may next leave: now if CanSend(now).
func (p *Pacer) NextSend(now clock.Time) clock.Time {
	p.refill(now)
	if p.tokens > 0 {
		return now
	}
	need := -p.tokens + 1
	wait := time.Duration(need * 8 / float64(p.rate) * float64(time.Second))
	if wait < time.Microsecond {
		wait = time.Microsecond
	}
	return now.Add(wait)
}

// NextSendTime is NextSend without a new reading of the clock: the time,
// as of the last call, when a packet may leave (at or before the last call's
// time if one may leave at once).
func (p *Pacer) NextSendTime() clock.Time {
	if p.tokens > 0 {
		return p.last
	}
	return p.NextSend(p.last)
}
