package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/jitterbuffer"
)

// Kind is what a track carries.
type Kind = core.Kind

// Track kinds.
const (
	KindData  = core.KindData
	KindAudio = core.KindAudio
	KindVideo = core.KindVideo
)

// Priority orders tracks of one kind when sending; audio always goes before
// video, and video before data.
type Priority = core.Priority

// Priorities.
const (
	PriorityLow    = core.PriorityLow
	PriorityMedium = core.PriorityMedium
	PriorityHigh   = core.PriorityHigh
)

// TrackConfig describes a track to publish.
type TrackConfig struct {
	Kind     Kind
	Priority Priority
	// Bitrate is the track's nominal media rate in bit/s: the most its
	// target rate is set to (unless MaxBitrate says otherwise), and with
	// Config.CongestionControl Fixed, its share of the sending rate (the
	// pacer then sends at 2.5 x the tracks' sum, capped at MaxBitrate).
	// Default: 64 kbit/s audio, 2 Mbit/s video, 1 Mbit/s data.
	Bitrate int64
	// MinBitrate and MaxBitrate clamp the rate OnTargetBitrate gives:
	// never under MinBitrate (the encoder's least; while the network
	// carries less, frames are dropped instead), never over MaxBitrate
	// (default: Bitrate). 0 means unset; MinBitrate above the most is
	// ErrInvalidConfig.
	MinBitrate, MaxBitrate int64
}

// Frame is a frame to send.
type Frame struct {
	Data        []byte    // copied by WriteFrame
	CaptureTime time.Time // zero, or later than now: now; the deadline is CaptureTime + Latency
	Keyframe    bool      // decodable alone
	Droppable   bool      // no other frame references it
}

// FrameInfo describes a received frame.
type FrameInfo struct {
	ID           int64     // the frame's number in its track, from 0
	Size         int       // bytes
	CaptureTime  time.Time // on this machine's clock (estimated from the path)
	CompleteTime time.Time // when its last fragment arrived
	PlayoutTime  time.Time // when it was released
	Keyframe     bool
	Droppable    bool
	LostBefore   int64 // frames of this track skipped just before this one, lost on the way
	// DroppedBefore: frames skipped just before this one that the sender
	// dropped on purpose (too late to arrive in time, or its send queue
	// full); not counted in LostBefore.
	DroppedBefore int64
	// CaughtUpBefore: frames skipped just before this one to catch up
	// after a freeze (Config.CatchUp): they came and were not played; not
	// counted in LostBefore.
	CaughtUpBefore int64
	// PlayedLate: it completed after its playout time and was released at
	// once (the playout offset rose to it).
	PlayedLate bool
	// Undecodable: a video frame referencing one never released since the
	// last key frame; a key frame has been asked for.
	Undecodable bool
	// Reordered (Config.PassThrough, which delivers frames as they
	// complete): an earlier frame's LostBefore counted this one, which came
	// after all.
	Reordered bool
}

// PlayoutStats are a received track's jitter-buffer figures (W3C
// webrtc-stats names in the field comments) and its playout state.
type PlayoutStats = jitterbuffer.Stats

// DropReason says why the sender dropped a frame.
type DropReason = core.DropReason

// Reasons a sender drops a frame (FrameDrop.Reason).
const (
	DropLateOnArrival = core.DropLateOnArrival // WriteFrame refused it: it could not arrive in time
	DropPredictedLate = core.DropPredictedLate // queued, then predicted to miss its deadline
	DropQueueLimit    = core.DropQueueLimit    // the send queue was at its time limit
	DropReference     = core.DropReference     // a frame it references was dropped
	DropSendBuffer    = core.DropSendBuffer    // the send buffer was full (bytes)
	DropClosing       = core.DropClosing       // the session closed with it queued
)

// FrameDrop describes a frame this side dropped before all of it was sent.
type FrameDrop struct {
	ID          int64 // the frame's number in its track
	CaptureTime time.Time
	Keyframe    bool
	Size        int
	Reason      DropReason
	Detail      string        // the reason in words
	Late        time.Duration // how far past its deadline it would have arrived (predicted)
}

// TargetRate is the rate a track should be encoded at.
type TargetRate struct {
	Bitrate int64 // bit/s of frame payload
}

// Stats are a session's counters (W3C webrtc-stats names where they exist).
type Stats = core.ConnStats

// Session is a connection to one peer, carrying tracks each way. Its methods
// are safe for concurrent use.
type Session struct {
	t             *Transport
	conn          *core.Conn // touched only on the loop goroutine
	remote        netip.AddrPort
	incoming      bool
	ownsTransport bool

	ready       chan struct{} // closed when established
	readyOnce   sync.Once
	peerLatency time.Duration // set before ready closes
	done        chan struct{} // closed when the session is gone
	tClosed     chan struct{} // ownsTransport: closed once the transport (its socket, goroutines) is gone
	err         error         // why; set before done closes
	final       Stats         // stats at close; set before done closes
	tracks      chan *RemoteTrack

	statusMu    sync.Mutex
	onStatus    func(NetStatus)
	onPathDelay func(PathDelay)

	// loop-owned
	local        [16]*LocalTrack
	remoteTracks [16]*RemoteTrack
	lastStats    Stats
	lastStatsAt  clock.Time
	statsStarted bool
}

func newSession(t *Transport, c *core.Conn) *Session {
	return &Session{
		t:        t,
		conn:     c,
		remote:   c.RemoteAddr(),
		incoming: c.Incoming(),
		// A transport made for one dialed session closes with it.
		ownsTransport: t.closeWithSession && !c.Incoming(),
		ready:         make(chan struct{}),
		done:          make(chan struct{}),
		tClosed:       make(chan struct{}),
		tracks:        make(chan *RemoteTrack, 64),
	}
}

func (s *Session) established(now clock.Time) {
	s.readyOnce.Do(func() {
		s.peerLatency = s.conn.PeerLatency()
		s.lastStats, s.lastStatsAt, s.statsStarted = s.conn.Stats(), now, true
		close(s.ready)
	})
}

// Latency returns the transport budget of the frames this side sends.
func (s *Session) Latency() time.Duration { return s.t.cfg.Latency }

// PeerLatency returns the transport budget the peer announced for the
// frames it sends: a received frame is on time if it completes within
// PeerLatency of its capture.
func (s *Session) PeerLatency() time.Duration { return s.peerLatency }

// do runs fn on the loop and, once the session has ended, reports why it
// ended rather than a bare ErrClosed.
func (s *Session) do(ctx context.Context, fn func(now clock.Time) error) error {
	err := s.t.do(ctx, fn)
	if err != nil && errors.Is(err, ErrClosed) {
		select {
		case <-s.done:
			return s.err
		default:
		}
	}
	return err
}

// closed ends the session (loop goroutine).
func (s *Session) closed(final Stats, err error) {
	select {
	case <-s.done:
		return
	default:
	}
	if err == nil {
		err = ErrClosed
	}
	s.err = err
	s.final = final
	for _, rt := range s.remoteTracks {
		if rt != nil {
			rt.end(err)
		}
	}
	close(s.done)
	if s.ownsTransport {
		go func() { // not on the loop: Close waits for it
			_ = s.t.Close()
			close(s.tClosed)
		}()
	}
}

// connErr is the error operations on a closed connection report.
func connErr(c *core.Conn) error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// RemoteAddr returns the peer's address.
func (s *Session) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(s.remote) }

// Incoming reports whether the peer dialed.
func (s *Session) Incoming() bool { return s.incoming }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended (nil while it is open). A session the
// application closed reports ErrClosed.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	var st Stats
	// A connection that has closed keeps its counters: between its close
	// and the session's end (EventClosed, dispatched after the loop's
	// batch) they are the final ones. (Returning nothing then gave an
	// all-zero Stats to a caller racing Close.)
	err := s.t.do(context.Background(), func(clock.Time) error {
		st = s.conn.Stats()
		return nil
	})
	if err != nil {
		// The loop has ended: every session it held has its final counters.
		select {
		case <-s.done:
			return s.final
		default:
		}
	}
	return st
}

// Close closes the session in order: frames already written still go while
// their deadlines allow, then the peer is told. It returns when the session
// is gone.
func (s *Session) Close() error { return s.CloseWithError(0, "") }

// CloseWithError is Close with an application code (0, or 0x100 and above)
// and a reason for the peer's logs.
func (s *Session) CloseWithError(code uint16, reason string) error {
	if code != 0 && code < core.CodeApplication {
		return fmt.Errorf("%w: close code %d is reserved", ErrInvalidConfig, code)
	}
	err := s.t.do(context.Background(), func(now clock.Time) error {
		s.conn.Close(now, code, reason)
		return nil
	})
	if err != nil {
		return nil // the transport is gone, and the session with it
	}
	// The core bounds the close: Latency to flush, then three Close packets
	// a smoothed RTT apart, or sooner when the peer answers. A session from
	// Dial returns once its socket and goroutines are gone too.
	<-s.done
	if s.ownsTransport {
		<-s.tClosed
	}
	return nil
}

// Publish opens a track to send frames on.
func (s *Session) Publish(ctx context.Context, cfg TrackConfig) (*LocalTrack, error) {
	var lt *LocalTrack
	err := s.do(ctx, func(now clock.Time) error {
		id, err := s.conn.OpenStream(now, core.StreamConfig{Kind: cfg.Kind, Priority: cfg.Priority, Bitrate: cfg.Bitrate,
			MinBitrate: cfg.MinBitrate, MaxBitrate: cfg.MaxBitrate})
		if err != nil {
			if s.conn.Closed() {
				return connErr(s.conn)
			}
			return err
		}
		lt = &LocalTrack{s: s, id: id, cfg: cfg}
		s.local[id] = lt
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spillway: publish: %w", err)
	}
	return lt, nil
}

// AcceptTrack waits for the next track the peer publishes.
func (s *Session) AcceptTrack(ctx context.Context) (*RemoteTrack, error) {
	select {
	case rt := <-s.tracks:
		return rt, nil
	default:
	}
	select {
	case rt := <-s.tracks:
		return rt, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, s.err
	}
}

// handleEvent routes a core event to the session's tracks (loop goroutine).
func (s *Session) handleEvent(now clock.Time, ev core.Event) {
	switch ev.Type {
	case core.EventStreamOpened:
		rt := &RemoteTrack{s: s, id: ev.Stream, kind: ev.Kind, priority: ev.Priority,
			frames: make(chan *rxFrame, s.t.cfg.FrameQueue), done: make(chan struct{}), reading: make(chan struct{}, 1)}
		if old := s.remoteTracks[ev.Stream]; old != nil {
			old.end(io.EOF)
		}
		s.remoteTracks[ev.Stream] = rt
		select {
		case s.tracks <- rt:
		default:
			rt.end(fmt.Errorf("spillway: track %d not accepted: AcceptTrack queue full", ev.Stream))
		}
	case core.EventStreamClosed:
		if rt := s.remoteTracks[ev.Stream]; rt != nil {
			rt.end(io.EOF)
		}
	case core.EventFrame:
		if rt := s.remoteTracks[ev.Stream]; rt != nil {
			rt.push(s.t, ev)
		}
	case core.EventKeyFrameRequest:
		if lt := s.local[ev.Stream]; lt != nil {
			s.t.callback(lt.keyFrameRequested)
		}
	case core.EventFrameDropped:
		if lt := s.local[ev.Stream]; lt != nil {
			d := FrameDrop{ID: ev.Frame.ID, CaptureTime: s.t.toTime(ev.Frame.Capture), Keyframe: ev.Frame.Key,
				Size: ev.Frame.Size, Reason: ev.Frame.DropReason, Detail: ev.Frame.Reason, Late: ev.Frame.Late}
			s.t.callback(func() { lt.frameDropped(d) })
		}
	case core.EventTargetRate:
		if lt := s.local[ev.Stream]; lt != nil {
			r := TargetRate{Bitrate: ev.Bitrate}
			s.t.callback(func() { lt.targetRate(r) })
		}
	case core.EventPathDelay:
		s.statusMu.Lock()
		fn := s.onPathDelay
		s.statusMu.Unlock()
		if fn != nil {
			d := PathDelay{Over: ev.Over, OneWay: ev.Delay, Latency: s.t.cfg.Latency}
			s.t.callback(func() { fn(d) })
		}
	}
}

// PathDelay says the path's one-way delay alone came to exceed the
// session's Latency, or fell back under it (Session.OnPathDelay).
type PathDelay struct {
	Over    bool          // the delay exceeds Latency now
	OneWay  time.Duration // the path's one-way delay: half the least round trip of the last 10 s, with another flow's standing queue
	Latency time.Duration // the budget of the frames this side sends (Config.Latency)
}

// OnPathDelay sets a function called when the path's one-way delay alone
// comes to exceed Latency (Over set), as behind a TCP flow that keeps a
// deep buffer full, which no rate of ours can drain, and when it falls back
// under it (after 5 s under, as the other flow's queue swings, or at once
// when the congestion controller no longer sees another flow's queue), on
// the callback goroutine (see LocalTrack.OnKeyFrameRequest).
// While it exceeds Latency the sender judges frames against capture + that
// delay (or the delay a frame sent now is predicted to meet, if more: the
// queue swings with the other flow's sawtooth) + Latency instead of
// dropping every one as late, and the encoder targets no longer fall for
// that queue (OnTargetBitrate's pushback: a smaller rate would not drain
// it): the application may raise its players' buffers, or tell the user.
// The sender tells the receiving side too, which then keeps assembling
// such frames until that time rather than giving them up at their playout
// time: they arrive late, but they arrive. nil stops the calls.
func (s *Session) OnPathDelay(fn func(PathDelay)) {
	s.statusMu.Lock()
	s.onPathDelay = fn
	s.statusMu.Unlock()
}

// LocalTrack is a track this side sends. Its methods are safe for
// concurrent use.
type LocalTrack struct {
	s   *Session
	id  uint8
	cfg TrackConfig

	mu       sync.Mutex
	onKey    func()
	onDrop   func(FrameDrop)
	onTarget func(TargetRate)
	target   TargetRate // the last one given; zero before any
}

// ID returns the track's id within the session (0-15).
func (lt *LocalTrack) ID() uint8 { return lt.id }

// Kind returns what the track carries.
func (lt *LocalTrack) Kind() Kind { return lt.cfg.Kind }

// WriteFrame sends a frame. It returns once the frame is queued (its bytes
// copied). It fails with ErrFrameDropped when the frame can no longer arrive
// before its deadline (CaptureTime + Latency) or the send buffer is full,
// with ErrFrameTooLarge above the maximum frame size, and with the session's
// error once it has closed.
func (lt *LocalTrack) WriteFrame(ctx context.Context, f Frame) error {
	t := lt.s.t
	return lt.s.do(ctx, func(now clock.Time) error {
		if err := lt.gone(); err != nil {
			return err
		}
		err := lt.s.conn.WriteFrame(now, lt.id, f.Data, core.FrameInfo{
			Capture:   t.fromTime(f.CaptureTime, now),
			Key:       f.Keyframe,
			Droppable: f.Droppable,
		})
		if err != nil && lt.s.conn.Closed() {
			return connErr(lt.s.conn)
		}
		return err
	})
}

// gone reports ErrClosed (or the session's error) once the track is closed
// (loop goroutine): its id may then belong to a newer track, which a stale
// handle must not write to or close.
func (lt *LocalTrack) gone() error {
	if lt.s.conn.Closed() {
		return connErr(lt.s.conn)
	}
	if lt.s.local[lt.id] != lt {
		return ErrClosed
	}
	return nil
}

// OnKeyFrameRequest sets a function called when the track needs a key
// frame: the peer asked, or this side dropped a frame later frames
// reference (then at once, with no round trip). Callbacks of a Transport run one at a time, in order, on a
// goroutine of their own: they may call any method (WriteFrame a key
// frame), but one that blocks delays the others.
func (lt *LocalTrack) OnKeyFrameRequest(fn func()) {
	lt.mu.Lock()
	lt.onKey = fn
	lt.mu.Unlock()
}

// OnFrameDropped sets a function called for every frame of the track this
// side drops before all of it was sent (WriteFrame's ErrFrameDropped
// included), on the callback goroutine (see OnKeyFrameRequest). A dropped
// frame that later frames reference also brings a key-frame request
// (OnKeyFrameRequest) at once: the frames after it are dropped until a key
// frame comes.
func (lt *LocalTrack) OnFrameDropped(fn func(FrameDrop)) {
	lt.mu.Lock()
	lt.onDrop = fn
	lt.mu.Unlock()
}

// OnTargetBitrate sets a function called when the rate the track should be
// encoded at changes (at most about 5 times a second, and at once when a
// key frame proved too large), on the callback goroutine (see
// OnKeyFrameRequest). The rate is the transport's target less what FEC,
// retransmissions and headers take, audio first, and less again while the
// send queue or the path's queue grows (pushback; not for a queue another
// flow keeps, see Session.OnPathDelay): an encoder that follows it keeps
// frames from being dropped. If a target is known already, fn is
// called with it at once (on the callback goroutine).
func (lt *LocalTrack) OnTargetBitrate(fn func(TargetRate)) {
	lt.mu.Lock()
	lt.onTarget = fn
	cur := lt.target
	lt.mu.Unlock()
	if fn != nil && cur.Bitrate > 0 {
		// Queued from the loop, which owns the callback queue (it closes it
		// when the transport ends: then there is nothing to tell).
		_ = lt.s.t.do(context.Background(), func(clock.Time) error {
			lt.s.t.callback(func() {
				lt.mu.Lock()
				same := lt.target == cur
				lt.mu.Unlock()
				if same { // a newer one is on its way otherwise
					fn(cur)
				}
			})
			return nil
		})
	}
}

func (lt *LocalTrack) frameDropped(d FrameDrop) {
	lt.mu.Lock()
	fn := lt.onDrop
	lt.mu.Unlock()
	if fn != nil {
		fn(d)
	}
}

func (lt *LocalTrack) targetRate(r TargetRate) {
	lt.mu.Lock()
	fn := lt.onTarget
	lt.target = r
	lt.mu.Unlock()
	if fn != nil {
		fn(r)
	}
}

func (lt *LocalTrack) keyFrameRequested() {
	lt.mu.Lock()
	fn := lt.onKey
	lt.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// Close stops the track: frames already written still go, and the peer's
// RemoteTrack ends with io.EOF.
func (lt *LocalTrack) Close() error {
	return lt.s.do(context.Background(), func(now clock.Time) error {
		if err := lt.gone(); err != nil {
			return err
		}
		err := lt.s.conn.CloseStream(now, lt.id)
		lt.s.local[lt.id] = nil
		if errors.Is(err, core.ErrUnknownStream) {
			return ErrClosed
		}
		return err
	})
}

// rxFrame is a received frame waiting for ReadFrame.
type rxFrame struct {
	data []byte
	info FrameInfo
}

var rxFramePool = sync.Pool{New: func() any { return new(rxFrame) }}

// RemoteTrack is a track the peer sends.
type RemoteTrack struct {
	s        *Session
	id       uint8
	kind     Kind
	priority Priority
	frames   chan *rxFrame
	done     chan struct{}
	endErr   error // set before done closes

	reading chan struct{} // a one-slot semaphore serialising ReadFrame (a mutex would not heed ctx)
	pending *rxFrame      // a frame ReadFrame could not fit in the caller's buffer
	dropped atomic.Int64
}

// ID returns the track's id within the session (0-15).
func (rt *RemoteTrack) ID() uint8 { return rt.id }

// Kind returns what the track carries.
func (rt *RemoteTrack) Kind() Kind { return rt.kind }

// Priority returns the priority the peer gave the track.
func (rt *RemoteTrack) Priority() Priority { return rt.priority }

// push queues a frame for ReadFrame, dropping the oldest if the reader is
// behind (loop goroutine).
func (rt *RemoteTrack) push(t *Transport, ev core.Event) {
	select {
	case <-rt.done:
		return
	default:
	}
	f := rxFramePool.Get().(*rxFrame)
	f.data = append(f.data[:0], ev.Data...)
	f.info = FrameInfo{
		ID:             ev.Frame.ID,
		Size:           len(ev.Data),
		CaptureTime:    t.toTime(ev.Frame.Capture),
		CompleteTime:   t.toTime(ev.Frame.Completed),
		PlayoutTime:    t.toTime(ev.Frame.Playout),
		Keyframe:       ev.Frame.Key,
		Droppable:      ev.Frame.Droppable,
		LostBefore:     ev.Frame.LostBefore,
		DroppedBefore:  ev.Frame.DroppedBefore,
		CaughtUpBefore: ev.Frame.CaughtUpBefore,
		PlayedLate:     ev.Frame.PlayedLate,
		Undecodable:    ev.Frame.Undecodable,
		Reordered:      ev.Frame.Reordered,
	}
	for {
		select {
		case rt.frames <- f:
			return
		default:
		}
		select {
		case old := <-rt.frames:
			rt.dropped.Add(1)
			rxFramePool.Put(old)
		default:
		}
	}
}

func (rt *RemoteTrack) end(err error) {
	select {
	case <-rt.done:
	default:
		rt.endErr = err
		close(rt.done)
	}
}

// Dropped returns how many frames were dropped because ReadFrame fell
// behind by more than the FrameQueue.
func (rt *RemoteTrack) Dropped() int64 { return rt.dropped.Load() }

// ReadFrame waits for the next frame at its playout time and copies it into
// buf. If buf is too small it returns io.ErrShortBuffer with info.Size set
// and keeps the frame for the next call. When the peer closes the track it
// returns io.EOF (after the frames already received); so it does when the
// peer closes the session in order (Session.Close and CloseWithError close
// the tracks first: Session.Err then says why). When the session ends
// otherwise (an idle timeout, a local close, the transport closing), it
// returns the session's error.
func (rt *RemoteTrack) ReadFrame(ctx context.Context, buf []byte) (int, FrameInfo, error) {
	// Concurrent readers take turns; one waiting for its turn still heeds
	// its context.
	select {
	case rt.reading <- struct{}{}:
	case <-ctx.Done():
		return 0, FrameInfo{}, ctx.Err()
	}
	defer func() { <-rt.reading }()
	f := rt.pending
	rt.pending = nil
	if f == nil {
		select {
		case f = <-rt.frames:
		default:
			select {
			case f = <-rt.frames:
			case <-ctx.Done():
				return 0, FrameInfo{}, ctx.Err()
			case <-rt.done:
				select {
				case f = <-rt.frames:
				default:
					return 0, FrameInfo{}, rt.endErr
				}
			}
		}
	}
	if len(buf) < len(f.data) {
		rt.pending = f
		return 0, f.info, io.ErrShortBuffer
	}
	n := copy(buf, f.data)
	info := f.info
	rxFramePool.Put(f)
	return n, info, nil
}

// PlayoutStats returns the track's jitter-buffer figures now. It fails
// with ErrClosed once the track has ended.
func (rt *RemoteTrack) PlayoutStats(ctx context.Context) (PlayoutStats, error) {
	var st PlayoutStats
	err := rt.s.do(ctx, func(now clock.Time) error {
		if err := rt.gone(); err != nil {
			return err
		}
		var ok bool
		if st, ok = rt.s.conn.PlayoutStats(now, rt.id); !ok {
			return ErrClosed
		}
		return nil
	})
	return st, err
}

// RequestKeyFrame asks the peer for a key frame on this track (a PLI), at
// most once per round trip. It fails with ErrClosed once the track has
// ended (ReadFrame's io.EOF), and with the session's error once that has.
func (rt *RemoteTrack) RequestKeyFrame(ctx context.Context) error {
	return rt.s.do(ctx, func(now clock.Time) error {
		if err := rt.gone(); err != nil {
			return err
		}
		return rt.s.conn.RequestKeyFrame(now, rt.id)
	})
}

// gone reports ErrClosed (or the session's error) once the track has
// ended (loop goroutine): its id may then belong to a newer track of the
// peer's.
func (rt *RemoteTrack) gone() error {
	if rt.s.conn.Closed() {
		return connErr(rt.s.conn)
	}
	select {
	case <-rt.done:
		return ErrClosed
	default:
	}
	if rt.s.remoteTracks[rt.id] != rt {
		return ErrClosed
	}
	return nil
}
