package netem

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spillway-rt/spillway/clock"
)

// Errors the Simulator and the Network return, wrapped with context.
var (
	ErrInvalidAddr = errors.New("netem: invalid address")
	ErrAddrInUse   = errors.New("netem: address already in use")
	ErrUnknownNode = errors.New("netem: no node at address")
	ErrLinkExists  = errors.New("netem: link already exists")
)

const (
	// txBufSize is the buffer PollTransmit writes into: 64 KiB, one more
	// than the largest datagram, so an oversized one is seen and dropped
	// rather than silently truncated.
	txBufSize = 64 << 10

	// maxTimeoutsPerInstant is how many times in a row a node may ask to be
	// woken at the same instant, with no datagram delivered to it in between,
	// before the simulator calls it a bug.
	maxTimeoutsPerInstant = 1000

	// maxPollsPerCall bounds the datagrams one node call may emit; a node
	// whose PollTransmit never reports !ok would otherwise hang the run.
	maxPollsPerCall = 1 << 20
)

// SimStats counts what a Simulator did as a whole (links count their own).
type SimStats struct {
	Events       uint64 // events run
	PacketEvents uint64 // packet events run: arrivals, departures, deliveries
	Unroutable   uint64 // datagrams to an address with no link from the sender
	Oversize     uint64 // datagrams longer than MaxDatagramSize, dropped
}

type nodeState struct {
	addr    netip.AddrPort
	node    Node
	out     map[netip.AddrPort]*Link // links from this node, by destination
	heapIdx int                      // index of its wake event, -1 if none

	timeoutAt  clock.Time // instant of the last HandleTimeout
	timeoutRun int        // HandleTimeout calls in a row at timeoutAt
}

// Simulator is a discrete-event network simulator on virtual time: it is the
// clock of the nodes it drives. It moves datagrams across links (see
// LinkConfig) and calls the nodes when datagrams arrive and timers fire.
//
// A Simulator is not safe for concurrent use. Its methods may be called
// from Schedule callbacks, except RunUntil and Step.
type Simulator struct {
	eng      engine
	seed     uint64
	nodes    []*nodeState // in AddNode order: the order nodes are polled in
	byAddr   map[netip.AddrPort]*nodeState
	links    map[linkKey]*Link
	captures map[linkKey]CaptureFunc
	necks    []*Bottleneck // in AddBottleneck order
	txbuf    []byte
	running  bool
	stats    SimStats
}

// New returns an empty Simulator at time 0 whose randomness derives from
// seed: the same seed, nodes and links give the same run, event for event.
func New(seed uint64) *Simulator {
	return &Simulator{
		seed:     seed,
		byAddr:   make(map[netip.AddrPort]*nodeState),
		links:    make(map[linkKey]*Link),
		captures: make(map[linkKey]CaptureFunc),
		txbuf:    make([]byte, txBufSize),
	}
}

// Now returns the current virtual time.
func (s *Simulator) Now() clock.Time { return s.eng.now }

// Stats returns the simulator's counters.
func (s *Simulator) Stats() SimStats {
	st := s.stats
	st.Events = s.eng.nEvents
	st.PacketEvents = s.eng.nPacketEvents
	return st
}

// AddNode attaches n at addr. The node is first polled (PollTransmit, then
// NextTimeout) at the current time, as an event, so links may be connected
// after AddNode and before running.
func (s *Simulator) AddNode(addr netip.AddrPort, n Node) error {
	if !addr.IsValid() {
		return fmt.Errorf("%w: AddNode(%v)", ErrInvalidAddr, addr)
	}
	if n == nil {
		return errors.New("netem: AddNode: nil Node")
	}
	if _, ok := s.byAddr[addr]; ok {
		return fmt.Errorf("%w: AddNode(%v)", ErrAddrInUse, addr)
	}
	ns := &nodeState{addr: addr, node: n, out: make(map[netip.AddrPort]*Link), heapIdx: -1, timeoutAt: -1}
	s.nodes = append(s.nodes, ns)
	s.byAddr[addr] = ns
	s.eng.push(event{at: s.eng.now, kind: evPoll, node: ns})
	return nil
}

// Connect joins the nodes at a and b with a link in each direction: ab
// configures a->b, ba configures b->a. Both nodes must exist, a != b, and
// they must not be connected already (change a link with Link.SetConfig).
func (s *Simulator) Connect(a, b netip.AddrPort, ab, ba LinkConfig) error {
	if err := ab.Validate(); err != nil {
		return fmt.Errorf("Connect %v->%v: %w", a, b, err)
	}
	if err := ba.Validate(); err != nil {
		return fmt.Errorf("Connect %v->%v: %w", b, a, err)
	}
	na, nb := s.byAddr[a], s.byAddr[b]
	switch {
	case na == nil:
		return fmt.Errorf("%w: Connect: %v", ErrUnknownNode, a)
	case nb == nil:
		return fmt.Errorf("%w: Connect: %v", ErrUnknownNode, b)
	case a == b:
		return fmt.Errorf("%w: Connect: %v to itself", ErrInvalidAddr, a)
	case na.out[b] != nil || nb.out[a] != nil:
		return fmt.Errorf("%w: %v <-> %v", ErrLinkExists, a, b)
	}
	s.addLink(na, nb, ab)
	s.addLink(nb, na, ba)
	return nil
}

func (s *Simulator) addLink(from, to *nodeState, cfg LinkConfig) {
	k := linkKey{from.addr, to.addr}
	l := newLink(s.seed, from.addr, to.addr, cfg, nil)
	l.dst = to
	l.capture = s.captures[k]
	from.out[to.addr] = l
	s.links[k] = l
}

// Link returns the link from a to b, or nil if there is none.
func (s *Simulator) Link(a, b netip.AddrPort) *Link { return s.links[linkKey{a, b}] }

// SetCapture sets the function called for each datagram delivered on the
// link from a to b (nil removes it). It may be set before Connect.
func (s *Simulator) SetCapture(a, b netip.AddrPort, fn func(at clock.Time, from, to netip.AddrPort, b []byte)) {
	k := linkKey{a, b}
	if fn == nil {
		delete(s.captures, k)
	} else {
		s.captures[k] = fn
	}
	if l := s.links[k]; l != nil {
		l.capture = fn
	}
}

// Schedule calls fn at virtual time at (now, if at is in the past), after
// the events already scheduled for that instant. After fn returns every node
// is polled, in AddNode order, since fn may have changed any of them. fn may
// call the Simulator's methods except RunUntil and Step. Schedule is meant
// for tests and scenario changes, not for per-packet work: each call
// allocates.
func (s *Simulator) Schedule(at clock.Time, fn func(now clock.Time)) {
	if fn == nil {
		return
	}
	s.eng.push(event{at: clock.Max(at, s.eng.now), kind: evFunc, fn: fn})
}

// NextEvent returns the time of the earliest pending event, or clock.Never.
func (s *Simulator) NextEvent() clock.Time { return s.eng.next() }

// RunUntil runs every event due at or before t, in (time, scheduling order),
// and leaves Now() == t (time never goes back: a t before Now only runs
// events due now). RunUntil(clock.Never) runs until no event is left, which
// may be never, and leaves Now at the last event's time.
func (s *Simulator) RunUntil(t clock.Time) {
	s.enter("RunUntil")
	defer s.leave()
	for {
		ev, ok := s.eng.popDue(t)
		if !ok {
			break
		}
		s.run(ev)
	}
	if t > s.eng.now && t != clock.Never {
		s.eng.now = t
	}
}

// Step runs the earliest pending event, advancing Now to its time, and
// reports whether there was one.
func (s *Simulator) Step() bool {
	s.enter("Step")
	defer s.leave()
	ev, ok := s.eng.popDue(clock.Never)
	if ok {
		s.run(ev)
	}
	return ok
}

func (s *Simulator) enter(name string) {
	if s.running {
		panic("netem: Simulator." + name + " called from inside the simulation (a Schedule callback or a node)")
	}
	s.running = true
}

func (s *Simulator) leave() { s.running = false }

func (s *Simulator) run(ev event) {
	e := &s.eng
	if e.runPacket(&ev) {
		ns := ev.link.dst
		ns.timeoutRun = 0
		ns.node.HandleDatagram(e.now, ev.pkt.from, ev.pkt.bytes())
		e.pool.put(ev.pkt)
		s.afterCall(ns)
		return
	}
	switch ev.kind {
	case evWake:
		ns := ev.node
		if ns.timeoutAt != e.now {
			ns.timeoutAt, ns.timeoutRun = e.now, 0
		}
		ns.timeoutRun++
		if ns.timeoutRun > maxTimeoutsPerInstant {
			panic(fmt.Sprintf("netem: node %v (%T) was woken %d times in a row at %v: "+
				"its NextTimeout stays at or before now after HandleTimeout (a bug in the node)",
				ns.addr, ns.node, maxTimeoutsPerInstant, e.now))
		}
		ns.node.HandleTimeout(e.now)
		s.afterCall(ns)
	case evPoll:
		s.afterCall(ev.node)
	case evFunc:
		ev.fn(e.now)
		for _, ns := range s.nodes {
			ns.timeoutRun = 0
			s.afterCall(ns)
		}
	}
}

// afterCall drains a node's datagrams and reschedules its wake-up.
func (s *Simulator) afterCall(ns *nodeState) {
	now := s.eng.now
	for i := 0; ; i++ {
		if i == maxPollsPerCall {
			panic(fmt.Sprintf("netem: node %v (%T) returned %d datagrams from PollTransmit in one turn at %v: "+
				"it never reports !ok (a bug in the node)", ns.addr, ns.node, i, now))
		}
		n, to, ok := ns.node.PollTransmit(now, s.txbuf)
		if !ok {
			break
		}
		s.transmit(ns, n, to)
	}

	next := ns.node.NextTimeout()
	switch {
	case next == clock.Never:
		if ns.heapIdx >= 0 {
			s.eng.removeAt(ns.heapIdx)
		}
	case ns.heapIdx >= 0:
		next = clock.Max(next, now)
		if ev := &s.eng.events[ns.heapIdx]; ev.at != next {
			// Move it, and take a fresh place among events at the new time.
			s.eng.seq++
			ev.at, ev.seq = next, s.eng.seq
			s.eng.fix(ns.heapIdx)
		}
	default:
		s.eng.push(event{at: clock.Max(next, now), kind: evWake, node: ns})
	}
}

func (s *Simulator) transmit(ns *nodeState, n int, to netip.AddrPort) {
	if n < 0 || n > MaxDatagramSize || n > len(s.txbuf) {
		s.stats.Oversize++
		return
	}
	l := ns.out[to]
	if l == nil {
		s.stats.Unroutable++
		return
	}
	s.eng.send(l, ns.addr, to, s.txbuf[:n])
}
