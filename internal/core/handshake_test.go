package core

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

func hello(t testing.TB, scid uint32, cookie []byte, version uint32, padTo int) []byte {
	h := wire.Handshake{Msg: wire.MsgHello, Version: version, SrcConnID: scid, Cookie: cookie,
		Params: wire.TransportParams{FragmentSize: 1200, MaxDatagramSize: 1472, Latency: 300 * time.Millisecond}}
	b, err := h.Append(nil, padTo)
	require.NoError(t, err)
	return b
}

// noState asserts the endpoint keeps nothing about any peer.
func noState(t *testing.T, ep *Endpoint) {
	t.Helper()
	require.Empty(t, ep.conns)
	require.Empty(t, ep.byCID)
	require.Empty(t, ep.byClient)
	require.Zero(t, ep.events.Len())
}

// TestStatelessUntilAddressProven: a listener sent random and replayed
// datagrams from many addresses keeps no per-peer state before the cookie
// round trip, and never answers with more bytes than it received.
func TestStatelessUntilAddressProven(t *testing.T) {
	ep, err := NewEndpoint(Config{Accept: true, Rand: newSeeded(9)})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func() netip.AddrPort { // a unicast source, as a spoofer would pick
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), uint16(1+rng.IntN(65535)))
	}
	// A genuine cookie, minted for one address, to replay from others.
	victim := netip.MustParseAddrPort("198.51.100.7:4444")
	now := clock.Time(time.Second)
	ep.HandleDatagram(now, victim, hello(t, 77, nil, wire.Version1, wire.MinHelloSize))
	dst := make([]byte, 2048)
	n, to, ok := ep.PollTransmit(now, dst)
	require.True(t, ok)
	require.Equal(t, victim, to)
	var retry wire.Handshake
	require.NoError(t, retry.Parse(dst[:n]))
	require.Equal(t, wire.MsgRetry, retry.Msg)
	stolen := append([]byte(nil), retry.Cookie...)

	var in, out, replies int
	kinds := make(map[string]int)
	for i := 0; i < 20_000; i++ {
		now = now.Add(time.Millisecond)
		from := randAddr()
		var b []byte
		kind := []string{"random", "hello", "forged-cookie", "replayed-cookie", "short-hello", "short-header", "old-version", "truncated", "port-zero"}[i%9]
		kinds[kind]++
		switch kind {
		case "random":
			b = make([]byte, 1+rng.IntN(1500))
			for j := range b {
				b[j] = byte(rng.IntN(256))
			}
		case "hello":
			b = hello(t, rng.Uint32()|1, nil, wire.Version1, wire.MinHelloSize)
		case "forged-cookie":
			c := make([]byte, 24)
			for j := range c {
				c[j] = byte(rng.IntN(256))
			}
			b = hello(t, rng.Uint32()|1, c, wire.Version1, wire.MinHelloSize)
		case "replayed-cookie":
			b = hello(t, 77, stolen, wire.Version1, wire.MinHelloSize)
		case "short-hello":
			b = hello(t, rng.Uint32()|1, nil, wire.Version1, 0)
		case "short-header":
			h := wire.DataHeader{DstConnID: rng.Uint32() | 1, FragCount: 1}
			b, _ = h.Append(nil)
			b = append(b, make([]byte, rng.IntN(1200))...)
		case "old-version":
			b = hello(t, rng.Uint32()|1, nil, 0x53500000, wire.MinHelloSize)
		case "truncated":
			b = hello(t, rng.Uint32()|1, nil, wire.Version1, wire.MinHelloSize)
			b = b[:rng.IntN(len(b))]
		case "port-zero": // a reply could not even be sent
			b = hello(t, rng.Uint32()|1, nil, wire.Version1, wire.MinHelloSize)
			from = netip.AddrPortFrom(from.Addr(), 0)
		}
		in += len(b)
		ep.HandleDatagram(now, from, b)
		answers := 0
		for {
			n, to, ok := ep.PollTransmit(now, dst)
			if !ok {
				break
			}
			answers++
			replies++
			out += n
			require.Equal(t, from, to, "%s: an answer goes only to the sender", kind)
			require.LessOrEqual(t, n, len(b), "%s: answer larger than the request", kind)
		}
		require.LessOrEqual(t, answers, 1, kind)
		noState(t, ep)
	}
	assert.LessOrEqual(t, out, in)
	assert.Greater(t, replies, 5000, "Hellos are answered (Retry or Reject)")
	assert.Equal(t, int64(kinds["port-zero"]), ep.Stats().BadSource, "no answer to port 0")
	st := ep.Stats()
	assert.LessOrEqual(t, st.StatelessBytesOut, st.StatelessBytesIn)
	assert.Zero(t, st.ConnsAccepted)
	t.Logf("%d datagrams (%v), %d bytes in, %d replies, %d bytes out; stats %+v", 20_000, kinds, in, replies, out, st)

	// A flood answered faster than it is drained: the answer queue is
	// bounded and the excess dropped and counted.
	dropsBefore := st.HandshakeDropped
	for i := 0; i < 1000; i++ {
		ep.HandleDatagram(now, randAddr(), hello(t, uint32(i+1), nil, wire.Version1, wire.MinHelloSize))
	}
	assert.Equal(t, len(ep.stateless.slots), ep.stateless.size)
	assert.Equal(t, dropsBefore+int64(1000-len(ep.stateless.slots)), ep.Stats().HandshakeDropped)
	for {
		if _, _, ok := ep.PollTransmit(now, dst); !ok {
			break
		}
	}
	noState(t, ep)

	// The real round trip creates exactly one connection; replaying its
	// Hello creates no other, only the same (small) Accept again.
	client := netip.MustParseAddrPort("203.0.113.5:5555")
	ep.HandleDatagram(now, client, hello(t, 99, nil, wire.Version1, wire.MinHelloSize))
	n, _, ok = ep.PollTransmit(now, dst)
	require.True(t, ok)
	require.NoError(t, retry.Parse(dst[:n]))
	withCookie := hello(t, 99, append([]byte(nil), retry.Cookie...), wire.Version1, wire.MinHelloSize)
	now = now.Add(50 * time.Millisecond)
	ep.HandleDatagram(now, client, withCookie)
	require.Len(t, ep.conns, 1)
	for range 3 {
		ep.HandleDatagram(now, client, withCookie)
		n, to, ok = ep.PollTransmit(now, dst)
		require.True(t, ok)
		assert.Equal(t, client, to)
		assert.LessOrEqual(t, n, len(withCookie))
		var acc wire.Handshake
		require.NoError(t, acc.Parse(dst[:n]))
		assert.Equal(t, wire.MsgAccept, acc.Msg)
	}
	assert.Len(t, ep.conns, 1)
	// From another address the same Hello proves nothing.
	ep.HandleDatagram(now, randAddr(), withCookie)
	assert.Len(t, ep.conns, 1)
	// An expired cookie gets a fresh Retry, not a connection.
	ep.HandleDatagram(now.Add(CookieLifetime+time.Second), netip.MustParseAddrPort("203.0.113.6:1"), hello(t, 5, retry.Cookie, wire.Version1, wire.MinHelloSize))
	assert.Len(t, ep.conns, 1)
}

func TestCookie(t *testing.T) {
	j := newCookieJar([]byte("secret"))
	a := netip.MustParseAddrPort("[2001:db8::1]:443")
	now := clock.Time(10 * time.Second)
	c := j.mint(nil, now, a, 7)
	require.Len(t, c, cookieLen)
	tests := []struct {
		name string
		at   clock.Time
		from netip.AddrPort
		cid  uint32
		mod  func([]byte) []byte
		ok   bool
	}{
		{"valid", now.Add(time.Second), a, 7, nil, true},
		{"other address", now, netip.MustParseAddrPort("[2001:db8::2]:443"), 7, nil, false},
		{"other port", now, netip.MustParseAddrPort("[2001:db8::1]:444"), 7, nil, false},
		{"other cid", now, a, 8, nil, false},
		{"expired", now.Add(CookieLifetime + 1), a, 7, nil, false},
		{"from the future", now.Add(-1), a, 7, nil, false},
		{"flipped mac", now, a, 7, func(b []byte) []byte { b[20] ^= 1; return b }, false},
		{"moved timestamp", now, a, 7, func(b []byte) []byte { b[7] ^= 1; return b }, false},
		{"short", now, a, 7, func(b []byte) []byte { return b[:10] }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), c...)
			if tt.mod != nil {
				b = tt.mod(b)
			}
			_, ok := j.check(b, tt.at, tt.from, tt.cid)
			assert.Equal(t, tt.ok, ok)
		})
	}
	assert.NotEqual(t, c, newCookieJar([]byte("other")).mint(nil, now, a, 7), "the secret matters")
}

// A replayed Hello of a connection that has closed is dropped unanswered
// (PROTOCOL §4.2) whether the endpoint still accepts new connections or
// not; while not accepting, it once drew a Reject.
func TestReplayedHelloOfAClosedConnection(t *testing.T) {
	for _, accepting := range []bool{true, false} {
		t.Run(map[bool]string{true: "accepting", false: "not accepting"}[accepting], func(t *testing.T) {
			ep, err := NewEndpoint(Config{Accept: true, Rand: newSeeded(9)})
			require.NoError(t, err)
			now := clock.Time(time.Second)
			dst := make([]byte, 2048)
			drain := func() (sent int) {
				for {
					if _, _, ok := ep.PollTransmit(now, dst); !ok {
						return sent
					}
					sent++
				}
			}
			ep.HandleDatagram(now, clientAddr, hello(t, 77, nil, wire.Version1, wire.MinHelloSize))
			n, _, ok := ep.PollTransmit(now, dst)
			require.True(t, ok)
			var retry wire.Handshake
			require.NoError(t, retry.Parse(dst[:n]))
			withCookie := hello(t, 77, append([]byte(nil), retry.Cookie...), wire.Version1, wire.MinHelloSize)
			ep.HandleDatagram(now, clientAddr, withCookie)
			require.Len(t, ep.conns, 1)
			drain()
			// The client closes; the server forgets the connection.
			cl := wire.Close{DstConnID: ep.conns[0].localCID}
			b, err := cl.Append(nil)
			require.NoError(t, err)
			ep.HandleDatagram(now, clientAddr, b)
			drain()
			require.Empty(t, ep.conns)

			ep.SetAccept(accepting)
			now = now.Add(time.Second)
			dropped := ep.Stats().HandshakeDropped
			ep.HandleDatagram(now, clientAddr, withCookie)
			assert.Zero(t, drain(), "no Accept, no Reject")
			assert.Empty(t, ep.conns)
			assert.Equal(t, dropped+1, ep.Stats().HandshakeDropped)
		})
	}
}
