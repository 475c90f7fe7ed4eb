package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// rxDatagram is one received datagram in a batch.
type rxDatagram struct {
	buf  []byte
	n    int
	from netip.AddrPort
}

// rxBatch is what the reader hands the loop: the datagrams of one read,
// dgs[:n], in as many buffers (dgs) as the read was given, at most
// batchSize.
type rxBatch struct {
	dgs []rxDatagram
	n   int
}

const batchSize = 32

// newBatch returns a batch of k buffers of bufSize bytes.
func newBatch(k, bufSize int) *rxBatch {
	b := &rxBatch{dgs: make([]rxDatagram, k)}
	for i := range b.dgs {
		b.dgs[i].buf = make([]byte, bufSize)
	}
	return b
}

// packetIO reads and writes datagrams on a socket. The reader goroutine
// calls read; only the loop goroutine calls write and flush.
type packetIO interface {
	// read fills b with at least one datagram (at most len(b.dgs), and at
	// most perRead), blocking.
	read(b *rxBatch) error
	// perRead is the most datagrams one read returns.
	perRead() int
	// write queues or sends one datagram (b may be reused once flush or
	// the next write returns); it reports how many datagrams failed to
	// go (this one, or those of a batch it had to flush) and the first
	// error.
	write(b []byte, to netip.AddrPort) (int, error)
	// flush sends what write queued, reporting as write does.
	flush() (int, error)
	name() string
}

// newPacketIO picks the fastest way this socket allows: batched system
// calls on Linux UDP sockets (see io_linux.go), allocation-free single
// datagram calls otherwise.
func newPacketIO(c net.PacketConn, preferBatch bool) packetIO {
	if preferBatch {
		if b := newBatchIO(c); b != nil {
			return b
		}
	}
	return newPlainIO(c)
}

// addrPortConn is what *net.UDPConn offers: reads and writes without
// allocating a net.Addr.
type addrPortConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// netemConn is what netem's in-memory PacketConn offers.
type netemConn interface {
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

type plainIO struct {
	c     net.PacketConn
	read1 func(b []byte) (int, netip.AddrPort, error)
	wr1   func(b []byte, to netip.AddrPort) (int, error)
}

func newPlainIO(c net.PacketConn) *plainIO {
	p := &plainIO{c: c}
	switch cc := c.(type) {
	case addrPortConn:
		p.read1, p.wr1 = cc.ReadFromUDPAddrPort, cc.WriteToUDPAddrPort
	case netemConn:
		p.read1, p.wr1 = cc.ReadFromAddrPort, cc.WriteToAddrPort
	default:
		p.read1 = func(b []byte) (int, netip.AddrPort, error) {
			n, addr, err := c.ReadFrom(b)
			if err != nil {
				return n, netip.AddrPort{}, err
			}
			ap, ok := addrPortOf(addr)
			if !ok {
				return 0, netip.AddrPort{}, errUnsupportedAddr
			}
			return n, ap, nil
		}
		p.wr1 = func(b []byte, to netip.AddrPort) (int, error) {
			return c.WriteTo(b, net.UDPAddrFromAddrPort(to))
		}
	}
	// A connected socket (net.DialUDP) refuses WriteTo, which the batch
	// path's sendmmsg does not: write to its peer with Write, as there,
	// and refuse any other destination.
	if uc, ok := c.(*net.UDPConn); ok {
		if ra, ok := uc.RemoteAddr().(*net.UDPAddr); ok && ra != nil {
			peer := unmap(ra.AddrPort())
			p.wr1 = func(b []byte, to netip.AddrPort) (int, error) {
				if unmap(to) != peer {
					return 0, fmt.Errorf("spillway: %v: the socket is connected to %v", to, peer)
				}
				return uc.Write(b)
			}
		}
	}
	return p
}

var errUnsupportedAddr = errors.New("spillway: packet conn returned a non-UDP address")

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort(), true
	case interface{ AddrPort() netip.AddrPort }:
		return v.AddrPort(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

func (p *plainIO) name() string { return "plain" }

func (p *plainIO) perRead() int { return 1 }

func (p *plainIO) read(b *rxBatch) error {
	d := &b.dgs[0]
	n, from, err := p.read1(d.buf)
	if err != nil {
		return err
	}
	d.n, d.from = n, unmap(from)
	b.n = 1
	return nil
}

func (p *plainIO) write(b []byte, to netip.AddrPort) (int, error) {
	if _, err := p.wr1(b, to); err != nil {
		return 1, err
	}
	return 0, nil
}

func (p *plainIO) flush() (int, error) { return 0, nil }

// unmap turns an IPv4-mapped IPv6 address (as a dual-stack socket reports
// IPv4 peers) into plain IPv4, so one peer has one address.
func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}

// wake unblocks a reader blocked on c.
func wake(c net.PacketConn) { _ = c.SetReadDeadline(time.Unix(1, 0)) }
