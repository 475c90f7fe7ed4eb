package transport

import (
	"errors"
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

// rxBatch is what the reader hands the loop: up to batchSize datagrams.
type rxBatch struct {
	dgs []rxDatagram
	n   int
}

const batchSize = 32

func newBatch(bufSize int) *rxBatch {
	b := &rxBatch{dgs: make([]rxDatagram, batchSize)}
	for i := range b.dgs {
		b.dgs[i].buf = make([]byte, bufSize)
	}
	return b
}

// packetIO reads and writes datagrams on a socket. The reader goroutine
// calls read; only the loop goroutine calls write and flush.
type packetIO interface {
	// read fills b with at least one datagram, blocking.
	read(b *rxBatch) error
	// write queues or sends one datagram (b may be reused once flush or
	// the next write returns).
	write(b []byte, to netip.AddrPort) error
	// flush sends what write queued.
	flush() error
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

func (p *plainIO) write(b []byte, to netip.AddrPort) error {
	_, err := p.wr1(b, to)
	return err
}

func (p *plainIO) flush() error { return nil }

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
