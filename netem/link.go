package netem

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// CaptureFunc is called for each datagram a link delivers, at its delivery
// time, before the receiver sees it. b is only valid during the call.
type CaptureFunc func(at clock.Time, from, to netip.AddrPort, b []byte)

// LinkStats counts what one link direction (or a Bottleneck) did. Payload
// bytes are datagram lengths (UDP payload), without Overhead. Every datagram
// offered, and every copy Duplicate made, meets exactly one fate, so at any
// time
//
//	PacketsOffered + PacketsDuplicated = PacketsDelivered + PacketsLost +
//	    PacketsBlackout + PacketsDropped + PacketsCoDelDropped +
//	    PacketsOverflow + InFlight
//
// PacketsCorrupted and PacketsReordered count datagrams that were delivered
// (or are still in flight) with that mark, so they are not in the sum.
type LinkStats struct {
	PacketsOffered uint64 // datagrams handed to the link
	BytesOffered   uint64

	// PacketsDelivered counts datagrams that reached the far end or, on a
	// link that goes through a Bottleneck (Link.SetVia), that were handed to
	// the bottleneck, whose own stats follow them from there.
	PacketsDelivered uint64
	BytesDelivered   uint64

	PacketsLost uint64 // the loss model (Loss, GE or FourState)
	BytesLost   uint64

	PacketsBlackout uint64 // entered while the link was Down
	BytesBlackout   uint64

	PacketsDropped uint64 // drop-tail: the queue was full
	BytesDropped   uint64

	PacketsCoDelDropped uint64 // dropped by CoDel at the head of the queue
	BytesCoDelDropped   uint64

	// PacketsOverflow counts datagrams refused because the link already
	// held MaxInFlightPackets datagrams or MaxInFlightBytes bytes.
	PacketsOverflow uint64

	// PacketsDuplicated counts the copies Duplicate made (each copy is one
	// more datagram on the link, with a fate of its own).
	PacketsDuplicated uint64
	// PacketsCorrupted counts datagrams that had one bit flipped (Corrupt).
	PacketsCorrupted uint64
	// PacketsReordered counts datagrams that skipped Delay and jitter
	// (ReorderProb).
	PacketsReordered uint64

	// QueueDelaySum and QueueDelayMax are the time delivered datagrams
	// waited in the queue before their serialisation started (not counting
	// their own serialisation or propagation): their sojourn time, as CoDel
	// sees it.
	QueueDelaySum time.Duration
	QueueDelayMax time.Duration

	// QueueBytes is the queue's occupancy now: len+Overhead of each datagram
	// that entered the queue and has not finished serialisation.
	QueueBytes int64
	// InFlight is the number of datagrams the link holds now.
	InFlight int
}

// Link is one direction of a link between two addresses. Get one from
// Simulator.Link or Network.Link. Its methods are safe to call from a
// Schedule callback (Simulator) or from any goroutine (Network).
type Link struct {
	from, to netip.AddrPort
	mu       *sync.Mutex // the Network's lock; nil in a Simulator

	cfg   LinkConfig
	limit int64 // drop-tail bound in bytes (cfg.queueLimit)

	// One random stream per feature, so that a feature a config does not
	// use never shifts the draws of another.
	lossRNG    *rand.Rand
	jitterRNG  *rand.Rand
	dupRNG     *rand.Rand
	corruptRNG *rand.Rand
	reorderRNG *rand.Rand

	chain        lossChain  // Gilbert-Elliott / 4-state state
	codel        codelState // CoDel's state
	trace        traceState // where the serialiser is in cfg.Trace
	reorderCount int        // datagrams delayed since the last sent at once

	q         fifo    // datagrams waiting for the serialiser
	inService *packet // the datagram being serialised (its departure is scheduled)
	serRem    int64   // remainder of the last serialisation time, in bit*ns/s

	lastDeliver clock.Time // latest delivery time scheduled
	queued      int64      // bytes waiting or being serialised

	inflight      int
	inflightBytes int

	via *Bottleneck // where departing datagrams go next; nil: the far end

	capture   CaptureFunc
	queueHook QueueFunc
	stats     LinkStats

	dst *nodeState // the receiving node (Simulator only)
}

func newLink(seed uint64, from, to netip.AddrPort, cfg LinkConfig, mu *sync.Mutex) *Link {
	l := &Link{from: from, to: to, mu: mu}
	l.lossRNG, l.jitterRNG = linkRNGs(seed, from, to)
	k := endpointsKey(from, to)
	l.dupRNG, l.corruptRNG, l.reorderRNG = featureRNGs(seed, k)
	l.setConfig(cfg)
	return l
}

// endpointsKey hashes a link direction's endpoints.
func endpointsKey(from, to netip.AddrPort) uint64 {
	h := fnv.New64a()
	b, _ := from.MarshalBinary() // cannot fail
	h.Write(b)
	b, _ = to.MarshalBinary()
	h.Write(b)
	return h.Sum64()
}

// linkRNGs derives a link direction's random streams from the seed and its
// endpoints only, so adding or reconfiguring a link never perturbs another
// link's randomness. Loss and jitter draw from separate streams, so changing
// the jitter leaves the loss pattern as it was.
func linkRNGs(seed uint64, from, to netip.AddrPort) (loss, jitter *rand.Rand) {
	return keyRNGs(seed, endpointsKey(from, to))
}

// keyRNGs derives the loss and jitter streams of the link (or bottleneck)
// whose key is k. Version 1's streams: unchanged.
func keyRNGs(seed, k uint64) (loss, jitter *rand.Rand) {
	base := splitmix(seed ^ splitmix(k))
	loss = rand.New(rand.NewPCG(base, splitmix(k^0x6c6f7373))) // "loss"
	jitter = rand.New(rand.NewPCG(splitmix(base), splitmix(k^0x6a697474)))
	return loss, jitter
}

// featureRNGs derives the streams of the features version 1 did not have,
// each from its own tag, so none of them moves the loss or jitter streams.
func featureRNGs(seed, k uint64) (dup, corrupt, reorder *rand.Rand) {
	base := splitmix(seed ^ splitmix(k))
	stream := func(tag uint64) *rand.Rand {
		return rand.New(rand.NewPCG(splitmix(base^splitmix(tag)), splitmix(k^tag)))
	}
	return stream(0x647570), stream(0x636f7272), stream(0x72656f72) // "dup", "corr", "reor"
}

// splitmix is SplitMix64's finaliser: a bijective mix of 64 bits.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (l *Link) setConfig(cfg LinkConfig) {
	if cfg.QueueDisc != CoDel {
		l.codel = codelState{}
	}
	l.cfg = cfg
	l.limit = cfg.queueLimit()
}

func (l *Link) lock() {
	if l.mu != nil {
		l.mu.Lock()
	}
}

func (l *Link) unlock() {
	if l.mu != nil {
		l.mu.Unlock()
	}
}

// From returns the sending address.
func (l *Link) From() netip.AddrPort { return l.from }

// To returns the receiving address.
func (l *Link) To() netip.AddrPort { return l.to }

// Config returns the link's current configuration.
func (l *Link) Config() LinkConfig {
	l.lock()
	defer l.unlock()
	return l.cfg
}

// SetConfig validates cfg and applies it to datagrams that enter the link
// from now on (see LinkConfig).
func (l *Link) SetConfig(cfg LinkConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.lock()
	defer l.unlock()
	l.setConfig(cfg)
	return nil
}

// Stats returns a snapshot of the link's counters.
func (l *Link) Stats() LinkStats {
	l.lock()
	defer l.unlock()
	st := l.stats
	st.QueueBytes = l.queued
	st.InFlight = l.inflight
	return st
}

type linkKey struct{ from, to netip.AddrPort }
