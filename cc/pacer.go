package cc

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Class is a pacer priority class. Lower classes leave first (strict
// priority): audio, then retransmissions, then key frames, then other video,
// then data. FEC repair packets travel in the class of what they protect
// (fec's policy plans them per class; the session core sends them right
// after retransmissions, ahead of the next frame).
type Class uint8

// Classes, highest priority first.
const (
	ClassAudio Class = iota
	ClassRetransmission
	ClassKey
	ClassVideo
	ClassData
	NumClasses
)

var classNames = [NumClasses]string{"audio", "retransmission", "key", "video", "data"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "invalid"
}

// Pacer is a token bucket with a queue account: it lets bytes out at the
// pacing rate in bursts of at most Burst worth of the rate, and keeps count
// of the bytes waiting to leave in each class so the session core can bound
// the queue in time (QueueLimit) and predict when a frame would leave. It
// decides when the next packet may leave; which packet leaves is the
// session core's choice (Class order). The zero Pacer is unusable: use
// NewPacer.
type Pacer struct {
	rate   int64 // bit/s
	floor  int64 // bit/s: a drain rate the queue asked for (Stretch); 0 none
	burst  time.Duration
	tokens float64 // bytes; may go negative by one packet
	last   clock.Time
	primed bool

	limit  time.Duration // the queue's bound in time at the drain rate; 0 none
	queued [NumClasses]int64
	total  int64
	stats  PacerStats
}

// PacerStats are the pacer's own counters.
type PacerStats struct {
	// QueueDelayMax is the largest queue delay (queued bytes at the drain
	// rate) seen right after bytes joined the queue.
	QueueDelayMax time.Duration
	// Stretches counts the times the drain rate was raised above the pacing
	// rate so that bytes which must not be dropped fit the limit.
	Stretches int64
	// StretchRateMax is the largest drain rate those asked for, bit/s.
	StretchRateMax int64
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

// DrainRate returns the rate the queue drains at: the pacing rate, or more
// while a Stretch is in force.
func (p *Pacer) DrainRate() int64 { return max(p.rate, p.floor) }

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
	return float64(p.DrainRate()) / 8 * p.burst.Seconds()
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
	p.tokens += float64(p.DrainRate()) / 8 * now.Sub(p.last).Seconds()
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
	wait := time.Duration(need * 8 / float64(p.DrainRate()) * float64(time.Second))
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

// SetQueueLimit bounds the queue in time: Fits refuses bytes that would
// make the queued bytes take longer than d to drain. 0 removes the bound.
func (p *Pacer) SetQueueLimit(d time.Duration) { p.limit = max(d, 0) }

// QueueLimit returns the queue's bound in time (0: none).
func (p *Pacer) QueueLimit() time.Duration { return p.limit }

// Add counts n bytes of class c joining the queue.
func (p *Pacer) Add(c Class, n int) {
	p.queued[c] += int64(n)
	p.total += int64(n)
	if d := p.QueueDelay(); d > p.stats.QueueDelayMax {
		p.stats.QueueDelayMax = d
	}
}

// Remove counts n bytes of class c leaving the queue (sent or dropped).
// When the queue empties, a Stretch ends.
func (p *Pacer) Remove(c Class, n int) {
	p.queued[c] -= int64(n)
	p.total -= int64(n)
	if p.queued[c] < 0 || p.total < 0 {
		panic("cc: pacer queue account went negative")
	}
	if p.total == 0 && p.floor != 0 {
		p.floor = 0
		if max := p.maxTokens(); p.tokens > max {
			p.tokens = max
		}
	}
}

// Queued returns the bytes waiting in every class.
func (p *Pacer) Queued() int64 { return p.total }

// QueuedClass returns the bytes waiting in class c.
func (p *Pacer) QueuedClass(c Class) int64 { return p.queued[c] }

// Ahead returns the bytes waiting in the classes that leave before c.
func (p *Pacer) Ahead(c Class) int64 {
	var n int64
	for k := Class(0); k < c && k < NumClasses; k++ {
		n += p.queued[k]
	}
	return n
}

// DelayOf returns how long n bytes take to leave at the drain rate.
func (p *Pacer) DelayOf(n int64) time.Duration {
	return time.Duration(float64(n) * 8 / float64(p.DrainRate()) * float64(time.Second))
}

// QueueDelay returns how long the queued bytes take to leave at the drain
// rate.
func (p *Pacer) QueueDelay() time.Duration { return p.DelayOf(p.total) }

// Fits reports whether n more bytes keep the queue within its limit.
func (p *Pacer) Fits(n int) bool {
	return p.limit == 0 || p.DelayOf(p.total+int64(n)) <= p.limit
}

// Stretch raises the drain rate, until the queue next empties, so that the
// queue plus n more bytes drains within the limit: for bytes that must not
// be dropped for the limit alone (a key frame whose deadline is reachable,
// audio). It does nothing without a limit or when they fit already.
func (p *Pacer) Stretch(n int) {
	if p.limit == 0 || p.Fits(n) {
		return
	}
	need := int64(math.Ceil(float64(p.total+int64(n)) * 8 / p.limit.Seconds()))
	p.floor = max(p.floor, need)
	p.stats.Stretches++
	p.stats.StretchRateMax = max(p.stats.StretchRateMax, p.floor)
}

// Stats returns the pacer's counters.
func (p *Pacer) Stats() PacerStats { return p.stats }

// PredictArrival is when the last byte of a frame would reach the peer:
// now, plus the queue ahead of it at the drain rate, plus its own bytes at
// rate (the transport target: the path drains it no faster), plus the
// one-way delay.
func PredictArrival(now clock.Time, aheadDelay time.Duration, frameBytes int, rate int64, oneWay time.Duration) clock.Time {
	if rate < 1 {
		rate = 1
	}
	own := time.Duration(float64(frameBytes) * 8 / float64(rate) * float64(time.Second))
	return now.Add(aheadDelay + own + oneWay)
}
