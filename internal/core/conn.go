package core

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

type connState uint8

const (
	stateHandshake   connState = iota // client: Hellos going out
	stateEstablished                  // both sides know each other
	stateClosing                      // local close: flushing, then sending Close
	stateDraining                     // peer closed: one Close reply to send
	stateClosed                       // gone: the endpoint forgets it
)

var stateNames = [...]string{"handshake", "established", "closing", "draining", "closed"}

func (s connState) String() string { return stateNames[s] }

// Timing constants of the connection machinery.
const (
	helloInitialBackoff = 250 * time.Millisecond
	// helloMaxBackoff caps the Hello's doubling backoff. Uncapped, three
	// lost Hellos put the next 4 s away and five 16 s, and the default 10 s
	// HandshakeTimeout held 6 Hellos; capped, it holds 13. A Hello a second
	// is small against any media rate.
	helloMaxBackoff  = time.Second
	pingInterval     = time.Second // RTT probes while traffic flows
	closeRepeats     = 3
	minCloseInterval = 20 * time.Millisecond
	announceInterval = 100 * time.Millisecond // minimum between repeated stream announcements
)

// Conn is one session with a peer: streams of frames each way, sharing one
// packet-number space, pacer and feedback loop. Its methods are called by
// the goroutine that owns the Endpoint.
type Conn struct {
	ep       *Endpoint
	cfg      *Config
	incoming bool
	state    connState

	localCID, remoteCID uint32
	peer                netip.AddrPort
	epoch               clock.Time // timestamps we send count from here

	// handshake, client side
	cookie       [wire.MaxCookieLen]byte
	cookieLen    int
	helloNext    clock.Time
	helloBackoff time.Duration
	helloSent    clock.Time
	hsDeadline   clock.Time
	// handshake, server side: an Accept is due
	acceptPending bool

	peerParams  wire.TransportParams
	idleTimeout time.Duration

	nextPN        int64
	lastRecv      clock.Time
	lastSend      clock.Time
	lastMediaSend clock.Time
	lastMediaRecv clock.Time // media (data, retransmission, repair) arrived: the receiving side needs an RTT too, for its NACKs
	lastPingSent  clock.Time
	pings         [4]clock.Time // send times of the last pings, matched by their pongs (0: none)
	pingSoon      bool          // a ping is due at once (just established)
	pingSampled   bool          // an RTT sample came from a pong
	confirmed     bool          // a server has had a packet from its client since the Accept
	retries       int           // Retries taken during the handshake
	pongPending   bool
	pongEcho      uint64
	pongArrived   clock.Time
	replyCredit   int // bytes the peer's packets have earned in replies (replyCreditMax)

	rtt    arq.RTT
	window arq.ReceiveWindow

	closeCode    uint16
	closeReason  string
	closeSent    int
	closeNext    clock.Time
	closeFlushBy clock.Time
	closeErr     error
	closeEvented bool

	snd          sender
	rcv          receiver
	recvBytes    int // bytes of receive buffers this conn holds (assembly, playout, undelivered events)
	queuedEvents int // events of this conn waiting in the endpoint's queue

	stats ConnStats
}

func newConn(e *Endpoint, now clock.Time, localCID uint32, peer netip.AddrPort, incoming bool) *Conn {
	c := &Conn{
		ep:           e,
		cfg:          &e.cfg,
		incoming:     incoming,
		localCID:     localCID,
		peer:         peer,
		epoch:        now,
		lastRecv:     now,
		lastSend:     now,
		lastPingSent: now,
		idleTimeout:  e.cfg.IdleTimeout,
		replyCredit:  wire.MinHelloSize,
	}
	c.snd.init(c)
	c.rcv.init(c)
	if !incoming {
		c.state = stateHandshake
		c.helloNext = now
		c.helloBackoff = helloInitialBackoff
		c.hsDeadline = now.Add(e.cfg.HandshakeTimeout)
	}
	return c
}

// Incoming reports whether the peer initiated the connection.
func (c *Conn) Incoming() bool { return c.incoming }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.peer }

// LocalID returns the connection ID the peer addresses us with.
func (c *Conn) LocalID() uint32 { return c.localCID }

// Established reports whether the handshake completed and the connection
// has not started closing.
func (c *Conn) Established() bool { return c.state == stateEstablished }

// Closed reports whether the connection is gone.
func (c *Conn) Closed() bool { return c.state == stateClosed }

// Err returns why the connection closed (nil while open or after a local
// orderly close).
func (c *Conn) Err() error { return c.closeErr }

// PeerLatency returns the peer's announced transport budget (0 before the
// handshake completes).
func (c *Conn) PeerLatency() time.Duration { return c.peerParams.Latency }

func (c *Conn) log() *slog.Logger { return c.cfg.Logger }

func (c *Conn) localParams() wire.TransportParams {
	return wire.TransportParams{
		FragmentSize:    uint16(c.fragSize()),
		MaxDatagramSize: uint16(c.cfg.MaxDatagramSize),
		IdleTimeout:     c.cfg.IdleTimeout,
		MaxFrameSize:    uint32(c.cfg.MaxFrameSize),
		Latency:         c.cfg.Latency,
	}
}

// fragSize is the fragment size this side sends: ours, shrunk to fit the
// peer's datagrams once we know them.
func (c *Conn) fragSize() int {
	f := c.cfg.FragmentSize
	if m := int(c.peerParams.MaxDatagramSize); m != 0 && f+wire.MaxPacketOverhead > m {
		f = m - wire.MaxPacketOverhead
	}
	return f
}

func (c *Conn) setPeerParams(p wire.TransportParams) {
	c.peerParams = p
	if p.IdleTimeout > 0 && p.IdleTimeout < c.idleTimeout {
		c.idleTimeout = p.IdleTimeout
	}
	c.rcv.setPeer(p)
}

func (c *Conn) establish(now clock.Time) {
	c.state = stateEstablished
	c.lastRecv = now
	// The handshake's RTT sample may include a lost Hello's backoff: measure
	// it properly at once (a server once the client shows it has the Accept).
	c.pingSoon = !c.incoming
	c.snd.updateRate()
	c.ep.pushEvent(Event{Type: EventConnected, Conn: c})
	c.log().Debug("spillway: connection established", "peer", c.peer, "incoming", c.incoming, "rtt", c.rtt.Smoothed())
}

// handleHandshake takes a Retry, Accept or Reject for a client connection.
func (c *Conn) handleHandshake(now clock.Time, h *wire.Handshake) {
	if c.state != stateHandshake {
		return // a late duplicate
	}
	c.lastRecv = now
	switch h.Msg {
	case wire.MsgRetry:
		if len(h.Cookie) == 0 {
			c.stats.ProtocolErrors++
			return
		}
		c.cookieLen = copy(c.cookie[:], h.Cookie)
		c.retries++
		if c.retries == 1 {
			// The path works: answer at once and restart the backoff. Later
			// Retries (a cookie expired) only replace the cookie: answering
			// each at once would let spoofed Retries make us send 30 times
			// their size.
			c.helloNext = now
			c.helloBackoff = helloInitialBackoff
		}
	case wire.MsgAccept:
		if h.SrcConnID == 0 || !acceptableParams(&h.Params, *c.cfg) {
			c.fail(now, fmt.Errorf("%w: server sent unacceptable transport parameters", ErrRejected))
			return
		}
		c.remoteCID = h.SrcConnID
		c.setPeerParams(h.Params)
		c.rtt.Add(now, now.Sub(c.helloSent))
		c.establish(now)
	case wire.MsgReject:
		c.fail(now, &RejectError{Reason: h.Params.RejectReason})
	}
}

// fail closes the connection at once, without telling the peer.
func (c *Conn) fail(now clock.Time, err error) {
	if c.state == stateClosed {
		return
	}
	c.closeErr = err
	c.toClosed(now)
}

func (c *Conn) toClosed(now clock.Time) {
	c.state = stateClosed
	c.snd.dropAll(now, "connection closed")
	c.rcv.dropAll(now)
	if !c.closeEvented {
		c.closeEvented = true
		c.ep.pushEvent(Event{Type: EventClosed, Conn: c, Err: c.closeErr})
	}
	c.log().Debug("spillway: connection closed", "peer", c.peer, "err", c.closeErr)
}

// handlePacket takes a short-header packet routed to this connection.
func (c *Conn) handlePacket(now clock.Time, typ wire.Type, b []byte) {
	if c.state == stateHandshake || c.state == stateClosed {
		c.stats.PacketsDropped++
		return
	}
	var sh wire.ShortHeader
	if _, err := sh.Parse(b); err != nil {
		c.ep.stats.Malformed++
		return
	}
	pn := wire.DecodePacketNumber(c.window.Largest(), sh.PacketNumber)
	// A packet is only recorded once it has parsed, so garbage cannot burn
	// packet numbers that real packets then collide with.
	switch typ {
	case wire.TypeData, wire.TypeRetransmit:
		var h wire.DataHeader
		payload, err := h.Parse(b)
		if err != nil {
			c.ep.stats.Malformed++
			return
		}
		if !c.accept(now, pn, len(b)) {
			return
		}
		c.lastMediaRecv = now
		c.rcv.handleData(now, pn, &h, payload, len(b))
	case wire.TypeRepair:
		var h wire.RepairHeader
		payload, err := h.Parse(b)
		if err != nil {
			c.ep.stats.Malformed++
			return
		}
		if !c.accept(now, pn, len(b)) {
			return
		}
		c.lastMediaRecv = now
		c.rcv.handleRepair(now, pn, &h, payload, len(b))
	case wire.TypeFeedback:
		rtcp, err := wire.ParseFeedbackHeader(b, &sh)
		if err != nil {
			c.ep.stats.Malformed++
			return
		}
		if !c.rcv.parseFeedback(rtcp) {
			c.ep.stats.Malformed++
			return
		}
		if !c.accept(now, pn, len(b)) {
			return
		}
		c.rcv.notePacket(now, pn)
		c.handleFeedback(now)
	case wire.TypePing:
		var p wire.Ping
		if err := p.Parse(b); err != nil {
			c.ep.stats.Malformed++
			return
		}
		if !c.accept(now, pn, len(b)) {
			return
		}
		c.rcv.notePacket(now, pn)
		c.handlePing(now, &p)
	case wire.TypeClose:
		var cl wire.Close
		if err := cl.Parse(b); err != nil {
			c.ep.stats.Malformed++
			return
		}
		if !c.accept(now, pn, len(b)) {
			return
		}
		c.rcv.notePacket(now, pn)
		c.handleClose(now, &cl)
	default:
		c.ep.stats.Malformed++
	}
}

// The reply credit: what the peer's packets make this side send in
// reply (NACK messages, pongs) stays within the bytes they brought, so a
// peer, or whoever can spoof one, gains nothing by amplification. Every
// packet accepted adds its size, up to replyCreditMax, and each reply
// takes its own; a connection starts with a padded Hello's worth
// (wire.MinHelloSize). A NACK message is cut to the credit (the numbers
// left out are asked again at their next round, as after a lost NACK), a
// pong without credit is not sent (the peer's next ping measures the
// RTT); both count in ConnStats.RepliesWithheld. Honest traffic never
// meets it: a 1200-byte media packet pays for 297 NACK pairs.
const replyCreditMax = 64 << 10

// accept records a parsed packet's number; false for a duplicate.
func (c *Conn) accept(now clock.Time, pn int64, size int) bool {
	if !c.window.Record(pn) {
		c.stats.PacketsDuplicated++
		return false
	}
	c.lastRecv = now
	c.stats.PacketsReceived++
	c.stats.BytesReceived += int64(size)
	c.replyCredit = min(c.replyCredit+size, replyCreditMax)
	if !c.confirmed {
		c.confirmed = true
		c.pingSoon = c.pingSoon || c.incoming // the client has the Accept: now measure the RTT
	}
	return true
}

func (c *Conn) handlePing(now clock.Time, p *wire.Ping) {
	if !p.Pong {
		c.pongPending = true
		c.pongEcho = p.Echo
		c.pongArrived = now
		return
	}
	// Only a pong for a ping we sent, once, is a sample: anything else is a
	// replay or a forgery.
	sent := clock.Time(p.Echo)
	match := -1
	for i, at := range c.pings {
		if at != 0 && at == sent {
			match = i
		}
	}
	if match < 0 || sent > now {
		c.stats.ProtocolErrors++
		return
	}
	c.pings[match] = 0
	// A peer that claims to have held the ping longer than the round trip
	// took is wrong or lying; a round trip of 0 is a simulator's.
	sample := max(now.Sub(sent)-time.Duration(p.HoldMicros)*time.Microsecond, time.Microsecond)
	if !c.pingSampled {
		// The handshake's sample may have included a lost packet's backoff:
		// the first measured round trip starts the estimate afresh.
		c.pingSampled = true
		c.rtt = arq.RTT{}
	}
	c.rtt.Add(now, sample)
	c.rttUpdated()
	// The ping's one-way transit to the peer, on the two clocks: the
	// playout group reads the clocks' drift from it as well as from the
	// data packets' (docs/PROTOCOL.md §8).
	if g := c.rcv.group; g != nil && p.ArrivalMicros <= maxPeerMicros {
		g.ObserveReverseTransit(sent, time.Duration(p.ArrivalMicros)*time.Microsecond-sent.Sub(c.epoch))
	}
}

// maxPeerMicros bounds the arrival time a pong may report (about 35
// years after the peer's epoch): beyond it the transit would overflow.
const maxPeerMicros = 1 << 50

func (c *Conn) handleClose(now clock.Time, cl *wire.Close) {
	if cl.Reply {
		if c.state == stateClosing {
			c.toClosed(now)
		}
		return
	}
	if c.closeErr == nil && c.state != stateClosing {
		c.closeErr = &CloseError{Code: cl.Code, Reason: string(cl.Reason), Remote: true}
	}
	c.rcv.peerClosed(now)
	c.state = stateDraining
}

// Close closes the connection in an orderly way: no more frames are taken,
// queued frames still go while their deadlines allow, then the peer is told.
func (c *Conn) Close(now clock.Time, code uint16, reason string) {
	switch c.state {
	case stateHandshake:
		c.closeErr = nil
		c.toClosed(now)
	case stateEstablished:
		c.state = stateClosing
		c.closeCode = code
		if len(reason) > wire.MaxReasonLen {
			reason = reason[:wire.MaxReasonLen]
		}
		c.closeReason = reason
		c.closeFlushBy = now.Add(c.cfg.Latency)
		c.closeNext = now
		c.snd.closeStreams()
	}
}

func (c *Conn) closeInterval() time.Duration {
	return max(c.rtt.Smoothed(), minCloseInterval)
}

// handleTimeout runs the connection's due timers.
func (c *Conn) handleTimeout(now clock.Time) {
	switch c.state {
	case stateClosed:
		return
	case stateHandshake:
		if now >= c.hsDeadline {
			c.fail(now, ErrHandshakeTimeout)
		}
		return
	}
	if now.Sub(c.lastRecv) >= c.idleTimeout {
		c.fail(now, fmt.Errorf("%w: %w", ErrClosed, ErrIdleTimeout))
		return
	}
	if c.state == stateClosing && c.closeSent >= closeRepeats && now >= c.closeNext {
		c.toClosed(now)
		return
	}
	c.snd.handleTimeout(now)
	c.rcv.handleTimeout(now)
}

// nextTimeout returns when the connection next needs handleTimeout or may
// send (its pacer allowing), or clock.Never.
func (c *Conn) nextTimeout() clock.Time {
	switch c.state {
	case stateClosed:
		return clock.Never
	case stateHandshake:
		return clock.Min(c.hsDeadline, c.helloNext)
	case stateDraining:
		return clock.Time(0) // the reply goes out at once; any past time will do
	}
	t := c.lastRecv.Add(c.idleTimeout)
	if c.acceptPending || c.pongPending {
		return clock.Min(t, c.lastSend)
	}
	if c.state == stateClosing {
		if c.snd.queued == 0 {
			return clock.Min(t, c.closeNext) // the next Close, or the end
		}
		t = clock.Min(t, c.closeFlushBy)
	}
	t = clock.Min(t, c.lastSend.Add(c.cfg.KeepAlivePeriod))
	if c.pingSoon {
		t = clock.Min(t, c.lastSend)
	}
	if c.state == stateEstablished && c.mediaActive() > c.lastPingSent {
		t = clock.Min(t, c.lastPingSent.Add(pingInterval))
	}
	t = clock.Min(t, c.rcv.nextTimeout())
	t = clock.Min(t, c.snd.nextTimeout())
	t = clock.Min(t, c.nextFeedback())
	return t
}

// pollTransmit writes the connection's next datagram into dst.
func (c *Conn) pollTransmit(now clock.Time, dst []byte) (int, bool) {
	if len(dst) < c.cfg.MaxDatagramSize {
		return 0, false
	}
	switch c.state {
	case stateClosed:
		return 0, false
	case stateHandshake:
		return c.pollHello(now, dst)
	case stateDraining:
		n := c.appendClose(now, dst[:0], CodeNoError, "", true)
		c.toClosed(now)
		return n, n > 0
	}
	if c.acceptPending {
		c.acceptPending = false
		h := wire.Handshake{Msg: wire.MsgAccept, Version: wire.Version1, DstConnID: c.remoteCID, SrcConnID: c.localCID, Params: c.localParams()}
		b, err := h.Append(dst[:0], 0)
		if err == nil {
			c.sent(now, len(b), classHandshake)
			return len(b), true
		}
	}
	if c.pongPending && c.replyCredit < wire.PongLen {
		c.pongPending = false // the pings' bytes bought no more (replyCreditMax)
		c.stats.RepliesWithheld++
	}
	if c.pongPending {
		c.pongPending = false
		hold := now.Sub(c.pongArrived) / time.Microsecond
		hold = min(max(hold, 0), wire.MaxHoldMicros)
		p := wire.Ping{DstConnID: c.remoteCID, PacketNumber: c.pnTrunc(), Pong: true, Echo: c.pongEcho, HoldMicros: uint32(hold),
			ArrivalMicros: uint64(max(c.pongArrived.Sub(c.epoch), 0) / time.Microsecond)}
		if b, err := p.Append(dst[:0]); err == nil {
			c.consumePN()
			c.replyCredit -= len(b)
			c.sent(now, len(b), classControl)
			return len(b), true
		}
	}
	if c.state == stateClosing && c.closeSent < closeRepeats && now >= c.closeNext &&
		(c.snd.queued == 0 || now >= c.closeFlushBy) {
		c.snd.dropAll(now, "connection closing")
		c.closeSent++
		c.closeNext = now.Add(c.closeInterval())
		n := c.appendClose(now, dst[:0], c.closeCode, c.closeReason, false)
		return n, n > 0
	}
	if n, ok := c.pollFeedback(now, dst); ok {
		return n, true
	}
	if n, ok := c.snd.pollMedia(now, dst); ok {
		return n, true
	}
	if c.pingDue(now) {
		c.lastPingSent = now
		c.pingSoon = false
		copy(c.pings[1:], c.pings[:len(c.pings)-1])
		c.pings[0] = now
		if now == 0 {
			c.pings[0] = 1 // 0 marks an empty slot; 1 ns later is the same ping
		}
		p := wire.Ping{DstConnID: c.remoteCID, PacketNumber: c.pnTrunc(), Echo: uint64(c.pings[0])}
		if b, err := p.Append(dst[:0]); err == nil {
			c.consumePN()
			c.stats.PingsSent++
			c.sent(now, len(b), classControl)
			return len(b), true
		}
	}
	return 0, false
}

func (c *Conn) pingDue(now clock.Time) bool {
	if c.pingSoon || now.Sub(c.lastSend) >= c.cfg.KeepAlivePeriod {
		return true
	}
	return c.state == stateEstablished && c.mediaActive() > c.lastPingSent && now.Sub(c.lastPingSent) >= pingInterval
}

// mediaActive is when media last left or arrived: pings measure the RTT
// while either direction carries media.
func (c *Conn) mediaActive() clock.Time { return clock.Max(c.lastMediaSend, c.lastMediaRecv) }

func (c *Conn) pollHello(now clock.Time, dst []byte) (int, bool) {
	if now < c.helloNext {
		return 0, false
	}
	h := wire.Handshake{Msg: wire.MsgHello, Version: wire.Version1, SrcConnID: c.localCID, Cookie: c.cookie[:c.cookieLen], Params: c.localParams()}
	b, err := h.Append(dst[:0], wire.MinHelloSize)
	if err != nil {
		c.fail(now, fmt.Errorf("spillway: building hello: %w", err))
		return 0, false
	}
	c.helloSent = now
	c.helloNext = now.Add(c.helloBackoff)
	c.helloBackoff = min(2*c.helloBackoff, helloMaxBackoff)
	c.sent(now, len(b), classHandshake)
	return len(b), true
}

func (c *Conn) appendClose(now clock.Time, dst []byte, code uint16, reason string, reply bool) int {
	cl := wire.Close{DstConnID: c.remoteCID, PacketNumber: c.pnTrunc(), Reply: reply, Code: code, Reason: []byte(reason)}
	b, err := cl.Append(dst)
	if err != nil {
		return 0
	}
	c.consumePN()
	c.sent(now, len(b), classControl)
	return len(b)
}

func (c *Conn) pnTrunc() uint32 { return uint32(c.nextPN) & (1<<24 - 1) }
func (c *Conn) consumePN() int64 {
	pn := c.nextPN
	c.nextPN++
	return pn
}

// packetClass says how a datagram leaving counts.
type packetClass uint8

const (
	classHandshake packetClass = iota // not paced: the handshake precedes all media
	classControl                      // feedback, ping, close: charged to the pacer
	classMedia                        // charged to the pacer, and marks media activity
)

// sent accounts a datagram leaving.
func (c *Conn) sent(now clock.Time, size int, class packetClass) {
	c.lastSend = now
	if class == classHandshake {
		return // counted in the endpoint's handshake figures, not the session's
	}
	c.stats.PacketsSent++
	c.stats.BytesSent += int64(size)
	c.snd.pacer.OnSent(now, size)
	if !c.snd.padding {
		c.snd.alr.OnSent(size)
	}
	if class != classMedia {
		c.snd.ctrlBytes += int64(size)
	}
	if class == classMedia {
		// Only what feedback reports leaves the path model's queue
		// (pathModel.noteDelivery): control datagrams (pings, drop
		// notices, reports; under 3 kbit/s in the bench) would stay in it.
		c.snd.path.onSent(now, size)
		c.lastMediaSend = now
		c.snd.probeSent(now, size)
	}
}

// rttUpdated passes a new RTT sample on to the recovery machinery.
func (c *Conn) rttUpdated() {
	if c.rcv.nack != nil {
		c.rcv.nack.SetRTT(&c.rtt)
	}
	if c.snd.hist != nil {
		c.snd.hist.SetRTT(&c.rtt)
	}
}

// RTT returns the smoothed round-trip time.
func (c *Conn) RTT() time.Duration { return c.rtt.Smoothed() }
