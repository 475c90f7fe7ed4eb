package core

import (
	"fmt"
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
	key   int64 // packet number + 1; 0 marks an empty slot
	at    clock.Time
	size  int32
	media bool
}

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
}

// StreamSendStats counts a sent stream's frames.
type StreamSendStats struct {
	FramesSent    int64 // frames the application wrote (including those dropped later)
	FramesDropped int64 // frames dropped by this sender (too late, queue full)
	BytesSent     int64 // frame bytes the application wrote
}

// outFrame is a frame waiting in its stream's queue.
type outFrame struct {
	id        int64
	capture   clock.Time
	deadline  clock.Time
	key       bool
	droppable bool
	buf       []byte // frame prefix + frame bytes, from the endpoint's pool
	count     int    // fragments
	next      int    // next fragment to send
}

type sender struct {
	c         *Conn
	streams   [wire.MaxStreams]*sendStream
	order     []*sendStream // streams in sending priority
	queued    int           // bytes queued on all streams
	pacer     cc.Pacer
	fixed     cc.Fixed     // version 1's estimator: the streams' nominal rates
	estimator cc.Estimator // the plug point; &fixed in version 1
	history   [historySize]sentPacket

	// Loss recovery (recovery.go): nil until the first stream opens, and
	// when disabled by the Config.
	fec          *fec.Encoder
	hist         *arq.History
	loss         fec.LossEstimator // the FEC policy's loss rate and burstiness, from transport-wide feedback
	path         pathModel
	conditionsAt clock.Time
	prot         []byte // a data packet's protected form (MaxDatagramSize)

	announceDue  bool // a stream's state changed and the peer has not acked it
	announceSent clock.Time
}

func (s *sender) init(c *Conn) {
	s.c = c
	s.pacer = cc.NewPacer(minPacingRate, cc.DefaultBurst)
	s.estimator = &s.fixed
	s.order = make([]*sendStream, 0, wire.MaxStreams)
}

// updateRate recomputes the version-1 target (the streams' nominal rates)
// and the pacing rate from it.
func (s *sender) updateRate() {
	var sum int64
	for _, st := range s.streams {
		if st != nil && (st.open || st.queue.Len() > 0) {
			sum += st.cfg.bitrate()
		}
	}
	s.fixed.Rate = sum
	rate := int64(float64(s.estimator.Target()) * s.c.cfg.PacingFactor)
	rate = min(max(rate, minPacingRate), s.c.cfg.MaxBitrate)
	s.pacer.SetRate(rate)
}

// OpenStream opens a stream to send frames on and returns its id (0-15).
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
	s := &c.snd
	if err := s.startRecovery(); err != nil {
		return 0, err
	}
	for id := range s.streams {
		st := s.streams[id]
		// A stream id is free when it was never used, or its close was
		// acknowledged and its queue has drained.
		if st != nil && (st.open || !st.acked || st.queue.Len() > 0) {
			continue
		}
		if st == nil {
			st = &sendStream{id: uint8(id)}
			s.streams[id] = st
		}
		*st = sendStream{id: uint8(id), cfg: cfg, open: true, queue: st.queue}
		s.rebuildOrder()
		s.announceDue = true
		s.announceSent = clock.Time(-1 << 62)
		s.updateRate()
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

// Deadline returns the deadline of a frame captured at capture.
func (c *Conn) Deadline(capture clock.Time) clock.Time { return capture.Add(c.cfg.Latency) }

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
	deadline := info.Capture.Add(c.cfg.Latency)
	if late := now.Add(c.owd()).Sub(deadline); late >= 0 {
		c.dropped(st, id, info, "late on arrival", late)
		return fmt.Errorf("%w: frame %d is past its deadline by %v", ErrFrameDropped, id, late)
	}
	size := wire.FramePrefixLen + len(payload)
	if s.queued+size > c.cfg.MaxSendBuffer {
		c.dropped(st, id, info, "send buffer full", 0)
		return fmt.Errorf("%w: send buffer full (%d bytes queued)", ErrFrameDropped, s.queued)
	}
	buf := c.ep.pool.Get(size)
	buf, _ = wire.AppendFramePrefix(buf[:0], wire.Timestamp(info.Capture, c.epoch))
	buf = append(buf, payload...)
	fs := c.fragSize()
	st.queue.Push(outFrame{
		id:        id,
		capture:   info.Capture,
		deadline:  deadline,
		key:       info.Key,
		droppable: info.Droppable,
		buf:       buf,
		count:     (size + fs - 1) / fs,
	})
	st.queued += size
	s.queued += size
	return nil
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

func (c *Conn) dropped(st *sendStream, id int64, info FrameInfo, reason string, late time.Duration) {
	st.stats.FramesDropped++
	c.stats.FramesDroppedOnSend++
	c.ep.pushEvent(Event{Type: EventFrameDropped, Conn: c, Stream: st.id, Kind: st.cfg.Kind,
		Frame: FrameMeta{ID: id, Capture: info.Capture, Key: info.Key, Droppable: info.Droppable, Reason: reason, Late: late}})
}

// popFrame removes a stream's head frame and frees its buffer.
func (s *sender) popFrame(st *sendStream) {
	f := st.queue.Pop()
	size := len(f.buf)
	st.queued -= size
	s.queued -= size
	s.c.ep.pool.Put(f.buf)
}

// pollMedia sends the next packet the pacer allows, in priority order:
// audio frames, retransmissions, FEC repair packets, then the other streams'
// frames (issue 9 refines the classes). Frames that can no longer arrive in
// time are dropped on the way.
func (s *sender) pollMedia(now clock.Time, dst []byte) (int, bool) {
	if (s.queued == 0 && !s.recoveryDue()) || !s.pacer.CanSend(now) {
		return 0, false
	}
	c := s.c
	arrival := now.Add(c.owd())
	recoveryTried := false
	for _, st := range s.order {
		if !recoveryTried && st.cfg.Kind != KindAudio {
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
			if arrival > f.deadline {
				reason := "deadline passed in the send queue"
				if f.next > 0 {
					reason = "deadline passed while sending"
				}
				c.dropped(st, f.id, FrameInfo{Capture: f.capture, Key: f.key, Droppable: f.droppable}, reason, arrival.Sub(f.deadline))
				s.popFrame(st)
				continue
			}
			n := s.sendFragment(now, st, f, dst)
			if f.next == f.count {
				c.stats.FramesSent++
				s.popFrame(st)
				if st.queue.Len() == 0 && !st.open {
					s.updateRate()
				}
			}
			return n, n > 0
		}
	}
	if !recoveryTried {
		if n, ok := s.pollRetransmit(now, dst); ok {
			return n, true
		}
		if n, ok := s.pollRepair(now, dst); ok {
			return n, true
		}
	}
	return 0, false
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
	c.consumePN()
	s.protect(now, pn, &h, f.buf[start:end], f, st.cfg.Kind)
	s.history[pn&(historySize-1)] = sentPacket{key: pn + 1, at: now, size: int32(len(b)), media: true}
	c.stats.MediaPacketsSent++
	c.stats.MediaBytesSent += int64(end - start)
	c.sent(now, len(b), classMedia)
	return len(b)
}

// nextTimeout: when the pacer lets the next queued packet out, or an FEC
// block closes on its time bound.
func (s *sender) nextTimeout() clock.Time {
	t := clock.Never
	if s.queued > 0 || s.recoveryDue() {
		t = s.pacer.NextSendTime()
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
	return t
}

func (s *sender) announceRepeat() time.Duration {
	return max(s.c.rtt.Smoothed(), announceInterval)
}

// handleTimeout closes FEC blocks on their time bound and refreshes the
// FEC policy's inputs.
func (s *sender) handleTimeout(now clock.Time) {
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
			f := st.queue.Front()
			s.c.dropped(st, f.id, FrameInfo{Capture: f.capture, Key: f.key, Droppable: f.droppable}, reason, 0)
			s.popFrame(st)
		}
	}
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
