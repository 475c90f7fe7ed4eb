package netem

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Receive queue bounds of a PacketConn. A datagram delivered to a full queue
// is dropped and counted in ConnStats.RecvQueueDropped, as a kernel drops on
// a full socket buffer.
const (
	// RecvQueueLen is the most datagrams a PacketConn's receive queue holds.
	RecvQueueLen = 1024
	// DefaultReadBuffer is the default bound, in payload bytes, of a
	// PacketConn's receive queue (see PacketConn.SetReadBuffer).
	DefaultReadBuffer = 4 << 20

	firstEphemeralPort = 49152
)

// ErrMessageTooLong is returned (wrapped in a *net.OpError) by a write of more
// than MaxDatagramSize bytes.
var ErrMessageTooLong = errors.New("netem: datagram longer than 65535 bytes")

// NetworkStats counts what a Network did as a whole (links and conns count
// their own).
type NetworkStats struct {
	// Unroutable counts datagrams written to an address no PacketConn was
	// listening on, or delivered after it was closed.
	Unroutable uint64
}

// Network is an in-memory network of PacketConns running in real time under
// the same link model as the Simulator (see LinkConfig), with timers. Inside
// a testing/synctest bubble its time is the bubble's fake time, so delays are
// exact and tests run instantly.
//
// Any two PacketConns on a Network can reach each other over an ideal link
// (the zero LinkConfig) until SetLink configures it otherwise. A Network
// starts no long-lived goroutine: one timer (time.AfterFunc, whose callback
// runs briefly at each event time) moves datagrams along, and Close stops it;
// read deadlines use timers the same way. Create and use a Network inside
// one synctest bubble, or outside every bubble. Its methods are safe for
// concurrent use.
type Network struct {
	mu    sync.Mutex
	eng   engine
	seed  uint64
	epoch time.Time

	timer *time.Timer
	armed clock.Time // when the timer will fire; clock.Never if stopped

	conns    map[netip.AddrPort]*PacketConn
	links    map[linkKey]*Link
	captures map[linkKey]CaptureFunc
	nextPort uint16
	closed   bool
	stats    NetworkStats
}

// NewNetwork returns an empty Network whose randomness derives from seed, as
// the Simulator's does (one stream per link direction).
func NewNetwork(seed uint64) *Network {
	return &Network{
		seed:     seed,
		epoch:    time.Now(),
		armed:    clock.Never,
		conns:    make(map[netip.AddrPort]*PacketConn),
		links:    make(map[linkKey]*Link),
		captures: make(map[linkKey]CaptureFunc),
		nextPort: firstEphemeralPort,
	}
}

// Listen returns a PacketConn bound to addr. Port 0 picks a free port from
// 49152 up. The address must be a specific one (not 0.0.0.0 or ::); IPv4
// addresses mapped into IPv6 are unmapped.
func (n *Network) Listen(addr netip.AddrPort) (*PacketConn, error) {
	addr = unmap(addr)
	if !addr.Addr().IsValid() || addr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("%w: Listen(%v): want a specific IP address", ErrInvalidAddr, addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("netem: Listen(%v): %w", addr, net.ErrClosed)
	}
	if addr.Port() == 0 {
		found := false
		for range 1<<16 - firstEphemeralPort {
			p := n.nextPort
			if n.nextPort++; n.nextPort == 0 {
				n.nextPort = firstEphemeralPort
			}
			if try := netip.AddrPortFrom(addr.Addr(), p); n.conns[try] == nil {
				addr, found = try, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: Listen(%v): no free port", ErrAddrInUse, addr)
		}
	} else if n.conns[addr] != nil {
		return nil, fmt.Errorf("%w: Listen(%v)", ErrAddrInUse, addr)
	}
	c := &PacketConn{
		n:       n,
		addr:    addr,
		laddr:   net.UDPAddrFromAddrPort(addr),
		done:    make(chan struct{}),
		notify:  make(chan struct{}, 1),
		rdl:     makeDeadline(),
		wdl:     makeDeadline(),
		q:       make([]*packet, RecvQueueLen),
		readBuf: DefaultReadBuffer,
	}
	n.conns[addr] = c
	return c, nil
}

// SetLink configures the link from a to b (one direction), creating it if
// needed; the conns need not exist yet. See Link.SetConfig for what happens
// to datagrams already on the link.
func (n *Network) SetLink(a, b netip.AddrPort, cfg LinkConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("SetLink %v->%v: %w", a, b, err)
	}
	a, b = unmap(a), unmap(b)
	if !a.IsValid() || !b.IsValid() || a == b {
		return fmt.Errorf("%w: SetLink(%v, %v)", ErrInvalidAddr, a, b)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("netem: SetLink: %w", net.ErrClosed)
	}
	if l := n.links[linkKey{a, b}]; l != nil {
		l.setConfig(cfg)
		return nil
	}
	n.links[linkKey{a, b}] = n.newLinkLocked(a, b, cfg)
	return nil
}

// newLinkLocked creates the link from a to b with its capture hook, if one
// was set before the link existed.
func (n *Network) newLinkLocked(a, b netip.AddrPort, cfg LinkConfig) *Link {
	l := newLink(n.seed, a, b, cfg, &n.mu)
	l.capture = n.captures[linkKey{a, b}]
	return l
}

// SetCapture sets the function called for each datagram delivered on the
// link from a to b (nil removes it), as Simulator.SetCapture does; it may be
// set before the link exists. fn runs at delivery, before the receiving
// PacketConn queues the datagram, with the network's lock held: it must not
// call the Network or its conns, and b is only valid during the call. at is
// the network's clock (time since Epoch). A Network without captures
// allocates nothing for them.
func (n *Network) SetCapture(a, b netip.AddrPort, fn CaptureFunc) {
	a, b = unmap(a), unmap(b)
	k := linkKey{a, b}
	n.mu.Lock()
	defer n.mu.Unlock()
	if fn == nil {
		delete(n.captures, k)
	} else {
		n.captures[k] = fn
	}
	if l := n.links[k]; l != nil {
		l.capture = fn
	}
}

// Epoch returns the wall-clock time the network's clock counts from (its
// creation): a capture hook's at is the time since Epoch.
func (n *Network) Epoch() time.Time { return n.epoch }

// Link returns the link from a to b, or nil if it does not exist yet (links
// are created by SetLink or by the first datagram between two conns).
func (n *Network) Link(a, b netip.AddrPort) *Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[linkKey{unmap(a), unmap(b)}]
}

// Stats returns the network's counters.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close closes every PacketConn, discards the datagrams in flight and stops
// the network's timer. Listen fails afterwards. Close is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.timer != nil {
		n.timer.Stop()
		n.armed = clock.Never
	}
	n.eng.drain()
	conns := make([]*PacketConn, 0, len(n.conns))
	for _, c := range n.conns { // order does not matter: each is closed alike
		conns = append(conns, c)
		c.closeLocked()
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.stopDeadlines()
	}
	return nil
}

// now is the network's clock: real (or synctest) time since NewNetwork.
func (n *Network) nowLocked() clock.Time {
	return clock.Max(clock.Since(n.epoch, time.Now()), n.eng.now)
}

// advanceLocked runs every event due by now and leaves the engine at now.
func (n *Network) advanceLocked() {
	now := n.nowLocked()
	e := &n.eng
	for {
		ev, ok := e.popDue(now)
		if !ok {
			break
		}
		if e.runPacket(&ev) {
			n.deliverLocked(ev.link.to, ev.pkt)
		}
	}
	e.now = now
}

// rearmLocked points the timer at the earliest pending event.
func (n *Network) rearmLocked() {
	next := n.eng.next()
	if next == n.armed {
		return
	}
	n.armed = next
	if next == clock.Never {
		n.timer.Stop() // armed was not Never, so the timer exists
		return
	}
	d := next.Sub(n.eng.now)
	if n.timer == nil {
		n.timer = time.AfterFunc(d, n.fire)
	} else {
		n.timer.Reset(d)
	}
}

// fire is the timer's callback.
func (n *Network) fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.armed = clock.Never // it just fired
	n.advanceLocked()
	n.rearmLocked()
}

func (n *Network) deliverLocked(to netip.AddrPort, p *packet) {
	c := n.conns[to]
	if c == nil {
		n.stats.Unroutable++
		n.eng.pool.put(p)
		return
	}
	if c.qlen == len(c.q) || c.qbytes+p.n > c.readBuf {
		c.stats.RecvQueueDropped++
		n.eng.pool.put(p)
		return
	}
	c.q[(c.qhead+c.qlen)%len(c.q)] = p
	c.qlen++
	c.qbytes += p.n
	c.signal()
}

// ConnStats counts what a PacketConn did.
type ConnStats struct {
	PacketsSent uint64 // datagrams handed to a link
	BytesSent   uint64

	PacketsReceived uint64 // datagrams read by the application
	BytesReceived   uint64

	// RecvQueueDropped counts datagrams dropped because the receive queue
	// was full (RecvQueueLen datagrams or the read buffer's bytes).
	RecvQueueDropped uint64
	// Unroutable counts datagrams written to an address nothing listened on.
	Unroutable uint64
	// TooLong counts writes refused for exceeding MaxDatagramSize.
	TooLong uint64
	// Truncated counts datagrams cut short by a read buffer too small.
	Truncated uint64
}

// PacketConn is one endpoint of a Network. It implements net.PacketConn, with
// *net.UDPAddr addresses, and the allocation-free ReadFromAddrPort and
// WriteToAddrPort. Writes never block: the link drops what it cannot queue.
// Reads block until a datagram arrives, the read deadline passes (an error
// wrapping os.ErrDeadlineExceeded, whose Timeout() is true) or the conn is
// closed (an error wrapping net.ErrClosed).
type PacketConn struct {
	n      *Network
	addr   netip.AddrPort
	laddr  *net.UDPAddr
	done   chan struct{} // closed by Close
	notify chan struct{} // a datagram may be waiting
	rdl    deadline
	wdl    deadline

	// Guarded by n.mu.
	closed  bool
	q       []*packet // ring of delivered datagrams
	qhead   int
	qlen    int
	qbytes  int
	readBuf int
	stats   ConnStats
}

var _ net.PacketConn = (*PacketConn)(nil)

// AddrPort returns the conn's address.
func (c *PacketConn) AddrPort() netip.AddrPort { return c.addr }

// LocalAddr returns the conn's address as a *net.UDPAddr.
func (c *PacketConn) LocalAddr() net.Addr { return c.laddr }

// Stats returns the conn's counters.
func (c *PacketConn) Stats() ConnStats {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return c.stats
}

// SetReadBuffer bounds the receive queue to bytes of payload (the default is
// DefaultReadBuffer), like (*net.UDPConn).SetReadBuffer. Datagrams already
// queued stay.
func (c *PacketConn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set", fmt.Errorf("%w: read buffer %d bytes", ErrInvalidConfig, bytes), netip.AddrPort{})
	}
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.readBuf = bytes
	return nil
}

// ReadFrom implements net.PacketConn; addr is a *net.UDPAddr.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromAddrPort reads the next datagram into b and returns its length and
// sender. A datagram longer than b is truncated to len(b), as UDP does.
func (c *PacketConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		expired, dl := c.rdl.state()
		if expired {
			if c.isClosed() {
				return 0, netip.AddrPort{}, c.opErr("read", net.ErrClosed, netip.AddrPort{})
			}
			return 0, netip.AddrPort{}, c.opErr("read", os.ErrDeadlineExceeded, netip.AddrPort{})
		}
		n, from, ok, err := c.tryRead(b)
		if ok || err != nil {
			return n, from, err
		}
		select {
		case <-c.notify:
		case <-c.done:
		case <-dl:
		}
	}
}

func (c *PacketConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *PacketConn) tryRead(b []byte) (n int, from netip.AddrPort, ok bool, err error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	if c.closed {
		return 0, netip.AddrPort{}, false, c.opErr("read", net.ErrClosed, netip.AddrPort{})
	}
	if c.qlen == 0 {
		return 0, netip.AddrPort{}, false, nil
	}
	p := c.q[c.qhead]
	c.q[c.qhead] = nil
	c.qhead = (c.qhead + 1) % len(c.q)
	c.qlen--
	c.qbytes -= p.n
	n = copy(b, p.bytes())
	if n < p.n {
		c.stats.Truncated++
	}
	from = p.from
	c.stats.PacketsReceived++
	c.stats.BytesReceived += uint64(n)
	c.n.eng.pool.put(p)
	if c.qlen > 0 {
		c.signal() // another reader may be waiting
	}
	return n, from, true, nil
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr or an
// address whose String() parses as ip:port.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var to netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		to = a.AddrPort()
	case nil:
	default:
		to, _ = netip.ParseAddrPort(a.String())
	}
	if !to.IsValid() {
		return 0, c.opErr("write", fmt.Errorf("%w: %v", ErrInvalidAddr, addr), netip.AddrPort{})
	}
	return c.WriteToAddrPort(b, to)
}

// WriteToAddrPort sends b to addr. b is copied: the caller may reuse it at
// once. Like a UDP socket, it reports success for a datagram the network
// then loses, drops, or cannot route (an address nothing listens on, or the
// conn's own address: a Network has no loopback).
func (c *PacketConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	addr = unmap(addr)
	if expired, _ := c.wdl.state(); expired && !c.isClosed() {
		return 0, c.opErr("write", os.ErrDeadlineExceeded, addr)
	}
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return 0, c.opErr("write", net.ErrClosed, addr)
	}
	if len(b) > MaxDatagramSize {
		c.stats.TooLong++
		return 0, c.opErr("write", ErrMessageTooLong, addr)
	}
	k := linkKey{c.addr, addr}
	l := n.links[k]
	if l == nil {
		if n.conns[addr] == nil || addr == c.addr {
			c.stats.Unroutable++
			n.stats.Unroutable++
			return len(b), nil
		}
		l = n.newLinkLocked(c.addr, addr, LinkConfig{})
		n.links[k] = l
	}
	c.stats.PacketsSent++
	c.stats.BytesSent += uint64(len(b))
	n.advanceLocked()
	n.eng.send(l, c.addr, addr, b)
	n.advanceLocked() // the arrival is due now
	n.rearmLocked()
	return len(b), nil
}

// Close closes the conn: blocked and later reads and writes return an error
// wrapping net.ErrClosed, and its address is free again.
func (c *PacketConn) Close() error {
	c.n.mu.Lock()
	if c.closed {
		c.n.mu.Unlock()
		return c.opErr("close", net.ErrClosed, netip.AddrPort{})
	}
	c.closeLocked()
	c.n.mu.Unlock()
	c.stopDeadlines()
	return nil
}

func (c *PacketConn) closeLocked() {
	c.closed = true
	if c.n.conns[c.addr] == c {
		delete(c.n.conns, c.addr)
	}
	for c.qlen > 0 {
		c.n.eng.pool.put(c.q[c.qhead])
		c.q[c.qhead] = nil
		c.qhead = (c.qhead + 1) % len(c.q)
		c.qlen--
	}
	c.qbytes = 0
	close(c.done)
}

func (c *PacketConn) stopDeadlines() {
	c.rdl.stop()
	c.wdl.stop()
}

// SetDeadline sets the read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed, netip.AddrPort{})
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the time after which reads fail with a timeout; a zero
// t means none. It also affects a read already blocked.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed, netip.AddrPort{})
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the time after which writes fail with a timeout; a
// zero t means none. Writes never block, so it only matters once passed.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed, netip.AddrPort{})
	}
	c.wdl.set(t)
	return nil
}

func (c *PacketConn) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *PacketConn) opErr(op string, err error, remote netip.AddrPort) error {
	e := &net.OpError{Op: op, Net: "udp", Source: c.laddr, Err: err}
	if remote.IsValid() {
		e.Addr = net.UDPAddrFromAddrPort(remote)
	}
	return e
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// deadline is a deadline and a channel closed when it passes, in the manner
// of net.Pipe's: setting a new one stops the old timer.
type deadline struct {
	mu     sync.Mutex
	t      time.Time // zero: none
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline has passed
	dead   bool          // stopped for good: the conn is closed
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	if d.dead {
		return
	}
	d.t = t
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// stopLocked stops the timer, waiting for its callback if it already started.
func (d *deadline) stopLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the callback is closing it
	}
	d.timer = nil
}

// stop stops the timer for good.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	d.dead = true
}

// state reports whether the deadline has passed (by the clock, which does
// not wait for the timer's callback to have run) and returns the channel to
// wait on.
func (d *deadline) state() (expired bool, ch chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.t.IsZero() && !time.Now().Before(d.t), d.cancel
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
