package core

import (
	"fmt"
	"math"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/fec"
	"github.com/spillway-rt/spillway/internal/ring"
	"github.com/spillway-rt/spillway/wire"
)

// minPacingRate keeps control traffic moving when no stream is open.
const minPacingRate = 100_000

// historySize is how many sent packets the sender remembers for feedback
// (a power of two): 2048 packets is 0.2 s at 10,000 packets/s (100 Mbit/s), while
// feedback comes every 50 ms.
const historySize = 2048

type sentPacket struct {
	key    int64 // packet number + 1; 0 marks an empty slot
	probe  int32 // the probe cluster it went in (cc.ProbeCluster.ID); 0 none
	at     clock.Time
	nacked clock.Time // when a NACK for it last came, for the retransmission's wait
	// nackedFrames: frame bytes of other classes than audio sent when that
	// NACK came (sender.frameBytes), to tell whether its retransmission
	// waited behind them.
	nackedFrames int64
	frame        int64 // frame id + 1 of a data packet's fragment; 0 otherwise
	size         int32
	stream       uint8
	media        bool
	// fb is what transport-wide feedback said of it so far: each report
	// repeats the last 100 ms, so most packets are reported twice.
	fb fbState
	// inflight: counted in sender.inflight (sent, not yet reported, not
	// aged out).
	inflight bool
}

// fbState is what transport-wide feedback said of a sent packet.
type fbState uint8

const (
	fbNone     fbState = iota // not reported yet
	fbLost                    // reported not received (it may still come)
	fbReceived                // reported received
)

// sendStream is a stream this side sends.
type sendStream struct {
	id          uint8
	cfg         StreamConfig
	open        bool // taking frames
	nextFrameID int64
	queue       ring.Ring[outFrame]
	queued      int  // bytes
	acked       bool // the peer's view of the stream matches ours
	stats       StreamSendStats

	// broken: a frame later frames reference was dropped, so every frame
	// but a key frame is dropped until one comes (proactive drop's
	// dependents). keyAsked: the application was asked for that key frame
	// (EventKeyFrameRequest, Local) and has not written one since.
	broken   bool
	keyAsked bool
	// gen is the stream's generation on its id (docs/PROTOCOL.md §6.1):
	// the streams opened on the id before it, modulo 128.
	gen uint8
	// peerKeyAt: when the peer's last key-frame request (PLI) was passed
	// on to the application (handleFeedback).
	peerKeyAt clock.Time
	// keyRetryAt: a key frame written on request was itself dropped as
	// predicted late; asking again before then would bring one no more
	// likely to fit (a key-frame storm).
	keyRetryAt clock.Time
	target     int64 // the last TargetRate given the application, bit/s; 0 none yet
	// targetAt: when the last TargetRate went out; pushedTo: a pushback
	// of 10 % or less that came sooner than targetInterval after it,
	// which the next update applies (0: none).
	targetAt clock.Time
	pushedTo int64
	// lastDeadline is the latest deadline of the stream's packets sent
	// (capture + the budget, as the retransmission history keeps them):
	// until then a retransmission or a repair of one may still go, and
	// the id is not reused before it (plus streamReuseGrace). Data packets
	// do not carry the generation: one of the old stream's arriving after
	// the new one's announcement would be taken for the new stream's, its
	// frame id past the new frames' (which start at 0), and the receiver
	// would refuse the new stream's first frames as older than its window.
	lastDeadline clock.Time
	sentData     bool // lastDeadline is set
}

// streamReuseGrace is added to the smoothed RTT after a closed stream's
// last deadline before its id is reused: the last packet sent by then is
// delivered before the new stream's announcement unless the path reorders
// by more.
const streamReuseGrace = 100 * time.Millisecond

// StreamSendStats counts a sent stream's frames.
type StreamSendStats struct {
	FramesSent    int64 // frames the application wrote (including those dropped later)
	FramesDropped int64 // frames dropped by this sender (SendDrops says why)
	BytesSent     int64 // frame bytes the application wrote
	BytesDropped  int64 // frame bytes of dropped frames that never left
	TargetBitrate int64 // the last TargetRate given for the stream, bit/s
}

// outFrame is a frame waiting in its stream's queue.
type outFrame struct {
	id        int64
	capture   clock.Time
	deadline  clock.Time
	key       bool
	droppable bool
	class     cc.Class
	gone      bool   // dropped while queued behind others: skipped when it reaches the head
	buf       []byte // frame prefix + frame bytes, from the endpoint's pool; nil once gone
	size      int    // bytes counted in the queues (len(buf); 0 once gone)
	sent      int    // bytes of buf sent
	firstPN   int64  // packet number of its first fragment, once sent
	queuedAt  clock.Time
	count     int // fragments
	next      int // next fragment to send
}

// rank orders frames for dropping when the pacer queue is full: droppable
// frames go first, then other deltas, key frames last; audio is never
// dropped for the limit.
func (f *outFrame) rank() int {
	switch {
	case f.class == cc.ClassAudio:
		return 3
	case f.key:
		return 2
	case f.droppable:
		return 0
	}
	return 1
}

// frameClass is the pacer class of a stream's frame.
func frameClass(kind Kind, key bool) cc.Class {
	switch kind {
	case KindAudio:
		return cc.ClassAudio
	case KindVideo:
		if key {
			return cc.ClassKey
		}
		return cc.ClassVideo
	}
	return cc.ClassData
}

type sender struct {
	c           *Conn
	peerPlayout time.Duration // the receiver's playout offset (APP SPPO)
	hz          horizonReport // the deadline horizon told to the receiver (APP SPPO subtype 1)
	streams     [wire.MaxStreams]*sendStream
	order       []*sendStream // streams in sending priority
	queued      int           // bytes queued on all streams
	// inflight: media bytes sent and not yet reported by feedback (nor
	// aged out: inflightAge); ifOldest: the oldest packet number that may
	// still count. See window.
	inflight   int
	ifOldest   int64
	windowHeld bool // the window held packets back at the last poll
	pathOver   bool // the path's delay alone exceeds Latency (EventPathDelay)
	// pathUnder: since when the path's delay has been back under Latency
	// while pathOver holds (pathUnderHold), if underSet.
	pathUnder clock.Time
	underSet  bool
	pacer     cc.Pacer
	alr       cc.ALR       // the application-limited region, for the estimator
	padding   bool         // a probe's padding is being sent (not the application's)
	fixed     cc.Fixed     // version 1's estimator: the streams' nominal rates
	estimator cc.Estimator // the plug point; &fixed in version 1
	history   [historySize]sentPacket
	// feedbackAt: the last transport-wide report (if feedbackSeen);
	// silenceAt: the last OnTime while reports were missing (silenceDue).
	feedbackAt, silenceAt clock.Time
	feedbackSeen          bool

	// Loss recovery (recovery.go): nil until the first stream opens, and
	// when disabled by the Config.
	fec          *fec.Encoder
	hist         *arq.History
	loss         fec.LossEstimator // the FEC policy's loss rate and burstiness, from transport-wide feedback
	lossTally    lossTally         // the same feedback as the receiver's recovery allowance counts it (dupFirst)
	twccRef      int64             // the last TWCC report's reference time, unwrapped (unwrapTWCCRef)
	twccRefSet   bool
	path         pathModel
	conditionsAt clock.Time
	prot         []byte // a data packet's protected form (MaxDatagramSize)

	announceDue  bool // a stream's state changed and the peer has not acked it
	announceSent clock.Time

	// Encoder targets (target.go).
	targetAt    clock.Time    // next TargetRate computation
	targetBasis int64         // the transport target the last TargetRate computation used
	queueMin    time.Duration // least standing queue since the last one
	queueMins   [queueMinSlots]time.Duration
	qmN         int
	overhead    [overheadSlots]byteMark // bytes sent by kind, per target interval
	ovhN        int
	// Bytes sent by kind, for the encoder targets' overhead (target.go):
	// datagrams that carry no media (pings, feedback, drop notices), and
	// the audio streams' data packets, retransmissions and FEC repair on
	// the wire with the frame bytes they carried; ctrlRate is the control
	// datagrams' rate last measured over a long enough window.
	ctrlBytes             int64
	audioWire, audioFrame int64
	ctrlRate              float64

	drops   SendDropStats
	notices dropNotices // drop notices the peer has not acknowledged

	// Probing (probe.go): the estimator's prober, the cluster going out
	// and what is left of it.
	prober    cc.Prober
	probe     cc.ProbeCluster
	probeLeft int
	probePkts int
	wait      [cc.NumClasses]waitHist
	// frameBytes counts the frame bytes sent on video and data streams;
	// rtxBehind the retransmissions sent after some of them left since
	// their NACK.
	frameBytes int64
	rtxBehind  int64
}

func (s *sender) init(c *Conn) {
	s.c = c
	s.path.sent = s
	s.pacer = cc.NewPacer(minPacingRate, cc.DefaultBurst)
	s.pacer.SetQueueLimit(c.cfg.PacerQueueLimit)
	s.estimator = &s.fixed
	if c.cfg.Estimator != nil {
		s.estimator = c.cfg.Estimator()
	}
	s.prober, _ = s.estimator.(cc.Prober)
	s.order = make([]*sendStream, 0, wire.MaxStreams)
}

// fixedTarget reports whether the estimator is version 1's Fixed, whose
// target is the streams' nominal rates rather than anything measured.
func (s *sender) fixedTarget() bool { return s.estimator == cc.Estimator(&s.fixed) }

// updateRate recomputes the version-1 target (the streams' nominal rates)
// and the pacing rate from the estimator's target.
func (s *sender) updateRate() {
	var sum int64
	for _, st := range s.streams {
		if st != nil && (st.open || st.queue.Len() > 0) {
			sum += st.cfg.bitrate()
		}
	}
	s.fixed.Rate = sum
	target := s.estimator.Target()
	// Clamped as a float: a target near int64's range (an Estimator of the
	// app's own) times the factor would convert to MinInt64.
	rate := int64(min(max(float64(target)*s.c.cfg.PacingFactor, minPacingRate), float64(s.c.cfg.MaxBitrate)))
	s.pacer.SetRate(rate)
	if !s.fixedTarget() {
		// A measured target bounds the path model's capacity: the delivery
		// rate it saw before a collapse is not the path's any more. It also
		// bounds the average sending rate (the pacer's budget): a source
		// offering more queues here, where priority and the queue limit
		// act, rather than in the path. Version 1's Fixed target is the
		// nominal media rate without FEC, retransmissions or headers: no
		// budget.
		s.path.ceiling = float64(target)
		s.pacer.SetBudget(min(max(target, minPacingRate), s.c.cfg.MaxBitrate), cc.DefaultBudgetWindow)
		if float64(target) < 0.9*float64(s.targetBasis) {
			// A cut of more than 10 %: the encoders hear of it at once, not
			// at the next update.
			s.targetAt = clock.Time(-1 << 62)
		}
	}
}

// frameRate is the rate a frame's own bytes cross the path at, for the
// proactive drop's prediction: the transport target. Version 1's Fixed
// target is the nominal media rate, not the path's capacity, so with it
// the pacing rate is used instead.
func (s *sender) frameRate() int64 {
	if s.fixedTarget() {
		return s.pacer.DrainRate()
	}
	return max(s.estimator.Target(), 1)
}

// judgeDeadline is the deadline the sender drops frames against: capture
// + the budget (Latency, or the receiver's playout offset if longer),
// unless the path is over the budget (checkPathDelay: the path's delay
// alone, pathDelay, exceeds Latency, or did less than pathUnderHold ago
// behind another flow's queue; a standing queue we cannot drain, as
// behind a TCP flow): then capture + the one-way delay a frame sent now is
// predicted to meet (or pathDelay, if more) + Latency, rather than
// dropping every frame. The queue behind a loss-based flow swings with
// its sawtooth, and a frame sent at its crest only has to make Latency
// on top of it.
func (s *sender) judgeDeadline(now, capture clock.Time) clock.Time {
	return capture.Add(max(s.horizon(now), s.c.budget()))
}

// horizon is how long after capture judgeDeadline lets a frame arrive
// while the path is over the budget (checkPathDelay; 0 otherwise), and it
// notes that for the receiver (horizonReport), which keeps assembling
// frames as long.
func (s *sender) horizon(now clock.Time) time.Duration {
	h := time.Duration(0)
	if ow := s.checkPathDelay(now); s.pathOver {
		h = max(ow, s.frameOneWay(now)) + s.c.cfg.Latency
	}
	s.hz.cur, s.hz.judged = h, now
	return h
}

// pathDelay is the path's one-way delay as the drop rule sees it: half the
// least RTT of the last 10 s (Conn.owd), or, while the estimator says the
// standing queue is another flow's (cc.Competing), the most of that, half
// the smoothed RTT (a TCP sawtooth's trough within 10 s would hide the
// queue it keeps from the least RTT) and the least RTT's half plus the
// queue the path model sees now (the smoothed RTT, from pings a second
// apart, lags the sawtooth's rise: in RFC 8867 5.6 with a 1000 ms queue
// it read 243 ms while frames met 685 ms, and key frames, judged against
// the 800 ms budget, were dropped one after another).
func (s *sender) pathDelay(now clock.Time) time.Duration {
	ow := s.c.owd()
	if s.competing() {
		ow = max(ow, s.c.rtt.Smoothed()/2, ow+s.path.fitQueueDelay(now))
	}
	return ow
}

// competing reports whether the estimator says the standing queue is
// another flow's (cc.Competing).
func (s *sender) competing() bool {
	cp, ok := s.estimator.(cc.Competing)
	return ok && cp.Competing()
}

// pathUnderHold is how long the path's delay must stay under Latency,
// while the estimator still says the queue is another flow's, before the
// sender says so and judges frames against the budget again: the path
// model's queue follows a loss-based flow's sawtooth into its troughs.
// Without the hold the state rose 24 times in a run of RFC 8867 5.6 (seed
// 1; 22 with a 2 s hold), with it 2 (`spillway bench -scenario
// '^rfc8867-5.6$'`, seeds 1-2, a temporary print).
const pathUnderHold = 5 * time.Second

// checkPathDelay updates whether the path's delay alone exceeds Latency
// (pathDelay; back under once it has been under for pathUnderHold), the
// condition judgeDeadline acts on, and tells the application when that
// changes (EventPathDelay). It returns the path's delay.
func (s *sender) checkPathDelay(now clock.Time) time.Duration {
	c := s.c
	ow := s.pathDelay(now)
	over := ow >= c.cfg.Latency
	switch {
	case over:
		s.underSet = false
	case !s.competing():
		// The other flow's queue is gone, or the queue is ours: no hold.
	case s.pathOver && !s.underSet:
		s.pathUnder, s.underSet = now, true
		over = true
	case s.pathOver && now.Sub(s.pathUnder) < pathUnderHold:
		over = true
	}
	if over == s.pathOver {
		return ow
	}
	s.pathOver, s.underSet = over, false
	if over {
		c.stats.PathOverBudgetEvents++
	}
	c.ep.pushEvent(Event{Type: EventPathDelay, Conn: c, Over: over, Delay: ow})
	return ow
}

// OpenStream opens a stream to send frames on and returns its id (0-15).
// A closed stream's id is taken again only once the peer acknowledged the
// close and none of its packets can still be sent: after its frames'
// deadlines, plus an RTT and streamReuseGrace, and once the peer
// acknowledged its drop notices (or they expired, after 2 s). With all 16
// ids open or waiting so, it fails with ErrTooManyStreams.
func (c *Conn) OpenStream(now clock.Time, cfg StreamConfig) (uint8, error) {
	if c.state != stateEstablished && c.state != stateHandshake {
		return 0, ErrClosed
	}
	if cfg.Kind > KindVideo {
		return 0, fmt.Errorf("%w: stream kind %d", ErrInvalidConfig, cfg.Kind)
	}
	if cfg.Priority > PriorityHigh {
		return 0, fmt.Errorf("%w: stream priority %d", ErrInvalidConfig, cfg.Priority)
	}
	if cfg.Bitrate < 0 {
		return 0, fmt.Errorf("%w: stream bitrate %d", ErrInvalidConfig, cfg.Bitrate)
	}
	if cfg.MinBitrate < 0 || cfg.MaxBitrate < 0 {
		return 0, fmt.Errorf("%w: stream bitrate bounds %d-%d", ErrInvalidConfig, cfg.MinBitrate, cfg.MaxBitrate)
	}
	if cfg.MinBitrate > cfg.maxBitrate() {
		return 0, fmt.Errorf("%w: stream MinBitrate %d above its most, %d", ErrInvalidConfig, cfg.MinBitrate, cfg.maxBitrate())
	}
	s := &c.snd
	if err := s.startRecovery(); err != nil {
		return 0, err
	}
	for id := range s.streams {
		st := s.streams[id]
		// A stream id is free when it was never used, or its close was
		// acknowledged, its queue has drained, none of its packets can
		// be sent again (lastDeadline) and none of its drop notices waits
		// for an acknowledgement (notices carry no generation either).
		if st != nil && (st.open || !st.acked || st.queue.Len() > 0 ||
			(st.sentData && now < st.lastDeadline.Add(c.rtt.Smoothed()+streamReuseGrace)) ||
			s.notices.pending(now, st.id)) {
			continue
		}
		gen := uint8(0) // the id's first stream
		if st == nil {
			st = &sendStream{id: uint8(id)}
			s.streams[id] = st
		} else {
			gen = (st.gen + 1) & streamGenMask // the id is reused
		}
		*st = sendStream{id: uint8(id), cfg: cfg, open: true, queue: st.queue, gen: gen}
		s.rebuildOrder()
		s.announceDue = true
		s.announceSent = clock.Time(-1 << 62)
		s.updateRate()
		s.targetAt = now // the new stream's first target
		return uint8(id), nil
	}
	return 0, ErrTooManyStreams
}

// CloseStream stops a stream: frames already written still go, and the peer
// is told the stream ended.
func (c *Conn) CloseStream(now clock.Time, id uint8) error {
	st := c.snd.stream(id)
	if st == nil || !st.open {
		return ErrUnknownStream
	}
	st.open = false
	st.acked = false
	c.snd.announceDue = true
	c.snd.announceSent = clock.Time(-1 << 62)
	c.snd.updateRate()
	return nil
}

func (s *sender) stream(id uint8) *sendStream {
	if int(id) >= len(s.streams) {
		return nil
	}
	return s.streams[id]
}

func (s *sender) closeStreams() {
	for _, st := range s.streams {
		if st != nil && st.open {
			st.open = false
			st.acked = false
			s.announceDue = true
		}
	}
}

// rebuildOrder sorts the streams that may hold frames: audio first, then
// video, then data; within a kind by priority, then id.
func (s *sender) rebuildOrder() {
	s.order = s.order[:0]
	for _, st := range s.streams {
		if st != nil {
			s.order = append(s.order, st)
		}
	}
	less := func(a, b *sendStream) bool {
		if a.cfg.Kind.rank() != b.cfg.Kind.rank() {
			return a.cfg.Kind.rank() < b.cfg.Kind.rank()
		}
		if a.cfg.Priority != b.cfg.Priority {
			return a.cfg.Priority > b.cfg.Priority
		}
		return a.id < b.id
	}
	for i := 1; i < len(s.order); i++ { // insertion sort: at most 16, no allocation
		for j := i; j > 0 && less(s.order[j], s.order[j-1]); j-- {
			s.order[j], s.order[j-1] = s.order[j-1], s.order[j]
		}
	}
}

// Deadline returns the deadline of a frame captured at capture: capture +
// max(Latency, the receiver's playout offset).
func (c *Conn) Deadline(capture clock.Time) clock.Time { return capture.Add(c.budget()) }

// MaxFrameSize returns the largest frame WriteFrame accepts: the smaller of
// ours and the peer's limit, and what fragments can carry.
func (c *Conn) MaxFrameSize() int {
	m := c.cfg.MaxFrameSize
	if p := int(c.peerParams.MaxFrameSize); p > 0 && p < m {
		m = p
	}
	if f := wire.MaxFragments*c.fragSize() - wire.FramePrefixLen; f < m {
		m = f
	}
	return m
}

// WriteFrame queues a frame on a stream. It copies payload. It fails with
// ErrFrameTooLarge for a frame above MaxFrameSize, and with ErrFrameDropped
// when the frame is already past its deadline or the send buffer is full
// (the frame still takes a frame id, so the receiver sees the gap).
func (c *Conn) WriteFrame(now clock.Time, stream uint8, payload []byte, info FrameInfo) error {
	if c.state != stateEstablished {
		if c.state == stateHandshake {
			return fmt.Errorf("spillway: write before the handshake completed: %w", ErrClosed)
		}
		return c.errClosed()
	}
	s := &c.snd
	st := s.stream(stream)
	if st == nil || !st.open {
		return ErrUnknownStream
	}
	if len(payload) > c.MaxFrameSize() {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(payload), c.MaxFrameSize())
	}
	id := st.nextFrameID
	st.nextFrameID++
	st.stats.FramesSent++
	st.stats.BytesSent += int64(len(payload))
	// A frame is not captured after it is written. A capture time a little
	// ahead of now (an application's clock read after the caller's loop
	// read now) would reach the peer as a capture after the send time,
	// which the wire reads as one timestamp period (67.1 s) earlier
	// (docs/PROTOCOL.md §3.2).
	info.Capture = min(info.Capture, now)
	deadline := info.Capture.Add(c.cfg.Latency)
	size := wire.FramePrefixLen + len(payload)
	class := frameClass(st.cfg.Kind, info.Key)
	f := outFrame{id: id, capture: info.Capture, deadline: deadline, key: info.Key, droppable: info.Droppable,
		class: class, size: size, queuedAt: now}
	if info.Key {
		st.keyAsked = false
	}
	judge := s.judgeDeadline(now, info.Capture)
	if late := now.Add(c.owd()).Sub(judge); late >= 0 {
		s.refuse(now, st, &f, DropLateOnArrival, "late on arrival", late)
		return fmt.Errorf("%w: frame %d is past its deadline by %v", ErrFrameDropped, id, late)
	}
	if st.broken && class != cc.ClassAudio && !info.Key {
		s.askKey(now, st)
		s.refuse(now, st, &f, DropReference, "a frame it references was dropped", 0)
		return fmt.Errorf("%w: frame %d references a dropped frame (waiting for a key frame)", ErrFrameDropped, id)
	}
	if s.queued+size > c.cfg.MaxSendBuffer {
		s.refuse(now, st, &f, DropSendBuffer, "send buffer full", 0)
		return fmt.Errorf("%w: send buffer full (%d bytes queued)", ErrFrameDropped, s.queued)
	}
	// Proactive drop: when would its last byte arrive? Everything queued
	// in its class and above leaves first, and so does what its own stream
	// queued (frames leave a stream in order).
	ahead := s.pacer.Ahead(class + 1)
	if class < cc.ClassVideo {
		for i := 0; i < st.queue.Len(); i++ {
			if q := st.queue.At(i); q.class > class {
				ahead += int64(q.size - q.sent)
			}
		}
	}
	arrival := cc.PredictArrival(now, s.pacer.DelayOf(ahead), size, s.frameRate(), s.frameOneWay(now))
	if late := arrival.Sub(judge); late > 0 {
		s.refuse(now, st, &f, DropLateOnArrival, "predicted to arrive after its deadline", late)
		return fmt.Errorf("%w: frame %d would arrive %v after its deadline", ErrFrameDropped, id, late)
	}
	if !s.pacer.Fits(size) && !s.makeRoom(now, st, &f) {
		s.refuse(now, st, &f, DropQueueLimit, "pacer queue full", 0)
		return fmt.Errorf("%w: pacer queue full (%v queued, limit %v)", ErrFrameDropped, s.pacer.QueueDelay(), s.pacer.QueueLimit())
	}
	if info.Key {
		st.broken = false
	}
	buf := c.ep.pool.Get(size)
	buf, _ = wire.AppendFramePrefix(buf[:0], wire.Timestamp(info.Capture, c.epoch))
	buf = append(buf, payload...)
	fs := c.fragSize()
	f.buf = buf
	f.count = (size + fs - 1) / fs
	st.queue.Push(f)
	st.queued += size
	s.queued += size
	s.pacer.Add(class, size)
	return nil
}

// makeRoom frees the pacer queue for f (not yet queued) by dropping frames
// that matter less, in the order the pacer issue gives: droppable frames
// first (newest first), then other deltas (from the tails of the queues,
// so a delta's dependents go before it), key frames last: only those a new
// key frame of the same stream supersedes. A droppable frame or a delta
// never pushes out a frame of its own rank (it is the newest, so dropping
// it costs least), but for the frames of its own stream that a key frame
// queued before it supersedes (evictSuperseded). No other key frame is
// dropped for the limit alone while its deadline is reachable, nor is
// audio: a key frame or audio that still does not fit stretches the
// pacer's drain rate. It reports whether f may be queued.
func (s *sender) makeRoom(now clock.Time, fst *sendStream, f *outFrame) bool {
	fits := func() bool { return s.pacer.Fits(f.size) }
	if f.rank() == 0 {
		return false
	}
	// Droppable frames anywhere: nothing references them.
	for k := len(s.order) - 1; k >= 0 && !fits(); k-- {
		st := s.order[k]
		for i := st.queue.Len() - 1; i >= 0 && !fits(); i-- {
			if q := st.queue.At(i); !q.gone && q.next == 0 && q.droppable && !q.key && q.class != cc.ClassAudio {
				s.evict(now, st, q, "pacer queue full")
			}
		}
	}
	if fits() {
		return true
	}
	if f.rank() < 2 {
		s.evictSuperseded(now, fst, fits)
		return fits()
	}
	// Deltas from each queue's tail, lowest-priority stream first; then,
	// for a key frame, the older key frames of its own stream that it
	// supersedes (with what is queued after them: they are its own stream's
	// frames, which the new key frame no longer needs).
	for _, keys := range []bool{false, true} {
		if keys && !f.key {
			break
		}
		for k := len(s.order) - 1; k >= 0 && !fits(); k-- {
			st := s.order[k]
			if st.cfg.Kind == KindAudio || (keys && st != fst) {
				continue
			}
			for i := st.queue.Len() - 1; i >= 0 && !fits(); i-- {
				q := st.queue.At(i)
				if q.gone {
					continue
				}
				if q.next > 0 || (q.key && !keys) {
					break // started, or a key frame: what is before it stays
				}
				s.evict(now, st, q, "pacer queue full")
				if st != fst || !f.key {
					// What is left of the queue comes before q: only frames
					// written later depend on it.
					s.breakStream(now, st, false)
				}
			}
		}
	}
	if !fits() {
		s.pacer.Stretch(f.size)
	}
	return true
}

// evictSuperseded makes room for a delta of st while st has a key frame
// queued that has not started: the frames before that key frame, which
// nothing from it on references, go, newest first, until the delta fits
// or a frame has started. Refusing the delta instead broke the key frame's
// chain, and the key frame asked for then pushed out this one: after
// collapse-av-live's collapse, five key frames in a row went so.
func (s *sender) evictSuperseded(now clock.Time, st *sendStream, fits func() bool) {
	k := st.queue.Len() - 1
	for ; k >= 0; k-- {
		if q := st.queue.At(k); !q.gone && q.key && q.next == 0 {
			break
		}
	}
	for i := k - 1; i >= 0 && !fits(); i-- {
		q := st.queue.At(i)
		if q.gone {
			continue
		}
		if q.next > 0 {
			break // started: what is before it has left
		}
		s.evict(now, st, q, "pacer queue full")
	}
}

// evict drops a queued frame that has not started, leaving a tombstone in
// its stream's queue.
func (s *sender) evict(now clock.Time, st *sendStream, q *outFrame, reason string) {
	s.drop(now, st, q, DropQueueLimit, reason, 0)
	s.release(st, q)
	q.gone = true
}

// release takes a frame's unsent bytes out of the queues and frees its
// buffer.
func (s *sender) release(st *sendStream, f *outFrame) {
	if f.buf == nil {
		return
	}
	s.pacer.Remove(f.class, f.size-f.sent)
	st.queued -= f.size
	s.queued -= f.size
	f.size, f.sent = 0, 0
	s.c.ep.pool.Put(f.buf)
	f.buf = nil
}

// breakStream notes that a frame later frames reference was dropped: every
// frame of the stream up to its next key frame goes (those written later,
// and, with queued, those in the queue: the dropped frame was at its head),
// and the application is asked for a key frame at once
// (EventKeyFrameRequest with Local set), unless it was asked already and
// has written none since.
func (s *sender) breakStream(now clock.Time, st *sendStream, queued bool) {
	if st.cfg.Kind == KindAudio {
		return
	}
	st.broken = true
	for i := 0; queued && i < st.queue.Len(); i++ {
		q := st.queue.At(i)
		if q.gone || q.next > 0 {
			continue
		}
		if q.key {
			st.broken = false // the key frame queued restarts the chain
			continue
		}
		if st.broken {
			s.drop(now, st, q, DropReference, "a frame it references was dropped", 0)
			s.release(st, q)
			q.gone = true
		}
	}
	s.askKey(now, st)
}

// keyRetryDelay is how long after a key frame proved too late by late the
// next one is asked for: once the queues ahead drained that much, but no
// later than the next target update (targetInterval), after which the
// encoder makes smaller key frames if the target fell.
func keyRetryDelay(late time.Duration) time.Duration { return min(late, targetInterval) }

// askKey asks the application for a key frame on a broken stream, unless
// it was asked already or a key frame just proved too late to send.
func (s *sender) askKey(now clock.Time, st *sendStream) {
	if st.open && st.broken && !st.keyAsked && now >= st.keyRetryAt {
		st.keyAsked = true
		s.c.stats.KeyFrameRequestsLocal++
		s.c.ep.pushEvent(Event{Type: EventKeyFrameRequest, Conn: s.c, Stream: st.id, Kind: st.cfg.Kind, Local: true})
	}
}

func (c *Conn) errClosed() error {
	if c.closeErr != nil {
		return c.closeErr
	}
	return ErrClosed
}

// owd is the one-way delay assumed when asking whether a packet can still
// arrive in time: half the smallest RTT of the last 10 s (arq.RTT.WindowedMin,
// so a path whose delay grew is believed). Until a ping has measured a
// round trip, the only sample is the handshake's, which includes the
// backoff of any Hello lost on the way: it is trusted only up to
// arq.InitialRTT (RFC 9002 §6.2.2's 333 ms), so a lost Hello does not make
// every frame look late.
func (c *Conn) owd() time.Duration {
	if !c.pingSampled {
		return min(c.rtt.WindowedMin(), arq.InitialRTT) / 2
	}
	return c.rtt.WindowedMin() / 2
}

// refuse drops a frame WriteFrame was given and cannot queue: if later
// frames reference it, the stream waits for a key frame.
func (s *sender) refuse(now clock.Time, st *sendStream, f *outFrame, why DropReason, reason string, late time.Duration) {
	s.drop(now, st, f, why, reason, late)
	s.tooLate(now, st, f, late)
	if f.key || !f.droppable {
		s.breakStream(now, st, false)
	}
}

// tooLate is the pushback after a frame was dropped as predicted late:
// the stream's target falls at once, before the key frame it may need is
// asked for, so that the encoder makes that key frame for the new rate. A
// key frame's lateness says how much smaller it had to be (keyTooLate); a
// delta's, that the path is slower than the target: the target falls by
// the share of Latency it was late, at most by half.
func (s *sender) tooLate(now clock.Time, st *sendStream, f *outFrame, late time.Duration) {
	if late <= 0 || f.class == cc.ClassAudio {
		return
	}
	if f.key {
		s.keyTooLate(now, st, f, late)
		return
	}
	if st.target > 0 {
		s.pushback(now, st, max(1-float64(late)/float64(s.c.cfg.Latency), pushbackFloor), false)
	}
}

// pushback lowers an open stream's target by scale, never under its
// MinBitrate (a closed stream takes no more frames: nothing to ask): at
// once for a key frame that proved too large (atOnce) or a cut of more
// than 10 %, else no sooner than targetInterval after the last
// TargetRate (the next update applies it), so a run of late deltas does
// not make more than 5 updates a second.
func (s *sender) pushback(now clock.Time, st *sendStream, scale float64, atOnce bool) {
	if !st.open {
		return
	}
	base := st.target
	if st.pushedTo > 0 {
		base = min(base, st.pushedTo)
	}
	next := max(int64(float64(base)*scale), st.cfg.MinBitrate)
	if next >= st.target {
		return
	}
	if atOnce || float64(next) < 0.9*float64(st.target) || now.Sub(st.targetAt) >= targetInterval {
		st.pushedTo = 0
		s.setTarget(now, st, next)
		return
	}
	st.pushedTo = next
}

// keyTooLate handles a key frame predicted to arrive late after all: the
// next one is asked for a little later (keyRetryDelay), and the stream's
// target falls at once in proportion, so that the encoder's next key frame
// is small enough to arrive in time (pushback before frames drop again).
func (s *sender) keyTooLate(now clock.Time, st *sendStream, f *outFrame, late time.Duration) {
	st.keyRetryAt = now.Add(keyRetryDelay(late))
	own := time.Duration(float64(f.size-f.sent) * 8 / float64(s.frameRate()) * float64(time.Second))
	if st.target <= 0 || own <= 0 {
		return
	}
	s.pushback(now, st, max(1-float64(late)/float64(own), pushbackFloor), true)
}

// drop counts a frame this sender drops and tells the application
// (EventFrameDropped). It does not touch the queues: see release.
func (s *sender) drop(now clock.Time, st *sendStream, f *outFrame, why DropReason, reason string, late time.Duration) {
	c := s.c
	unsent := int64(f.size - f.sent)
	st.stats.FramesDropped++
	// Frame bytes, as BytesSent counts them: the prefix is not the
	// application's (it once made BytesDropped exceed BytesSent).
	st.stats.BytesDropped += min(unsent, int64(f.size-wire.FramePrefixLen))
	c.stats.FramesDroppedOnSend++
	s.drops.Frames[why][f.class]++
	s.drops.Bytes[why][f.class] += unsent
	if why != DropClosing {
		s.declareDropped(now, st, f)
	}
	c.ep.pushEvent(Event{Type: EventFrameDropped, Conn: c, Stream: st.id, Kind: st.cfg.Kind,
		Frame: FrameMeta{ID: f.id, Capture: f.capture, Key: f.key, Droppable: f.droppable, Size: f.size - wire.FramePrefixLen,
			Reason: reason, DropReason: why, Late: late}})
}

// dropHead drops a stream's head frame (before or while sending it) and
// its dependents.
func (s *sender) dropHead(now clock.Time, st *sendStream, why DropReason, reason string, late time.Duration) {
	f := st.queue.Front()
	s.drop(now, st, f, why, reason, late)
	ref := f.key || !f.droppable
	s.tooLate(now, st, f, late)
	s.popFrame(st)
	if ref {
		s.breakStream(now, st, true)
	}
}

// popFrame removes a stream's head frame and frees its buffer, and the
// tombstones of evicted frames (evict) behind it: once the stream's last
// frame has left, nothing else would take them out, and a queue holding
// only them kept a closed stream's id from reuse and its rate counted in
// the pacing rate.
func (s *sender) popFrame(st *sendStream) {
	f := st.queue.Pop()
	s.release(st, &f)
	for st.queue.Len() > 0 && st.queue.Front().gone {
		g := st.queue.Pop()
		s.release(st, &g)
	}
}

// pollMedia sends the next packet the pacer allows, in strict priority
// order (cc.Class): audio frames, retransmissions, FEC repair packets, key
// frames, then the other streams' frames. A frame predicted to miss its
// deadline is dropped whole before any of it leaves, or cut short when its
// rest would miss (with its dependents: breakStream); retransmissions and
// repair packets are checked against their deadlines as they leave.
//
// Audio does not wait behind the token debt a video packet left (at 1
// Mbit/s one 1200-byte packet is 10 ms of it): it leaves at once while the
// debt stays within one burst, and is charged like the rest.
func (s *sender) pollMedia(now clock.Time, dst []byte) (int, bool) {
	s.startProbe(now)
	if s.queued == 0 && !s.recoveryDue(now) && s.probe.ID == 0 {
		return 0, false
	}
	audioOnly := false
	if !s.pacer.CanSend(now) {
		if s.pacer.QueuedClass(cc.ClassAudio) == 0 || !s.pacer.CanOverdraw(now) {
			return 0, false
		}
		audioOnly = true
	}
	if s.windowFull(now) {
		// Only audio goes while the window is full: it is small, and first.
		if !s.windowHeld {
			s.windowHeld = true
			s.c.stats.WindowBlocked++
		}
		if s.pacer.QueuedClass(cc.ClassAudio) == 0 {
			return 0, false
		}
		audioOnly = true
	} else {
		s.windowHeld = false
	}
	n, ok := s.pollNext(now, dst, audioOnly)
	s.queueMin = min(s.queueMin, s.standingQueue(now))
	return n, ok
}

func (s *sender) pollNext(now clock.Time, dst []byte, audioOnly bool) (int, bool) {
	oneWay := s.frameOneWay(now)
	recoveryTried := false
	if !audioOnly {
		// A frame part sent is judged before retransmissions go: cut
		// short, it is declared dropped and its retransmissions with it,
		// rather than them going first (at the pacing rate, one after
		// another) and putting off the cut past the frame's deadline.
		for _, st := range s.order {
			if st.cfg.Kind == KindAudio || st.queue.Len() == 0 {
				continue
			}
			if f := st.queue.Front(); !f.gone && f.next > 0 {
				s.dropIfLate(now, st, f, oneWay)
			}
		}
	}
	// Two passes over the non-audio streams: those with a key frame at the
	// head of their queue, then the rest.
	for pass := 0; pass < 2; pass++ {
		for _, st := range s.order {
			audio := st.cfg.Kind == KindAudio
			if audio && pass > 0 {
				continue
			}
			if audioOnly && !audio {
				return 0, false
			}
			if !audio && !recoveryTried {
				recoveryTried = true
				if n, ok := s.pollRetransmit(now, dst); ok {
					return n, true
				}
				if n, ok := s.pollRepair(now, dst); ok {
					return n, true
				}
			}
			for st.queue.Len() > 0 {
				f := st.queue.Front()
				if f.gone {
					s.popFrame(st)
					continue
				}
				if !audio && pass == 0 && f.class != cc.ClassKey {
					break // (a data stream's key frame is data: it goes last)
				}
				// (A started video frame was judged above, at this now.)
				if (audio || f.next == 0) && s.dropIfLate(now, st, f, oneWay) {
					continue
				}
				n := s.sendFragment(now, st, f, dst)
				if f.next == f.count {
					s.c.stats.FramesSent++
					s.wait[f.class].add(now.Sub(f.queuedAt))
					s.popFrame(st)
					if st.queue.Len() == 0 && !st.open {
						s.updateRate()
					}
				}
				return n, n > 0
			}
		}
	}
	if !recoveryTried && !audioOnly {
		if n, ok := s.pollRetransmit(now, dst); ok {
			return n, true
		}
		if n, ok := s.pollRepair(now, dst); ok {
			return n, true
		}
	}
	if s.probe.ID != 0 && !audioOnly {
		return s.pollPadding(now, dst)
	}
	return 0, false
}

// dropIfLate drops st's head frame f, and reports it, when it is
// predicted to miss its deadline (proactive drop, the pacer issue): the
// rest of it arrives after what is queued ahead of its class and its own
// bytes at the frame rate, plus the one-way delay.
func (s *sender) dropIfLate(now clock.Time, st *sendStream, f *outFrame, oneWay time.Duration) bool {
	ahead := s.pacer.DelayOf(s.pacer.Ahead(f.class))
	arrival := cc.PredictArrival(now, ahead, f.size-f.sent, s.frameRate(), oneWay)
	late := arrival.Sub(s.judgeDeadline(now, f.capture))
	if late <= 0 {
		return false
	}
	reason := "predicted to miss its deadline in the send queue"
	if f.next > 0 {
		reason = "predicted to miss its deadline while sending: cut short"
	}
	s.dropHead(now, st, DropPredictedLate, reason, late)
	return true
}

func (s *sender) sendFragment(now clock.Time, st *sendStream, f *outFrame, dst []byte) int {
	c := s.c
	if f.next == 0 && s.fec != nil {
		// A new frame: the FEC policy plans its blocks with the path's
		// delay as it is now (a key frame ahead may have queued).
		s.updateConditions(now)
	}
	fs := c.fragSize()
	start := f.next * fs
	end := min(start+fs, len(f.buf))
	pn := c.nextPN
	if f.next == 0 {
		f.firstPN = pn
	}
	h := wire.DataHeader{
		DstConnID:    c.remoteCID,
		PacketNumber: c.pnTrunc(),
		Key:          f.key,
		Droppable:    f.droppable,
		Stream:       st.id,
		FrameID:      uint16(f.id) & wire.FrameIDMask,
		FragIndex:    uint16(f.next),
		FragCount:    uint16(f.count),
		SendTime:     wire.Timestamp(now, c.epoch),
	}
	b, err := h.Append(dst[:0])
	if err != nil {
		// Every field was checked when the frame was queued.
		panic(fmt.Sprintf("spillway: data header: %v", err))
	}
	b = append(b, f.buf[start:end]...)
	f.next++
	f.sent = end
	if f.class != cc.ClassAudio {
		s.frameBytes += int64(end - start)
	} else {
		s.audioWire += int64(len(b))
		s.audioFrame += int64(end - start)
	}
	s.pacer.Remove(f.class, end-start)
	c.consumePN()
	s.protect(now, pn, &h, f.buf[start:end], f, st.cfg.Kind)
	if d := f.capture.Add(s.c.budget()); !st.sentData || d > st.lastDeadline {
		st.lastDeadline, st.sentData = d, true
	}
	s.record(pn, sentPacket{key: pn + 1, at: now, size: int32(len(b)), media: true,
		stream: st.id, frame: f.id + 1})
	c.stats.MediaPacketsSent++
	c.stats.MediaBytesSent += int64(end - start)
	c.sent(now, len(b), classMedia)
	return len(b)
}

// nextTimeout: when the pacer lets the next queued packet out, or an FEC
// block closes on its time bound.
func (s *sender) nextTimeout() clock.Time {
	t := clock.Never
	ready := s.recoveryReadyAt()
	if s.queued > 0 || s.probe.ID != 0 {
		ready = clock.Time(math.MinInt64)
	}
	if ready != clock.Never {
		t = clock.Max(s.pacer.NextSendTime(), ready)
		if s.pacer.QueuedClass(cc.ClassAudio) > 0 {
			t = clock.Min(t, s.pacer.NextOverdrawTime())
		} else if s.windowFull(s.c.lastSend) {
			// Blocked until feedback comes (a datagram wakes us) or the
			// oldest packet in flight ages out.
			t = clock.Max(t, s.windowOpensAt())
		}
	}
	if s.fec != nil {
		t = clock.Min(t, s.fec.NextTimeout())
		if s.fec.Conditions().Loss > 0 {
			// Refresh the policy's inputs while they change without
			// feedback (loss estimates age out).
			t = clock.Min(t, s.conditionsAt.Add(conditionsInterval))
		}
	}
	if s.announceDue {
		t = clock.Min(t, s.announceSent.Add(s.announceRepeat()))
	}
	if s.anyOpen() {
		t = clock.Min(clock.Min(t, s.targetAt), s.silenceDue())
	}
	return t
}

// silenceDue is when a timed estimator (cc.Timed) must next hear the time
// while feedback is missing: its rule halves the target once an RTT after
// max(2 RTT, 500 ms) of silence, which the encoder-target updates (every
// targetInterval) alone would apply once in several RTTs. Never while
// nothing awaits feedback, or none ever came.
func (s *sender) silenceDue() clock.Time {
	if _, ok := s.estimator.(cc.Timed); !ok || !s.feedbackSeen || s.inflight == 0 {
		return clock.Never
	}
	r := max(s.c.rtt.Smoothed(), 10*time.Millisecond)
	return clock.Max(s.feedbackAt.Add(max(2*r, 500*time.Millisecond)), s.silenceAt.Add(r))
}

func (s *sender) anyOpen() bool {
	for _, st := range s.order {
		if st.open {
			return true
		}
	}
	return false
}

func (s *sender) announceRepeat() time.Duration {
	return max(s.c.rtt.Smoothed(), announceInterval)
}

// handleTimeout updates the encoder targets when due, closes FEC blocks on
// their time bound and refreshes the FEC policy's inputs.
func (s *sender) handleTimeout(now clock.Time) {
	if s.anyOpen() && now >= s.silenceDue() {
		s.ageFlight(now)
		if t, ok := s.estimator.(cc.Timed); ok && s.inflight > 0 {
			t.OnTime(now, s.c.ccRTT())
		}
		s.silenceAt = now
		s.updateRate() // a cut reaches the encoders at once (targetAt)
	}
	if now >= s.targetAt && s.anyOpen() {
		// Feedback silence means something only while packets await it:
		// an application that sends nothing (paused) gets no reports, and
		// its target must not halve away meanwhile.
		s.ageFlight(now)
		if t, ok := s.estimator.(cc.Timed); ok && s.inflight > 0 {
			t.OnTime(now, s.c.ccRTT())
		}
		s.startProbe(now) // a cluster may be due while nothing is sent
		s.checkPathDelay(now)
		s.updateTargets(now)
		s.targetAt = now.Add(targetInterval)
	}
	if s.fec == nil {
		return
	}
	s.fec.HandleTimeout(now)
	if now >= s.conditionsAt.Add(conditionsInterval) {
		s.updateConditions(now)
	}
}

// dropAll drops every queued frame (connection closing or gone).
func (s *sender) dropAll(now clock.Time, reason string) {
	for _, st := range s.order {
		for st.queue.Len() > 0 {
			if f := st.queue.Front(); !f.gone {
				s.drop(now, st, f, DropClosing, reason, 0)
			}
			s.popFrame(st)
		}
	}
}

// sentAfter returns the bytes of the media packets sent after at that the
// history still holds.
func (s *sender) sentAfter(at clock.Time) int64 {
	var n int64
	for pn := s.c.nextPN - 1; pn >= 0 && pn > s.c.nextPN-1-historySize; pn-- {
		p, ok := s.lookupSent(pn)
		if !ok {
			continue
		}
		if p.at <= at {
			break
		}
		n += int64(p.size)
	}
	return n
}

// lookupSent returns what the history holds for packet number pn.
func (s *sender) lookupSent(pn int64) (sentPacket, bool) {
	p := s.history[pn&(historySize-1)]
	return p, p.key == pn+1
}

// StreamStats returns the counters of a stream this side sends.
func (c *Conn) StreamStats(id uint8) (StreamSendStats, bool) {
	st := c.snd.stream(id)
	if st == nil {
		return StreamSendStats{}, false
	}
	return st.stats, true
}

// SendBacklog returns the bytes queued to send.
func (c *Conn) SendBacklog() int { return c.snd.queued }
