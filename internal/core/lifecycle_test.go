package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// The server accepts, its Accept is lost, and its application closes the
// connection. The client's Hellos still carry the cookie; one reaches the
// connection after its last Close (dropped by the client, still in its
// handshake) and before it is gone: the closing connection sends a fresh
// Accept, and the client reports EventConnected for a connection the server
// has closed, then sat on it until its idle timeout. A closing
// connection now drops such a Hello (HandshakeDropped).
func TestClosingConnDoesNotAcceptAgain(t *testing.T) {
	p := newEndpoints(t, Config{})
	ce, se := p.client, p.server
	lost := false
	p.drop = func(from string, b []byte) bool {
		var h wire.Handshake
		if from == "server" && !lost && h.Parse(b) == nil && h.Msg == wire.MsgAccept {
			lost = true
			return true
		}
		// and the Hello at 250 ms too
		return from == "client" && p.now == clock.Time(1250*time.Millisecond) && b[0]>>3&7 == 0
	}
	cc, err := ce.Connect(p.now, serverAddr)
	require.NoError(t, err)
	start := p.now
	p.exchange()
	require.Len(t, se.conns, 1)
	sc := se.conns[0]
	for p.now < start.Add(5*time.Second) {
		if p.now == start.Add(50*time.Millisecond) {
			sc.Close(p.now, CodeApplication, "bye")
		}
		p.tick()
		p.now = p.now.Add(time.Millisecond)
	}
	require.True(t, sc.Closed())
	assert.False(t, cc.Established(), "the client is established on a connection the server closed")
	assert.Positive(t, se.Stats().HandshakeDropped, "the late Hello is dropped")
}

// §8: each side pings once right after the handshake. The client's ping is
// lost if a server packet arrives (Accept and a frame in one batch) before
// the client's first PollTransmit: the client's only RTT sample was then
// its last Hello's, too small when the Accept answered an earlier one.
func TestClientPingSurvivesEarlyServerPacket(t *testing.T) {
	p := newEndpoints(t, Config{})
	ce, se := p.client, p.server
	cc, err := ce.Connect(p.now, serverAddr)
	require.NoError(t, err)
	for range 2 { // Hello, Retry, Hello(cookie) -> server connection exists
		for {
			n, _, ok := ce.PollTransmit(p.now, p.buf)
			if !ok {
				break
			}
			se.HandleDatagram(p.now, clientAddr, p.buf[:n])
		}
		if len(se.conns) == 1 {
			break
		}
		n, _, ok := se.PollTransmit(p.now, p.buf)
		require.True(t, ok)
		ce.HandleDatagram(p.now, serverAddr, p.buf[:n])
	}
	require.Len(t, se.conns, 1)
	sc := se.conns[0]
	// The server's application opens a stream and writes at once.
	sid, err := sc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	require.NoError(t, err)
	require.NoError(t, sc.WriteFrame(p.now, sid, []byte("hi"), FrameInfo{Capture: p.now}))
	// Everything the server sends reaches the client before it polls.
	for {
		n, _, ok := se.PollTransmit(p.now, p.buf)
		if !ok {
			break
		}
		ce.HandleDatagram(p.now, serverAddr, p.buf[:n])
	}
	require.True(t, cc.Established())
	for range 100 { // 100 ms of the client running its timers
		p.tick()
		p.now = p.now.Add(time.Millisecond)
	}
	assert.Positive(t, cc.Stats().PingsSent, "the client's ping right after the handshake")
}
