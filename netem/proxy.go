package netem

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Proxy buffers: each reader owns proxyBuffers buffers of proxyBufSize bytes
// (a datagram cannot be longer), handed to the owning goroutine and back, so
// forwarding allocates nothing. When the owner falls behind, a reader waits
// for a buffer and the kernel's socket buffer absorbs (or drops) the rest.
const (
	proxyBuffers = 32
	proxyBufSize = 64 << 10
)

// Bounds of the default wake-early margin (see ProxyConfig.WakeEarly).
const (
	minWakeEarly = 100 * time.Microsecond
	maxWakeEarly = 2 * time.Millisecond
)

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Listen is the UDP address the proxy listens on for its client (port 0
	// picks a free port; see Proxy.Addr).
	Listen netip.AddrPort
	// Target is the UDP address the client's datagrams are forwarded to.
	Target netip.AddrPort

	// Forward impairs the client -> target direction, Reverse the
	// target -> client direction (see LinkConfig).
	Forward LinkConfig
	Reverse LinkConfig

	// Seed seeds the links' randomness, as NewNetwork's does.
	Seed uint64

	// Epoch is the wall-clock time the proxy's clock counts from, which the
	// capture hooks' at is relative to (so a pcap.Writer's CaptureFunc(Epoch)
	// writes wall-clock times). Zero, or a time after NewProxy: NewProxy's
	// own time (see Proxy.Epoch).
	Epoch time.Time

	// CaptureForward and CaptureReverse, if set, see each datagram a
	// direction delivers, at its scheduled delivery time (at is the time
	// since Epoch), with the client's and the target's addresses, from the
	// proxy's goroutine. b is only valid during the call.
	CaptureForward CaptureFunc
	CaptureReverse CaptureFunc

	// WakeEarly is how long before a datagram is due the proxy stops
	// sleeping on a timer and spin-waits (yielding to other goroutines) for
	// the rest, so that delays are accurate although Go's timers wake late
	// (on Linux they round up to whole milliseconds: about 0.6 ms late at the
	// median and 1.1 ms at p99). Zero: DefaultWakeEarly, the measured median
	// lateness. Negative: never spin (delays are then as late as the
	// timers). A larger margin makes late deliveries rarer and costs CPU: up
	// to WakeEarly of busy waiting per distinct delivery time.
	WakeEarly time.Duration
}

// ProxyStats counts what a Proxy did.
type ProxyStats struct {
	Forward LinkStats // client -> target
	Reverse LinkStats // target -> client

	// ClientChanges counts changes of the client address after the first.
	ClientChanges uint64
	// Strangers counts datagrams reaching the target-side socket from an
	// address other than the target; they are dropped.
	Strangers uint64
	// NoClient counts datagrams from the target before any client had sent
	// one; they are dropped.
	NoClient uint64
	// ReadErrors and WriteErrors count failed socket reads and writes (a
	// failed write loses its datagram).
	ReadErrors  uint64
	WriteErrors uint64

	// LateSum and LateMax are how late the proxy wrote the datagrams it
	// delivered (both directions), after their scheduled delivery times:
	// the timer and scheduling error the proxy adds to the link's delays
	// (LateSum / delivered datagrams is the mean).
	LateSum time.Duration
	LateMax time.Duration
}

// Proxy is netem's third face: a UDP proxy that impairs a real UDP program.
// It listens on one address and forwards what it receives there to a target
// through a link (ProxyConfig.Forward), and forwards what the target sends
// back through another (Reverse), in real time, with the same link model and
// engine as Network and the Simulator.
//
// The client is the most recent source address seen on the listening
// socket: a datagram from a new address makes it the client (counted in
// ProxyStats.ClientChanges), so the proxy serves one client at a time and
// follows a client whose address changes. A datagram from the target goes to
// the client as it was when the datagram entered the reverse link. The
// target side uses its own socket on an ephemeral port; it accepts datagrams
// from the target's address only.
//
// One goroutine owns the engine and runs both directions; one reader
// goroutine per socket hands it datagrams in pooled buffers, stamped with
// their arrival time. Forwarding allocates nothing per datagram. Close stops
// every goroutine.
type Proxy struct {
	ln, up *net.UDPConn
	addr   netip.AddrPort
	target netip.AddrPort
	epoch  time.Time
	early  time.Duration

	in      chan proxyRx
	freeFwd chan []byte
	freeRev chan []byte
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	readErrors atomic.Uint64

	mu       sync.Mutex // guards what follows, and the links
	eng      engine
	fwd, rev *Link
	client   netip.AddrPort
	stats    ProxyStats
}

// proxyRx is a datagram a reader hands to the owner.
type proxyRx struct {
	buf  []byte // a reader's buffer, cut to the datagram
	from netip.AddrPort
	at   clock.Time // when the reader got it
	rev  bool       // from the target-side socket
}

// NewProxy starts a proxy: it binds the listening socket and the target-side
// socket and starts its goroutines. Close it when done.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if err := cfg.Forward.Validate(); err != nil {
		return nil, fmt.Errorf("netem: proxy forward link: %w", err)
	}
	if err := cfg.Reverse.Validate(); err != nil {
		return nil, fmt.Errorf("netem: proxy reverse link: %w", err)
	}
	if !cfg.Listen.IsValid() {
		return nil, fmt.Errorf("%w: proxy listen address %v", ErrInvalidAddr, cfg.Listen)
	}
	target := unmap(cfg.Target)
	if !target.IsValid() || target.Port() == 0 || target.Addr().IsUnspecified() {
		return nil, fmt.Errorf("%w: proxy target %v", ErrInvalidAddr, cfg.Target)
	}
	early := cfg.WakeEarly
	if early == 0 {
		early = DefaultWakeEarly()
	}
	ln, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, fmt.Errorf("netem: proxy: %w", err)
	}
	upNet := "udp6"
	if target.Addr().Is4() {
		upNet = "udp4"
	}
	up, err := net.ListenUDP(upNet, nil)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("netem: proxy: %w", err)
	}
	for _, c := range []*net.UDPConn{ln, up} {
		// Best effort: room for bursts while the owner is busy.
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
	}
	epoch := time.Now()
	if !cfg.Epoch.IsZero() && cfg.Epoch.Before(epoch) {
		epoch = cfg.Epoch
	}
	p := &Proxy{
		ln:      ln,
		up:      up,
		addr:    ln.LocalAddr().(*net.UDPAddr).AddrPort(),
		target:  target,
		epoch:   epoch,
		early:   early,
		in:      make(chan proxyRx, 2*proxyBuffers),
		freeFwd: make(chan []byte, proxyBuffers),
		freeRev: make(chan []byte, proxyBuffers),
		done:    make(chan struct{}),
	}
	for range proxyBuffers {
		p.freeFwd <- make([]byte, proxyBufSize)
		p.freeRev <- make([]byte, proxyBufSize)
	}
	// The links' randomness derives from the seed and the listening and
	// target addresses, as a Network's from its two endpoints.
	p.fwd = newLink(cfg.Seed, p.addr, target, cfg.Forward, &p.mu)
	p.rev = newLink(cfg.Seed, target, p.addr, cfg.Reverse, &p.mu)
	p.fwd.capture, p.rev.capture = cfg.CaptureForward, cfg.CaptureReverse

	p.wg.Add(3)
	go p.read(ln, p.freeFwd, false)
	go p.read(up, p.freeRev, true)
	go p.run()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() netip.AddrPort { return p.addr }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() netip.AddrPort { return p.target }

// Client returns the current client address (the zero AddrPort before any
// datagram arrived).
func (p *Proxy) Client() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client
}

// Epoch returns the wall-clock time the proxy's clock counts from
// (ProxyConfig.Epoch, or its creation): a capture hook's at is the time since
// Epoch.
func (p *Proxy) Epoch() time.Time { return p.epoch }

// WakeEarly returns the wake-early margin in use (see ProxyConfig).
func (p *Proxy) WakeEarly() time.Duration { return p.early }

// Forward returns the client -> target link, to read its stats or change its
// config while the proxy runs.
func (p *Proxy) Forward() *Link { return p.fwd }

// Reverse returns the target -> client link.
func (p *Proxy) Reverse() *Link { return p.rev }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	fwd, rev := p.fwd.Stats(), p.rev.Stats()
	p.mu.Lock()
	st := p.stats
	p.mu.Unlock()
	st.Forward, st.Reverse = fwd, rev
	st.ReadErrors = p.readErrors.Load()
	return st
}

// Close stops the proxy: it closes both sockets, waits for its goroutines
// and discards the datagrams in flight. It is idempotent.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = errors.Join(p.ln.Close(), p.up.Close())
		p.wg.Wait()
		p.mu.Lock()
		p.eng.drain()
		p.mu.Unlock()
	})
	return err
}

// read is a reader goroutine: it reads datagrams into buffers from free and
// hands them to the owner.
func (p *Proxy) read(c *net.UDPConn, free chan []byte, rev bool) {
	defer p.wg.Done()
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-p.done:
			return
		}
		n, from, err := c.ReadFromUDPAddrPort(buf[:cap(buf)])
		at := clock.Since(p.epoch, time.Now())
		if err != nil {
			free <- buf // it came from there: room is certain
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.readErrors.Add(1)
			select {
			case <-p.done:
				return
			default:
			}
			continue
		}
		select {
		case p.in <- proxyRx{buf: buf[:n], from: from, at: at, rev: rev}:
		case <-p.done:
			return
		}
	}
}

// run is the owning goroutine: it moves datagrams along both links and
// sleeps until the next event, waking WakeEarly before it and spin-waiting
// for the rest.
func (p *Proxy) run() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		p.mu.Lock()
		now := p.advanceLocked(clock.Since(p.epoch, time.Now()))
		next := p.eng.next()
		p.mu.Unlock()

		switch rem := next.Sub(now); {
		case next == clock.Never:
			select {
			case r := <-p.in:
				p.accept(r)
			case <-p.done:
				return
			}
		case p.early < 0 || rem > p.early:
			sleep := rem
			if p.early > 0 {
				sleep -= p.early
			}
			timer.Reset(sleep)
			select {
			case r := <-p.in:
				timer.Stop()
				p.accept(r)
			case <-timer.C:
			case <-p.done:
				timer.Stop()
				return
			}
		default: // the last stretch: spin, yielding, and keep reading
			select {
			case r := <-p.in:
				p.accept(r)
			case <-p.done:
				return
			default:
				runtime.Gosched()
			}
		}
	}
}

// accept puts a datagram a reader got on its link, at the time it arrived
// (or the engine's now, if the engine has moved past it).
func (p *Proxy) accept(r proxyRx) {
	p.mu.Lock()
	p.advanceLocked(r.at)
	if r.rev {
		switch {
		case unmap(r.from) != p.target:
			p.stats.Strangers++
		case !p.client.IsValid():
			p.stats.NoClient++
		default:
			p.eng.send(p.rev, p.target, p.client, r.buf)
		}
	} else {
		if r.from != p.client {
			if p.client.IsValid() {
				p.stats.ClientChanges++
			}
			p.client = r.from
		}
		p.eng.send(p.fwd, r.from, p.target, r.buf)
	}
	p.mu.Unlock()
	if r.rev {
		p.freeRev <- r.buf[:cap(r.buf)]
	} else {
		p.freeFwd <- r.buf[:cap(r.buf)]
	}
}

// advanceLocked runs every event due by t, leaves the engine at t (or where
// it was, if later) and returns that time.
func (p *Proxy) advanceLocked(t clock.Time) clock.Time {
	e := &p.eng
	t = clock.Max(t, e.now)
	for {
		ev, ok := e.popDue(t)
		if !ok {
			break
		}
		if e.runPacket(&ev) {
			late := t.Sub(ev.at)
			p.stats.LateSum += late
			p.stats.LateMax = max(p.stats.LateMax, late)
			p.writeLocked(ev.link, ev.pkt)
			e.pool.put(ev.pkt)
		}
	}
	e.now = t
	return t
}

func (p *Proxy) writeLocked(l *Link, pkt *packet) {
	var err error
	if l == p.fwd {
		_, err = p.up.WriteToUDPAddrPort(pkt.bytes(), p.target)
	} else {
		_, err = p.ln.WriteToUDPAddrPort(pkt.bytes(), pkt.to)
	}
	if err != nil {
		p.stats.WriteErrors++
	}
}

// TimerLateness is how late Go timers fire: the distribution of (wake-up
// time - requested time) over timers of 1 to 2 ms.
type TimerLateness struct {
	P50, P90, P99, Max time.Duration
}

// MeasureTimerLateness arms samples timers, one after another, of 1 to 2 ms
// spread over the millisecond (Linux rounds a timer up to whole
// milliseconds, so the fraction matters), and returns how late they fired.
// It takes about samples x 2 ms.
func MeasureTimerLateness(samples int) TimerLateness {
	samples = max(samples, 1)
	late := make([]time.Duration, samples)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := range late {
		d := time.Millisecond + time.Duration(i*7919%1000)*time.Microsecond
		start := time.Now()
		t.Reset(d)
		<-t.C
		late[i] = max(time.Since(start)-d, 0)
	}
	slices.Sort(late)
	q := func(p float64) time.Duration { return late[min(int(p*float64(samples)), samples-1)] }
	return TimerLateness{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: late[samples-1]}
}

var defaultWakeEarly = sync.OnceValue(func() time.Duration {
	return min(max(MeasureTimerLateness(50).P50, minWakeEarly), maxWakeEarly)
})

// DefaultWakeEarly is the wake-early margin a ProxyConfig with WakeEarly 0
// uses: the median lateness of 50 timers (MeasureTimerLateness), measured at
// its first call in the process (about 0.1 s), within [100 µs, 2 ms]. The
// median rather than the p99, as DESIGN §6 says: waking early by the p99
// would make the proxy spin about a millisecond before every delivery, and
// on a busy machine a thread that spins that much is preempted, which costs
// more accuracy than it buys.
func DefaultWakeEarly() time.Duration { return defaultWakeEarly() }
