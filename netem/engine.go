package netem

import (
	"math/bits"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// The engine is what the Simulator and the Network share: an event heap on
// virtual time, a pool of datagram buffers and the link model. It is not safe
// for concurrent use; the Simulator is single-goroutine and the Network guards
// its engine with its mutex.

type eventKind uint8

const (
	evArrive  eventKind = iota + 1 // a datagram enters a link (packet event)
	evDepart                       // it leaves the serialiser (packet event)
	evDeliver                      // it reaches the far end (packet event)
	evWake                         // a node's NextTimeout has come (Simulator)
	evPoll                         // drain a node without calling it (Simulator)
	evFunc                         // a Schedule callback (Simulator)
)

// event is one entry of the heap. The heap is a slice of these structs, so
// scheduling allocates nothing once the slice has grown.
type event struct {
	at   clock.Time
	seq  uint64 // insertion order: ties at the same time run in this order
	link *Link
	pkt  *packet
	node *nodeState
	fn   func(now clock.Time)
	kind eventKind
}

// packet is a datagram in flight, in a pooled buffer.
type packet struct {
	buf      []byte // len(buf) is the buffer's size class
	n        int    // datagram length
	from, to netip.AddrPort
	wire     int64      // bytes the queue and serialiser count: n + Overhead
	arrived  clock.Time // entered the link
	start    clock.Time // started serialisation
	class    uint8
}

func (p *packet) bytes() []byte { return p.buf[:p.n:p.n] }

// Buffers come in power-of-two size classes from 256 B to 64 KiB, so a
// 1,200 B datagram holds 2 KiB rather than 64 KiB.
const (
	minClassShift = 8
	numClasses    = 17 - minClassShift // 256 B .. 64 KiB
)

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// pool is a free list of packets per size class. It keeps what it is given
// back, which is bounded by the most datagrams ever in flight at once (each
// link caps its own at MaxInFlightPackets/MaxInFlightBytes).
type pool struct {
	free [numClasses][]*packet
}

func (pl *pool) get(n int) *packet {
	c := classOf(n)
	if k := len(pl.free[c]); k > 0 {
		p := pl.free[c][k-1]
		pl.free[c][k-1] = nil
		pl.free[c] = pl.free[c][:k-1]
		p.n = n
		return p
	}
	return &packet{buf: make([]byte, 1<<(c+minClassShift)), n: n, class: uint8(c)}
}

func (pl *pool) put(p *packet) {
	p.from, p.to = netip.AddrPort{}, netip.AddrPort{}
	pl.free[p.class] = append(pl.free[p.class], p)
}

type engine struct {
	now    clock.Time
	seq    uint64
	events []event // binary min-heap on (at, seq)
	pool   pool

	nEvents       uint64 // events run
	nPacketEvents uint64 // arrive, depart and deliver events run
}

// ---- heap ----

func (e *engine) less(i, j int) bool {
	a, b := &e.events[i], &e.events[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// setIndex keeps a node's heapIdx pointing at its (single) wake event.
func (e *engine) setIndex(i int) {
	if ev := &e.events[i]; ev.kind == evWake {
		ev.node.heapIdx = i
	}
}

func (e *engine) swap(i, j int) {
	e.events[i], e.events[j] = e.events[j], e.events[i]
	e.setIndex(i)
	e.setIndex(j)
}

func (e *engine) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !e.less(i, p) {
			return
		}
		e.swap(i, p)
		i = p
	}
}

func (e *engine) down(i int) bool {
	i0, n := i, len(e.events)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && e.less(r, l) {
			m = r
		}
		if !e.less(m, i) {
			break
		}
		e.swap(i, m)
		i = m
	}
	return i > i0
}

func (e *engine) fix(i int) {
	if !e.down(i) {
		e.up(i)
	}
}

// push schedules ev (its seq is assigned here).
func (e *engine) push(ev event) {
	e.seq++
	ev.seq = e.seq
	e.events = append(e.events, ev)
	i := len(e.events) - 1
	e.setIndex(i)
	e.up(i)
}

// removeAt takes event i out of the heap and returns it.
func (e *engine) removeAt(i int) event {
	n := len(e.events) - 1
	if i != n {
		e.swap(i, n)
	}
	ev := e.events[n]
	e.events[n] = event{} // drop the references for the GC
	e.events = e.events[:n]
	if i < n {
		e.fix(i)
	}
	if ev.kind == evWake {
		ev.node.heapIdx = -1
	}
	return ev
}

// next returns the time of the earliest event, or clock.Never.
func (e *engine) next() clock.Time {
	if len(e.events) == 0 {
		return clock.Never
	}
	return e.events[0].at
}

// popDue removes the earliest event if it is due at or before t, advances now
// to its time and counts it.
func (e *engine) popDue(t clock.Time) (event, bool) {
	if len(e.events) == 0 || e.events[0].at > t {
		return event{}, false
	}
	ev := e.removeAt(0)
	if ev.at > e.now {
		e.now = ev.at
	}
	e.nEvents++
	switch ev.kind {
	case evArrive, evDepart, evDeliver:
		e.nPacketEvents++
	}
	return ev, true
}

// drain drops every pending event, returning in-flight buffers to the pool.
func (e *engine) drain() {
	for len(e.events) > 0 {
		ev := e.removeAt(len(e.events) - 1)
		if ev.pkt != nil {
			if ev.kind == evDepart {
				ev.link.queued -= ev.pkt.wire
			}
			e.dispose(ev.link, ev.pkt)
		}
	}
}

// ---- link model ----

// send hands a datagram written by from to link l at the current time. It
// copies b into a pooled buffer and schedules its arrival at the link.
func (e *engine) send(l *Link, from, to netip.AddrPort, b []byte) {
	st := &l.stats
	st.PacketsOffered++
	st.BytesOffered += uint64(len(b))
	if l.inflight >= MaxInFlightPackets || l.inflightBytes+len(b) > MaxInFlightBytes {
		st.PacketsOverflow++
		return
	}
	p := e.pool.get(len(b))
	copy(p.buf, b)
	p.from, p.to = from, to
	p.arrived = e.now
	l.inflight++
	l.inflightBytes += p.n
	e.push(event{at: e.now, kind: evArrive, link: l, pkt: p})
}

// arrive runs a datagram through loss and the queue (packet event 1).
func (e *engine) arrive(l *Link, p *packet) {
	cfg := &l.cfg
	if cfg.Loss > 0 && l.lossRNG.Float64() < cfg.Loss {
		l.stats.PacketsLost++
		l.stats.BytesLost += uint64(p.n)
		e.dispose(l, p)
		return
	}
	if cfg.Rate == 0 {
		p.start = e.now
		e.propagate(l, p)
		return
	}
	size := int64(p.n + cfg.Overhead)
	p.wire = size
	if l.queued > 0 && l.queued+size > l.limit {
		l.stats.PacketsDropped++
		l.stats.BytesDropped += uint64(p.n)
		e.dispose(l, p)
		return
	}
	l.queued += size
	start := clock.Max(e.now, l.busyUntil)
	// Carry the remainder so that the long-run rate is exact: size*8e9 is
	// at most 5.3e14 and rem < Rate <= 1e15, so nothing overflows.
	num := size*8*1e9 + l.serRem
	l.serRem = num % cfg.Rate
	l.busyUntil = start.Add(time.Duration(num / cfg.Rate))
	p.start = start
	e.push(event{at: l.busyUntil, kind: evDepart, link: l, pkt: p})
}

// depart is the end of serialisation (packet event 2).
func (e *engine) depart(l *Link, p *packet) {
	l.queued -= p.wire
	e.propagate(l, p)
}

// propagate schedules the delivery after Delay and jitter.
func (e *engine) propagate(l *Link, p *packet) {
	cfg := &l.cfg
	d := int64(cfg.Delay)
	if cfg.Jitter > 0 {
		switch cfg.JitterDist {
		case Normal:
			d += int64(l.jitterRNG.NormFloat64() * float64(cfg.Jitter))
			if d < 0 {
				d = 0
			}
		default: // Uniform
			d += l.jitterRNG.Int64N(int64(cfg.Jitter) + 1)
		}
	}
	at := e.now.Add(time.Duration(d))
	if !cfg.Reorder && at < l.lastDeliver {
		at = l.lastDeliver
	}
	l.lastDeliver = clock.Max(l.lastDeliver, at)
	e.push(event{at: at, kind: evDeliver, link: l, pkt: p})
}

// delivered books a datagram as delivered (packet event 3) and shows it to
// the link's capture hook; the caller then hands it to the far end and puts
// it back in the pool.
func (e *engine) delivered(l *Link, p *packet) {
	l.inflight--
	l.inflightBytes -= p.n
	st := &l.stats
	st.PacketsDelivered++
	st.BytesDelivered += uint64(p.n)
	qd := p.start.Sub(p.arrived)
	st.QueueDelaySum += qd
	st.QueueDelayMax = max(st.QueueDelayMax, qd)
	if l.capture != nil {
		l.capture(e.now, p.from, p.to, p.bytes())
	}
}

// dispose returns a datagram the link dropped.
func (e *engine) dispose(l *Link, p *packet) {
	l.inflight--
	l.inflightBytes -= p.n
	e.pool.put(p)
}
