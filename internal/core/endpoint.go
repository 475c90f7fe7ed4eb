package core

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/bufpool"
	"github.com/spillway-rt/spillway/internal/ring"
	"github.com/spillway-rt/spillway/wire"
)

// Endpoint is the sans-I/O core of one socket: it routes datagrams to its
// connections, answers handshakes statelessly until a client has proved its
// address, and multiplexes what its connections send. One goroutine owns
// it; nothing here is safe for concurrent use.
//
// Drivers feed it with HandleDatagram and HandleTimeout, then drain
// PollTransmit (until !ok), PollEvent (until !ok) and read NextTimeout.
type Endpoint struct {
	cfg     Config
	cookies *cookieJar

	conns    []*Conn             // in creation order: iteration is deterministic
	byCID    map[uint32]*Conn    // local connection ID -> conn (lookup only)
	byClient map[clientKey]*Conn // server side: (address, client CID) -> conn
	// ended: the incoming connections that closed lately, so that a copy
	// of one's Hello (delayed by the network, or replayed from the
	// client's address) within its cookie's lifetime opens nothing.
	ended    [endedKeep]endedConn
	endedPos int
	rr       int // PollTransmit's round-robin position
	closed   bool

	stateless statelessQueue
	events    ring.Ring[Event]
	lastData  []byte // the Data of the last event returned, recycled on the next PollEvent
	pool      bufpool.Pool

	stats EndpointStats
}

type clientKey struct {
	addr netip.AddrPort
	cid  uint32
}

// endedKeep bounds the closed connections an endpoint remembers (ended):
// more closing within a cookie's lifetime push the oldest out early.
const endedKeep = 256

type endedConn struct {
	key clientKey
	at  clock.Time
	set bool
}

// endedLately reports whether the incoming connection k closed within
// CookieLifetime of now: a Hello naming it can only be a copy.
func (e *Endpoint) endedLately(now clock.Time, k clientKey) bool {
	for i := range e.ended {
		if d := &e.ended[i]; d.set && d.key == k && now.Sub(d.at) <= CookieLifetime {
			return true
		}
	}
	return false
}

// EndpointStats counts what an endpoint saw outside any connection.
type EndpointStats struct {
	DatagramsReceived int64
	Malformed         int64 // failed to parse
	UnknownConn       int64 // short-header packets for no connection
	WrongAddress      int64 // packets for a connection from another address
	BadSource         int64 // datagrams from port 0, unspecified, multicast or broadcast addresses
	HandshakeDropped  int64 // handshakes not answered (too small, bad cookie, queue full, ...)
	RetriesSent       int64
	RejectsSent       int64
	StatelessBytesIn  int64 // bytes of handshakes answered statelessly
	StatelessBytesOut int64 // bytes of those answers: never more than StatelessBytesIn
	ConnsAccepted     int64
	EventsDropped     int64 // events dropped because the application did not poll
}

// maxEvents bounds the event queue; a driver drains it after every input,
// so reaching it means the application stopped polling. One connection may
// hold at most maxConnEvents of them, so a peer cannot crowd the others
// out. Lifecycle events (connected, closed) are never dropped: there are at
// most two per connection.
const (
	maxEvents     = 1 << 16
	maxConnEvents = 1 << 12
)

// NewEndpoint returns an endpoint. It reads a cookie secret from cfg.Rand.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	secret := make([]byte, 32)
	if _, err := io.ReadFull(cfg.Rand, secret); err != nil {
		return nil, fmt.Errorf("spillway: reading cookie secret: %w", err)
	}
	return &Endpoint{
		cfg:      cfg,
		cookies:  newCookieJar(secret),
		byCID:    make(map[uint32]*Conn),
		byClient: make(map[clientKey]*Conn),
	}, nil
}

// Config returns the endpoint's configuration with defaults filled in.
func (e *Endpoint) Config() Config { return e.cfg }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats { return e.stats }

// Conns returns the endpoint's live connections (a new slice).
func (e *Endpoint) Conns() []*Conn { return append([]*Conn(nil), e.conns...) }

// SetAccept turns accepting incoming connections on or off.
func (e *Endpoint) SetAccept(on bool) { e.cfg.Accept = on }

func (e *Endpoint) newCID() (uint32, error) {
	var b [4]byte
	for range 64 {
		if _, err := io.ReadFull(e.cfg.Rand, b[:]); err != nil {
			return 0, fmt.Errorf("spillway: reading connection id: %w", err)
		}
		cid := binary.BigEndian.Uint32(b[:])
		if cid != 0 && e.byCID[cid] == nil {
			return cid, nil
		}
	}
	return 0, fmt.Errorf("spillway: no free connection id")
}

// Connect starts a handshake with remote and returns the connection; an
// EventConnected (or EventClosed) reports how it ends.
func (e *Endpoint) Connect(now clock.Time, remote netip.AddrPort) (*Conn, error) {
	if e.closed {
		return nil, ErrClosed
	}
	if !remote.IsValid() {
		return nil, fmt.Errorf("spillway: connect: invalid address %v", remote)
	}
	if len(e.conns) >= e.cfg.MaxConns {
		return nil, ErrTooManyConns
	}
	cid, err := e.newCID()
	if err != nil {
		return nil, err
	}
	c := newConn(e, now, cid, remote, false)
	e.addConn(c)
	return c, nil
}

func (e *Endpoint) addConn(c *Conn) {
	e.conns = append(e.conns, c)
	e.byCID[c.localCID] = c
	if c.incoming {
		e.byClient[clientKey{c.peer, c.remoteCID}] = c
	}
}

// removeClosed forgets connections that have closed (remembering the
// incoming ones a while: ended).
func (e *Endpoint) removeClosed(now clock.Time) {
	j := 0
	for _, c := range e.conns {
		if c.state == stateClosed {
			delete(e.byCID, c.localCID)
			if c.incoming {
				k := clientKey{c.peer, c.remoteCID}
				delete(e.byClient, k)
				e.ended[e.endedPos] = endedConn{key: k, at: now, set: true}
				e.endedPos = (e.endedPos + 1) % endedKeep
			}
			continue
		}
		e.conns[j] = c
		j++
	}
	clear(e.conns[j:])
	e.conns = e.conns[:j]
	if e.rr >= len(e.conns) {
		e.rr = 0
	}
}

// HandleDatagram takes one datagram that arrived from from. b is not
// retained.
func (e *Endpoint) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	e.stats.DatagramsReceived++
	if !validSource(from) {
		// Nothing can be sent back to it (a send to port 0 fails), and
		// only a spoofer sends from there.
		e.stats.BadSource++
		return
	}
	if len(b) > e.cfg.MaxDatagramSize {
		e.stats.Malformed++
		return
	}
	typ, flags, dcid, err := wire.Peek(b)
	if err != nil {
		e.stats.Malformed++
		return
	}
	if typ == wire.TypeHandshake {
		e.handleHandshake(now, from, wire.HandshakeMsg(flags), dcid, b)
		e.removeClosed(now)
		return
	}
	c := e.byCID[dcid]
	if c == nil {
		e.stats.UnknownConn++
		return
	}
	if from != c.peer {
		e.stats.WrongAddress++
		return
	}
	c.handlePacket(now, typ, b)
	if c.state == stateClosed {
		e.removeClosed(now)
	}
}

func (e *Endpoint) handleHandshake(now clock.Time, from netip.AddrPort, msg wire.HandshakeMsg, dcid uint32, b []byte) {
	if msg != wire.MsgHello {
		// Retry, Accept, Reject: for a client connection of ours.
		c := e.byCID[dcid]
		if c == nil || c.incoming || from != c.peer {
			e.stats.HandshakeDropped++
			return
		}
		var h wire.Handshake
		if err := h.Parse(b); err != nil {
			e.stats.Malformed++
			return
		}
		c.handleHandshake(now, &h)
		return
	}
	// A Hello. Nothing bigger than it may go back, and nothing is kept,
	// until its cookie proves the address.
	if len(b) < wire.MinHelloSize {
		e.stats.HandshakeDropped++
		return
	}
	var h wire.Handshake
	if err := h.Parse(b); err != nil {
		e.stats.Malformed++
		return
	}
	if h.SrcConnID == 0 {
		e.stats.Malformed++
		return
	}
	if h.Version != wire.Version1 {
		e.reject(now, from, &h, wire.RejectVersion, len(b))
		return
	}
	var minted clock.Time
	proven := false
	if len(h.Cookie) > 0 {
		minted, proven = e.cookies.check(h.Cookie, now, from, h.SrcConnID)
	}
	if proven {
		// The address is proven. A connection that exists answers again
		// (its Accept was lost), whether or not we still accept new ones;
		// one that is closing does not: the client would connect to a
		// connection about to go.
		if c := e.byClient[clientKey{from, h.SrcConnID}]; c != nil {
			if c.state == stateEstablished {
				c.acceptPending = true
			} else {
				e.stats.HandshakeDropped++
			}
			return
		}
	}
	if proven && e.endedLately(now, clientKey{from, h.SrcConnID}) {
		// A copy of the Hello of a connection that has closed: a client
		// dialing again picks a new connection ID. Dropped unanswered
		// (PROTOCOL §4.2), whether or not we still accept new ones.
		e.stats.HandshakeDropped++
		return
	}
	if !e.cfg.Accept || e.closed {
		e.reject(now, from, &h, wire.RejectRefused, len(b))
		return
	}
	if !proven {
		// No cookie, or an expired or forged one: a fresh Retry costs us
		// nothing and lets a slow honest client through; a forger learns
		// nothing from it.
		e.retry(from, &h, now, len(b))
		return
	}
	if len(e.conns) >= e.cfg.MaxConns {
		e.reject(now, from, &h, wire.RejectRefused, len(b))
		return
	}
	if !acceptableParams(&h.Params, e.cfg) {
		e.reject(now, from, &h, wire.RejectParams, len(b))
		return
	}
	cid, err := e.newCID()
	if err != nil {
		e.reject(now, from, &h, wire.RejectServerError, len(b))
		return
	}
	c := newConn(e, now, cid, from, true)
	c.remoteCID = h.SrcConnID
	c.setPeerParams(h.Params)
	c.rtt.Add(now, now.Sub(minted))
	c.acceptPending = true
	c.establish(now)
	e.addConn(c)
	e.stats.ConnsAccepted++
}

// validSource reports whether a datagram's source is an address a reply
// could go to: a unicast address and a non-zero port.
func validSource(a netip.AddrPort) bool {
	ip := a.Addr()
	if !ip.IsValid() || a.Port() == 0 || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	return !(ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// maxPeerLatency bounds the budget a peer may announce: timestamps wrap
// after 67 s, and a peer's budget decides how long we hold its frames.
const maxPeerLatency = 60 * time.Second

// acceptableParams checks a peer's transport parameters against ours.
func acceptableParams(p *wire.TransportParams, cfg Config) bool {
	if p.FragmentSize == 0 || p.Latency == 0 || p.Latency > maxPeerLatency {
		return false
	}
	if int(p.FragmentSize)+wire.MaxPacketOverhead > cfg.MaxDatagramSize {
		return false
	}
	// A peer must take datagrams as large as a padded Hello, as we must:
	// feedback (NACKs, transport-wide reports) needs the room.
	if p.MaxDatagramSize != 0 && int(p.MaxDatagramSize) < wire.MinHelloSize {
		return false
	}
	return true
}

func (e *Endpoint) retry(from netip.AddrPort, hello *wire.Handshake, now clock.Time, reqLen int) {
	var cookie [cookieLen]byte
	r := wire.Handshake{Msg: wire.MsgRetry, Version: wire.Version1, DstConnID: hello.SrcConnID,
		Cookie: e.cookies.mint(cookie[:0], now, from, hello.SrcConnID)}
	if e.queueStateless(from, &r, reqLen) {
		e.stats.RetriesSent++
	}
}

func (e *Endpoint) reject(_ clock.Time, from netip.AddrPort, hello *wire.Handshake, reason uint8, reqLen int) {
	r := wire.Handshake{Msg: wire.MsgReject, Version: wire.Version1, DstConnID: hello.SrcConnID,
		Params: wire.TransportParams{RejectReason: reason}}
	if e.queueStateless(from, &r, reqLen) {
		e.stats.RejectsSent++
	}
}

// queueStateless queues an answer to an unproven address, if it is no
// larger than the request and the queue has room.
func (e *Endpoint) queueStateless(to netip.AddrPort, h *wire.Handshake, reqLen int) bool {
	slot := e.stateless.reserve()
	if slot == nil {
		e.stats.HandshakeDropped++
		return false
	}
	b, err := h.Append(slot.buf[:0], 0)
	if err != nil || len(b) > reqLen || len(b) > len(slot.buf) {
		e.stats.HandshakeDropped++
		return false
	}
	slot.n = len(b)
	slot.to = to
	e.stateless.commit()
	e.stats.StatelessBytesIn += int64(reqLen)
	e.stats.StatelessBytesOut += int64(len(b))
	return true
}

// statelessQueue is a fixed ring of answers to unproven addresses: when it
// is full, more handshakes go unanswered (and are counted), so a flood
// costs a bounded amount of memory and never blocks.
type statelessQueue struct {
	slots      [64]statelessReply
	head, size int
}

type statelessReply struct {
	to  netip.AddrPort
	buf [128]byte
	n   int
}

func (q *statelessQueue) reserve() *statelessReply {
	if q.size == len(q.slots) {
		return nil
	}
	return &q.slots[(q.head+q.size)%len(q.slots)]
}

func (q *statelessQueue) commit() { q.size++ }

func (q *statelessQueue) pop() *statelessReply {
	if q.size == 0 {
		return nil
	}
	r := &q.slots[q.head]
	q.head = (q.head + 1) % len(q.slots)
	q.size--
	return r
}

// HandleTimeout runs whatever timers are due at now.
func (e *Endpoint) HandleTimeout(now clock.Time) {
	for _, c := range e.conns {
		c.handleTimeout(now)
	}
	e.removeClosed(now)
}

// NextTimeout returns when HandleTimeout should next be called, or
// clock.Never.
func (e *Endpoint) NextTimeout() clock.Time {
	t := clock.Never
	for _, c := range e.conns {
		t = clock.Min(t, c.nextTimeout())
	}
	return t
}

// PollTransmit writes the next datagram to send into dst and returns its
// length and destination. ok is false when nothing is to be sent now (the
// driver then waits for NextTimeout or input). dst should hold at least
// MaxDatagramSize bytes; a smaller dst is an error the driver sees as no
// datagram being sent, and such a connection's packets wait.
func (e *Endpoint) PollTransmit(now clock.Time, dst []byte) (n int, to netip.AddrPort, ok bool) {
	if r := e.stateless.pop(); r != nil {
		return copy(dst, r.buf[:r.n]), r.to, true
	}
	for i := range e.conns {
		c := e.conns[(e.rr+i)%len(e.conns)]
		if n, ok := c.pollTransmit(now, dst); ok {
			e.rr = (e.rr + i + 1) % len(e.conns)
			return n, c.peer, true
		}
	}
	e.removeClosed(now)
	return 0, netip.AddrPort{}, false
}

func (e *Endpoint) pushEvent(ev Event) {
	lifecycle := ev.Type == EventConnected || ev.Type == EventClosed
	if !lifecycle && (e.events.Len() >= maxEvents || (ev.Conn != nil && ev.Conn.queuedEvents >= maxConnEvents)) {
		e.stats.EventsDropped++
		if ev.Conn != nil {
			ev.Conn.stats.EventsDropped++
		}
		if ev.buf != nil {
			if ev.Conn != nil {
				ev.Conn.recvBytes -= cap(ev.buf)
			}
			e.pool.Put(ev.buf)
		}
		return
	}
	if ev.Conn != nil {
		ev.Conn.queuedEvents++
	}
	e.events.Push(ev)
}

// PollEvent returns the next event. The Data of an EventFrame is valid
// until the next PollEvent call.
func (e *Endpoint) PollEvent() (Event, bool) {
	if e.lastData != nil {
		e.pool.Put(e.lastData)
		e.lastData = nil
	}
	if e.events.Len() == 0 {
		return Event{}, false
	}
	ev := e.events.Pop()
	if ev.Conn != nil {
		ev.Conn.queuedEvents--
	}
	if ev.buf != nil {
		e.lastData = ev.buf
		if ev.Conn != nil {
			ev.Conn.recvBytes -= cap(ev.buf)
		}
		ev.buf = nil
	}
	return ev, true
}

// Close closes every connection in an orderly way and stops accepting.
// Connections finish sending what they hold (within deadlines) first.
func (e *Endpoint) Close(now clock.Time) {
	e.closed = true
	for _, c := range e.conns {
		c.Close(now, CodeNoError, "")
	}
}

// Idle reports whether the endpoint has no connections left and nothing to
// send: after Close, a driver may stop once it is idle.
func (e *Endpoint) Idle() bool { return len(e.conns) == 0 && e.stateless.size == 0 }
