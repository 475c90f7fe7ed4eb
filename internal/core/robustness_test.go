package core

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// craftFrame hands the server a one-fragment frame of stream st, captured
// at capture (the pipe's two clocks are one).
func (p *pipe) craftFrame(t *testing.T, st uint8, id uint16, key bool, capture clock.Time) {
	t.Helper()
	h := wire.DataHeader{DstConnID: p.sc.localCID, PacketNumber: p.cc.pnTrunc(), Key: key, Stream: st, FrameID: id,
		FragCount: 1, SendTime: wire.Timestamp(p.now, p.cc.epoch)}
	p.cc.consumePN()
	b, err := h.Append(nil)
	require.NoError(t, err)
	b, err = wire.AppendFramePrefix(b, wire.Timestamp(capture, p.cc.epoch))
	require.NoError(t, err)
	b = append(b, make([]byte, 100)...)
	p.server.HandleDatagram(p.now, clientAddr, b)
}

// settleServer runs the server's due timeouts, draining what they produce,
// and reports how many HandleTimeout calls that took (at most limit).
func (p *pipe) settleServer(limit int) int {
	n := 0
	for p.server.NextTimeout() <= p.now && n < limit {
		p.server.HandleTimeout(p.now)
		for {
			if _, _, ok := p.server.PollTransmit(p.now, p.buf); !ok {
				break
			}
		}
		for {
			if _, ok := p.server.PollEvent(); !ok {
				break
			}
		}
		n++
	}
	return n
}

// With PlayoutStallTogether (the Live profile's), one stream stalls the
// group for a missing reference frame while another's own wait for its
// gap has already ended: the second has nothing to do until the group
// resumes, and NextTimeout must not stay in the past meanwhile (it did: a
// driver that runs timeouts while NextTimeout <= now spun for up to the
// first stream's whole wait).
func TestStallTogetherDoesNotSpin(t *testing.T) {
	p := newPipe(t, Config{PlayoutStallTogether: true})
	video := func(id byte) []byte { return []byte{id, byte(KindVideo), byte(PriorityLow), streamFlagOpen} }
	p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t,
		wire.App{Subtype: appSubStreams, Name: appStreamName, Data: append(video(0), video(1)...)}))
	t0 := p.now
	p.craftFrame(t, 0, 0, true, t0)                            // A: key frame 0
	p.craftFrame(t, 1, 0, true, t0.Add(-200*time.Millisecond)) // B: key frame 0
	p.now = p.now.Add(40 * time.Millisecond)
	p.craftFrame(t, 0, 2, false, t0.Add(40*time.Millisecond)) // A: frame 2, frame 1 missing
	a := p.sc.rcv.streams[0]
	for i := 0; i < 2000 && !a.stalling; i++ { // A's frame 2 comes due: A stalls the group
		p.now = p.now.Add(5 * time.Millisecond)
		p.settleServer(100)
	}
	require.True(t, a.stalling, "stream A holds the group")
	// B's frame 2 (its frame 1 missing), captured so long ago that its own
	// hold has ended.
	p.now = p.now.Add(time.Millisecond)
	p.craftFrame(t, 1, 2, false, p.now.Add(-max(p.sc.rcv.playoutDelay, p.sc.rcv.peerLatency)-10*time.Millisecond))
	_, hold := p.sc.rcv.gapHold(p.sc.rcv.streams[1])
	require.True(t, hold, "B has a gap")
	require.Less(t, p.settleServer(100_000), 10, "NextTimeout stays in the past: a driver busy-loops")
	require.True(t, a.stalling, "A still holds the group")
	require.Greater(t, p.server.NextTimeout(), p.now)
}

// A frame released long after its capture (late, or a hostile peer's
// timestamp) does not lift the receiver's playout deadline past
// MaxPlayoutDelay: that deadline holds gaps, NACKs and the offset the
// sender is told.
func TestPlayoutDelayBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  time.Duration
		want time.Duration
	}{
		{"MaxPlayoutDelay 2 s", 2 * time.Second, 2 * time.Second},
		{"the default", 0, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t, Config{MaxPlayoutDelay: tc.max})
			p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t,
				wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}}))
			p.now = p.now.Add(time.Minute)
			p.craftFrame(t, 0, 0, true, p.now.Add(-50*time.Second)) // captured "50 s ago"
			for range 10 {
				p.now = p.now.Add(10 * time.Millisecond)
				p.tick()
				p.drainEvents()
			}
			require.Equal(t, int64(1), p.sc.stats.FramesDelivered)
			require.Equal(t, tc.want, p.sc.rcv.playoutDelay)
		})
	}
}

// A peer whose send timestamps step back 30 s a packet, while it reports a
// deadline horizon, cannot make the receiver hold a frame longer than
// MaxPeerPlayout after its capture.
func TestHorizonHoldBounded(t *testing.T) {
	p := newPipe(t, Config{})
	var d [4]byte
	binary.BigEndian.PutUint32(d[:], 1000) // a 1 ms horizon
	p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t, wire.App{Subtype: appSubHorizon, Name: appPlayoutName, Data: d[:]}))
	ts := int64(0)
	step := int64(30 * time.Second / wire.TimestampUnit)
	for i := range 2000 {
		p.now = p.now.Add(time.Millisecond)
		h := wire.DataHeader{DstConnID: p.sc.localCID, PacketNumber: p.cc.pnTrunc(), FragIndex: uint16(i%2) + 1, FragCount: 4,
			SendTime: uint32(ts) & 0xffffff}
		p.cc.consumePN()
		b, err := h.Append(nil)
		require.NoError(t, err)
		p.server.HandleDatagram(p.now, clientAddr, append(b, make([]byte, p.sc.rcv.peerFragSize)...))
		ts -= step
	}
	r := &p.sc.rcv
	st := r.streams[0]
	require.Len(t, st.active, 1, "frame 0, never complete")
	require.Positive(t, r.peerHorizon)
	assert.LessOrEqual(t, r.oneWay, MaxPeerPlayout)
	assert.LessOrEqual(t, r.giveUpAt(&st.slots[st.active[0]]).Sub(p.now), MaxPeerPlayout)
}

// A flood of key-frame requests (60 PLIs a datagram, ten datagrams in
// 10 ms) reaches the application once; a request a second later does too.
func TestPLIFloodMerged(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.sc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	p.drainEvents()
	requests := func(n int) int {
		b, err := wire.AppendFeedbackHeader(nil, p.sc.localCID, p.cc.pnTrunc())
		require.NoError(t, err)
		p.cc.consumePN()
		for range n {
			b, err = (&wire.PLI{MediaSSRC: uint32(sid)}).Append(b)
			require.NoError(t, err)
		}
		p.server.HandleDatagram(p.now, clientAddr, b)
		got := 0
		for {
			ev, ok := p.server.PollEvent()
			if !ok {
				return got
			}
			if ev.Type == EventKeyFrameRequest {
				got++
			}
		}
	}
	total := 0
	for range 10 {
		total += requests(60)
		p.now = p.now.Add(time.Millisecond)
	}
	assert.Equal(t, 1, total)
	p.now = p.now.Add(time.Second)
	assert.Equal(t, 1, requests(1))
	st := p.sc.Stats()
	assert.Equal(t, int64(601), st.KeyFrameRequests)
	assert.Equal(t, int64(599), st.KeyFrameRequestsMerged)
}

// A copy of a closed connection's Hello (the network delayed it, or
// someone replays it from the client's address) within its cookie's
// lifetime opens no connection: the application would accept a session
// nobody is at, holding a MaxConns slot until the idle timeout.
func TestReplayedHelloAfterClose(t *testing.T) {
	var hello []byte
	ce, err := NewEndpoint(Config{Rand: newSeeded(1)})
	require.NoError(t, err)
	se, err := NewEndpoint(Config{Rand: newSeeded(2), Accept: true})
	require.NoError(t, err)
	p := &pipe{client: ce, server: se, now: 1e9, buf: make([]byte, 2048)}
	p.tap = func(from string, b []byte) {
		var h wire.Handshake
		if from == "client" && h.Parse(b) == nil && h.Msg == wire.MsgHello && len(h.Cookie) > 0 {
			hello = append([]byte(nil), b...)
		}
	}
	cc, err := ce.Connect(p.now, serverAddr)
	require.NoError(t, err)
	for range 5 {
		p.exchange()
		p.now = p.now.Add(time.Millisecond)
	}
	require.True(t, cc.Established())
	require.NotNil(t, hello, "the Hello that carried a cookie")
	cc.Close(p.now, 0, "bye")
	for range 100 {
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
	}
	require.Empty(t, se.Conns())
	for {
		if _, ok := se.PollEvent(); !ok {
			break
		}
	}
	dropped := se.Stats().HandshakeDropped
	se.HandleDatagram(p.now, clientAddr, hello)
	assert.Empty(t, se.Conns())
	_, ok := se.PollEvent()
	assert.False(t, ok, "no event")
	assert.Equal(t, int64(1), se.Stats().ConnsAccepted)
	assert.Equal(t, dropped+1, se.Stats().HandshakeDropped)
	_, _, ok = se.PollTransmit(p.now, p.buf)
	assert.False(t, ok, "no answer")
}

// The sender opens a stream, sends a frame and closes the stream; the
// network delivers the "open" announcement after the "closed" one. The
// stale open must not reopen (reset) the stream: its frame still arrives,
// and the application sees one open and one close.
func TestReorderedAnnouncement(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		t.Run(map[bool]string{false: "in order", true: "reordered"}[reorder], func(t *testing.T) {
			p := newPipe(t, Config{})
			var announces, data [][]byte
			p.drop = func(from string, b []byte) bool {
				if from != "client" {
					return false
				}
				typ, _, _, err := wire.Peek(b)
				require.NoError(t, err)
				switch {
				case typ == wire.TypeFeedback: // held, to be delivered by hand
					announces = append(announces, append([]byte(nil), b...))
					return true
				case typ == wire.TypeData && len(data) < 3: // the frame's last fragment comes late
					data = append(data, append([]byte(nil), b...))
					return len(data) == 3
				}
				return false
			}
			sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
			require.NoError(t, err)
			p.tick()
			require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 3000), FrameInfo{Capture: p.now, Key: true}))
			p.tick()
			require.NoError(t, p.cc.CloseStream(p.now, sid))
			p.tick()
			require.Len(t, announces, 2)
			require.Len(t, data, 3)
			p.drop = nil
			var opened, closed, frames, lost int
			count := func() {
				for {
					ev, ok := p.server.PollEvent()
					if !ok {
						return
					}
					switch ev.Type {
					case EventStreamOpened:
						opened++
					case EventStreamClosed:
						closed++
					case EventFrame:
						frames++
					case EventFrameLost:
						lost++
					}
				}
			}
			if reorder {
				announces[0], announces[1] = announces[1], announces[0]
			}
			for _, a := range announces {
				p.server.HandleDatagram(p.now, clientAddr, a)
				count()
			}
			p.now = p.now.Add(5 * time.Millisecond)
			p.server.HandleDatagram(p.now, clientAddr, data[2]) // within the close's drain time
			count()
			for range 200 {
				p.now = p.now.Add(10 * time.Millisecond)
				p.tick()
				count()
			}
			assert.Equal(t, 1, opened)
			assert.Equal(t, 1, closed)
			assert.Equal(t, 1, frames)
			assert.Zero(t, lost)
		})
	}
}

// A reused stream id takes the next generation; an acknowledgement naming
// an earlier generation acknowledges nothing.
func TestStreamGenerations(t *testing.T) {
	p := newPipe(t, Config{})
	for want := range uint8(3) {
		sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		require.Zero(t, sid, "the id is reused")
		require.Equal(t, want, p.cc.snd.streams[sid].gen)
		p.tick()
		require.True(t, p.cc.snd.streams[sid].acked)
		require.Equal(t, want, p.sc.rcv.streams[sid].gen, "the receiver follows")
		require.NoError(t, p.cc.CloseStream(p.now, sid))
		for range 50 {
			p.now = p.now.Add(10 * time.Millisecond)
			p.tick()
		}
		p.drainEvents()
		require.True(t, p.cc.snd.streams[sid].acked, "the close is acknowledged")
	}
	st := p.cc.snd.streams[0]
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	require.NoError(t, err)
	require.Equal(t, uint8(3), st.gen)
	// A stale ack: stream 0 open, generation 2.
	ack := make([]byte, streamAckLen)
	ack[0], ack[1], ack[4] = 0, 1, 2
	p.cc.snd.handleStreamAck(ack)
	assert.False(t, p.cc.snd.streams[sid].acked, "an ack of generation 2 is not one of generation 3")
	ack[4] = 3
	p.cc.snd.handleStreamAck(ack)
	assert.True(t, p.cc.snd.streams[sid].acked)
	errs := p.cc.stats.ProtocolErrors
	p.cc.snd.handleStreamAck(ack[:4])
	assert.Equal(t, errs+1, p.cc.stats.ProtocolErrors, "the old 4-byte form is an error")
}

// A newer generation's announcement ends the id's earlier stream even if
// its close never came: the application sees it close before the new one
// opens.
func TestNewerGenerationEndsAnOpenStream(t *testing.T) {
	p := newPipe(t, Config{})
	p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t, announce(0, true)))
	p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t, announce(1, true)))
	var got []EventType
	for {
		ev, ok := p.server.PollEvent()
		if !ok {
			break
		}
		got = append(got, ev.Type)
	}
	assert.Equal(t, []EventType{EventStreamOpened, EventStreamClosed, EventStreamOpened}, got)
	assert.Equal(t, uint8(1), p.sc.rcv.streams[0].gen)
	assert.True(t, p.sc.rcv.streams[0].open)
}

// A closed stream's id is not reused while its packets may still be sent
// (a retransmission, a repair: until its frames' deadlines) or be on their
// way. Data packets carry no generation: a packet of the old stream
// arriving after the new stream's announcement was taken for the new
// stream's, its frame id (299) put the new stream's window past its first
// frames (ids from 0), and those were refused.
func TestStreamIDReuseWaitsForLastDeadline(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	const oldFrames = 300
	var lastCapture clock.Time
	for i := range oldFrames {
		lastCapture = p.now
		require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 200), FrameInfo{Capture: p.now, Key: i == 0}))
		p.tick()
		p.now = p.now.Add(time.Millisecond)
	}
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	for range 5 {
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
	}
	require.True(t, p.cc.snd.streams[sid].acked, "the close is acknowledged")
	require.Zero(t, p.cc.snd.streams[sid].queue.Len(), "the queue has drained")
	p.drainEvents()

	sid2, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	assert.NotEqual(t, sid, sid2, "the id waits for its last deadline")
	p.tick()
	// A packet of the old stream's last frame, sent late (as a
	// retransmission would be: a fresh packet number).
	p.craftFrame(t, sid, oldFrames-1, false, lastCapture)
	delivered, lost := 0, 0
	count := func() {
		for {
			ev, ok := p.server.PollEvent()
			if !ok {
				return
			}
			if ev.Stream != sid2 {
				continue
			}
			switch ev.Type {
			case EventFrame:
				delivered++
			case EventFrameLost:
				lost++
			}
		}
	}
	const newFrames = 10
	for i := range newFrames {
		require.NoError(t, p.cc.WriteFrame(p.now, sid2, payload(sid2, int64(i), 200), FrameInfo{Capture: p.now, Key: i == 0}))
		p.tick()
		count()
		p.now = p.now.Add(33 * time.Millisecond)
	}
	for range 100 {
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
		count()
	}
	assert.Equal(t, newFrames, delivered, "the new stream's frames")
	assert.Zero(t, lost)

	// Once the old stream's last deadline (capture + 300 ms) and the grace
	// have passed, its id is free again.
	require.NoError(t, p.cc.CloseStream(p.now, sid2))
	for range 10 {
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
	}
	sid3, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	require.NoError(t, err)
	assert.Equal(t, sid, sid3)
	assert.Equal(t, uint8(1), p.cc.snd.streams[sid3].gen)
}
