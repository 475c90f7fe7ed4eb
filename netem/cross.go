package netem

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Cross traffic: Nodes that load a bottleneck the way other applications
// would, driven by the Simulator like any other Node (sans-I/O: they take
// `now`, start no goroutine and never read the wall clock).
//
//   - CBRSender and CBRSink: constant-bitrate UDP, optionally on a start/stop
//     and on/off schedule (cross.go).
//   - TCPSender and TCPReceiver: a TCP-like flow with NewReno loss recovery
//     and Reno or CUBIC congestion avoidance, bulk or short files separated
//     by idle times (cross_tcp.go).
//   - FlowMux: several of these flows behind one address, so that they share
//     one link and its queue.
//
// Every cross-traffic datagram starts with the same five bytes: a kind byte
// and the flow number (Flow in the configs, big-endian uint32), which is
// what FlowMux demultiplexes on. It also carries an Internet checksum (RFC
// 1071) over the whole datagram, so that a datagram a link corrupted
// (LinkConfig.Corrupt) is counted and discarded, as UDP and TCP would
// discard it, rather than read.

// crossKind is the first byte of every cross-traffic datagram.
const (
	crossKindCBR  = 0xc1 // CBRSender data
	crossKindData = 0xd1 // TCPSender segment
	crossKindAck  = 0xa1 // TCPReceiver acknowledgment
)

// crossFlowOff is where the flow number sits; crossPrefixLen is what every
// cross-traffic datagram has (kind and flow).
const (
	crossFlowOff   = 1
	crossPrefixLen = 5
)

func putCrossPrefix(b []byte, kind byte, flow uint32) {
	b[0] = kind
	binary.BigEndian.PutUint32(b[crossFlowOff:], flow)
}

// crossSum is the Internet checksum (RFC 1071) of b: the complement of the
// ones'-complement sum of its 16-bit big-endian words (an odd last byte is
// padded with zero). Stored at an even offset in a datagram whose checksum
// field was zero, it makes crossSum of the whole datagram zero.
func crossSum(b []byte) uint16 {
	// Summing 32-bit halves and folding the carries back in at the end
	// gives the same ones'-complement sum (RFC 1071 §2(B)); at most 8,192
	// terms below 2^33 cannot overflow 64 bits.
	var sum uint64
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		sum += v>>32 + v&0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// crossFlow reads the flow number of a cross-traffic datagram.
func crossFlow(b []byte) (uint32, bool) {
	if len(b) < crossPrefixLen {
		return 0, false
	}
	switch b[0] {
	case crossKindCBR, crossKindData, crossKindAck:
		return binary.BigEndian.Uint32(b[crossFlowOff:]), true
	}
	return 0, false
}

// ---- constant bitrate ----

// CBRMinSize is the smallest CBRConfig.Size: the header every CBR datagram
// carries (kind, flow, a sequence number, the send time and a checksum, 24
// bytes).
const CBRMinSize = 24

// Offsets in a CBR datagram.
const (
	cbrSeqOff  = 5  // uint64
	cbrTimeOff = 13 // int64 nanoseconds of virtual time
	cbrSumOff  = 22 // uint16 checksum (byte 21 is zero)
)

// DefaultCBRSize is the datagram length of a CBRSender whose Size is zero.
const DefaultCBRSize = 1200

// CBRConfig configures a CBRSender.
type CBRConfig struct {
	// Peer is where the datagrams go (a CBRSink, or a FlowMux holding one).
	// Required.
	Peer netip.AddrPort `json:"peer"`

	// Flow numbers the flow in every datagram's header, for FlowMux and for
	// telling flows apart in captures. Zero is a valid flow number.
	Flow uint32 `json:"flow"`

	// Rate is the sending rate in bit/s, counting (Size+Overhead) bytes per
	// datagram. Required: in (0, MaxRate].
	Rate int64 `json:"rate"`

	// Size is each datagram's length in bytes (UDP payload). Zero:
	// DefaultCBRSize (1200). Otherwise in [CBRMinSize, MaxDatagramSize].
	Size int `json:"size"`

	// Overhead is added to Size when pacing against Rate: set it to the
	// link's LinkConfig.Overhead to make Rate the wire rate the link counts.
	// Zero: Rate counts datagram bytes only. At most 65535.
	Overhead int `json:"overhead"`

	// Start is when the first datagram is sent. Zero: at time 0. A sender
	// first woken after Start (added to a Simulator later) starts its
	// schedule when it is woken, rather than sending a burst to catch up.
	Start clock.Time `json:"start"`

	// Stop is the end of the schedule: no datagram is sent at or after it.
	// Zero: never. Otherwise after Start.
	Stop clock.Time `json:"stop"`

	// On and Off make the sender alternate: On of sending from Start, then
	// Off of silence, and so on; each on period starts its own packet
	// clock. Zero On: always on (Off is then ignored). Off must be positive
	// when On is.
	On  time.Duration `json:"on"`
	Off time.Duration `json:"off"`
}

func (c *CBRConfig) withDefaults() CBRConfig {
	d := *c
	if d.Size == 0 {
		d.Size = DefaultCBRSize
	}
	return d
}

// Validate reports the first invalid field in an error wrapping
// ErrInvalidConfig.
func (c *CBRConfig) Validate() error {
	d := c.withDefaults()
	switch {
	case !d.Peer.IsValid():
		return fmt.Errorf("%w: CBRConfig.Peer %v is not a valid address", ErrInvalidConfig, d.Peer)
	case d.Rate <= 0 || d.Rate > MaxRate:
		return fmt.Errorf("%w: CBRConfig.Rate %d bit/s outside (0, %d]", ErrInvalidConfig, d.Rate, int64(MaxRate))
	case d.Size < CBRMinSize || d.Size > MaxDatagramSize:
		return fmt.Errorf("%w: CBRConfig.Size %d outside [%d, %d]", ErrInvalidConfig, d.Size, CBRMinSize, MaxDatagramSize)
	case d.Overhead < 0 || d.Overhead > 65535:
		return fmt.Errorf("%w: CBRConfig.Overhead %d outside [0, 65535]", ErrInvalidConfig, d.Overhead)
	case d.Start < 0:
		return fmt.Errorf("%w: CBRConfig.Start %v is negative", ErrInvalidConfig, d.Start)
	case d.Stop != 0 && d.Stop <= d.Start:
		return fmt.Errorf("%w: CBRConfig.Stop %v not after Start %v", ErrInvalidConfig, d.Stop, d.Start)
	case d.On < 0 || d.On > MaxLinkDelay:
		return fmt.Errorf("%w: CBRConfig.On %v outside [0, %v]", ErrInvalidConfig, d.On, MaxLinkDelay)
	case d.On > 0 && (d.Off <= 0 || d.Off > MaxLinkDelay):
		return fmt.Errorf("%w: CBRConfig.Off %v outside (0, %v] with On set", ErrInvalidConfig, d.Off, MaxLinkDelay)
	}
	return nil
}

// CBRStats counts what a CBRSender sent.
type CBRStats struct {
	Packets uint64 // datagrams sent
	Bytes   uint64 // their lengths (UDP payload, without Overhead)
}

// CBRSender is a Node that sends datagrams of CBRConfig.Size bytes at
// CBRConfig.Rate. The k-th datagram of an on period starting at T leaves at
// exactly T + floor(k*(Size+Overhead)*8/Rate seconds) (to the nanosecond,
// with no drift), so over any window it has sent within one datagram of
// Rate x window. It ignores what it receives.
type CBRSender struct {
	cfg  CBRConfig
	step int64 // (Size+Overhead)*8e9: the packet interval is step/Rate ns

	periodStart clock.Time // start of the current on period
	periodEnd   clock.Time // end of it (Never when always on)
	offsetNs    int64      // floor(k*step/Rate) for the next datagram k
	offsetRem   int64      // the remainder, in [0, Rate)
	next        clock.Time // when the next datagram is due; Never when done
	due         int        // datagrams due and not yet polled
	seq         uint64
	begun       bool // woken at least once

	stats CBRStats
}

// NewCBR returns a CBRSender, or an error wrapping ErrInvalidConfig.
func NewCBR(cfg CBRConfig) (*CBRSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	s := &CBRSender{cfg: c, step: int64(c.Size+c.Overhead) * 8 * 1e9}
	s.startPeriod(c.Start)
	return s, nil
}

// startPeriod begins an on period at t.
func (s *CBRSender) startPeriod(t clock.Time) {
	s.periodStart, s.offsetNs, s.offsetRem = t, 0, 0
	s.periodEnd = clock.Never
	if s.cfg.On > 0 {
		s.periodEnd = t.Add(s.cfg.On)
	}
	s.next = t
	if s.cfg.Stop != 0 && s.next >= s.cfg.Stop {
		s.next = clock.Never
	}
}

// advance moves next past one datagram.
func (s *CBRSender) advance() {
	// Exact long-run rate: carry the remainder of step/Rate. step is at
	// most 1.05e15 and offsetRem < Rate <= 1e15, so nothing overflows.
	num := s.step + s.offsetRem
	s.offsetNs += num / s.cfg.Rate
	s.offsetRem = num % s.cfg.Rate
	s.next = s.periodStart.Add(time.Duration(s.offsetNs))
	if s.next >= s.periodEnd {
		s.startPeriod(s.periodEnd.Add(s.cfg.Off))
	}
	if s.cfg.Stop != 0 && s.next >= s.cfg.Stop {
		s.next = clock.Never
	}
}

// HandleDatagram implements Node; a CBRSender ignores what it receives.
func (s *CBRSender) HandleDatagram(clock.Time, netip.AddrPort, []byte) {}

// HandleTimeout implements Node.
func (s *CBRSender) HandleTimeout(now clock.Time) {
	if !s.begun {
		s.begun = true
		if s.next < now {
			s.startPeriod(now)
		}
	}
	for s.next <= now {
		s.due++
		s.advance()
	}
}

// PollTransmit implements Node.
func (s *CBRSender) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if s.due == 0 {
		return 0, netip.AddrPort{}, false
	}
	s.due--
	n := s.cfg.Size
	b := dst[:n]
	clear(b)
	putCrossPrefix(b, crossKindCBR, s.cfg.Flow)
	binary.BigEndian.PutUint64(b[cbrSeqOff:], s.seq)
	binary.BigEndian.PutUint64(b[cbrTimeOff:], uint64(now))
	binary.BigEndian.PutUint16(b[cbrSumOff:], crossSum(b))
	s.seq++
	s.stats.Packets++
	s.stats.Bytes += uint64(n)
	return n, s.cfg.Peer, true
}

// NextTimeout implements Node.
func (s *CBRSender) NextTimeout() clock.Time { return s.next }

// Stats returns what the sender has sent.
func (s *CBRSender) Stats() CBRStats { return s.stats }

// CBRSinkStats counts what a CBRSink received.
type CBRSinkStats struct {
	Packets uint64 // datagrams received
	Bytes   uint64 // their lengths (UDP payload)

	// First and Last are the arrival times of the first and the latest
	// datagram (both zero before any).
	First, Last clock.Time

	// Lost is the highest sequence number received + 1 - Packets: the
	// datagrams missing so far, counting late ones as missing until they
	// arrive. Reordered counts datagrams that arrived after a higher
	// sequence number.
	Lost      uint64
	Reordered uint64

	// DelaySum and DelayMax are the one-way delays (arrival - the send time
	// the sender wrote) of the datagrams received.
	DelaySum time.Duration
	DelayMax time.Duration

	// Foreign counts datagrams that were not CBR datagrams, Corrupted those
	// whose checksum failed (neither is counted above).
	Foreign   uint64
	Corrupted uint64
}

// CBRSink is a Node that counts the datagrams of one CBRSender.
type CBRSink struct {
	maxSeq  uint64
	started bool
	stats   CBRSinkStats
}

// NewCBRSink returns a sink for one CBRSender's datagrams.
func NewCBRSink() *CBRSink { return &CBRSink{} }

// HandleDatagram implements Node.
func (k *CBRSink) HandleDatagram(now clock.Time, _ netip.AddrPort, b []byte) {
	if len(b) < CBRMinSize || b[0] != crossKindCBR {
		k.stats.Foreign++
		return
	}
	if crossSum(b) != 0 {
		k.stats.Corrupted++
		return
	}
	st := &k.stats
	if st.Packets == 0 {
		st.First = now
	}
	st.Last = now
	st.Packets++
	st.Bytes += uint64(len(b))
	seq := binary.BigEndian.Uint64(b[cbrSeqOff:])
	switch {
	case !k.started || seq > k.maxSeq:
		k.maxSeq, k.started = seq, true
	case seq < k.maxSeq:
		st.Reordered++
	}
	if d := now.Sub(clock.Time(binary.BigEndian.Uint64(b[cbrTimeOff:]))); d >= 0 {
		st.DelaySum += d
		st.DelayMax = max(st.DelayMax, d)
	}
}

// HandleTimeout implements Node.
func (k *CBRSink) HandleTimeout(clock.Time) {}

// PollTransmit implements Node; a CBRSink sends nothing.
func (k *CBRSink) PollTransmit(clock.Time, []byte) (int, netip.AddrPort, bool) {
	return 0, netip.AddrPort{}, false
}

// NextTimeout implements Node.
func (k *CBRSink) NextTimeout() clock.Time { return clock.Never }

// Stats returns what the sink has received.
func (k *CBRSink) Stats() CBRSinkStats {
	st := k.stats
	if k.started && k.maxSeq+1 > st.Packets {
		st.Lost = k.maxSeq + 1 - st.Packets
	}
	return st
}

// ---- several flows behind one address ----

// FlowMuxStats counts what a FlowMux could not deliver.
type FlowMuxStats struct {
	// Unknown counts datagrams received that were not cross traffic or
	// carried a flow number no node was added for.
	Unknown uint64
}

// FlowMux is a Node that carries several cross-traffic flows behind one
// address, so that they cross the same links and share their queues: the
// way to put two TCP flows through one bottleneck between two addresses.
// Received datagrams go to the node added for the flow number in their
// header; datagrams to send are taken from the nodes in turn, one each, so
// flows that are ready at the same instant interleave.
//
// Add every node before the FlowMux is added to a Simulator.
type FlowMux struct {
	flows []muxFlow
	rr    int // the node to poll first
	stats FlowMuxStats
}

type muxFlow struct {
	flow uint32
	node Node
}

// NewFlowMux returns an empty FlowMux.
func NewFlowMux() *FlowMux { return &FlowMux{} }

// Add makes n the node for flow: it receives the flow's datagrams and may
// send to any address. n must write the cross-traffic header (the senders and
// receivers of this package do). A flow number may be added once.
func (m *FlowMux) Add(flow uint32, n Node) error {
	if n == nil {
		return fmt.Errorf("%w: FlowMux.Add(%d): nil Node", ErrInvalidConfig, flow)
	}
	for _, f := range m.flows {
		if f.flow == flow {
			return fmt.Errorf("%w: FlowMux.Add: flow %d added twice", ErrInvalidConfig, flow)
		}
	}
	m.flows = append(m.flows, muxFlow{flow, n})
	return nil
}

// HandleDatagram implements Node.
func (m *FlowMux) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	if flow, ok := crossFlow(b); ok {
		for _, f := range m.flows {
			if f.flow == flow {
				f.node.HandleDatagram(now, from, b)
				return
			}
		}
	}
	m.stats.Unknown++
}

// HandleTimeout implements Node: it wakes the nodes whose timeout has come.
func (m *FlowMux) HandleTimeout(now clock.Time) {
	for _, f := range m.flows {
		if f.node.NextTimeout() <= now {
			f.node.HandleTimeout(now)
		}
	}
}

// PollTransmit implements Node.
func (m *FlowMux) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	k := len(m.flows)
	for i := range k {
		j := (m.rr + i) % k
		if n, to, ok := m.flows[j].node.PollTransmit(now, dst); ok {
			m.rr = (j + 1) % k
			return n, to, true
		}
	}
	return 0, netip.AddrPort{}, false
}

// NextTimeout implements Node: the earliest of the nodes' timeouts.
func (m *FlowMux) NextTimeout() clock.Time {
	next := clock.Never
	for _, f := range m.flows {
		next = clock.Min(next, f.node.NextTimeout())
	}
	return next
}

// Stats returns the mux's counters.
func (m *FlowMux) Stats() FlowMuxStats { return m.stats }
