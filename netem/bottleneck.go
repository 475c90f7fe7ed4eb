package netem

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// ErrForeignBottleneck is returned by Link.SetVia for a bottleneck of
// another Simulator, or a link that is not a Simulator's.
var ErrForeignBottleneck = errors.New("netem: bottleneck and link are not in the same Simulator")

// Bottleneck is a queue several link directions share: a router's output
// port, where flows with different access delays meet (DESIGN section 6).
// Send datagrams through it with Link.SetVia. A datagram then crosses its
// own link first (blackout, loss, its own rate and queue, corruption, and
// that link's Delay and jitter, which play the access delay), and at the
// time it would have been delivered it enters the bottleneck, whose
// LinkConfig applies in the same order: blackout, loss, the shared queue and
// serialiser (drop-tail or CoDel, Rate or Trace), corruption, then the
// bottleneck's Delay and jitter, after which it is delivered to its
// destination (and shown to the capture hook of the link it was sent on).
//
// The bottleneck keeps its own LinkStats: it is offered what the links hand
// over to it, and the same identity holds. Its randomness derives from the
// Simulator's seed and the bottleneck's creation order, independently of
// the links'. Changing its config follows the link rules (LinkConfig): in
// particular, datagrams already queued when a capacity drop shrinks the
// queue bound stay and drain; only new arrivals see the new bound.
//
// A Bottleneck belongs to one Simulator; like the Simulator, it is not safe
// for concurrent use.
type Bottleneck struct {
	sim  *Simulator
	link *Link
}

// bottleneckTag keys the random streams of bottleneck i.
const bottleneckTag = 0x626f74746c656e65 // "bottlene"

// AddBottleneck returns a new shared queue configured by cfg (see
// Bottleneck). Links go through it once Link.SetVia names it.
func (s *Simulator) AddBottleneck(cfg LinkConfig) (*Bottleneck, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("AddBottleneck: %w", err)
	}
	k := splitmix(bottleneckTag ^ uint64(len(s.necks)))
	l := &Link{}
	l.lossRNG, l.jitterRNG = keyRNGs(s.seed, k)
	l.dupRNG, l.corruptRNG, l.reorderRNG = featureRNGs(s.seed, k)
	l.setConfig(cfg)
	b := &Bottleneck{sim: s, link: l}
	s.necks = append(s.necks, b)
	return b, nil
}

// Config returns the bottleneck's current configuration.
func (b *Bottleneck) Config() LinkConfig { return b.link.Config() }

// SetConfig validates cfg and applies it from now on (see LinkConfig).
func (b *Bottleneck) SetConfig(cfg LinkConfig) error { return b.link.SetConfig(cfg) }

// QueueEvent is a datagram leaving a serialising queue (Rate or Trace):
// at the end of its serialisation, or dropped (drop-tail on arrival, or
// CoDel at the head).
type QueueEvent struct {
	At       clock.Time
	From, To netip.AddrPort // the datagram's original endpoints
	Wire     int            // bytes on the wire: length + Overhead
	// Queued is the time it waited before its serialisation started (its
	// sojourn, as LinkStats.QueueDelaySum counts it); 0 for a drop-tail
	// drop, the time at the head for a CoDel drop.
	Queued  time.Duration
	Dropped bool
}

// QueueFunc is told of each QueueEvent. It runs inside the simulator's
// event and must not call into the Simulator.
type QueueFunc func(QueueEvent)

// SetQueueHook sets the function told of each datagram that leaves the
// bottleneck's queue or is dropped by it (nil: none): per-packet queueing
// delay, loss and per-flow throughput at the shared queue.
func (b *Bottleneck) SetQueueHook(fn QueueFunc) { b.link.queueHook = fn }

// SetQueueHook sets the function told of each datagram that leaves the
// queue of the link from a to b or is dropped by it (nil: none). Datagrams
// of a link without a Rate or Trace pass without queueing and are not
// reported. It fails if the link does not exist.
func (s *Simulator) SetQueueHook(a, b netip.AddrPort, fn QueueFunc) error {
	l := s.links[linkKey{a, b}]
	if l == nil {
		return fmt.Errorf("netem: SetQueueHook: no link %v->%v", a, b)
	}
	l.queueHook = fn
	return nil
}

// Stats returns a snapshot of the bottleneck's counters.
func (b *Bottleneck) Stats() LinkStats { return b.link.Stats() }

// SetVia sends the datagrams leaving l's serialiser from now on through
// bottleneck b (see Bottleneck); nil sends them straight to the far end
// again. Datagrams already propagating keep their course. l and b must
// belong to the same Simulator (a Network's links cannot go through a
// bottleneck yet).
func (l *Link) SetVia(b *Bottleneck) error {
	if b != nil && (l.mu != nil || b.sim.links[linkKey{l.from, l.to}] != l) {
		return fmt.Errorf("%w: SetVia on %v->%v", ErrForeignBottleneck, l.from, l.to)
	}
	l.via = b
	return nil
}

// Via returns the bottleneck l's datagrams go through, or nil.
func (l *Link) Via() *Bottleneck {
	l.lock()
	defer l.unlock()
	return l.via
}
