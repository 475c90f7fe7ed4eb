package netem_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/netem"
)

// pair returns a Network with conns at addrA and addrB, closed at the end.
func pair(t *testing.T, seed uint64) (*netem.Network, *netem.PacketConn, *netem.PacketConn) {
	t.Helper()
	n := netem.NewNetwork(seed)
	t.Cleanup(func() { n.Close() })
	a, err := n.Listen(addrA)
	require.NoError(t, err)
	b, err := n.Listen(addrB)
	require.NoError(t, err)
	return n, a, b
}

func TestNetworkDelayIsExact(t *testing.T) {
	tests := []struct {
		name string
		cfg  netem.LinkConfig
		size int
		want time.Duration
	}{
		{"ideal", netem.LinkConfig{}, 100, 0},
		{"delay", netem.LinkConfig{Delay: 30 * time.Millisecond}, 100, 30 * time.Millisecond},
		{"zero-length", netem.LinkConfig{Delay: 30 * time.Millisecond}, 0, 30 * time.Millisecond},
		{"delay+rate", netem.LinkConfig{Delay: 30 * time.Millisecond, Rate: 1_000_000}, 1000, 38 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, a, b := pair(t, 1)
				require.NoError(t, n.SetLink(addrA, addrB, tt.cfg))
				buf := make([]byte, 2000)
				for i := range 5 {
					start := time.Now()
					_, err := a.WriteToAddrPort(make([]byte, tt.size), addrB)
					require.NoError(t, err)
					got, from, err := b.ReadFromAddrPort(buf)
					require.NoError(t, err)
					assert.Equal(t, tt.size, got)
					assert.Equal(t, addrA, from)
					assert.Equal(t, tt.want, time.Since(start), "datagram %d", i)
					time.Sleep(time.Second)
				}
				st := n.Link(addrA, addrB).Stats()
				assert.Equal(t, uint64(5), st.PacketsDelivered)
			})
		})
	}
}

func TestNetworkRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1)
		require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{Rate: 1_000_000, QueueBytes: 1 << 20}))
		start := time.Now()
		for range 100 {
			_, err := a.WriteToAddrPort(make([]byte, 1000), addrB)
			require.NoError(t, err)
		}
		buf := make([]byte, 1500)
		for i := range 100 {
			_, _, err := b.ReadFromAddrPort(buf)
			require.NoError(t, err)
			// 1000 B at 1 Mbit/s: one every 8 ms.
			assert.Equal(t, time.Duration(i+1)*8*time.Millisecond, time.Since(start))
		}
	})
}

func TestNetworkLoss(t *testing.T) {
	const (
		count = 10_000
		p     = 0.2
	)
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 3)
		require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{Loss: p, Delay: 5 * time.Millisecond}))
		var wg sync.WaitGroup
		wg.Go(func() {
			for range count {
				_, err := a.WriteToAddrPort([]byte("x"), addrB)
				assert.NoError(t, err)
				time.Sleep(time.Millisecond)
			}
		})
		require.NoError(t, b.SetReadDeadline(time.Now().Add(count*time.Millisecond+time.Second)))
		got := 0
		buf := make([]byte, 10)
		for {
			_, _, err := b.ReadFromAddrPort(buf)
			if err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				break
			}
			got++
		}
		wg.Wait()
		ok, lo, hi := binomialOK(count-got, count, p)
		assert.True(t, ok, "lost %d of %d, want in [%.0f, %.0f]", count-got, count, lo, hi)
		st := n.Link(addrA, addrB).Stats()
		assert.Equal(t, uint64(count-got), st.PacketsLost)
		assert.Equal(t, uint64(got), b.Stats().PacketsReceived)
	})
}

func TestNetworkReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, 1)
		buf := make([]byte, 10)

		start := time.Now()
		require.NoError(t, b.SetReadDeadline(start.Add(50*time.Millisecond)))
		_, _, err := b.ReadFrom(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
		assert.Equal(t, 50*time.Millisecond, time.Since(start))

		// Past deadline: fails at once, even with data queued.
		_, err = a.WriteToAddrPort([]byte("hi"), addrB)
		require.NoError(t, err)
		synctest.Wait()
		_, _, err = b.ReadFromAddrPort(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)

		// Cleared: the queued datagram is read.
		require.NoError(t, b.SetReadDeadline(time.Time{}))
		n, _, err := b.ReadFromAddrPort(buf)
		require.NoError(t, err)
		assert.Equal(t, "hi", string(buf[:n]))

		// Moved while a read is blocked.
		start = time.Now()
		require.NoError(t, b.SetReadDeadline(start.Add(time.Hour)))
		done := make(chan error)
		go func() {
			_, _, err := b.ReadFromAddrPort(buf)
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, b.SetDeadline(start.Add(20*time.Millisecond)))
		require.ErrorIs(t, <-done, os.ErrDeadlineExceeded)
		assert.Equal(t, 20*time.Millisecond, time.Since(start))
	})
}

func TestNetworkWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, _ := pair(t, 1)
		require.NoError(t, a.SetWriteDeadline(time.Now().Add(time.Millisecond)))
		_, err := a.WriteToAddrPort([]byte("x"), addrB)
		require.NoError(t, err)
		time.Sleep(time.Millisecond)
		_, err = a.WriteToAddrPort([]byte("x"), addrB)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
		require.NoError(t, a.SetWriteDeadline(time.Time{}))
		_, err = a.WriteToAddrPort([]byte("x"), addrB)
		require.NoError(t, err)
	})
}

func TestNetworkCloseUnblocksRead(t *testing.T) {
	tests := []struct {
		name       string
		close      func(n *netem.Network, c *netem.PacketConn) error
		unroutable uint64 // the datagram in flight when the conn closed
	}{
		{"conn", func(_ *netem.Network, c *netem.PacketConn) error { return c.Close() }, 1},
		{"network", func(n *netem.Network, _ *netem.PacketConn) error { return n.Close() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, a, b := pair(t, 1)
				require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{Delay: time.Second}))
				_, err := a.WriteToAddrPort([]byte("in flight"), addrB)
				require.NoError(t, err)
				done := make(chan error)
				go func() {
					_, _, err := b.ReadFrom(make([]byte, 10))
					done <- err
				}()
				synctest.Wait() // the reader is blocked
				require.NoError(t, tt.close(n, b))
				err = <-done
				require.ErrorIs(t, err, net.ErrClosed)

				_, _, err = b.ReadFrom(make([]byte, 10))
				assert.ErrorIs(t, err, net.ErrClosed)
				_, err = b.WriteTo([]byte("x"), a.LocalAddr())
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.ErrorIs(t, b.Close(), net.ErrClosed)
				assert.ErrorIs(t, b.SetDeadline(time.Now()), net.ErrClosed)
				time.Sleep(2 * time.Second)
				assert.Equal(t, tt.unroutable, n.Stats().Unroutable)
			})
		})
	}
}

func TestNetworkClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1)
		require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{Delay: time.Second, Rate: 1000}))
		for range 10 {
			_, err := a.WriteToAddrPort(make([]byte, 100), addrB)
			require.NoError(t, err)
		}
		require.NoError(t, b.SetReadDeadline(time.Now().Add(time.Hour)))
		require.NoError(t, n.Close())
		require.NoError(t, n.Close(), "idempotent")
		_, err := n.Listen(addrC)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorIs(t, n.SetLink(addrA, addrB, netem.LinkConfig{}), net.ErrClosed)
		_, err = a.WriteToAddrPort([]byte("x"), addrB)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.Zero(t, n.Link(addrA, addrB).Stats().InFlight)
	})
}

func TestNetworkRecvQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, 1)
		for range netem.RecvQueueLen + 100 {
			_, err := a.WriteToAddrPort([]byte("x"), addrB)
			require.NoError(t, err)
		}
		synctest.Wait()
		assert.Equal(t, uint64(100), b.Stats().RecvQueueDropped, "bounded in datagrams")
		buf := make([]byte, 2000)
		for range netem.RecvQueueLen {
			_, _, err := b.ReadFromAddrPort(buf)
			require.NoError(t, err)
		}

		require.Error(t, b.SetReadBuffer(0))
		require.NoError(t, b.SetReadBuffer(3000))
		for range 3 {
			_, err := a.WriteToAddrPort(make([]byte, 1400), addrB)
			require.NoError(t, err)
		}
		synctest.Wait()
		assert.Equal(t, uint64(101), b.Stats().RecvQueueDropped, "the third 1,400 B datagram exceeds 3,000 B")
		require.NoError(t, b.SetReadDeadline(time.Now().Add(time.Second)))
		for range 2 {
			n, _, err := b.ReadFromAddrPort(buf)
			require.NoError(t, err)
			assert.Equal(t, 1400, n)
		}
		_, _, err := b.ReadFromAddrPort(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})
}

func TestNetworkCopiesAndTruncates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, 1)
		msg := []byte("hello, world")
		_, err := a.WriteToAddrPort(msg, addrB)
		require.NoError(t, err)
		copy(msg, "XXXXX") // the caller may reuse its buffer at once
		buf := make([]byte, 5)
		n, _, err := b.ReadFromAddrPort(buf)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(buf[:n]), "truncated to the read buffer, like UDP")
		assert.Equal(t, uint64(1), b.Stats().Truncated)
	})
}

func TestNetworkPacketConnFace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1)
		var pc net.PacketConn = a
		la, ok := pc.LocalAddr().(*net.UDPAddr)
		require.True(t, ok)
		assert.Equal(t, addrA, la.AddrPort())

		_, err := pc.WriteTo([]byte("udpaddr"), net.UDPAddrFromAddrPort(addrB))
		require.NoError(t, err)
		// An IPv4-mapped IPv6 address is the same IPv4 address.
		mapped := netip.AddrPortFrom(netip.AddrFrom16(addrB.Addr().As16()), addrB.Port())
		_, err = a.WriteToAddrPort([]byte("mapped"), mapped)
		require.NoError(t, err)
		buf := make([]byte, 100)
		for _, want := range []string{"udpaddr", "mapped"} {
			m, from, err := b.ReadFrom(buf)
			require.NoError(t, err)
			assert.Equal(t, want, string(buf[:m]))
			assert.Equal(t, la.String(), from.String())
		}

		_, err = pc.WriteTo([]byte("x"), &net.IPAddr{IP: net.IPv4(1, 2, 3, 4)})
		assert.ErrorIs(t, err, netem.ErrInvalidAddr)
		_, err = pc.WriteTo(make([]byte, netem.MaxDatagramSize+1), b.LocalAddr())
		assert.ErrorIs(t, err, netem.ErrMessageTooLong)
		assert.Equal(t, uint64(1), a.Stats().TooLong)

		// Unroutable: nothing listens there; like UDP, the write succeeds.
		m, err := a.WriteToAddrPort([]byte("void"), addrC)
		require.NoError(t, err)
		assert.Equal(t, 4, m)
		assert.Equal(t, uint64(1), a.Stats().Unroutable)
		assert.Equal(t, uint64(1), n.Stats().Unroutable)
		assert.Equal(t, uint64(2), a.Stats().PacketsSent)
	})
}

func TestNetworkListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := netem.NewNetwork(1)
		defer n.Close()
		a, err := n.Listen(addrA)
		require.NoError(t, err)
		_, err = n.Listen(addrA)
		assert.ErrorIs(t, err, netem.ErrAddrInUse)
		_, err = n.Listen(netip.MustParseAddrPort("0.0.0.0:1"))
		assert.ErrorIs(t, err, netem.ErrInvalidAddr)
		_, err = n.Listen(netip.AddrPort{})
		assert.ErrorIs(t, err, netem.ErrInvalidAddr)

		e1, err := n.Listen(netip.MustParseAddrPort("10.0.0.9:0"))
		require.NoError(t, err)
		e2, err := n.Listen(netip.MustParseAddrPort("10.0.0.9:0"))
		require.NoError(t, err)
		assert.NotZero(t, e1.AddrPort().Port())
		assert.NotEqual(t, e1.AddrPort(), e2.AddrPort())

		require.NoError(t, a.Close())
		a2, err := n.Listen(addrA) // free again
		require.NoError(t, err)
		assert.Equal(t, addrA, a2.AddrPort())

		require.ErrorIs(t, n.SetLink(addrA, addrB, netem.LinkConfig{Delay: -1}), netem.ErrInvalidConfig)
		require.ErrorIs(t, n.SetLink(addrA, addrA, netem.LinkConfig{}), netem.ErrInvalidAddr)
		assert.Nil(t, n.Link(addrA, addrB))
	})
}

func TestNetworkConcurrent(t *testing.T) {
	// Several writers and readers at once: run under -race.
	synctest.Test(t, func(t *testing.T) {
		n := netem.NewNetwork(1)
		defer n.Close()
		const conns, each = 4, 200
		cs := make([]*netem.PacketConn, conns)
		for i := range cs {
			c, err := n.Listen(netip.MustParseAddrPort("10.1.0.1:0"))
			require.NoError(t, err)
			cs[i] = c
		}
		for i := range cs {
			for j := range cs {
				if i != j {
					require.NoError(t, n.SetLink(cs[i].AddrPort(), cs[j].AddrPort(),
						netem.LinkConfig{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 10_000_000}))
				}
			}
		}
		var wg sync.WaitGroup
		received := make([]int, conns)
		for i, c := range cs {
			wg.Go(func() {
				for k := range each {
					_, err := c.WriteToAddrPort([]byte("data"), cs[(i+1+k%(conns-1))%conns].AddrPort())
					assert.NoError(t, err)
					time.Sleep(100 * time.Microsecond)
				}
			})
			wg.Go(func() {
				buf := make([]byte, 10)
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				for {
					if _, _, err := c.ReadFromAddrPort(buf); err != nil {
						assert.True(t, errors.Is(err, os.ErrDeadlineExceeded))
						return
					}
					received[i]++
				}
			})
		}
		wg.Wait()
		total := 0
		for _, r := range received {
			total += r
		}
		assert.Equal(t, conns*each, total)
	})
}
