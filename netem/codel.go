package netem

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// codelMaxPacket is CoDel's MAXPACKET: while at most this many bytes wait
// behind the datagram taken, the queue is not "above target" whatever its
// sojourn time (RFC 8289 section 5.3: a queue holding less than one MTU).
const codelMaxPacket = 1500

// codelState is the per-queue state of RFC 8289's pseudo-code (section 5).
// It carries over config changes; switching CoDel off resets it.
type codelState struct {
	aboveSet       bool       // firstAboveTime is set (the RFC's != 0)
	firstAboveTime clock.Time // when the sojourn will have been above target for an interval
	dropNext       clock.Time // time of the next drop while dropping
	count          uint32     // drops since entering the dropping state
	lastCount      uint32     // count when the dropping state was last entered
	dropping       bool
}

// codelDequeue takes the next datagram to serialise from l's queue at now,
// dropping datagrams as CoDel decides (RFC 8289 section 5.5, the Linux
// variant it describes). It returns nil if the queue ends up empty.
func (e *engine) codelDequeue(l *Link) *packet {
	c := &l.codel
	target, interval := l.cfg.codelParams()
	now := e.now
	p, ok := e.codelDoDequeue(l, target, interval)
	if p == nil {
		c.dropping = false
		return nil
	}
	if c.dropping {
		if !ok {
			c.dropping = false // the sojourn time went below target
		}
		for c.dropping && now >= c.dropNext {
			e.codelDrop(l, p)
			c.count++
			if p, ok = e.codelDoDequeue(l, target, interval); !ok {
				c.dropping = false
			} else {
				c.dropNext = codelControlLaw(c.dropNext, interval, c.count)
			}
		}
		return p
	}
	if ok {
		e.codelDrop(l, p)
		p, _ = e.codelDoDequeue(l, target, interval)
		c.dropping = true
		// If the queue went above target soon after it last went below,
		// resume at about the drop rate that controlled it then.
		delta := c.count - c.lastCount
		c.count = 1
		if delta > 1 && now.Sub(c.dropNext) < 16*interval {
			c.count = delta
		}
		c.dropNext = codelControlLaw(now, interval, c.count)
		c.lastCount = c.count
	}
	return p
}

// codelDoDequeue pops the head of the queue and reports whether CoDel may
// drop it: its sojourn time, and that of the queue, has stayed at or above
// target for at least an interval (RFC 8289 section 5.3).
func (e *engine) codelDoDequeue(l *Link, target, interval time.Duration) (*packet, bool) {
	c := &l.codel
	p := l.q.pop()
	if p == nil {
		c.aboveSet = false
		return nil, false
	}
	now := e.now
	// Bytes still waiting behind p (l.queued counts p until it departs).
	if now.Sub(p.arrived) < target || l.queued-p.wire <= codelMaxPacket {
		c.aboveSet = false
		return p, false
	}
	if !c.aboveSet {
		c.aboveSet, c.firstAboveTime = true, now.Add(interval)
		return p, false
	}
	return p, now >= c.firstAboveTime
}

// codelDrop drops p, taken from the head of l's queue.
func (e *engine) codelDrop(l *Link, p *packet) {
	l.queued -= p.wire
	if l.queueHook != nil {
		l.queueHook(QueueEvent{At: e.now, From: p.from, To: p.to, Wire: int(p.wire), Queued: e.now.Sub(p.arrived), Dropped: true})
	}
	l.stats.PacketsCoDelDropped++
	l.stats.BytesCoDelDropped += uint64(p.n)
	e.dispose(l, p)
}

// codelControlLaw returns t + interval/sqrt(count) (RFC 8289 section 5.4).
func codelControlLaw(t clock.Time, interval time.Duration, count uint32) clock.Time {
	return t.Add(time.Duration(float64(interval) / math.Sqrt(float64(count))))
}
