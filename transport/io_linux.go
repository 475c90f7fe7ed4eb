//go:build linux

package transport

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is what x/net's ipv4 and ipv6 PacketConns share.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchIO reads and writes with recvmmsg/sendmmsg (x/net ReadBatch and
// WriteBatch). ReadBatch allocates a *net.UDPAddr per datagram (measured in
// BenchmarkReceivePath); writes reuse one *net.UDPAddr per destination.
type batchIO struct {
	c     *net.UDPConn
	bc    batchConn
	rmsgs []ipv4.Message
	wmsgs []ipv4.Message
	wbufs [][]byte
	waddr map[netip.AddrPort]*net.UDPAddr
	nw    int
}

func newBatchIO(c net.PacketConn) packetIO {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return nil
	}
	b := &batchIO{c: uc, waddr: make(map[netip.AddrPort]*net.UDPAddr)}
	la, _ := uc.LocalAddr().(*net.UDPAddr)
	if la != nil && la.IP.To4() != nil {
		b.bc = ipv4.NewPacketConn(uc)
	} else {
		b.bc = ipv6.NewPacketConn(uc)
	}
	b.rmsgs = make([]ipv4.Message, batchSize)
	b.wmsgs = make([]ipv4.Message, batchSize)
	b.wbufs = make([][]byte, batchSize)
	for i := range b.wmsgs {
		b.wbufs[i] = make([]byte, 0, 2048)
		b.wmsgs[i].Buffers = make([][]byte, 1)
	}
	return b
}

func (b *batchIO) name() string { return "batch" }

func (b *batchIO) perRead() int { return batchSize }

func (b *batchIO) read(rb *rxBatch) error {
	msgs := b.rmsgs[:min(len(rb.dgs), len(b.rmsgs))]
	for i := range msgs {
		if msgs[i].Buffers == nil {
			msgs[i].Buffers = make([][]byte, 1)
		}
		msgs[i].Buffers[0] = rb.dgs[i].buf
	}
	n, err := b.bc.ReadBatch(msgs, 0)
	if err != nil {
		return err
	}
	k := 0
	for i := 0; i < n; i++ {
		m := &b.rmsgs[i]
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		rb.dgs[k].buf, rb.dgs[i].buf = rb.dgs[i].buf, rb.dgs[k].buf
		rb.dgs[k].n = m.N
		rb.dgs[k].from = unmap(ua.AddrPort())
		k++
	}
	rb.n = k
	return nil
}

func (b *batchIO) write(p []byte, to netip.AddrPort) (int, error) {
	var failed int
	var err error
	if b.nw == len(b.wmsgs) {
		failed, err = b.flush() // what failed is counted; this datagram still goes in the next batch
	}
	a := b.waddr[to]
	if a == nil {
		if len(b.waddr) > 4096 {
			clear(b.waddr)
		}
		a = net.UDPAddrFromAddrPort(to)
		b.waddr[to] = a
	}
	b.wbufs[b.nw] = append(b.wbufs[b.nw][:0], p...)
	m := &b.wmsgs[b.nw]
	m.Buffers[0] = b.wbufs[b.nw]
	m.Addr = a
	b.nw++
	return failed, err
}

// flush sends the queued datagrams. sendmmsg stops at the first datagram
// that fails (a destination the kernel refuses): that one is skipped and
// the rest still go, so one bad address cannot cost other sessions their
// datagrams. It returns how many failed and the first error.
func (b *batchIO) flush() (int, error) {
	var first error
	failed := 0
	for sent := 0; sent < b.nw; {
		n, err := b.bc.WriteBatch(b.wmsgs[sent:b.nw], 0)
		sent += max(n, 0) // x/net reports -1 with an error
		if err != nil {
			if first == nil {
				first = err
			}
			sent++ // skip the datagram that failed
			failed++
		} else if n == 0 {
			failed += b.nw - sent // nothing more goes
			break
		}
	}
	b.nw = 0
	return failed, first
}

const ioPathBatchAvailable = true
