package netem

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// A TCP-like flow for cross traffic: a TCPSender and a TCPReceiver that
// exchange segments and cumulative acknowledgments over the Simulator's
// links, so that the flow's window reacts to the queue it shares with the
// traffic under test.
//
// What is modelled, with the rules each piece follows:
//
//   - Segments of MSS payload bytes behind a TCPHeaderLen-byte header (a
//     20-byte TCP header and a 12-byte timestamps option, RFC 7323 §3), so a
//     datagram is MSS+32 bytes and the link adds its Overhead (IP and UDP).
//     Sequence numbers count bytes, from 0, and do not wrap.
//   - Receiver: cumulative ACKs, no SACK; an ACK for every AckEvery-th
//     in-order segment, else after DelayedACK (RFC 5681 §4.2); an immediate
//     ACK for an out-of-order segment (a duplicate ACK), for a segment that
//     fills all or part of a gap (RFC 5681 §4.2), for a duplicate (RFC 9293
//     §3.10.7.4) and for the last segment of a file, which stands for a FIN.
//     Out-of-order data is held, up to MaxWindow.
//   - RTT: every ACK echoes the timestamp of the segment that advanced the
//     left edge (RFC 7323 §4.3), and every ACK of new data gives a sample
//     (RFC 7323 §4.1); SRTT, RTTVAR and RTO follow RFC 6298 §2, the timer
//     RFC 6298 §5, with exponential backoff (§5.5).
//   - Slow start and Reno congestion avoidance (RFC 5681 §3.1) with byte
//     counting (RFC 3465); fast retransmit after three duplicate ACKs and
//     NewReno fast recovery (RFC 5681 §3.2, RFC 6582 §3.2); after a
//     timeout, cwnd = 1 segment and go-back-N from the first unacknowledged
//     segment.
//   - CUBIC (RFC 9438 §4) replaces the multiplicative decrease and the
//     congestion avoidance: W_cubic with C = 0.4, beta = 0.7, the
//     Reno-friendly region, fast convergence; loss recovery stays NewReno.
//   - Bulk data, or files of a given size separated by exponential idle
//     times (RFC 8867 §5.7). Each file starts like a new connection (initial
//     window, ssthresh unbounded, RFC 5681 §3.1 and RFC 6928) but keeps the
//     RTT estimate, as a host's route metrics cache would. There is no
//     handshake: a file's completion time runs from its first segment to
//     the ACK of its last byte.
//
// Not modelled: SACK, limited transmit (RFC 3042), pacing, HyStart, ECN,
// receive-window updates, PRR, spurious-retransmission undo (RFC 9438
// §4.9), sequence-number wrap.

// TCPVariant selects a TCPSender's congestion control.
type TCPVariant uint8

const (
	// TCPReno is NewReno: slow start, AIMD congestion avoidance (+1 segment
	// per RTT, halve on loss; RFC 5681) and NewReno fast recovery (RFC
	// 6582). It is the zero value.
	TCPReno TCPVariant = iota
	// TCPCubic is CUBIC (RFC 9438) with NewReno fast recovery.
	TCPCubic

	numTCPVariants // keep last
)

var tcpVariantNames = [numTCPVariants]string{TCPReno: "reno", TCPCubic: "cubic"}

// String returns the variant's name ("reno", "cubic").
func (v TCPVariant) String() string {
	if v < numTCPVariants {
		return tcpVariantNames[v]
	}
	return fmt.Sprintf("TCPVariant(%d)", uint8(v))
}

// MarshalText implements encoding.TextMarshaler.
func (v TCPVariant) MarshalText() ([]byte, error) {
	if v >= numTCPVariants {
		return nil, fmt.Errorf("%w: unknown TCPVariant %d", ErrInvalidConfig, uint8(v))
	}
	return []byte(tcpVariantNames[v]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *TCPVariant) UnmarshalText(b []byte) error {
	for i, name := range tcpVariantNames {
		if string(b) == name {
			*v = TCPVariant(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown TCPVariant %q (want reno or cubic)", ErrInvalidConfig, b)
}

// Defaults and limits of a TCP flow.
const (
	// TCPHeaderLen is the header at the start of every TCP-flow datagram: a
	// 20-byte TCP header plus a 12-byte timestamps option (RFC 7323), which
	// the model fills with its own fields. A data segment is
	// TCPHeaderLen+MSS bytes; an ACK is TCPHeaderLen bytes.
	TCPHeaderLen = 32

	// DefaultTCPMSS is the MSS of a TCPConfig whose MSS is zero: 1448 bytes,
	// which with the 32-byte header and a 20-byte IPv4 header makes a
	// 1500-byte packet.
	DefaultTCPMSS = 1448

	// DefaultTCPInitialWindow is the initial window in segments (RFC 6928).
	DefaultTCPInitialWindow = 10

	// DefaultTCPMaxWindow bounds the window in bytes (4 MiB, Linux's
	// default largest send buffer).
	DefaultTCPMaxWindow = 4 << 20

	// DefaultTCPDelayedACK is the delayed-ACK timeout (Linux's minimum,
	// 40 ms; RFC 5681 §4.2 allows up to 500 ms).
	DefaultTCPDelayedACK = 40 * time.Millisecond

	// DefaultTCPMinRTO is the lower bound of the RTO: 200 ms, as Linux.
	// RFC 6298 §2.4 says 1 s; set TCPConfig.MinRTO for that.
	DefaultTCPMinRTO = 200 * time.Millisecond

	// DefaultTCPInitialRTO is the RTO before the first RTT sample (RFC 6298
	// §2.1).
	DefaultTCPInitialRTO = time.Second

	// DefaultTCPMaxRTO is the upper bound of the RTO (RFC 6298 §2.5 allows
	// any bound of at least 60 s).
	DefaultTCPMaxRTO = 60 * time.Second

	// MaxTCPWindowSegments bounds MaxWindow/MSS, which sizes the per-segment
	// ring of the sender and the out-of-order list of the receiver.
	MaxTCPWindowSegments = 1 << 20
)

// Offsets in a TCP-flow datagram (after the kind and the flow).
const (
	tcpFlagsOff = 5  // bit 0: FIN (the last segment of a file)
	tcpSeqOff   = 6  // uint64: a segment's first byte, an ACK's next expected byte
	tcpTSvalOff = 14 // int64: send time (RFC 7323 TSval)
	tcpTSecrOff = 22 // int64: echoed TSval (RFC 7323 TSecr), -1 for none
	tcpSumOff   = 30 // uint16: checksum over the datagram
)

// Congestion-control constants.
const (
	tcpDupThresh   = 3   // duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2)
	cubicC         = 0.4 // RFC 9438 §4.1.1
	cubicBeta      = 0.7 // RFC 9438 §4.1.1
	tcpGranularity = time.Millisecond
)

// TCPConfig configures a TCP flow (NewTCPFlow). The zero value of every
// field but Peer is usable: a bulk NewReno flow starting at time 0.
type TCPConfig struct {
	// Peer is the receiver's address (a TCPReceiver, or a FlowMux holding
	// it). Required. The receiver answers whatever address the data came
	// from.
	Peer netip.AddrPort `json:"peer"`

	// Flow numbers the flow in every datagram's header, for FlowMux. Zero
	// is a valid flow number.
	Flow uint32 `json:"flow"`

	// Variant selects the congestion control. Zero: TCPReno.
	Variant TCPVariant `json:"variant"`

	// MSS is the payload of a full segment in bytes. Zero: DefaultTCPMSS
	// (1448). At most MaxDatagramSize-TCPHeaderLen.
	MSS int `json:"mss"`

	// InitialWindow is the initial congestion window in segments. Zero:
	// DefaultTCPInitialWindow (10, RFC 6928).
	InitialWindow int `json:"initial_window"`

	// MaxWindow bounds the congestion window and the data in flight, in
	// bytes (it stands for the receive window and the socket buffers). Zero:
	// DefaultTCPMaxWindow (4 MiB). At least 2*MSS; MaxWindow/MSS at most
	// MaxTCPWindowSegments.
	MaxWindow int `json:"max_window"`

	// Start is when the flow (its first file) starts. Zero: time 0.
	Start clock.Time `json:"start"`

	// Stop is when the sender goes silent for good, as if the connection
	// were reset: nothing is sent at or after it. Zero: never. Otherwise
	// after Start.
	Stop clock.Time `json:"stop"`

	// FileSize makes the flow a sequence of files of this many bytes each
	// (short flows, RFC 8867 §5.7). Zero: bulk, an endless backlog.
	FileSize int `json:"file_size"`

	// FileSizeMax, with FileSize, draws each file's size uniformly from
	// [FileSize, FileSizeMax]. Zero: every file is FileSize bytes.
	FileSizeMax int `json:"file_size_max"`

	// IdleMean is the mean of the exponential idle time between the end of
	// one file (its last byte acknowledged) and the start of the next. Zero:
	// the next file starts at once. Only with FileSize.
	IdleMean time.Duration `json:"idle_mean"`

	// Files is how many files the flow sends. Zero: no limit (until Stop).
	// Only with FileSize.
	Files int `json:"files"`

	// Seed seeds the draws of file sizes and idle times. Zero is a seed like
	// any other.
	Seed uint64 `json:"seed"`

	// AckEvery is how many in-order segments the receiver acknowledges at
	// once: 1 or 2. Zero: 2 (delayed ACKs, RFC 5681 §4.2).
	AckEvery int `json:"ack_every"`

	// DelayedACK is how long the receiver holds an ACK waiting for a second
	// segment. Zero: DefaultTCPDelayedACK (40 ms). At most 500 ms (RFC 5681
	// §4.2).
	DelayedACK time.Duration `json:"delayed_ack"`

	// MinRTO, InitialRTO and MaxRTO bound and seed the retransmission
	// timeout (RFC 6298 §2). Zero: DefaultTCPMinRTO (200 ms),
	// DefaultTCPInitialRTO (1 s), DefaultTCPMaxRTO (60 s). MinRTO <= MaxRTO.
	MinRTO     time.Duration `json:"min_rto"`
	InitialRTO time.Duration `json:"initial_rto"`
	MaxRTO     time.Duration `json:"max_rto"`

	// NoFastConvergence turns CUBIC's fast convergence (RFC 9438 §4.7) off.
	// False (the default): on, as RFC 9438 says it SHOULD be.
	NoFastConvergence bool `json:"no_fast_convergence"`

	// OnFile, when set, is called as each file completes (its last byte
	// acknowledged), from inside the sender's HandleDatagram. Nil: none.
	OnFile func(TCPFile) `json:"-"`
}

func (c *TCPConfig) withDefaults() TCPConfig {
	d := *c
	setDefault(&d.MSS, DefaultTCPMSS)
	setDefault(&d.InitialWindow, DefaultTCPInitialWindow)
	setDefault(&d.MaxWindow, DefaultTCPMaxWindow)
	setDefault(&d.AckEvery, 2)
	setDefault(&d.DelayedACK, DefaultTCPDelayedACK)
	setDefault(&d.MinRTO, DefaultTCPMinRTO)
	setDefault(&d.InitialRTO, DefaultTCPInitialRTO)
	setDefault(&d.MaxRTO, DefaultTCPMaxRTO)
	return d
}

// setDefault sets *v to def when it holds its zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first invalid field in an error wrapping
// ErrInvalidConfig.
func (c *TCPConfig) Validate() error {
	d := c.withDefaults()
	const maxMSS = MaxDatagramSize - TCPHeaderLen
	switch {
	case !d.Peer.IsValid():
		return fmt.Errorf("%w: TCPConfig.Peer %v is not a valid address", ErrInvalidConfig, d.Peer)
	case d.Variant >= numTCPVariants:
		return fmt.Errorf("%w: TCPConfig.Variant %v unknown", ErrInvalidConfig, d.Variant)
	case d.MSS < 1 || d.MSS > maxMSS:
		return fmt.Errorf("%w: TCPConfig.MSS %d outside [1, %d]", ErrInvalidConfig, d.MSS, maxMSS)
	case d.MaxWindow < 2*d.MSS || d.MaxWindow/d.MSS > MaxTCPWindowSegments:
		return fmt.Errorf("%w: TCPConfig.MaxWindow %d outside [2*MSS, %d*MSS]", ErrInvalidConfig, d.MaxWindow, MaxTCPWindowSegments)
	case d.InitialWindow < 1 || d.InitialWindow > d.MaxWindow/d.MSS:
		return fmt.Errorf("%w: TCPConfig.InitialWindow %d outside [1, MaxWindow/MSS]", ErrInvalidConfig, d.InitialWindow)
	case d.Start < 0:
		return fmt.Errorf("%w: TCPConfig.Start %v is negative", ErrInvalidConfig, d.Start)
	case d.Stop != 0 && d.Stop <= d.Start:
		return fmt.Errorf("%w: TCPConfig.Stop %v not after Start %v", ErrInvalidConfig, d.Stop, d.Start)
	case d.FileSize < 0:
		return fmt.Errorf("%w: TCPConfig.FileSize %d is negative", ErrInvalidConfig, d.FileSize)
	case d.FileSizeMax != 0 && (d.FileSize == 0 || d.FileSizeMax < d.FileSize):
		return fmt.Errorf("%w: TCPConfig.FileSizeMax %d needs FileSize in [1, FileSizeMax] (FileSize %d)", ErrInvalidConfig, d.FileSizeMax, d.FileSize)
	case d.IdleMean < 0 || d.IdleMean > MaxLinkDelay:
		return fmt.Errorf("%w: TCPConfig.IdleMean %v outside [0, %v]", ErrInvalidConfig, d.IdleMean, MaxLinkDelay)
	case d.Files < 0:
		return fmt.Errorf("%w: TCPConfig.Files %d is negative", ErrInvalidConfig, d.Files)
	case d.FileSize == 0 && (d.IdleMean != 0 || d.Files != 0):
		return fmt.Errorf("%w: TCPConfig.IdleMean and Files need FileSize", ErrInvalidConfig)
	case d.AckEvery != 1 && d.AckEvery != 2:
		return fmt.Errorf("%w: TCPConfig.AckEvery %d is not 1 or 2", ErrInvalidConfig, d.AckEvery)
	case d.DelayedACK < 0 || d.DelayedACK > 500*time.Millisecond:
		return fmt.Errorf("%w: TCPConfig.DelayedACK %v outside [0, 500ms]", ErrInvalidConfig, d.DelayedACK)
	case d.MinRTO < 0 || d.MaxRTO < 0 || d.InitialRTO < 0 || d.MaxRTO > MaxLinkDelay:
		return fmt.Errorf("%w: TCPConfig RTO bounds %v/%v/%v negative or above %v", ErrInvalidConfig, d.MinRTO, d.InitialRTO, d.MaxRTO, MaxLinkDelay)
	case d.MinRTO > d.MaxRTO:
		return fmt.Errorf("%w: TCPConfig.MinRTO %v above MaxRTO %v", ErrInvalidConfig, d.MinRTO, d.MaxRTO)
	}
	return nil
}

// TCPFile describes one file of a short-flow TCPSender.
type TCPFile struct {
	Index int        // 0 for the flow's first file
	Size  int        // bytes
	Start clock.Time // when the file started (its first segment could go)
	Done  clock.Time // when its last byte was acknowledged
}

// Duration is the file's completion time, Done - Start.
func (f TCPFile) Duration() time.Duration { return f.Done.Sub(f.Start) }

// TCPStats is a snapshot of a TCPSender.
type TCPStats struct {
	SegmentsSent    uint64 // data segments sent, retransmissions included
	BytesSent       uint64 // their payload bytes
	Retransmissions uint64 // segments sent again (fast retransmit, partial ACK, after a timeout)
	BytesAcked      uint64 // payload bytes cumulatively acknowledged: the goodput
	AcksReceived    uint64 // ACKs taken in (a corrupted one is not)
	AcksCorrupted   uint64 // ACKs whose checksum failed, discarded
	DupAcks         uint64 // duplicate ACKs (RFC 5681 §2)
	FastRetransmits uint64 // losses detected by duplicate ACKs: entries into fast recovery
	Timeouts        uint64 // retransmission timer expiries
	LossEvents      uint64 // losses detected: FastRetransmits + Timeouts

	// Cwnd is the congestion window and Ssthresh the slow-start threshold,
	// in bytes. Ssthresh is 0 while it is unbounded (before the first loss
	// of a connection). FlightSize is the data outstanding (RFC 5681 §2).
	Cwnd       int
	Ssthresh   int
	FlightSize int
	InRecovery bool // in NewReno fast recovery

	// SRTT, RTTVar and RTO are the RFC 6298 estimator's state (RTO with its
	// backoff); MinRTT the smallest sample. Zero before the first sample
	// (RTO is then InitialRTO).
	SRTT, RTTVar, RTO, MinRTT time.Duration

	// FirstSent is when the first segment was sent (zero if none yet).
	FirstSent clock.Time

	// Short flows: files started and completed, the sum and the largest of
	// their completion times, and the last file completed.
	FilesStarted uint64
	FilesDone    uint64
	FCTSum       time.Duration
	FCTMax       time.Duration
	LastFile     TCPFile
}

// tcpSeg is one segment in the sender's ring.
type tcpSeg struct {
	start uint64 // first byte
	n     uint32 // payload length
	fin   bool   // the last segment of a file
}

func (g *tcpSeg) end() uint64 { return g.start + uint64(g.n) }

type tcpPhase uint8

const (
	tcpWaiting tcpPhase = iota // before Start, or idle between files
	tcpActive                  // a file (or the bulk backlog) is being sent
	tcpDone                    // every file sent, or stopped
)

// TCPSender is the sending side of a TCP-like flow: a Node that sends
// segments to TCPConfig.Peer, clocked by the ACKs of its TCPReceiver. Get
// one from NewTCPFlow. In steady state it allocates nothing.
type TCPSender struct {
	cfg    TCPConfig
	mss    int64
	maxWnd int64
	rng    *rand.Rand

	// Segments: ring[i&mask] is segment i; una is the oldest not
	// acknowledged, nxt the next to send, top the next to create.
	ring          []tcpSeg
	mask          uint64
	una, nxt, top uint64
	sndUna        uint64 // first byte not acknowledged
	sndMax        uint64 // one past the highest byte sent
	appEnd        uint64 // one past the last byte the application has offered

	// Congestion control, in bytes.
	cwnd        int64
	ssthresh    int64 // math.MaxInt64: unbounded
	caAcked     int64 // Reno: bytes acknowledged toward the next increase
	recovering  bool
	recover     uint64 // one past the highest byte sent when recovery or a timeout began
	recoverSet  bool   // recover holds a value (false: a new connection)
	dupAcks     int
	partialSeen bool
	rexmitDue   bool
	cub         cubicState

	// RTT estimation and the retransmission timer (RFC 6298).
	hasRTT       bool
	srtt, rttvar time.Duration
	minRTT       time.Duration
	rto          time.Duration // before backoff
	backoff      uint
	rtoAt        clock.Time

	phase   tcpPhase
	nextAt  clock.Time // tcpWaiting: when the next file starts
	file    TCPFile
	stopped bool

	stats TCPStats
}

// cubicState is CUBIC's state (RFC 9438 §4.1.2), windows in segments and
// times in seconds.
type cubicState struct {
	wMax       float64    // W_max: the window before the last reduction
	cwndPrior  float64    // cwnd_prior
	k          float64    // K
	wEst       float64    // W_est
	epoch      clock.Time // t_epoch, -1 outside a congestion-avoidance stage
	afterRTO   bool       // the next stage follows a timeout (§4.8)
	carryBytes float64    // fraction of a byte of growth not yet applied
}

// NewTCPFlow returns the two ends of a TCP flow: add the sender at the
// address the receiver's link comes from, the receiver at cfg.Peer (or add
// each to a FlowMux). It returns an error wrapping ErrInvalidConfig if cfg
// is invalid. The ends allocate their buffers here, sized by MaxWindow/MSS.
func NewTCPFlow(cfg TCPConfig) (*TCPSender, *TCPReceiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	c := cfg.withDefaults()
	segs := c.MaxWindow/c.MSS + 2
	size := 1
	for size < segs {
		size <<= 1
	}
	s := &TCPSender{
		cfg:    c,
		mss:    int64(c.MSS),
		maxWnd: int64(c.MaxWindow),
		rng:    rand.New(rand.NewPCG(c.Seed, splitmix(c.Seed^0x746370))), // "tcp"
		ring:   make([]tcpSeg, size),
		mask:   uint64(size - 1),
		rto:    c.InitialRTO,
		rtoAt:  clock.Never,
		phase:  tcpWaiting,
		nextAt: c.Start,
	}
	s.resetCongestion()
	r := &TCPReceiver{
		flow:     c.Flow,
		ackEvery: c.AckEvery,
		delAck:   c.DelayedACK,
		ooo:      make([]tcpRange, 0, segs),
		tsRecent: -1,
		delAckAt: clock.Never,
	}
	return s, r, nil
}

// resetCongestion puts the congestion state where a new connection has it:
// the initial window (RFC 6928) and an unbounded ssthresh (RFC 5681 §3.1).
func (s *TCPSender) resetCongestion() {
	s.cwnd = min(int64(s.cfg.InitialWindow)*s.mss, s.maxWnd)
	s.ssthresh = math.MaxInt64
	s.caAcked = 0
	s.recovering, s.dupAcks, s.partialSeen, s.rexmitDue = false, 0, false, false
	s.recover, s.recoverSet = s.sndMax, false
	s.cub = cubicState{epoch: -1}
}

// curRTO is the RTO with its backoff (RFC 6298 §5.5), at most MaxRTO.
func (s *TCPSender) curRTO() time.Duration {
	r := s.rto
	for i := uint(0); i < s.backoff && r < s.cfg.MaxRTO; i++ {
		r *= 2
	}
	return min(r, s.cfg.MaxRTO)
}

func (s *TCPSender) flight() int64 { return int64(s.sndMax - s.sndUna) }

// window is what may be outstanding: cwnd, bounded by MaxWindow.
func (s *TCPSender) window() int64 { return min(s.cwnd, s.maxWnd) }

func (s *TCPSender) stop() {
	s.stopped, s.phase, s.rtoAt = true, tcpDone, clock.Never
}

// startFile begins the next file (or the bulk backlog).
func (s *TCPSender) startFile(now clock.Time) {
	size := 0
	if s.cfg.FileSize == 0 {
		s.appEnd = math.MaxUint64
	} else {
		size = s.cfg.FileSize
		if s.cfg.FileSizeMax > size {
			size += s.rng.IntN(s.cfg.FileSizeMax - size + 1)
		}
		s.appEnd = s.sndMax + uint64(size)
	}
	s.file = TCPFile{Index: int(s.stats.FilesStarted), Size: size, Start: now}
	s.stats.FilesStarted++
	if s.stats.FilesStarted > 1 {
		// A new connection's window (RFC 5681 §3.1), the RTT estimate kept.
		s.resetCongestion()
	}
	s.phase = tcpActive
}

// fileDone books the end of a file and schedules the next.
func (s *TCPSender) fileDone(now clock.Time) {
	f := s.file
	f.Done = now
	st := &s.stats
	st.FilesDone++
	st.FCTSum += f.Duration()
	st.FCTMax = max(st.FCTMax, f.Duration())
	st.LastFile = f
	s.rtoAt = clock.Never
	s.phase = tcpDone
	if s.cfg.OnFile != nil {
		s.cfg.OnFile(f)
	}
	if s.cfg.Files > 0 && st.FilesDone >= uint64(s.cfg.Files) {
		return
	}
	// Idle time: exponential with mean IdleMean (RFC 8867 §5.7), bounded
	// so a freak draw cannot park the flow for ages.
	idle := time.Duration(0)
	if s.cfg.IdleMean > 0 {
		idle = time.Duration(min(s.rng.ExpFloat64(), 50) * float64(s.cfg.IdleMean))
	}
	if idle == 0 {
		s.startFile(now)
		return
	}
	s.phase, s.nextAt = tcpWaiting, now.Add(idle)
}

// HandleDatagram implements Node: it processes an ACK.
func (s *TCPSender) HandleDatagram(now clock.Time, _ netip.AddrPort, b []byte) {
	if len(b) < TCPHeaderLen || b[0] != crossKindAck {
		return
	}
	if crossSum(b) != 0 {
		s.stats.AcksCorrupted++
		return
	}
	if s.phase != tcpActive {
		return
	}
	if s.cfg.Stop != 0 && now >= s.cfg.Stop {
		s.stop()
		return
	}
	ack := binary.BigEndian.Uint64(b[tcpSeqOff:])
	tsecr := int64(binary.BigEndian.Uint64(b[tcpTSecrOff:]))
	s.onAck(now, ack, tsecr)
}

func (s *TCPSender) onAck(now clock.Time, ack uint64, tsecr int64) {
	st := &s.stats
	st.AcksReceived++
	if ack < s.sndUna || ack > s.sndMax {
		return // old, or acknowledging what was never sent
	}
	if ack == s.sndUna {
		if s.sndMax == s.sndUna {
			return // nothing outstanding: not a duplicate (RFC 5681 §2)
		}
		st.DupAcks++
		s.dupAcks++
		switch {
		case s.recovering:
			// RFC 5681 §3.2 step 4 (RFC 6582 §3.2 step 2): each further
			// duplicate ACK means a segment left the network: inflate.
			s.cwnd += s.mss
		case s.dupAcks == tcpDupThresh && (!s.recoverSet || ack > s.recover):
			// RFC 6582 §3.2 step 1: fast retransmit only if the ACK covers
			// more than what was sent when the last recovery or timeout
			// began, so one window's losses cut the window once and the
			// duplicates a timeout's go-back-N provokes (§4) do not.
			s.enterRecovery(now)
		}
		return
	}

	// New data acknowledged.
	newly := int64(ack - s.sndUna)
	if tsecr >= 0 {
		s.sampleRTT(now.Sub(clock.Time(tsecr)))
	}
	for s.una < s.top && s.ring[s.una&s.mask].end() <= ack {
		s.una++
	}
	s.sndUna = ack
	s.nxt = max(s.nxt, s.una)
	st.BytesAcked += uint64(newly)

	restart := true
	if s.recovering {
		if ack >= s.recover {
			// RFC 6582 §3.2 step 3, full acknowledgment: deflate to
			// min(ssthresh, max(FlightSize, SMSS) + SMSS) (option 1, which
			// avoids a burst) and leave fast recovery.
			s.cwnd = min(s.ssthresh, max(s.flight(), s.mss)+s.mss)
			s.recovering, s.dupAcks = false, 0
		} else {
			// RFC 6582 §3.2 step 3, partial acknowledgment: retransmit the
			// first unacknowledged segment, deflate by the data
			// acknowledged and add back one SMSS if that was at least one;
			// reset the timer on the first partial ACK only ("Impatient").
			s.rexmitDue = true
			s.cwnd -= newly
			if newly >= s.mss {
				s.cwnd += s.mss
			}
			s.cwnd = max(s.cwnd, s.mss)
			restart = !s.partialSeen
			s.partialSeen = true
		}
	} else {
		s.dupAcks = 0
		s.grow(now, newly)
	}

	// RFC 6298 §5.2: all data acknowledged: stop the timer; §5.3: an ACK of
	// new data restarts it.
	switch {
	case s.sndUna == s.sndMax:
		s.rtoAt = clock.Never
	case restart:
		s.rtoAt = now.Add(s.curRTO())
	}

	if s.cfg.FileSize > 0 && s.sndUna >= s.appEnd {
		s.fileDone(now)
	}
}

// sampleRTT feeds one RTT measurement to the RFC 6298 estimator.
func (s *TCPSender) sampleRTT(r time.Duration) {
	if r < 0 {
		return
	}
	if !s.hasRTT || r < s.minRTT {
		s.minRTT = r
	}
	if !s.hasRTT {
		// RFC 6298 §2.2: the first measurement.
		s.srtt, s.rttvar, s.hasRTT = r, r/2, true
	} else {
		// RFC 6298 §2.3, alpha = 1/8, beta = 1/4, RTTVAR first.
		d := s.srtt - r
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	// RFC 6298 §2.3: RTO = SRTT + max(G, K*RTTVAR), K = 4; §2.4 lower
	// bound (MinRTO), §2.5 upper bound.
	rto := s.srtt + max(tcpGranularity, 4*s.rttvar)
	s.rto = min(max(rto, s.cfg.MinRTO), s.cfg.MaxRTO)
	// RFC 6298 §5, after (5.7): a new measurement collapses the backoff.
	s.backoff = 0
}

// grow opens the window on an ACK of newly acknowledged bytes outside
// fast recovery.
func (s *TCPSender) grow(now clock.Time, newly int64) {
	if s.cwnd < s.ssthresh {
		// RFC 5681 §3.1 slow start, cwnd += min(N, SMSS) (eq. 2), with
		// appropriate byte counting's limit L = 2*SMSS (RFC 3465 §2.2) so
		// that delayed ACKs do not slow it down.
		s.cwnd += min(newly, 2*s.mss)
	} else if s.cfg.Variant == TCPCubic {
		s.cubicGrow(now, newly)
	} else {
		// RFC 5681 §3.1 congestion avoidance, byte-counting form (RFC 3465
		// §2.1): one SMSS per window of data acknowledged, i.e. per RTT.
		s.caAcked += newly
		if s.caAcked >= s.cwnd {
			s.caAcked -= s.cwnd
			s.cwnd += s.mss
		}
	}
	s.cwnd = min(s.cwnd, s.maxWnd)
}

// cubicGrow is CUBIC's congestion avoidance (RFC 9438 §4.2-§4.5).
func (s *TCPSender) cubicGrow(now clock.Time, newly int64) {
	c := &s.cub
	mss := float64(s.mss)
	cwnd := float64(s.cwnd) / mss
	if c.epoch < 0 {
		// A congestion-avoidance stage begins (RFC 9438 §4.2): t_epoch,
		// cwnd_epoch, K from eq. 2, and W_est = cwnd_epoch (§4.3).
		c.epoch = now
		if c.afterRTO || c.wMax == 0 {
			// §4.8 after a timeout (and §4.10 with no W_max yet): K = 0,
			// W_max = the window at the start of the stage.
			c.wMax, c.k, c.afterRTO = cwnd, 0, false
		} else if c.wMax > cwnd {
			c.k = math.Cbrt((c.wMax - cwnd) / cubicC)
		} else {
			c.k = 0
		}
		c.wEst = cwnd
	}
	acked := float64(newly) / mss
	t := now.Sub(c.epoch).Seconds()

	// §4.3 Reno-friendly region: W_est grows by alpha_cubic per window,
	// alpha_cubic = 3(1-beta)/(1+beta), and by 1 once W_est >= cwnd_prior.
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	c.wEst += alpha * acked / cwnd

	var next float64
	if wc := c.wCubic(t); wc < c.wEst {
		// §4.3: W_cubic(t) < W_est: cwnd = W_est (never shrinking it: the
		// window grows at the faster of the two rates, as Linux does).
		next = max(c.wEst, cwnd)
	} else {
		// §4.2 target = W_cubic(t + RTT) clamped to [cwnd, 1.5 cwnd];
		// §4.4 (concave) and §4.5 (convex): cwnd += (target - cwnd)/cwnd
		// per ACK, here per segment acknowledged, so that delayed ACKs do
		// not halve the growth.
		target := c.wCubic(t + s.srtt.Seconds())
		target = min(max(target, cwnd), 1.5*cwnd)
		next = cwnd + (target-cwnd)/cwnd*acked
	}
	inc := (next-cwnd)*mss + c.carryBytes
	whole := math.Floor(inc)
	c.carryBytes = inc - whole
	s.cwnd += int64(whole)
}

// wCubic is W_cubic(t) = C(t-K)^3 + W_max (RFC 9438 §4.2, eq. 1).
func (c *cubicState) wCubic(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.wMax
}

// reduce sets ssthresh at a congestion event (fast retransmit or the first
// timeout of a segment).
func (s *TCPSender) reduce() {
	flight := s.flight()
	if s.cfg.Variant == TCPCubic {
		c := &s.cub
		cwnd := float64(s.cwnd) / float64(s.mss)
		// RFC 9438 §4.7 fast convergence: a window below the last W_max
		// means the flow's share shrank: release more.
		if !s.cfg.NoFastConvergence && cwnd < c.wMax {
			c.wMax = cwnd * (1 + cubicBeta) / 2
		} else {
			c.wMax = cwnd
		}
		// RFC 9438 §4.6: cwnd_prior = cwnd, ssthresh = flight_size * beta,
		// at least 2 segments.
		c.cwndPrior = cwnd
		s.ssthresh = max(int64(float64(flight)*cubicBeta), 2*s.mss)
		c.epoch, c.carryBytes = -1, 0
		return
	}
	// RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize/2, 2*SMSS).
	s.ssthresh = max(flight/2, 2*s.mss)
	s.caAcked = 0
}

// enterRecovery is fast retransmit (RFC 5681 §3.2 steps 2-3, RFC 6582 §3.2
// step 1).
func (s *TCPSender) enterRecovery(clock.Time) {
	s.reduce()
	s.recover, s.recoverSet = s.sndMax, true
	s.recovering, s.partialSeen = true, false
	s.cwnd = s.ssthresh + tcpDupThresh*s.mss
	s.rexmitDue = true
	s.stats.FastRetransmits++
}

// onRTO handles the expiry of the retransmission timer.
func (s *TCPSender) onRTO(now clock.Time) {
	s.stats.Timeouts++
	// RFC 5681 §3.1: ssthresh per eq. 4 (CUBIC: RFC 9438 §4.8, beta), held
	// when the same segment times out again; a timeout in the middle of
	// fast recovery keeps the ssthresh recovery set (as Linux does).
	if s.backoff == 0 && !s.recovering {
		s.reduce()
	}
	s.cub.afterRTO, s.cub.epoch = true, -1
	// RFC 5681 §3.1: cwnd = the loss window, one segment; RFC 6582 §3.2
	// step 4: recover = the highest sequence number sent, leave recovery.
	s.cwnd = s.mss
	s.caAcked = 0
	s.recovering, s.dupAcks, s.rexmitDue = false, 0, false
	s.recover, s.recoverSet = s.sndMax, true
	// Go back N: resend from the first unacknowledged segment (RFC 6298
	// §5.4) as the window opens again in slow start.
	s.nxt = s.una
	// RFC 6298 §5.5 back off, §5.6 restart the timer.
	if s.curRTO() < s.cfg.MaxRTO {
		s.backoff++
	}
	s.rtoAt = now.Add(s.curRTO())
}

// HandleTimeout implements Node.
func (s *TCPSender) HandleTimeout(now clock.Time) {
	if s.stopped {
		return
	}
	if s.cfg.Stop != 0 && now >= s.cfg.Stop {
		s.stop()
		return
	}
	if s.phase == tcpWaiting && now >= s.nextAt {
		s.startFile(now)
	}
	if s.phase == tcpActive && s.rtoAt <= now {
		s.onRTO(now)
	}
}

// PollTransmit implements Node: it sends at most one segment.
func (s *TCPSender) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if s.phase != tcpActive || (s.cfg.Stop != 0 && now >= s.cfg.Stop) {
		return 0, netip.AddrPort{}, false
	}
	var i uint64
	resend := true
	switch {
	case s.rexmitDue && s.una < s.top:
		// Fast retransmit, or a partial ACK's retransmission: sent
		// whatever the window (RFC 5681 §3.2 step 3, RFC 6582 §3.2).
		i = s.una
		s.rexmitDue = false
		if s.nxt == i {
			s.nxt++
		}
	case s.nxt < s.top:
		// Go-back-N after a timeout: segments sent before.
		g := &s.ring[s.nxt&s.mask]
		if int64(g.end()-s.sndUna) > s.window() {
			return 0, netip.AddrPort{}, false
		}
		i = s.nxt
		s.nxt++
	default:
		if s.sndMax >= s.appEnd || s.top-s.una >= uint64(len(s.ring)) {
			return 0, netip.AddrPort{}, false
		}
		n := min(uint64(s.mss), s.appEnd-s.sndMax)
		if int64(s.sndMax+n-s.sndUna) > s.window() {
			return 0, netip.AddrPort{}, false
		}
		i, resend = s.top, false
		s.ring[i&s.mask] = tcpSeg{start: s.sndMax, n: uint32(n), fin: s.cfg.FileSize > 0 && s.sndMax+n == s.appEnd}
		s.top++
		s.nxt = s.top
		s.sndMax += n
	}
	g := &s.ring[i&s.mask]
	st := &s.stats
	if resend {
		st.Retransmissions++
	}
	if st.SegmentsSent == 0 {
		st.FirstSent = now
	}
	st.SegmentsSent++
	st.BytesSent += uint64(g.n)
	b := dst[:TCPHeaderLen+int(g.n)]
	clear(b)
	putCrossPrefix(b, crossKindData, s.cfg.Flow)
	if g.fin {
		b[tcpFlagsOff] = 1
	}
	binary.BigEndian.PutUint64(b[tcpSeqOff:], g.start)
	binary.BigEndian.PutUint64(b[tcpTSvalOff:], uint64(now))
	binary.BigEndian.PutUint64(b[tcpTSecrOff:], math.MaxUint64) // no echo: -1
	binary.BigEndian.PutUint16(b[tcpSumOff:], crossSum(b))
	// RFC 6298 §5.1: start the timer if it is not running.
	if s.rtoAt == clock.Never {
		s.rtoAt = now.Add(s.curRTO())
	}
	return len(b), s.cfg.Peer, true
}

// NextTimeout implements Node.
func (s *TCPSender) NextTimeout() clock.Time {
	if s.stopped {
		return clock.Never
	}
	t := clock.Never
	if s.cfg.Stop != 0 {
		t = s.cfg.Stop
	}
	switch s.phase {
	case tcpWaiting:
		t = clock.Min(t, s.nextAt)
	case tcpActive:
		t = clock.Min(t, s.rtoAt)
	}
	return t
}

// Stats returns a snapshot of the sender.
func (s *TCPSender) Stats() TCPStats {
	st := s.stats
	st.LossEvents = st.FastRetransmits + st.Timeouts
	st.Cwnd = int(s.cwnd)
	if s.ssthresh != math.MaxInt64 {
		st.Ssthresh = int(s.ssthresh)
	}
	st.FlightSize = int(s.flight())
	st.InRecovery = s.recovering
	st.SRTT, st.RTTVar, st.MinRTT = s.srtt, s.rttvar, s.minRTT
	st.RTO = s.curRTO()
	return st
}

// Goodput is BytesAcked in bit/s, averaged from the first segment sent to
// now (0 before then).
func (s *TCPSender) Goodput(now clock.Time) float64 {
	d := now.Sub(s.stats.FirstSent)
	if s.stats.SegmentsSent == 0 || d <= 0 {
		return 0
	}
	return float64(s.stats.BytesAcked) * 8 / d.Seconds()
}

// ---- receiver ----

// tcpRange is a run of bytes [start, end) received out of order.
type tcpRange struct{ start, end uint64 }

// TCPReceiverStats counts what a TCPReceiver did.
type TCPReceiverStats struct {
	Segments   uint64 // data segments received
	Bytes      uint64 // payload bytes delivered in order
	Duplicates uint64 // segments already received in full
	OutOfOrder uint64 // segments beyond a gap
	Dropped    uint64 // out-of-order segments not held: the list was full
	Acks       uint64 // ACKs sent
	Corrupted  uint64 // segments whose checksum failed, discarded (not counted above)
}

// TCPReceiver is the receiving side of a TCP-like flow: a Node that
// acknowledges what its TCPSender sends. Get one from NewTCPFlow. In steady
// state it allocates nothing.
type TCPReceiver struct {
	flow     uint32
	ackEvery int
	delAck   time.Duration

	peer        netip.AddrPort // where ACKs go: the data's source
	rcvNxt      uint64
	lastAckSent uint64
	tsRecent    int64      // TS.Recent (RFC 7323 §4.3), -1 before any
	ooo         []tcpRange // out-of-order runs, sorted, disjoint, not adjacent
	unacked     int        // in-order segments not yet acknowledged
	acksDue     int
	delAckAt    clock.Time

	stats TCPReceiverStats
}

// HandleDatagram implements Node: it takes in a data segment.
func (r *TCPReceiver) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	if len(b) < TCPHeaderLen || b[0] != crossKindData {
		return
	}
	if crossSum(b) != 0 {
		r.stats.Corrupted++
		return
	}
	r.peer = from
	fin := b[tcpFlagsOff]&1 != 0
	start := binary.BigEndian.Uint64(b[tcpSeqOff:])
	tsval := int64(binary.BigEndian.Uint64(b[tcpTSvalOff:]))
	end := start + uint64(len(b)-TCPHeaderLen)
	st := &r.stats
	st.Segments++
	switch {
	case end <= r.rcvNxt:
		// Old data: answer with an ACK (RFC 9293 §3.10.7.4).
		st.Duplicates++
		r.ackNow()
	case start > r.rcvNxt:
		// Beyond a gap: hold it and send an immediate duplicate ACK
		// (RFC 5681 §4.2).
		st.OutOfOrder++
		if !r.hold(start, end) {
			st.Dropped++
		}
		r.ackNow()
	default:
		// RFC 7323 §4.3: TS.Recent comes from the segment at the left
		// edge of what the last ACK acknowledged.
		if start <= r.lastAckSent {
			r.tsRecent = tsval
		}
		gap := len(r.ooo) > 0
		old := r.rcvNxt
		r.rcvNxt = end
		for len(r.ooo) > 0 && r.ooo[0].start <= r.rcvNxt {
			r.rcvNxt = max(r.rcvNxt, r.ooo[0].end)
			r.ooo = append(r.ooo[:0], r.ooo[1:]...)
		}
		st.Bytes += r.rcvNxt - old
		r.unacked++
		switch {
		case gap || fin || r.unacked >= r.ackEvery:
			// RFC 5681 §4.2: ACK at least every second segment, and at
			// once when a segment fills all or part of a gap; a FIN is
			// acknowledged at once.
			r.ackNow()
		case r.delAckAt == clock.Never:
			// RFC 5681 §4.2: within 500 ms of the first unacknowledged
			// segment.
			r.delAckAt = now.Add(r.delAck)
		}
	}
}

// hold records [start, end) as received out of order, merging runs. It
// reports false if it had no room.
func (r *TCPReceiver) hold(start, end uint64) bool {
	i := 0
	for i < len(r.ooo) && r.ooo[i].end < start {
		i++
	}
	j := i
	for j < len(r.ooo) && r.ooo[j].start <= end {
		start = min(start, r.ooo[j].start)
		end = max(end, r.ooo[j].end)
		j++
	}
	if i == j {
		if len(r.ooo) == cap(r.ooo) {
			return false
		}
		r.ooo = append(r.ooo, tcpRange{})
		copy(r.ooo[i+1:], r.ooo[i:])
	} else {
		r.ooo = append(r.ooo[:i+1], r.ooo[j:]...)
	}
	r.ooo[i] = tcpRange{start, end}
	return true
}

func (r *TCPReceiver) ackNow() {
	r.acksDue = min(r.acksDue+1, 1<<20)
	r.unacked = 0
	r.delAckAt = clock.Never
}

// HandleTimeout implements Node: the delayed-ACK timer.
func (r *TCPReceiver) HandleTimeout(now clock.Time) {
	if r.delAckAt <= now {
		r.ackNow()
	}
}

// PollTransmit implements Node: it sends at most one ACK.
func (r *TCPReceiver) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if r.acksDue == 0 || !r.peer.IsValid() {
		return 0, netip.AddrPort{}, false
	}
	r.acksDue--
	b := dst[:TCPHeaderLen]
	clear(b)
	putCrossPrefix(b, crossKindAck, r.flow)
	binary.BigEndian.PutUint64(b[tcpSeqOff:], r.rcvNxt)
	binary.BigEndian.PutUint64(b[tcpTSvalOff:], uint64(now))
	binary.BigEndian.PutUint64(b[tcpTSecrOff:], uint64(r.tsRecent))
	binary.BigEndian.PutUint16(b[tcpSumOff:], crossSum(b))
	r.lastAckSent = r.rcvNxt
	r.stats.Acks++
	return TCPHeaderLen, r.peer, true
}

// NextTimeout implements Node.
func (r *TCPReceiver) NextTimeout() clock.Time { return r.delAckAt }

// Stats returns the receiver's counters.
func (r *TCPReceiver) Stats() TCPReceiverStats { return r.stats }
