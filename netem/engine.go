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
	arrived  clock.Time // entered the link (or the bottleneck)
	start    clock.Time // started serialisation
	link     *Link      // the link it was sent on: its delivery events name it
	via      *Link      // the bottleneck it has entered, if any: it holds it
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
	p.link, p.via = nil, nil
	pl.free[p.class] = append(pl.free[p.class], p)
}

// fifo is a growable ring of packets: a link's queue. It allocates only when
// it grows past its largest size so far.
type fifo struct {
	buf  []*packet // len is 0 or a power of two
	head int
	n    int
}

func (f *fifo) len() int { return f.n }

func (f *fifo) push(p *packet) {
	if f.n == len(f.buf) {
		nb := make([]*packet, max(16, 2*len(f.buf)))
		for i := range f.n {
			nb[i] = f.buf[(f.head+i)&(len(f.buf)-1)]
		}
		f.buf, f.head = nb, 0
	}
	f.buf[(f.head+f.n)&(len(f.buf)-1)] = p
	f.n++
}

// pop removes and returns the oldest packet, or nil.
func (f *fifo) pop() *packet {
	if f.n == 0 {
		return nil
	}
	p := f.buf[f.head]
	f.buf[f.head] = nil
	f.head = (f.head + 1) & (len(f.buf) - 1)
	f.n--
	return p
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

// drain drops every pending event, returning in-flight buffers to the pool:
// those the events carry and those waiting in the queues of links with a
// departure pending (a link with a non-empty queue always has one).
func (e *engine) drain() {
	for len(e.events) > 0 {
		ev := e.removeAt(len(e.events) - 1)
		p := ev.pkt
		if p == nil {
			continue
		}
		switch {
		case ev.kind == evDepart:
			l := ev.link
			l.queued -= p.wire
			l.inService = nil
			for q := l.q.pop(); q != nil; q = l.q.pop() {
				l.queued -= q.wire
				e.dispose(l, q)
			}
			e.dispose(l, p)
		case ev.kind == evArrive && p.link != nil:
			e.dispose(p.link, p) // not handed over yet, even to a bottleneck
		case p.via != nil:
			e.dispose(p.via, p)
		default:
			e.dispose(ev.link, p)
		}
	}
}

// runPacket runs a packet event of the link model. For a delivery it books
// the datagram as delivered (delivered) and returns true: the caller hands
// ev.pkt to the receiver and then returns it to the pool. Other events
// return false; so does an event of another kind, which the caller runs.
func (e *engine) runPacket(ev *event) (deliver bool) {
	switch ev.kind {
	case evArrive:
		e.arrive(ev.link, ev.pkt)
	case evDepart:
		e.depart(ev.link, ev.pkt)
	case evDeliver:
		e.delivered(ev.link, ev.pkt)
		return true
	}
	return false
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
	p.link = l
	l.inflight++
	l.inflightBytes += p.n
	e.push(event{at: e.now, kind: evArrive, link: l, pkt: p})
}

// arrive runs a datagram through blackout, loss, duplication and the queue
// (packet event 1). On a bottleneck it first takes the datagram over from
// the link it was sent on.
func (e *engine) arrive(l *Link, p *packet) {
	if p.link == nil {
		p.link = l
	}
	if p.link != l && p.via == nil && !e.handOver(l, p) {
		return
	}
	cfg := &l.cfg
	st := &l.stats
	switch {
	case cfg.Down:
		st.PacketsBlackout++
		st.BytesBlackout += uint64(p.n)
		e.dispose(l, p)
		return
	case l.chain.lose(cfg, l.lossRNG):
		st.PacketsLost++
		st.BytesLost += uint64(p.n)
		e.dispose(l, p)
		return
	}
	var dup *packet
	if cfg.Duplicate > 0 && l.dupRNG.Float64() < cfg.Duplicate {
		st.PacketsDuplicated++
		dup = e.copyPacket(l, p) // before p may be dropped and recycled
	}
	e.enqueue(l, p)
	if dup != nil {
		e.enqueue(l, dup)
	}
}

// handOver moves p from the link it was sent on to bottleneck b, booking it
// as delivered by that link. It reports false if b refused it (overflow).
func (e *engine) handOver(b *Link, p *packet) bool {
	a := p.link
	a.inflight--
	a.inflightBytes -= p.n
	bookDelivered(a, p)
	st := &b.stats
	st.PacketsOffered++
	st.BytesOffered += uint64(p.n)
	if b.inflight >= MaxInFlightPackets || b.inflightBytes+p.n > MaxInFlightBytes {
		st.PacketsOverflow++
		e.pool.put(p)
		return false
	}
	b.inflight++
	b.inflightBytes += p.n
	p.via = b
	p.arrived = e.now
	return true
}

// copyPacket returns a copy of p held by l (Duplicate), or nil if l is full.
func (e *engine) copyPacket(l *Link, p *packet) *packet {
	if l.inflight >= MaxInFlightPackets || l.inflightBytes+p.n > MaxInFlightBytes {
		l.stats.PacketsOverflow++
		return nil
	}
	q := e.pool.get(p.n)
	copy(q.buf, p.bytes())
	q.from, q.to, q.arrived, q.link, q.via = p.from, p.to, p.arrived, p.link, p.via
	l.inflight++
	l.inflightBytes += q.n
	return q
}

// enqueue puts p in l's queue, or drops it if the queue is full.
func (e *engine) enqueue(l *Link, p *packet) {
	cfg := &l.cfg
	if l.inService == nil && l.q.len() == 0 && !cfg.serialises() {
		// No serialiser and nothing ahead: it departs as it arrives.
		p.start = e.now
		e.propagate(l, p)
		return
	}
	size := int64(p.n + cfg.Overhead)
	p.wire = size
	if l.queued > 0 && l.queued+size > l.limit {
		l.stats.PacketsDropped++
		l.stats.BytesDropped += uint64(p.n)
		if l.queueHook != nil {
			l.queueHook(QueueEvent{At: e.now, From: p.from, To: p.to, Wire: int(size), Dropped: true})
		}
		e.dispose(l, p)
		return
	}
	l.queued += size
	l.q.push(p)
	if l.inService == nil {
		e.startNext(l)
	}
}

// startNext takes the next datagram from l's idle serialiser's queue, if any,
// and schedules the end of its serialisation.
func (e *engine) startNext(l *Link) {
	var p *packet
	if l.cfg.QueueDisc == CoDel {
		p = e.codelDequeue(l)
	} else {
		p = l.q.pop()
	}
	if p == nil {
		return
	}
	l.inService = p
	p.start = e.now
	e.push(event{at: e.serialised(l, p.wire), kind: evDepart, link: l, pkt: p})
}

// serialised returns when a datagram of wire bytes whose serialisation
// starts now has left the serialiser.
func (e *engine) serialised(l *Link, wire int64) clock.Time {
	cfg := &l.cfg
	switch {
	case cfg.Trace != nil:
		return l.trace.serve(cfg.Trace, e.now, wire)
	case cfg.Rate > 0:
		// Carry the remainder so that the long-run rate is exact: wire*8e9
		// is at most 5.3e14 and rem < Rate <= 1e15, so nothing overflows.
		num := wire*8*1e9 + l.serRem
		l.serRem = num % cfg.Rate
		return e.now.Add(time.Duration(num / cfg.Rate))
	}
	return e.now // the rate was removed: what is left drains at once
}

// depart is the end of serialisation (packet event 2).
func (e *engine) depart(l *Link, p *packet) {
	l.queued -= p.wire
	l.inService = nil
	if l.queueHook != nil {
		l.queueHook(QueueEvent{At: e.now, From: p.from, To: p.to, Wire: int(p.wire), Queued: p.start.Sub(p.arrived)})
	}
	e.propagate(l, p)
	e.startNext(l)
}

// propagate corrupts, reorders or delays a departing datagram and schedules
// what comes next: its delivery, or its arrival at the link's bottleneck.
func (e *engine) propagate(l *Link, p *packet) {
	cfg := &l.cfg
	if cfg.Corrupt > 0 && l.corruptRNG.Float64() < cfg.Corrupt && p.n > 0 {
		bit := l.corruptRNG.IntN(p.n * 8)
		p.buf[bit>>3] ^= 1 << (bit & 7)
		l.stats.PacketsCorrupted++
	}
	if cfg.ReorderProb > 0 {
		if l.reorderCount >= max(cfg.ReorderGap, 1)-1 && l.reorderRNG.Float64() < cfg.ReorderProb {
			// Sent at once, ahead of the datagrams still propagating,
			// but not through a stall (HoldUntil holds every datagram).
			l.reorderCount = 0
			l.stats.PacketsReordered++
			e.forward(l, p, clock.Max(e.now, clock.Time(cfg.HoldUntil)))
			return
		}
		l.reorderCount++
	}
	d := int64(cfg.Delay)
	if cfg.Jitter > 0 {
		d += jitterSample(cfg, l.jitterRNG)
		if d < 0 {
			d = 0
		}
	}
	at := e.now.Add(time.Duration(d))
	if hold := clock.Time(cfg.HoldUntil); at < hold {
		at = hold
	}
	if !cfg.Reorder && at < l.lastDeliver {
		at = l.lastDeliver
	}
	l.lastDeliver = clock.Max(l.lastDeliver, at)
	e.forward(l, p, at)
}

// forward schedules p's next step after it leaves link (or bottleneck) l
// at time at.
func (e *engine) forward(l *Link, p *packet, at clock.Time) {
	if b := l.via; b != nil && p.via == nil {
		e.push(event{at: at, kind: evArrive, link: b.link, pkt: p})
		return
	}
	e.push(event{at: at, kind: evDeliver, link: p.link, pkt: p})
}

// delivered books a datagram as delivered (packet event 3) and shows it to
// the capture hook of the link it was sent on; the caller then hands it to
// the far end and puts it back in the pool. l is the link the delivery
// event names: the one the datagram was sent on.
func (e *engine) delivered(l *Link, p *packet) {
	h := l
	if p.via != nil {
		h = p.via
	}
	h.inflight--
	h.inflightBytes -= p.n
	bookDelivered(h, p)
	if l.capture != nil {
		l.capture(e.now, p.from, p.to, p.bytes())
	}
}

func bookDelivered(l *Link, p *packet) {
	st := &l.stats
	st.PacketsDelivered++
	st.BytesDelivered += uint64(p.n)
	qd := p.start.Sub(p.arrived)
	st.QueueDelaySum += qd
	st.QueueDelayMax = max(st.QueueDelayMax, qd)
}

// dispose returns a datagram the link dropped.
func (e *engine) dispose(l *Link, p *packet) {
	l.inflight--
	l.inflightBytes -= p.n
	e.pool.put(p)
}
