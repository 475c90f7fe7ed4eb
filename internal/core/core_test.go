package core

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

func TestHandshakeAndRTT(t *testing.T) {
	link := netem.LinkConfig{Delay: 40 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	sc := p.connected()
	require.True(t, p.cc.Established())
	require.True(t, sc.Established())
	assert.True(t, sc.Incoming())
	assert.False(t, p.cc.Incoming())
	// Hello, Retry, Hello+cookie, Accept: two round trips for the client.
	assert.Equal(t, 80*time.Millisecond, p.cc.RTT(), "client RTT from Hello to Accept")
	assert.Equal(t, 80*time.Millisecond, sc.RTT(), "server RTT from the cookie's timestamp")
	assert.Equal(t, int64(1), p.server.ep.Stats().RetriesSent)
	assert.Equal(t, int64(1), p.server.ep.Stats().ConnsAccepted)
	assert.Equal(t, DefaultLatency, sc.PeerLatency())
}

func TestFramesArriveIntactInOrderAtPlayout(t *testing.T) {
	link := netem.LinkConfig{Delay: 25 * time.Millisecond, Rate: 20_000_000}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	p.connected()
	sizes := []int{0, 1, 1196, 1197, 1198, 2500, 50_000, 100, DefaultMaxFrameSize}
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 5_000_000})
		require.NoError(t, err)
	})
	for i, size := range sizes {
		i, size := i, size
		p.at(time.Duration(i+1)*10*time.Millisecond, func(now clock.Time) {
			err := p.cc.WriteFrame(now, sid, payload(sid, int64(i), size), FrameInfo{Capture: now, Key: i == 0})
			if size == DefaultMaxFrameSize {
				// 4 MiB take 1.7 s at 20 Mbit/s, 2.7 s at the 12.5 Mbit/s
				// pacing rate: hopeless on arrival.
				require.ErrorIs(t, err, ErrFrameDropped)
				return
			}
			require.NoError(t, err)
		})
	}
	p.run(5 * time.Second)

	opened, ok := p.server.find(EventStreamOpened)
	require.True(t, ok)
	assert.Equal(t, KindVideo, opened.Kind)
	var ids []int64
	var offsets []time.Duration
	for _, ev := range p.server.events {
		if ev.Type != EventFrame {
			continue
		}
		ids = append(ids, ev.Frame.ID)
		want := payload(sid, ev.Frame.ID, sizes[ev.Frame.ID])
		assert.Equal(t, want, p.server.frames[frameKey{sid, ev.Frame.ID}], "frame %d bytes", ev.Frame.ID)
		assert.Equal(t, len(want), ev.Frame.Size)
		assert.Equal(t, ev.Frame.ID == 0, ev.Frame.Key)
		// Played at one offset from capture (no jitter here), within the
		// budget, after completing.
		offsets = append(offsets, ev.Frame.Playout.Sub(ev.Frame.Capture))
		assert.LessOrEqual(t, ev.Frame.Playout.Sub(ev.Frame.Capture), DefaultLatency, "frame %d playout", ev.Frame.ID)
		assert.LessOrEqual(t, ev.Frame.Completed, ev.Frame.Playout)
		assert.False(t, ev.Frame.PlayedLate)
	}
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, ids, "every frame but the one too big for its deadline, in order")
	for k := 1; k < len(offsets); k++ {
		// It rises when a big frame needs more; it falls at most at the
		// drain rate (10 %) over the 10 ms between captures.
		assert.GreaterOrEqual(t, offsets[k], offsets[k-1]-time.Millisecond-time.Microsecond, "frame %d", k)
	}
	dropped, ok := p.client.find(EventFrameDropped)
	require.True(t, ok)
	assert.Equal(t, int64(8), dropped.Frame.ID)
	assert.Equal(t, DropLateOnArrival, dropped.Frame.DropReason)
	assert.Equal(t, "predicted to arrive after its deadline", dropped.Frame.Reason)
	st := p.cc.Stats()
	assert.Equal(t, int64(8), st.FramesSent)
	assert.Equal(t, int64(1), st.FramesDroppedOnSend)
	assert.Zero(t, st.SendBacklog)
}

func TestLossGivesUpAtDeadline(t *testing.T) {
	var dataSeen int
	drop := func(now clock.Time, b []byte) bool {
		if b[0]>>3&7 == byte(wire.TypeData) {
			dataSeen++
			// lose the second fragment of the third frame
			var h wire.DataHeader
			if _, err := h.Parse(b); err == nil && h.FrameID == 2 && h.FragIndex == 1 {
				return false
			}
		}
		return true
	}
	link := netem.LinkConfig{Delay: 10 * time.Millisecond}
	noRecovery := Config{DisableFEC: true, DisableRetransmission: true}
	p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: drop, client: noRecovery, server: noRecovery})
	p.connected()
	var sid uint8
	var captures []clock.Time
	p.at(0, func(now clock.Time) {
		sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
	})
	for i := range 5 {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			captures = append(captures, now)
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now}))
		})
	}
	p.run(2 * time.Second)
	lost, ok := p.server.find(EventFrameLost)
	require.True(t, ok)
	assert.Equal(t, int64(2), lost.Frame.ID)
	assert.Equal(t, 3, lost.Frame.Fragments)
	assert.Equal(t, 2, lost.Frame.Received)
	var next Event
	for _, ev := range p.server.events {
		if ev.Type == EventFrame && ev.Frame.ID == 3 {
			next = ev
		}
	}
	assert.Equal(t, int64(1), next.Frame.LostBefore)
	assert.Equal(t, 4, p.server.count(EventFrame))
	sc := p.server.events[0].Conn
	st := sc.Stats()
	assert.Equal(t, int64(1), st.FramesGivenUp)
	assert.Equal(t, int64(1), st.FramesSkipped)
	assert.Equal(t, int64(1), st.PacketsLost)
	assert.Len(t, captures, 5)
}

func TestReordering(t *testing.T) {
	// Jitter of 15 ms with reordering, frames every 20 ms of 4-5 fragments.
	link := netem.LinkConfig{Delay: 20 * time.Millisecond, Jitter: 15 * time.Millisecond, Reorder: true}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	p.connected()
	outOfOrder, last := 0, uint32(0)
	p.server.inbound = func(_ clock.Time, b []byte) {
		var h wire.DataHeader
		if _, err := h.Parse(b); err == nil {
			if h.PacketNumber < last {
				outOfOrder++
			}
			last = max(last, h.PacketNumber)
		}
	}
	var sid uint8
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
	for i := range 30 {
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 4000+i), FrameInfo{Capture: now}))
		})
	}
	p.run(3 * time.Second)
	require.Equal(t, 30, p.server.count(EventFrame))
	for i := range 30 {
		assert.Equal(t, payload(sid, int64(i), 4000+i), p.server.frames[frameKey{sid, int64(i)}])
	}
	assert.Greater(t, outOfOrder, 10, "the link did reorder")
}

func TestDuplicatedDatagramsAreDropped(t *testing.T) {
	link := netem.LinkConfig{Delay: 5 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	sc := p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio}) })
	// Capture every datagram the client sends and replay each one later.
	var sent [][]byte
	p.client.filter = func(now clock.Time, b []byte) bool {
		sent = append(sent, append([]byte(nil), b...))
		return true
	}
	for i := range 10 {
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 100), FrameInfo{Capture: now}))
		})
	}
	p.run(time.Second)
	require.Equal(t, 10, p.server.count(EventFrame))
	p.client.filter = func(clock.Time, []byte) bool { return false } // from now on only the replays arrive
	p.run(100 * time.Millisecond)                                    // what is in flight lands
	before := sc.Stats()
	p.at(0, func(now clock.Time) {
		for _, b := range sent {
			p.server.ep.HandleDatagram(now, clientAddr, b)
		}
	})
	p.run(time.Second)
	after := sc.Stats()
	assert.Equal(t, 10, p.server.count(EventFrame), "replays deliver nothing")
	assert.Equal(t, before.PacketsReceived, after.PacketsReceived)
	assert.Equal(t, before.PacketsDuplicated+int64(len(sent)), after.PacketsDuplicated)
}

func TestWriteFrameErrors(t *testing.T) {
	p := newPair(t, pairOpts{client: Config{MaxFrameSize: 10_000, MaxSendBuffer: 20_000}})
	p.connected()
	p.at(0, func(now clock.Time) {
		_, err := p.cc.OpenStream(now, StreamConfig{Kind: 9})
		assert.ErrorIs(t, err, ErrInvalidConfig)
		sid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		assert.ErrorIs(t, p.cc.WriteFrame(now, sid, make([]byte, 10_001), FrameInfo{Capture: now}), ErrFrameTooLarge)
		assert.ErrorIs(t, p.cc.WriteFrame(now, 5, nil, FrameInfo{Capture: now}), ErrUnknownStream)
		// Droppable, so the frames after it do not wait for a key frame.
		err = p.cc.WriteFrame(now, sid, []byte{1}, FrameInfo{Capture: now.Add(-time.Second), Droppable: true})
		assert.ErrorIs(t, err, ErrFrameDropped, "past its deadline on arrival")
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 10_000), FrameInfo{Capture: now}))
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 9_000), FrameInfo{Capture: now}))
		assert.ErrorIs(t, p.cc.WriteFrame(now, sid, make([]byte, 5_000), FrameInfo{Capture: now}), ErrFrameDropped, "send buffer full")
		for range 15 {
			_, err = p.cc.OpenStream(now, StreamConfig{Kind: KindData})
			require.NoError(t, err)
		}
		_, err = p.cc.OpenStream(now, StreamConfig{Kind: KindData})
		assert.ErrorIs(t, err, ErrTooManyStreams)
	})
	p.run(time.Second)
	assert.Equal(t, int64(2), p.cc.Stats().FramesDroppedOnSend)
	assert.Equal(t, 2, p.client.count(EventFrameDropped))
}

func TestIdleTimeoutAndKeepalive(t *testing.T) {
	cfg := Config{IdleTimeout: 3 * time.Second, KeepAlivePeriod: time.Second}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: netem.LinkConfig{Delay: 10 * time.Millisecond}, rev: netem.LinkConfig{Delay: 10 * time.Millisecond}})
	sc := p.connected()
	p.run(20 * time.Second)
	assert.True(t, p.cc.Established(), "keepalives hold an idle connection open")
	assert.True(t, sc.Established())
	assert.Greater(t, p.cc.Stats().PingsSent, int64(10))

	// Now the path goes dark both ways.
	p.sim.Link(clientAddr, serverAddr).SetConfig(netem.LinkConfig{Loss: 1})
	p.sim.Link(serverAddr, clientAddr).SetConfig(netem.LinkConfig{Loss: 1})
	p.run(5 * time.Second)
	for _, n := range []*node{p.client, p.server} {
		ev, ok := n.find(EventClosed)
		require.True(t, ok)
		assert.ErrorIs(t, ev.Err, ErrIdleTimeout)
		assert.ErrorIs(t, ev.Err, ErrClosed)
	}
	assert.Empty(t, p.client.ep.Conns())
	assert.Empty(t, p.server.ep.Conns())
	assert.True(t, p.server.ep.Idle())
}

func TestHandshakeTimeoutAndRetransmission(t *testing.T) {
	for _, tt := range []struct {
		timeout time.Duration
		hellos  uint64
	}{
		{2 * time.Second, 4}, // 0, 250, 750, 1750 ms
		{6 * time.Second, 8}, // then every second (helloMaxBackoff): 2.75, 3.75, 4.75, 5.75 s
	} {
		p := newPair(t, pairOpts{client: Config{HandshakeTimeout: tt.timeout}, fwd: netem.LinkConfig{Loss: 1}})
		p.run(tt.timeout + time.Second)
		ev, ok := p.client.find(EventClosed)
		require.True(t, ok)
		assert.ErrorIs(t, ev.Err, ErrHandshakeTimeout)
		assert.Equal(t, tt.hellos, p.sim.Link(clientAddr, serverAddr).Stats().PacketsOffered, "timeout %v", tt.timeout)
	}

	// Lossy handshake: every other datagram lost each way still connects.
	var nc, ns int
	p := newPair(t, pairOpts{seed: 3,
		clientFilter: func(clock.Time, []byte) bool { nc++; return nc%2 == 0 },
		serverFilter: func(clock.Time, []byte) bool { ns++; return ns%2 == 0 }})
	p.connected()
	assert.Equal(t, int64(1), p.server.ep.Stats().ConnsAccepted)
}

func TestRejections(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.server.ep.SetAccept(false)
	p.run(time.Second)
	ev, ok := p.client.find(EventClosed)
	require.True(t, ok)
	var rej *RejectError
	require.ErrorAs(t, ev.Err, &rej)
	assert.Equal(t, uint8(wire.RejectRefused), rej.Reason)
	assert.ErrorIs(t, ev.Err, ErrRejected)
	assert.Contains(t, ev.Err.Error(), "refused")

	p = newPair(t, pairOpts{server: Config{MaxConns: 1}})
	p.connected()
	var c2 *Conn
	p.at(0, func(now clock.Time) {
		var err error
		c2, err = p.client.ep.Connect(now, serverAddr)
		require.NoError(t, err)
	})
	p.run(time.Second)
	assert.ErrorIs(t, c2.Err(), ErrRejected, "a full server refuses")
	assert.True(t, p.cc.Established())
}

func TestOrderlyClose(t *testing.T) {
	link := netem.LinkConfig{Delay: 30 * time.Millisecond, Rate: 2_000_000}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	sc := p.connected()
	p.at(0, func(now clock.Time) {
		sid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		for i := range 5 {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 6000), FrameInfo{Capture: now}))
		}
		p.cc.Close(now, CodeApplication+1, "done")
		assert.ErrorIs(t, p.cc.WriteFrame(now, sid, []byte{1}, FrameInfo{Capture: now}), ErrClosed)
	})
	p.run(2 * time.Second)
	assert.Equal(t, 5, p.server.count(EventFrame), "queued frames are flushed before the close")
	ev, ok := p.server.find(EventClosed)
	require.True(t, ok)
	var ce *CloseError
	require.ErrorAs(t, ev.Err, &ce)
	assert.Equal(t, CloseError{Code: CodeApplication + 1, Reason: "done", Remote: true}, *ce)
	assert.ErrorIs(t, ev.Err, ErrClosed)
	ev, ok = p.client.find(EventClosed)
	require.True(t, ok)
	assert.NoError(t, ev.Err, "a local orderly close reports no error")
	assert.True(t, sc.Closed())
	assert.True(t, p.cc.Closed())
	assert.True(t, p.client.ep.Idle())
	assert.True(t, p.server.ep.Idle())
}

func TestStreamAnnouncementSurvivesLoss(t *testing.T) {
	lost := 0
	dropFeedback := func(now clock.Time, b []byte) bool {
		if b[0]>>3&7 == byte(wire.TypeFeedback) && lost < 2 {
			lost++
			return false
		}
		return true
	}
	p := newPair(t, pairOpts{fwd: netem.LinkConfig{Delay: 10 * time.Millisecond}, rev: netem.LinkConfig{Delay: 10 * time.Millisecond}})
	p.connected()
	p.client.filter = dropFeedback
	var sid uint8
	p.at(0, func(now clock.Time) {
		sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Priority: PriorityHigh})
		require.NoError(t, p.cc.WriteFrame(now, sid, []byte("hello"), FrameInfo{Capture: now}))
	})
	p.run(2 * time.Second)
	assert.Equal(t, 2, lost, "the first two announcements were lost; the third, 200 ms later, came before the frame's playout time")
	ev, ok := p.server.find(EventStreamOpened)
	require.True(t, ok, "the announcement is repeated until acknowledged")
	assert.Equal(t, KindAudio, ev.Kind)
	assert.Equal(t, PriorityHigh, ev.Priority)
	assert.False(t, p.cc.snd.announceDue, "acknowledged")
	assert.Equal(t, []byte("hello"), p.server.frames[frameKey{sid, 0}], "the frame waited for the announcement")
	assert.Equal(t, 1, p.server.count(EventFrame))

	p.at(0, func(now clock.Time) { require.NoError(t, p.cc.CloseStream(now, sid)) })
	p.run(time.Second)
	assert.Equal(t, 1, p.server.count(EventStreamClosed))
	p.at(0, func(now clock.Time) {
		id, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		assert.Equal(t, sid, id, "a closed, acknowledged id is reused")
		require.NoError(t, p.cc.WriteFrame(now, id, []byte("again"), FrameInfo{Capture: now}))
	})
	p.run(time.Second)
	assert.Equal(t, 2, p.server.count(EventStreamOpened))
	assert.Equal(t, []byte("again"), p.server.frames[frameKey{sid, 0}], "the reused stream starts at frame 0")
}

// keyFramePair connects a pair over 50 ms links (RTT 100 ms) and returns it
// a second after the client opened a video stream and sent it a key
// frame: the server's connection and the stream.
func keyFramePair(t *testing.T) (p *pair, sc *Conn, sid uint8) {
	t.Helper()
	link := netem.LinkConfig{Delay: 50 * time.Millisecond}
	p = newPair(t, pairOpts{fwd: link, rev: link})
	sc = p.connected()
	p.at(0, func(now clock.Time) {
		sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, p.cc.WriteFrame(now, sid, []byte{1}, FrameInfo{Capture: now, Key: true}))
	})
	p.run(time.Second)
	return p, sc, sid
}

func TestKeyFrameRequest(t *testing.T) {
	p, sc, sid := keyFramePair(t)
	p.at(0, func(now clock.Time) {
		for range 5 { // one per RTT
			require.NoError(t, sc.RequestKeyFrame(now, sid))
		}
		assert.ErrorIs(t, sc.RequestKeyFrame(now, 9), ErrUnknownStream)
	})
	p.run(time.Second)
	ev, ok := p.client.find(EventKeyFrameRequest)
	require.True(t, ok)
	assert.Equal(t, sid, ev.Stream)
	assert.Equal(t, 1, p.client.count(EventKeyFrameRequest))
	assert.Equal(t, int64(1), sc.Stats().PLIsSent)
}

func TestFeedbackReports(t *testing.T) {
	link := netem.LinkConfig{Delay: 20 * time.Millisecond, Loss: 0.1}
	p := newPair(t, pairOpts{seed: 7, fwd: link, rev: netem.LinkConfig{Delay: 20 * time.Millisecond}})
	sc := p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio}) })
	for i := range 500 {
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 100), FrameInfo{Capture: now}))
		})
	}
	p.run(12 * time.Second)
	st := p.cc.Stats()
	rs := sc.Stats()
	assert.InDelta(t, 0.1, float64(rs.PacketsLost)/float64(rs.PacketsLost+rs.PacketsReceived), 0.04)
	assert.Equal(t, rs.PacketsLost, st.RemotePacketsLost, "receiver reports carry the loss back")
	assert.Greater(t, st.FeedbackReceived, int64(100), "transport-wide feedback every 50 ms")
	assert.Equal(t, 40*time.Millisecond, st.MinRoundTripTime)
	assert.Greater(t, rs.FeedbackSent, int64(100))
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		field string
		cfg   Config
	}{
		{"Latency", Config{Latency: -1}},
		{"Latency", Config{Latency: time.Hour}},
		{"FragmentSize", Config{FragmentSize: 10}},
		{"FragmentSize", Config{FragmentSize: 1460}},
		{"MaxDatagramSize", Config{MaxDatagramSize: 500}},
		{"MaxFrameSize", Config{MaxFrameSize: 4096 * 1200}},
		{"KeepAlivePeriod", Config{KeepAlivePeriod: time.Minute}},
		{"PacingFactor", Config{PacingFactor: 0.5}},
		{"MaxFECOverhead", Config{MaxFECOverhead: 1.5}},
		{"MaxFECOverhead", Config{MaxFECOverhead: -0.1}},
		{"PlayoutWindow", Config{PlayoutWindow: -time.Second}},
		{"PlayoutWindow", Config{PlayoutWindow: 2 * time.Hour}},
		{"MaxPlayoutDelay", Config{MinPlayoutDelay: time.Second, MaxPlayoutDelay: 500 * time.Millisecond}},
		{"MaxReceiveBuffer", Config{MaxReceiveBuffer: 1000}},
		{"MaxSendBuffer", Config{MaxSendBuffer: 1000}},
	}
	for _, tt := range bad {
		err := tt.cfg.Validate()
		require.Error(t, err, tt.field)
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tt.field)
		_, err = NewEndpoint(tt.cfg)
		assert.ErrorIs(t, err, ErrInvalidConfig)
	}
	assert.NoError(t, Config{}.Validate())
	assert.NoError(t, Config{FragmentSize: 64, MaxFrameSize: 4096*64 - 3}.Validate())
}

func TestDeterministic(t *testing.T) {
	trace := func() []string {
		link := netem.LinkConfig{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05}
		p := newPair(t, pairOpts{seed: 42, fwd: link, rev: link})
		p.connected()
		var sid uint8
		p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
		for i := range 100 {
			p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
				_ = p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000+i*7), FrameInfo{Capture: now})
			})
		}
		p.run(5 * time.Second)
		var out []string
		for _, ev := range p.server.events {
			out = append(out, ev.Type.String(), ev.Frame.Completed.String())
		}
		return out
	}
	a, b := trace(), trace()
	require.NotEmpty(t, a)
	assert.Equal(t, a, b)
}

func TestCloseErrorStrings(t *testing.T) {
	assert.Equal(t, "spillway: closed by remote (code 256): bye", (&CloseError{Code: 256, Reason: "bye", Remote: true}).Error())
	assert.Equal(t, "spillway: closed by local (code 2)", (&CloseError{Code: 2}).Error())
	assert.True(t, errors.Is(&CloseError{}, ErrClosed))
	assert.Contains(t, (&RejectError{Reason: 99}).Error(), "reason 99")
}

func TestFramesOfAStreamNeverAnnouncedAreDropped(t *testing.T) {
	p := newPair(t, pairOpts{fwd: netem.LinkConfig{Delay: 10 * time.Millisecond}, rev: netem.LinkConfig{Delay: 10 * time.Millisecond}})
	sc := p.connected()
	p.client.filter = func(now clock.Time, b []byte) bool { return b[0]>>3&7 != byte(wire.TypeFeedback) }
	p.at(0, func(now clock.Time) {
		sid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
		require.NoError(t, err)
		require.NoError(t, p.cc.WriteFrame(now, sid, []byte("lost"), FrameInfo{Capture: now}))
	})
	p.run(2 * time.Second)
	assert.Zero(t, p.server.count(EventStreamOpened))
	assert.Zero(t, p.server.count(EventFrame))
	rs, ok := sc.RecvStreamStats(0)
	require.True(t, ok)
	assert.Equal(t, int64(1), rs.FramesUnannounced)
	assert.Zero(t, sc.recvBytes, "its buffer was freed")
}

// A capture time a little after now (an application's clock read after
// its event loop read now) is taken as now: the wire has the capture at or
// before the send time, and one after it would read 67.1 s earlier.
func TestCaptureAfterNowIsTakenAsNow(t *testing.T) {
	link := netem.LinkConfig{Delay: 25 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	p.connected()
	p.at(0, func(now clock.Time) {
		sid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
		require.NoError(t, err)
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 500), FrameInfo{Capture: now.Add(8 * time.Microsecond), Key: true}))
	})
	p.run(time.Second)
	ev, ok := p.server.find(EventFrame)
	require.True(t, ok)
	lat := ev.Frame.Completed.Sub(ev.Frame.Capture)
	assert.Greater(t, lat, 20*time.Millisecond)
	assert.Less(t, lat, 100*time.Millisecond, "not a timestamp period away")
}
