package transport

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchmarkReceivePath measures one way of reading datagrams from a UDP
// socket: the socket is filled with chunk datagrams of 1200 bytes (timer
// stopped), then read back (timer running). One op is one datagram, so
// allocs/op is allocations per datagram.
func benchmarkReceivePath(b *testing.B, pio func(*net.UDPConn) packetIO) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(b, err)
	defer rc.Close()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(b, err)
	defer sc.Close()
	_ = rc.SetReadBuffer(4 << 20)
	to := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	r := pio(rc)
	w := newPacketIO(sc, true) // sendmmsg where available: filling is not what is measured
	payload := make([]byte, 1200)
	rb := newBatch(r.perRead(), 2048)
	const chunk = 256
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	done := 0
	for done < b.N {
		b.StopTimer()
		n := min(chunk, b.N-done)
		for range n {
			_, err := w.write(payload, to)
			require.NoError(b, err)
		}
		_, err := w.flush()
		require.NoError(b, err)
		b.StartTimer()
		for got := 0; got < n; {
			require.NoError(b, r.read(rb))
			got += rb.n
			if rb.n > 0 && rb.dgs[0].from != sc.LocalAddr().(*net.UDPAddr).AddrPort() {
				b.Fatalf("datagram from %v", rb.dgs[0].from)
			}
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkReceivePathPlain reads with ReadFromUDPAddrPort (recvmsg, one
// datagram per system call, no allocation).
func BenchmarkReceivePathPlain(b *testing.B) {
	benchmarkReceivePath(b, func(c *net.UDPConn) packetIO { return newPlainIO(c) })
}

// BenchmarkReceivePathBatch reads with x/net ReadBatch (recvmmsg, up to 32
// datagrams per system call; it allocates the source address per datagram).
func BenchmarkReceivePathBatch(b *testing.B) {
	if !ioPathBatchAvailable {
		b.Skip("batched reads are Linux only")
	}
	benchmarkReceivePath(b, func(c *net.UDPConn) packetIO { return newBatchIO(c) })
}
