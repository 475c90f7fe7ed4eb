package netem_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
	"github.com/spillway-rt/spillway/wire"
)

// These tests never assert on wall-clock timing: deadlines only keep a
// broken proxy from hanging the test.

var proxyLoopback = netip.MustParseAddrPort("127.0.0.1:0")

// proxyWait is how long a test waits for datagrams before giving up.
const proxyWait = 20 * time.Second

func proxyListenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(proxyLoopback))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func proxyAddrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// proxyEcho answers every datagram on c with the same bytes, until c is closed.
func proxyEcho(t *testing.T, c *net.UDPConn) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = c.Close(); wg.Wait() })
}

func newTestProxy(t *testing.T, cfg netem.ProxyConfig) *netem.Proxy {
	t.Helper()
	if !cfg.Listen.IsValid() {
		cfg.Listen = proxyLoopback
	}
	if cfg.WakeEarly == 0 {
		cfg.WakeEarly = 200 * time.Microsecond // skip the calibration
	}
	p, err := netem.NewProxy(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestProxyForwardsBothDirections(t *testing.T) {
	server := proxyListenUDP(t)
	proxyEcho(t, server)
	p := newTestProxy(t, netem.ProxyConfig{Target: proxyAddrOf(server), Forward: netem.LinkConfig{Delay: time.Millisecond}})
	client := proxyListenUDP(t)

	const n = 200
	buf := make([]byte, 2048)
	for i := range n {
		msg := bytes.Repeat([]byte{byte(i)}, 10+i)
		_, err := client.WriteToUDPAddrPort(msg, p.Addr())
		require.NoError(t, err)
		require.NoError(t, client.SetReadDeadline(time.Now().Add(proxyWait)))
		m, from, err := client.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "echo %d", i)
		assert.Equal(t, p.Addr(), from, "the answer comes from the proxy")
		require.Equal(t, msg, buf[:m], "echo %d", i)
	}
	assert.Equal(t, proxyAddrOf(client), p.Client())
	assert.Equal(t, proxyAddrOf(server), p.Target())
	st := p.Stats()
	assert.EqualValues(t, n, st.Forward.PacketsOffered)
	assert.EqualValues(t, n, st.Forward.PacketsDelivered)
	assert.EqualValues(t, n, st.Reverse.PacketsDelivered)
	assert.Zero(t, st.ClientChanges)
	assert.Zero(t, st.WriteErrors)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
}

func TestProxyFollowsTheLatestClient(t *testing.T) {
	server := proxyListenUDP(t)
	proxyEcho(t, server)
	p := newTestProxy(t, netem.ProxyConfig{Target: proxyAddrOf(server)})
	buf := make([]byte, 64)
	for i, c := range []*net.UDPConn{proxyListenUDP(t), proxyListenUDP(t)} {
		_, err := c.WriteToUDPAddrPort([]byte("hello"), p.Addr())
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(proxyWait)))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "client %d", i)
		assert.Equal(t, "hello", string(buf[:n]))
		assert.Equal(t, proxyAddrOf(c), p.Client())
	}
	assert.EqualValues(t, 1, p.Stats().ClientChanges)
}

// TestProxyAppliesLoss sends many datagrams through 30 % loss each way and
// checks the counts, not the timing.
func TestProxyAppliesLoss(t *testing.T) {
	server := proxyListenUDP(t)
	proxyEcho(t, server)
	loss := netem.LinkConfig{Loss: 0.3}
	p := newTestProxy(t, netem.ProxyConfig{Target: proxyAddrOf(server), Forward: loss, Reverse: loss, Seed: 7})
	client := proxyListenUDP(t)

	const n = 3000
	var received atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 64)
		for {
			if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	// Wait until both links have settled (every datagram delivered or lost)
	// and the client has read every echo the reverse link delivered.
	settled := func(sent int) func() bool {
		return func() bool {
			st := p.Stats()
			return st.Forward.PacketsOffered == uint64(sent) && st.Forward.InFlight == 0 &&
				st.Reverse.PacketsOffered == st.Forward.PacketsDelivered && st.Reverse.InFlight == 0 &&
				uint64(received.Load()) == st.Reverse.PacketsDelivered
		}
	}
	// Send in windows, each one settled before the next, so that no socket
	// buffer on loopback overflows (which would be loss the links did not
	// cause) however slow the machine.
	msg := make([]byte, 32)
	const window = 50
	for i := range n {
		binary.BigEndian.PutUint32(msg, uint32(i))
		_, err := client.WriteToUDPAddrPort(msg, p.Addr())
		require.NoError(t, err)
		if i%window == window-1 {
			require.Eventually(t, settled(i+1), proxyWait, time.Millisecond,
				"stats: %+v, received %d", p.Stats(), received.Load())
		}
	}
	require.Eventually(t, settled(n), proxyWait, time.Millisecond)
	st := p.Stats()
	require.NoError(t, client.Close())
	<-readerDone

	fwdLoss := float64(st.Forward.PacketsLost) / n
	assert.InDelta(t, 0.3, fwdLoss, 0.04, "forward loss rate")
	revLoss := float64(st.Reverse.PacketsLost) / float64(st.Reverse.PacketsOffered)
	assert.InDelta(t, 0.3, revLoss, 0.04, "reverse loss rate")
	assert.EqualValues(t, st.Forward.PacketsLost+st.Forward.PacketsDelivered, n)
	assert.EqualValues(t, st.Reverse.PacketsDelivered, received.Load(), "the client got what the reverse link delivered")
	assert.Zero(t, st.WriteErrors)
}

func TestProxyCapture(t *testing.T) {
	server := proxyListenUDP(t)
	proxyEcho(t, server)
	var fwdBuf, revBuf bytes.Buffer
	fw, err := pcap.NewWriter(&fwdBuf)
	require.NoError(t, err)
	rw, err := pcap.NewWriter(&revBuf)
	require.NoError(t, err)
	epoch := time.Now()
	p := newTestProxy(t, netem.ProxyConfig{Target: proxyAddrOf(server), Epoch: epoch,
		CaptureForward: fw.CaptureFunc(epoch), CaptureReverse: rw.CaptureFunc(epoch)})
	assert.Equal(t, epoch, p.Epoch())
	client := proxyListenUDP(t)
	buf := make([]byte, 64)
	const n = 20
	for i := range n {
		ping, err := (&wire.Ping{DstConnID: 1, PacketNumber: uint32(i), Echo: uint64(i)}).Append(nil)
		require.NoError(t, err)
		_, err = client.WriteToUDPAddrPort(ping, p.Addr())
		require.NoError(t, err)
		require.NoError(t, client.SetReadDeadline(time.Now().Add(proxyWait)))
		_, _, err = client.ReadFromUDPAddrPort(buf)
		require.NoError(t, err)
	}
	require.NoError(t, p.Close())
	require.NoError(t, fw.Close())
	require.NoError(t, rw.Close())

	for _, c := range []struct {
		name     string
		buf      *bytes.Buffer
		from, to netip.AddrPort
	}{
		{"forward", &fwdBuf, proxyAddrOf(client), proxyAddrOf(server)},
		{"reverse", &revBuf, proxyAddrOf(server), proxyAddrOf(client)},
	} {
		recs, err := pcap.ReadRecords(c.buf)
		require.NoError(t, err, c.name)
		require.Len(t, recs, n, c.name)
		for i, r := range recs {
			require.NoError(t, r.Err, "%s %d", c.name, i)
			assert.Equal(t, c.from, r.Src)
			assert.Equal(t, c.to, r.Dst)
			assert.EqualValues(t, i, r.Spillway.PacketNumber, "a ping's packet number")
			assert.False(t, r.Time.Before(epoch), "wall-clock times")
		}
	}
}

func TestProxyConfigErrors(t *testing.T) {
	_, err := netem.NewProxy(netem.ProxyConfig{Listen: proxyLoopback})
	assert.ErrorIs(t, err, netem.ErrInvalidAddr, "no target")
	_, err = netem.NewProxy(netem.ProxyConfig{Listen: proxyLoopback, Target: netip.MustParseAddrPort("127.0.0.1:9"),
		Forward: netem.LinkConfig{Delay: -time.Second}})
	assert.ErrorIs(t, err, netem.ErrInvalidConfig)
	assert.ErrorContains(t, err, "forward")
	_, err = netem.NewProxy(netem.ProxyConfig{Listen: proxyLoopback, Target: netip.MustParseAddrPort("127.0.0.1:9"),
		Reverse: netem.LinkConfig{Loss: 2}})
	assert.ErrorContains(t, err, "reverse")

	taken := proxyListenUDP(t)
	_, err = netem.NewProxy(netem.ProxyConfig{Listen: proxyAddrOf(taken), Target: netip.MustParseAddrPort("127.0.0.1:9")})
	assert.Error(t, err, "the listen address is in use")
}

func TestProxyCloseUnblocksAndStops(t *testing.T) {
	server := proxyListenUDP(t)
	p := newTestProxy(t, netem.ProxyConfig{Target: proxyAddrOf(server), Forward: netem.LinkConfig{Delay: time.Hour}})
	client := proxyListenUDP(t)
	for range 10 {
		_, err := client.WriteToUDPAddrPort([]byte("held for an hour"), p.Addr())
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return p.Stats().Forward.InFlight == 10 }, proxyWait, time.Millisecond)
	require.NoError(t, p.Close())
	assert.Zero(t, p.Forward().Stats().InFlight, "Close discards what is in flight")
	_, err := client.WriteToUDPAddrPort([]byte("x"), p.Addr())
	require.NoError(t, err) // UDP: nobody listens, nothing fails here
	// goleak (TestMain) checks that no goroutine outlives the test.
}

func TestMeasureTimerLateness(t *testing.T) {
	l := netem.MeasureTimerLateness(5)
	assert.LessOrEqual(t, l.P50, l.P90)
	assert.LessOrEqual(t, l.P90, l.P99)
	assert.LessOrEqual(t, l.P99, l.Max)
	assert.GreaterOrEqual(t, l.P50, time.Duration(0))
	d := netem.DefaultWakeEarly()
	assert.True(t, d >= 100*time.Microsecond && d <= 2*time.Millisecond, "within its bounds: %v", d)
}
