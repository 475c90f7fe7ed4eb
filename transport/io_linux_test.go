//go:build linux

package transport

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One datagram the kernel refuses (port 0: a spoofed source's Retry) must
// not cost the other datagrams of its batch.
func TestBatchFlushSkipsARefusedDatagram(t *testing.T) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer rc.Close()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sc.Close()
	to := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	w := newBatchIO(sc)
	require.NotNil(t, w)
	bad := netip.AddrPortFrom(to.Addr(), 0)
	for i, dst := range []netip.AddrPort{to, bad, to, bad, bad, to} {
		failed, err := w.write([]byte{byte(i)}, dst)
		require.NoError(t, err)
		require.Zero(t, failed)
	}
	failed, err := w.flush()
	assert.Error(t, err, "the refused datagrams are reported")
	assert.Equal(t, 3, failed, "each of them (the first error alone once counted 1)")
	require.NoError(t, rc.SetReadDeadline(time.Now().Add(2*time.Second)))
	var got []byte
	buf := make([]byte, 16)
	for range 3 {
		n, _, err := rc.ReadFromUDPAddrPort(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, []byte{0, 2, 5}, got)
}
