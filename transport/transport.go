package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
)

// Transport runs Spillway sessions over one net.PacketConn: a UDP socket,
// netem's in-memory PacketConn, or anything else carrying datagrams. One
// goroutine owns every session's state (the loop); a second only reads the
// socket and hands datagrams over through a bounded queue that drops and
// counts when full. Both start on first use and stop in Close.
//
// Set Conn (required) and Config (nil means the zero Config) before the
// first call; do not change them afterwards.
type Transport struct {
	Conn   net.PacketConn
	Config *Config

	initOnce sync.Once
	initErr  error
	cfg      Config
	ep       *core.Endpoint
	io       packetIO
	epoch    time.Time
	ownsConn bool
	// closeWithSession: the transport exists for one dialed session (package
	// Dial) and closes with it.
	closeWithSession bool
	// preferPlain forces the portable I/O path (tests and benchmarks).
	preferPlain bool

	cmds    chan func(now clock.Time)
	calls   chan func() // application callbacks, run in order off the loop
	rx      chan *rxBatch
	free    chan *rxBatch // batches without datagrams: their buffers are in bufs
	bufs    chan []byte   // receive buffers: ReceiveQueue + one read's
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the loop has exited
	readerD chan struct{} // closed when the reader has exited
	closeMu sync.Once

	// loop-owned
	sessions map[*core.Conn]*Session
	listener *Listener
	txbuf    []byte
	loopErr  error

	stats transportCounters
}

type transportCounters struct {
	datagramsReceived atomic.Int64
	datagramsDropped  atomic.Int64
	readErrors        atomic.Int64
	writeErrors       atomic.Int64
	callbacksDropped  atomic.Int64
	ioPath            atomic.Pointer[string] // set once the I/O path is chosen
}

// TransportStats are a Transport's socket-level counters.
type TransportStats struct {
	DatagramsReceived int64  // read from the socket
	DatagramsDropped  int64  // dropped because the loop was behind (ReceiveQueue full)
	ReadErrors        int64  // transient read errors
	WriteErrors       int64  // datagrams that failed to go
	CallbacksDropped  int64  // callbacks not run because the callback queue was full
	IOPath            string // "batch" (recvmmsg/sendmmsg) or "plain"
}

// Stats returns the socket-level counters.
func (t *Transport) Stats() TransportStats {
	s := TransportStats{
		DatagramsReceived: t.stats.datagramsReceived.Load(),
		DatagramsDropped:  t.stats.datagramsDropped.Load(),
		ReadErrors:        t.stats.readErrors.Load(),
		WriteErrors:       t.stats.writeErrors.Load(),
		CallbacksDropped:  t.stats.callbacksDropped.Load(),
	}
	if p := t.stats.ioPath.Load(); p != nil {
		s.IOPath = *p
	}
	return s
}

func (t *Transport) init(accept bool) error {
	t.initOnce.Do(func() {
		if t.Conn == nil {
			t.initErr = fmt.Errorf("%w: Transport.Conn is nil", ErrInvalidConfig)
			return
		}
		if err := t.Config.Validate(); err != nil {
			t.initErr = err
			return
		}
		t.cfg = t.Config.withDefaults()
		cc := t.cfg.core()
		cc.Rand = rand.Reader
		cc.Accept = accept
		ep, err := core.NewEndpoint(cc)
		if err != nil {
			t.initErr = err
			return
		}
		t.ep = ep
		t.io = newPacketIO(t.Conn, !t.preferPlain)
		name := t.io.name()
		t.stats.ioPath.Store(&name)
		t.epoch = time.Now()
		t.cmds = make(chan func(clock.Time), 64)
		t.calls = make(chan func(), callQueue)
		// The queue holds datagrams, not reads: ReceiveQueue buffers, and
		// one read's worth for the reader, shared by batches of one read
		// each (a read of the plain path, or a light one of the batch path,
		// returns a single datagram: 32 batches once held 32 datagrams).
		bufSize := ep.Config().MaxDatagramSize + 1 // one more: an oversized datagram is seen, not truncated
		nbuf := t.cfg.ReceiveQueue + t.io.perRead()
		t.bufs = make(chan []byte, nbuf)
		for range nbuf {
			t.bufs <- make([]byte, bufSize)
		}
		t.rx = make(chan *rxBatch, nbuf) // a batch holds a datagram at least: never full
		t.free = make(chan *rxBatch, nbuf)
		for range nbuf {
			t.free <- &rxBatch{dgs: make([]rxDatagram, 0, t.io.perRead())}
		}
		t.closing = make(chan struct{})
		t.done = make(chan struct{})
		t.readerD = make(chan struct{})
		t.sessions = make(map[*core.Conn]*Session)
		t.txbuf = make([]byte, ep.Config().MaxDatagramSize)
		go t.readLoop(bufSize)
		go t.callLoop()
		go t.loop()
	})
	return t.initErr
}

func (t *Transport) now() clock.Time { return clock.Since(t.epoch, time.Now()) }

// toTime converts a core instant to wall-clock time.
func (t *Transport) toTime(c clock.Time) time.Time { return t.epoch.Add(time.Duration(c)) }

// fromTime converts wall-clock time to a core instant (zero: now).
func (t *Transport) fromTime(w time.Time, now clock.Time) clock.Time {
	if w.IsZero() {
		return now
	}
	return clock.Since(t.epoch, w)
}

// callQueue bounds the application callbacks waiting to run.
const callQueue = 1024

// callLoop runs application callbacks (OnKeyFrameRequest, OnNetStatus) one
// at a time, in the order the loop queued them. They run off the loop, so a
// callback may call any Session or track method, Close included: nothing
// on the loop waits for a callback (those still queued when the transport
// ends run after it, and their calls report the transport closed).
func (t *Transport) callLoop() {
	for fn := range t.calls {
		fn()
	}
}

// callback queues fn for callLoop (loop goroutine only: the loop closes
// the queue when it ends); a full queue drops it and counts: a stuck
// callback must not stop the sessions.
func (t *Transport) callback(fn func()) {
	select {
	case t.calls <- fn:
	default:
		t.stats.callbacksDropped.Add(1)
	}
}

// do runs fn on the loop goroutine and waits for its result. When ctx ends
// before the loop takes fn, do returns ctx's error and fn does not run;
// once fn has run, do returns its result whatever ctx does meanwhile: fn
// never blocks, and a caller told "canceled" must not be left with a
// session or a track it opened but never got.
func (t *Transport) do(ctx context.Context, fn func(now clock.Time) error) error {
	res := make(chan error, 1)
	cmd := func(now clock.Time) {
		if err := ctx.Err(); err != nil {
			res <- err
			return
		}
		res <- fn(now)
	}
	select {
	case t.cmds <- cmd:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return t.closedErr()
	}
	select {
	case err := <-res:
		return err
	case <-t.done:
		// The loop may have run it just before exiting.
		select {
		case err := <-res:
			return err
		default:
			return t.closedErr()
		}
	}
}

func (t *Transport) closedErr() error {
	if t.loopErr != nil {
		return t.loopErr
	}
	return ErrClosed
}

// readLoop is the reader goroutine: it never touches session state.
func (t *Transport) readLoop(bufSize int) {
	defer close(t.readerD)
	spare := newBatch(t.io.perRead(), bufSize)
	failures := 0
	for {
		b := t.takeBatch(spare)
		err := t.io.read(b)
		select {
		case <-t.closing:
			return
		default:
		}
		if err != nil {
			if b != spare {
				t.putBatch(b, 0)
			}
			if errors.Is(err, net.ErrClosed) {
				t.fatal(fmt.Errorf("%w: the socket closed under the transport: %w", ErrClosed, err))
				return
			}
			// Transient errors (ICMP port unreachable on Linux) come and go;
			// a conn that fails every read must not spin a core.
			t.stats.readErrors.Add(1)
			failures++
			if failures >= maxReadFailures {
				t.fatal(fmt.Errorf("%w: %d reads failed in a row: %w", ErrClosed, failures, err))
				return
			}
			if failures > 10 {
				time.Sleep(time.Duration(min(failures, 100)) * time.Millisecond)
			}
			continue
		}
		failures = 0
		t.stats.datagramsReceived.Add(int64(b.n))
		if b == spare {
			t.stats.datagramsDropped.Add(int64(b.n))
			continue
		}
		// The buffers the read did not fill go back at once.
		for i := b.n; i < len(b.dgs); i++ {
			t.bufs <- b.dgs[i].buf
			b.dgs[i].buf = nil
		}
		b.dgs = b.dgs[:b.n]
		t.rx <- b // room for every batch there is
	}
}

// takeBatch returns a batch with as many free buffers as one read takes
// and the queue has left, or spare (its own buffers: what it reads is
// counted and dropped) when the queue is full (reader goroutine).
func (t *Transport) takeBatch(spare *rxBatch) *rxBatch {
	var b *rxBatch
	select {
	case b = <-t.free:
	default:
		return spare
	}
	b.dgs, b.n = b.dgs[:0], 0
	for len(b.dgs) < cap(b.dgs) {
		select {
		case buf := <-t.bufs:
			b.dgs = append(b.dgs, rxDatagram{buf: buf})
			continue
		default:
		}
		break
	}
	if len(b.dgs) == 0 {
		t.free <- b
		return spare // the loop is behind: read, count, drop
	}
	return b
}

// putBatch gives a batch's buffers from the n-th on back, then the batch.
func (t *Transport) putBatch(b *rxBatch, n int) {
	for i := n; i < len(b.dgs); i++ {
		t.bufs <- b.dgs[i].buf
		b.dgs[i].buf = nil
	}
	b.dgs, b.n = b.dgs[:0], 0
	t.free <- b
}

// maxReadFailures is how many reads in a row may fail before the reader
// gives up and the transport closes (about 10 s of failures with backoff).
const maxReadFailures = 200

// fatal reports an error that ends the transport (the socket closed under
// it); err wraps ErrClosed, as every error saying why a session ended does.
func (t *Transport) fatal(err error) {
	select {
	case t.cmds <- func(clock.Time) {
		if t.loopErr == nil {
			t.loopErr = err
		}
		t.shutdown()
	}:
	case <-t.done:
	}
}

func (t *Transport) shutdown() {
	t.closeMu.Do(func() { close(t.closing) })
}

// closeTimeout bounds how long Close waits for sessions to close in order.
func (t *Transport) closeTimeout() time.Duration { return t.cfg.Latency + time.Second }

// loop is the goroutine that owns the endpoint.
func (t *Transport) loop() {
	defer close(t.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var closingSince clock.Time
	closing := false
	now := t.now()
	nextStatus := now.Add(t.cfg.StatsInterval)
	for {
		if !closing {
			select {
			case <-t.closing:
				closing = true
				closingSince = now
				t.ep.Close(now)
			default:
			}
		}
		// Closing ends when every session has closed in order, after the
		// timeout, or at once when the socket failed (nothing can be sent).
		if closing && (t.ep.Idle() || now.Sub(closingSince) >= t.closeTimeout() || t.loopErr != nil) {
			t.finish(now)
			return
		}
		if now >= t.ep.NextTimeout() {
			t.ep.HandleTimeout(now)
		}
		if now >= nextStatus {
			for _, s := range t.sessions {
				if s.statsStarted {
					s.reportStatus(now)
				}
			}
			nextStatus = now.Add(t.cfg.StatsInterval)
		}
		t.flush(now)
		next := clock.Min(t.ep.NextTimeout(), nextStatus)
		wait := time.Duration(next - now)
		if next == clock.Never {
			wait = time.Hour
		}
		if closing {
			wait = min(wait, 10*time.Millisecond)
		}
		if wait > 0 {
			timer.Reset(wait)
			var b *rxBatch
			var cmd func(clock.Time)
			select {
			case b = <-t.rx:
			case cmd = <-t.cmds:
			case <-timer.C:
			case <-t.closingCh(closing):
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			now = t.now() // the one clock reading of this turn
			if b != nil {
				t.handleBatch(now, b)
			}
			if cmd != nil {
				cmd(now)
			}
		} else {
			now = t.now() // a timer is already due
		}
		// Take whatever else is ready without blocking, bounded so timers
		// still run under a flood.
		for range 64 {
			select {
			case b := <-t.rx:
				t.handleBatch(now, b)
				continue
			case cmd := <-t.cmds:
				cmd(now)
				continue
			default:
			}
			break
		}
	}
}

// closingCh returns t.closing until the transport is closing, then nil (a
// closed channel would spin the select).
func (t *Transport) closingCh(closing bool) chan struct{} {
	if closing {
		return nil
	}
	return t.closing
}

func (t *Transport) handleBatch(now clock.Time, b *rxBatch) {
	for i := 0; i < b.n; i++ {
		d := &b.dgs[i]
		t.ep.HandleDatagram(now, d.from, d.buf[:d.n])
	}
	t.putBatch(b, 0)
}

// flush sends what the endpoint has to send and dispatches its events.
func (t *Transport) flush(now clock.Time) {
	for {
		n, to, ok := t.ep.PollTransmit(now, t.txbuf)
		if !ok {
			break
		}
		if failed, _ := t.io.write(t.txbuf[:n], to); failed > 0 {
			t.stats.writeErrors.Add(int64(failed))
		}
	}
	if failed, _ := t.io.flush(); failed > 0 {
		t.stats.writeErrors.Add(int64(failed))
	}
	for {
		ev, ok := t.ep.PollEvent()
		if !ok {
			break
		}
		t.dispatch(now, ev)
	}
}

func (t *Transport) dispatch(now clock.Time, ev core.Event) {
	s := t.sessions[ev.Conn]
	switch ev.Type {
	case core.EventConnected:
		if s != nil { // a session we dialed
			s.established(now)
			return
		}
		s = newSession(t, ev.Conn)
		t.sessions[ev.Conn] = s
		s.established(now) // before Accept can see it
		if t.listener == nil || !t.listener.offer(s) {
			ev.Conn.Close(now, core.CodeApplication, "not accepting")
		}
		return
	case core.EventClosed:
		if s != nil {
			delete(t.sessions, ev.Conn)
			s.closed(ev.Conn.Stats(), ev.Err)
		}
		return
	}
	if s != nil {
		s.handleEvent(now, ev)
	}
}

func (t *Transport) finish(now clock.Time) {
	err := t.loopErr
	if err == nil {
		err = ErrClosed
	}
	for c, s := range t.sessions {
		s.closed(c.Stats(), err)
	}
	clear(t.sessions)
	if t.listener != nil {
		t.listener.closeQueue()
	}
	// Callbacks already queued still run, on their own goroutine; the loop
	// does not wait for them, as one may be calling into the transport (a
	// key frame written, Close), which needs the loop to have ended.
	close(t.calls)
	// Stop the reader: close the socket we own, or wake it with a deadline.
	if t.ownsConn {
		_ = t.Conn.Close()
	} else {
		wake(t.Conn)
	}
	<-t.readerD
	if !t.ownsConn {
		_ = t.Conn.SetReadDeadline(time.Time{})
	}
}

// Close closes every session in order (each finishes sending what it holds
// within its deadlines and tells its peer, bounded by Latency + 1 s), stops
// the goroutines and, if the transport opened its socket (Dial, Listen),
// closes it. A Conn given by the caller is left open. Callbacks may call
// Close; it does not wait for a callback still running or queued, whose
// calls into the transport then fail with ErrClosed.
func (t *Transport) Close() error {
	if err := t.init(false); err != nil && t.done == nil {
		if t.ownsConn && t.Conn != nil {
			_ = t.Conn.Close() // Dial or Listen opened it for a transport that never ran
		}
		return err
	}
	t.shutdown()
	<-t.done
	return nil
}

// Dial opens a session to addr over the transport.
func (t *Transport) Dial(ctx context.Context, addr net.Addr) (*Session, error) {
	if err := t.init(false); err != nil {
		return nil, err
	}
	ap, ok := addrPortOf(addr)
	if !ok {
		return nil, fmt.Errorf("spillway: dial: unsupported address %v", addr)
	}
	ap = unmap(ap)
	var s *Session
	err := t.do(ctx, func(now clock.Time) error {
		c, err := t.ep.Connect(now, ap)
		if err != nil {
			return err
		}
		s = newSession(t, c)
		t.sessions[c] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spillway: dial %v: %w", addr, err)
	}
	select {
	case <-s.ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("spillway: dial %v: %w", addr, s.err)
	case <-ctx.Done():
		_ = t.do(context.Background(), func(now clock.Time) error {
			s.conn.Close(now, core.CodeApplication, "dial canceled")
			return nil
		})
		return nil, ctx.Err()
	}
}

// Listen makes the transport accept sessions. A transport has one listener.
func (t *Transport) Listen() (*Listener, error) {
	if err := t.init(true); err != nil {
		return nil, err
	}
	l := &Listener{t: t, accept: make(chan *Session, 64), done: make(chan struct{})}
	err := t.do(context.Background(), func(clock.Time) error {
		if t.listener != nil {
			return fmt.Errorf("spillway: transport already has a listener")
		}
		t.listener = l
		t.ep.SetAccept(true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Dial opens a UDP socket and a session to addr ("host:port"). Closing the
// session closes the socket.
func Dial(ctx context.Context, addr string, cfg *Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err // before a socket is opened
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("spillway: dial: %w", err)
	}
	if len(ua.IP) == 0 || ua.Port == 0 {
		return nil, fmt.Errorf("spillway: dial: address %q: want host:port, a host and a port", addr)
	}
	network := "udp4"
	if ua.IP.To4() == nil {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("spillway: dial: %w", err)
	}
	t := &Transport{Conn: uc, Config: cfg, ownsConn: true, closeWithSession: true}
	s, err := t.Dial(ctx, ua)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return s, nil
}

// Listen opens a UDP socket on addr ("host:port"; port 0 picks one) and
// accepts sessions on it. Closing the listener closes the socket and every
// session on it.
func Listen(addr string, cfg *Config) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err // before the port is bound
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("spillway: listen: %w", err)
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("spillway: listen: %w", err)
	}
	t := &Transport{Conn: uc, Config: cfg, ownsConn: true}
	l, err := t.Listen()
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	l.ownsTransport = true
	return l, nil
}

// Listener accepts incoming sessions.
type Listener struct {
	t             *Transport
	accept        chan *Session
	done          chan struct{}
	closeOnce     sync.Once
	ownsTransport bool
}

// offer queues a new session for Accept (loop goroutine).
func (l *Listener) offer(s *Session) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.accept <- s:
		return true
	default:
		return false
	}
}

func (l *Listener) closeQueue() {
	l.closeOnce.Do(func() { close(l.done) })
}

// Accept waits for the next session.
func (l *Listener) Accept(ctx context.Context) (*Session, error) {
	select {
	case <-l.done: // closed: a session still queued is not handed out
		return nil, ErrClosed
	default:
	}
	select {
	case s := <-l.accept:
		return s, nil
	default:
	}
	select {
	case s := <-l.accept:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, ErrClosed
	case <-l.t.done:
		return nil, ErrClosed
	}
}

// Addr returns the local address.
func (l *Listener) Addr() net.Addr { return l.t.Conn.LocalAddr() }

// Close stops accepting. If Listen opened the socket, Close also closes
// every session on it (in order) and the socket.
func (l *Listener) Close() error {
	_ = l.t.do(context.Background(), func(clock.Time) error {
		l.t.ep.SetAccept(false)
		if l.t.listener == l {
			l.t.listener = nil
		}
		return nil
	})
	l.closeQueue()
	if l.ownsTransport {
		return l.t.Close()
	}
	// Sessions that arrived but were never accepted are refused now.
	for {
		select {
		case s := <-l.accept:
			_ = s.CloseWithError(core.CodeApplication, "not accepted")
		default:
			return nil
		}
	}
}
