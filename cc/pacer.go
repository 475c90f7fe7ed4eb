package cc

import (
	"fmt"
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Class is a pacer priority class. Lower classes leave first (strict
// priority): audio, then retransmissions, then key frames, then other video,
// then data. FEC repair packets, of every class fec's policy protects, go
// in the retransmission class, right after the retransmissions: like them
// they repair packets already sent, and behind a key frame (a quarter of a
// second of media) a delta frame's repair would come too late. Audio's
// repairs go there too: sending them with audio, ahead of retransmissions,
// was measured (the bench's loss rows, seeds 1-10) with no gain for audio
// and more video freezes in random-loss-5.
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
	rate  int64 // bit/s
	floor int64 // bit/s: a drain rate the queue asked for (Stretch); 0 none
	// stretchLeft: bytes to leave the queue before a Stretch ends (those
	// queued when it was asked for, and the ones it was asked for).
	stretchLeft int64
	probe       int64 // bit/s: a probe cluster's rate while one is sent (SetProbe); 0 none
	burst       time.Duration
	tokens      float64 // bytes; may go negative by one packet
	last        clock.Time
	primed      bool

	// The budget: a second bucket at the target rate, BudgetWindow deep,
	// so bursts leave at the pacing rate but no faster than the target on
	// average (0: off).
	budgetRate   int64
	budgetWindow time.Duration
	budget       float64 // bytes; may go negative by one packet

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
// while a Stretch is in force; a probe cluster's rate while one goes out.
func (p *Pacer) DrainRate() int64 {
	if p.probe > 0 {
		return max(p.probe, p.floor)
	}
	return max(p.rate, p.floor)
}

// SetProbe makes the pacer send at rate (bit/s; budget included) while a
// probe cluster goes out, neither faster (the pacing rate may be above a
// gentle probe's: the cluster's send rate is what the estimator compares
// the receive rate with) nor slower; 0 ends it.
func (p *Pacer) SetProbe(rate int64) {
	starts := p.probe == 0 && rate > 0
	p.probe = max(rate, 0)
	if starts {
		// No burst saved up at the pacing rate: from its first packet the
		// cluster leaves at its own rate, or it would read faster than it
		// was asked for.
		p.tokens = min(p.tokens, 0)
	}
	if p.probe == 0 {
		p.tokens = min(p.tokens, p.maxTokens())
		if p.budgetRate > 0 {
			p.budget = min(p.budget, p.maxBudget())
		}
	}
}

// DefaultBudgetWindow is the depth of the pacer's budget, in time at the
// target rate: a key frame of 239 ms of the media rate (8 x a delta frame,
// one every 2 s at 30 fps) leaves in one burst at the pacing rate.
const DefaultBudgetWindow = 250 * time.Millisecond

// SetBudget bounds the average rate: bytes leave at the pacing rate only
// while a bucket filling at rate (bit/s) and window deep has them, so a
// source offering more than the target queues (and is dropped by the
// queue's limit) instead of pushing 2.5 x the target into the path. rate 0
// turns the budget off.
func (p *Pacer) SetBudget(rate int64, window time.Duration) {
	if window <= 0 {
		window = DefaultBudgetWindow
	}
	wasOff := p.budgetRate == 0
	p.budgetRate, p.budgetWindow = max(rate, 0), window
	if p.budgetRate == 0 {
		p.budget = 0
		return
	}
	if wasOff {
		p.budget = p.maxBudget()
	}
	p.budget = min(p.budget, p.maxBudget())
}

// BudgetRate returns the budget's rate (0: off).
func (p *Pacer) BudgetRate() int64 { return p.budgetRate }

func (p *Pacer) budgetRateNow() int64 { return max(p.budgetRate, p.floor, p.probe) }

func (p *Pacer) maxBudget() float64 {
	return float64(p.budgetRateNow()) / 8 * p.budgetWindow.Seconds()
}

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
		if p.budgetRate > 0 {
			p.budget = p.maxBudget()
		}
		return
	}
	if now <= p.last {
		return
	}
	dt := now.Sub(p.last).Seconds()
	p.tokens = min(p.tokens+float64(p.DrainRate())/8*dt, p.maxTokens())
	if p.budgetRate > 0 {
		p.budget = min(p.budget+float64(p.budgetRateNow())/8*dt, p.maxBudget())
	}
	p.last = now
}

func (p *Pacer) budgetOK() bool { return p.budgetRate == 0 || p.budget > 0 }

// CanSend reports whether a packet may leave now.
func (p *Pacer) CanSend(now clock.Time) bool {
	p.refill(now)
	return p.tokens > 0 && p.budgetOK()
}

// OnSent charges size bytes that left at now (paced or not: control packets
// are charged too, so they share the rate).
func (p *Pacer) OnSent(now clock.Time, size int) {
	p.refill(now)
	p.tokens -= float64(size)
	if p.budgetRate > 0 {
		p.budget -= float64(size)
	}
}

// CanOverdraw reports whether a packet that must not wait behind the token
// debt (audio: a small share of any rate, sent at once) may leave now:
// while the debt is within one burst.
func (p *Pacer) CanOverdraw(now clock.Time) bool {
	p.refill(now)
	return p.tokens > -p.maxTokens() && (p.budgetRate == 0 || p.budget > -p.maxTokens())
}

// NextOverdrawTime is when CanOverdraw next holds, as of the last call (at
// or before the last call's time if it holds now).
func (p *Pacer) NextOverdrawTime() clock.Time {
	wait := p.waitFor(p.tokens+p.maxTokens(), p.DrainRate())
	if p.budgetRate > 0 {
		wait = max(wait, p.waitFor(p.budget+p.maxTokens(), p.budgetRateNow()))
	}
	return p.last.Add(wait)
}

// waitFor is how long a bucket holding have bytes (positive: ready) takes
// to hold more than 0 at rate; 0 when it does.
func (p *Pacer) waitFor(have float64, rate int64) time.Duration {
	if have > 0 {
		return 0
	}
	need := -have + 1
	return max(time.Duration(need*8/float64(rate)*float64(time.Second)), time.Microsecond)
}

// NextSend returns when a packet may next leave: now if CanSend(now).
func (p *Pacer) NextSend(now clock.Time) clock.Time {
	p.refill(now)
	wait := p.waitFor(p.tokens, p.DrainRate())
	if p.budgetRate > 0 {
		wait = max(wait, p.waitFor(p.budget, p.budgetRateNow()))
	}
	return now.Add(wait)
}

// NextSendTime is NextSend without a new reading of the clock: the time,
// as of the last call, when a packet may leave (at or before the last call's
// time if one may leave at once).
func (p *Pacer) NextSendTime() clock.Time {
	if p.tokens > 0 && p.budgetOK() {
		return p.last
	}
	return p.NextSend(p.last)
}

// SetQueueLimit bounds the queue in time: Fits refuses bytes that would
// make the queued bytes take longer than d to drain. 0 removes the bound.
func (p *Pacer) SetQueueLimit(d time.Duration) { p.limit = max(d, 0) }

// QueueLimit returns the queue's bound in time (0: none).
func (p *Pacer) QueueLimit() time.Duration { return p.limit }

// Add counts n bytes of class c joining the queue. A class past the last
// counts as ClassData (as fec's AddMedia takes it). A negative n panics: the
// caller's account of its queue is broken, and the pacer's would go wrong
// with it (Remove takes bytes out).
func (p *Pacer) Add(c Class, n int) {
	if n < 0 {
		panic("cc: pacer Add of a negative byte count")
	}
	c = min(c, ClassData)
	p.queued[c] += int64(n)
	p.total += int64(n)
	if d := p.QueueDelay(); d > p.stats.QueueDelayMax {
		p.stats.QueueDelayMax = d
	}
}

// Remove counts n bytes of class c leaving the queue (sent or dropped).
// A Stretch ends once the bytes it was asked for have left. A class past
// the last counts as ClassData. Taking out more of a class than it holds,
// or a negative n, panics (before any count changes): the caller's account
// of its queue is broken.
func (p *Pacer) Remove(c Class, n int) {
	c = min(c, ClassData)
	if n < 0 || int64(n) > p.queued[c] {
		panic(fmt.Sprintf("cc: pacer Remove of %d bytes of class %v, which holds %d", n, c, p.queued[c]))
	}
	p.queued[c] -= int64(n)
	p.total -= int64(n)
	if p.floor != 0 {
		p.stretchLeft -= int64(n)
		if p.stretchLeft <= 0 || p.total == 0 {
			p.floor, p.stretchLeft = 0, 0
			p.tokens = min(p.tokens, p.maxTokens())
			if p.budgetRate > 0 {
				p.budget = min(p.budget, p.maxBudget())
			}
		}
	}
}

// Queued returns the bytes waiting in every class.
func (p *Pacer) Queued() int64 { return p.total }

// QueuedClass returns the bytes waiting in class c.
func (p *Pacer) QueuedClass(c Class) int64 { return p.queued[min(c, ClassData)] }

// Ahead returns the bytes waiting in the classes that leave before c.
func (p *Pacer) Ahead(c Class) int64 {
	var n int64
	for k := Class(0); k < c && k < NumClasses; k++ {
		n += p.queued[k]
	}
	return n
}

// DelayOf returns how long n bytes take to leave: at the drain rate, and
// with a budget, what the budget does not hold at its rate.
func (p *Pacer) DelayOf(n int64) time.Duration {
	d := time.Duration(float64(n) * 8 / float64(p.DrainRate()) * float64(time.Second))
	if p.budgetRate > 0 {
		if over := float64(n) - max(p.budget, 0); over > 0 {
			d = max(d, time.Duration(over*8/float64(p.budgetRateNow())*float64(time.Second)))
		}
	}
	return d
}

// QueueDelay returns how long the queued bytes take to leave at the drain
// rate.
func (p *Pacer) QueueDelay() time.Duration { return p.DelayOf(p.total) }

// Fits reports whether n more bytes keep the queue within its limit.
func (p *Pacer) Fits(n int) bool {
	return p.limit == 0 || p.DelayOf(p.total+int64(n)) <= p.limit
}

// Stretch raises the drain rate, until the bytes queued now and the n
// more have left (or the queue empties), so that they drain within the
// limit: for bytes that must not
// be dropped for the limit alone (a key frame whose deadline is reachable,
// audio). It does nothing without a limit or when they fit already.
func (p *Pacer) Stretch(n int) {
	if p.limit == 0 || p.Fits(n) {
		return
	}
	need := int64(math.Ceil(float64(p.total+int64(n)) * 8 / p.limit.Seconds()))
	if p.budgetRate > 0 {
		// The budget must let the bytes out within the limit too: what it
		// holds plus what it earns at the floor.
		need = max(need, int64(math.Ceil((float64(p.total+int64(n))-max(p.budget, 0))*8/p.limit.Seconds())))
	}
	p.floor = max(p.floor, need)
	p.stretchLeft = max(p.stretchLeft, p.total+int64(n))
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
