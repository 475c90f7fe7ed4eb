package core

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// Tests of the sender's drop path found by a review of the send path
// (each failed before its fix but TestMaxFrameSizeAt4096Fragments, a
// boundary that held).

// Drop notices carry no stream generation: one the receiver did not get
// before the id was reused was applied to the new stream's frames (3 of
// its 10 refused). An id now waits until its notices are acknowledged or
// expired (dropNoticeLife).
func TestDropNoticeOutlivesStreamID(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 500), FrameInfo{Capture: p.now, Key: true}))
	p.tick()
	losing := true // the network loses the datagrams carrying drop notices
	p.drop = func(from string, b []byte) bool {
		return losing && from == "client" && bytes.Contains(b, []byte("SPDR"))
	}
	// Frames 1-3 are late on arrival (an application's stall): dropped, noticed.
	for range 3 {
		_ = p.cc.WriteFrame(p.now, sid, make([]byte, 500), FrameInfo{Capture: p.now.Add(-time.Second), Droppable: true})
	}
	p.tick()
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	var nsid uint8
	closedAt := p.now
	for i := 0; ; i++ {
		require.Less(t, i, 3000)
		p.now = p.now.Add(time.Millisecond)
		p.tick()
		if nsid, err = p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo}); err == nil && nsid == sid {
			break
		}
		require.NoError(t, err)
		require.NoError(t, p.cc.CloseStream(p.now, nsid)) // another id: try again later
	}
	require.GreaterOrEqual(t, p.now.Sub(closedAt), dropNoticeLife, "the id waits for its notices to expire")
	losing = false
	for range 15 { // the application starts its encoder
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
	}
	p.drainEvents()
	delivered := 0
	for i := range 10 {
		require.NoError(t, p.cc.WriteFrame(p.now, nsid, make([]byte, 500), FrameInfo{Capture: p.now, Key: i == 0}))
		p.tick()
		p.now = p.now.Add(20 * time.Millisecond)
		p.tick()
		delivered += p.drainEvents()
	}
	for range 50 {
		p.now = p.now.Add(20 * time.Millisecond)
		p.tick()
		delivered += p.drainEvents()
	}
	require.Equal(t, 10, delivered, "new stream frames delivered (FragmentsDropped=%d)", p.sc.Stats().FragmentsDropped)
}

type knob struct{ rate int64 }

func (k *knob) OnFeedback(clock.Time, *cc.Feedback, cc.RTT, bool) {}
func (k *knob) Target() int64                                     { return k.rate }

// A frame cut short after more than historySize (2048) packets left since
// its first fragment: its early fragments were not found in the sent
// history, so they stayed in the retransmission history and their NACKs
// retransmitted them after the frame was declared dropped (3 here). A cut
// after 1000 originals did not show it.
func TestCutShortFrameBeyondSentHistory(t *testing.T) {
	est := &knob{rate: 200_000_000}
	cfg := Config{Latency: time.Second, MaxBitrate: 400_000_000, DisableFEC: true,
		Estimator: func() cc.Estimator { return est }}
	var sid uint8
	originals, rtxAfterDrop := 0, 0
	var droppedAt clock.Time = -1
	link := netem.LinkConfig{Delay: 60 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: link, rev: link,
		clientFilter: func(now clock.Time, b []byte) bool {
			var h wire.DataHeader
			if _, err := h.Parse(b); err != nil || h.Stream != sid || h.FrameID != 0 {
				return true
			}
			if h.Retransmit {
				if droppedAt >= 0 {
					rtxAfterDrop++
				}
				return true
			}
			originals++
			if originals == 2300 {
				est.rate = 5_000_000 // the path collapses: the rest cannot make it
			}
			return h.FragIndex >= 3 // the first three are lost
		}})
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventFrameDropped && ev.Stream == sid && ev.Frame.ID == 0 && droppedAt < 0 {
			droppedAt = now
		}
	}
	p.connected()
	var err error
	sid, err = p.cc.OpenStream(p.sim.Now(), StreamConfig{Kind: KindVideo, Bitrate: 100_000_000})
	require.NoError(t, err)
	p.run(200 * time.Millisecond)
	now := p.sim.Now()
	require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 2900*p.cc.fragSize()), FrameInfo{Capture: now, Key: true}))
	p.run(time.Second)
	require.GreaterOrEqual(t, droppedAt, clock.Time(0), "frame 0 cut short")
	require.Zero(t, rtxAfterDrop, "retransmissions of frame 0 after its EventFrameDropped (%d originals sent)", originals)
}

// A stream's target is "never reported under MinBitrate" (StreamConfig doc).
func TestPushbackKeepsMinBitrate(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000, MinBitrate: 1_000_000})
	require.NoError(t, err)
	p.tick()
	var targets []int64
	collect := func() {
		for {
			ev, ok := p.client.PollEvent()
			if !ok {
				return
			}
			if ev.Type == EventTargetRate {
				targets = append(targets, ev.Bitrate)
			}
		}
	}
	collect()
	require.NotEmpty(t, targets)
	p.now = p.now.Add(10 * time.Millisecond)
	// A delta frame too big to arrive in time: dropped as predicted late.
	err = p.cc.WriteFrame(p.now, sid, make([]byte, 100_000), FrameInfo{Capture: p.now})
	require.ErrorIs(t, err, ErrFrameDropped)
	collect()
	for _, b := range targets {
		require.GreaterOrEqual(t, b, int64(1_000_000), "EventTargetRate below MinBitrate: %v", targets)
	}
}

// A frame of exactly MaxFrameSize in 4096 fragments arrives intact.
func TestMaxFrameSizeAt4096Fragments(t *testing.T) {
	p := newPipe(t, Config{FragmentSize: 256, MaxFrameSize: 4096*256 - 3, Latency: 2 * time.Second, MaxBitrate: 200_000_000})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 50_000_000})
	require.NoError(t, err)
	p.tick()
	m := p.cc.MaxFrameSize()
	require.Equal(t, 4096*256-3, m)
	require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, 0, m), FrameInfo{Capture: p.now, Key: true}))
	got := 0
	for range 3000 {
		p.now = p.now.Add(time.Millisecond)
		p.tick()
		for {
			ev, ok := p.server.PollEvent()
			if !ok {
				break
			}
			if ev.Type == EventFrame {
				require.Equal(t, payload(sid, 0, m), ev.Data)
				got++
			}
		}
	}
	require.Equal(t, 1, got)
}

// Frames still queued when the application closed their stream may be
// dropped as late: no target change or key-frame request follows for a
// stream that takes no more frames (one target event was sent).
func TestNoEncoderEventsForClosedStream(t *testing.T) {
	est := &knob{rate: 2_000_000}
	p := newPipe(t, Config{Estimator: func() cc.Estimator { return est }})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
	require.NoError(t, err)
	p.tick()
	require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 30000), FrameInfo{Capture: p.now, Key: true}))
	require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 3000), FrameInfo{Capture: p.now}))
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	est.rate = 200_000 // the path slows: the queued frames miss their deadline
	p.drainEvents()
	var bad []Event
	for range 200 {
		p.now = p.now.Add(5 * time.Millisecond)
		p.tick()
		for {
			ev, ok := p.client.PollEvent()
			if !ok {
				break
			}
			if ev.Type == EventKeyFrameRequest || ev.Type == EventTargetRate {
				bad = append(bad, ev)
			}
		}
	}
	require.Empty(t, bad, "events asking the application to encode for a closed stream")
}

// While transport-wide feedback is missing, GCC halves the target once an
// RTT after max(2 RTT, 500 ms) (the cc issue). The sender called the
// estimator only with the encoder-target updates, every 200 ms: at RTT
// 40 ms that was once in five RTTs. Now it wakes once an RTT meanwhile.
func TestFeedbackSilenceHalvesEachRTT(t *testing.T) {
	link := netem.LinkConfig{Delay: 20 * time.Millisecond, Rate: 20_000_000}
	var g *cc.GCC
	cut := false
	cfg := Config{Estimator: func() cc.Estimator {
		g = cc.NewGCC(cc.GCCConfig{StartRate: 2_000_000, MinRate: 10_000})
		return g
	}}
	p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg,
		serverFilter: func(clock.Time, []byte) bool { return !cut }})
	p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Bitrate: 64_000})
		require.NoError(t, err)
	})
	for i := range 300 { // 6 s of 20 ms frames
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, payload(sid, int64(i), 160), FrameInfo{Capture: now})
		})
	}
	p.run(3 * time.Second)
	before := g.Target()
	cut = true // the server's packets, feedback among them, no longer arrive
	p.run(650 * time.Millisecond)
	// Silence from about 500 ms after the last report (sent up to 40 ms
	// before the cut): halvings at about 500, 540, 580 and 620 ms.
	t.Logf("before %d after %d silences %d", before, g.Target(), g.Stats().Silences)
	assert.LessOrEqual(t, g.Target(), before/8, "from %d", before)
	assert.GreaterOrEqual(t, g.Stats().Silences, int64(3))
}

// Stats.RecoveryBacklog counts the retransmissions waiting to leave, on
// the wire (the payload behind a retransmission's header), until they go.
func TestRecoveryBacklogStat(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	var (
		sent  []int64 // media packet numbers
		sizes []int   // and their datagram sizes
	)
	p.tap = func(from string, b []byte) {
		var h wire.DataHeader
		if _, err := h.Parse(b); from == "client" && err == nil && !h.Retransmit {
			sent = append(sent, p.cc.nextPN-1)
			sizes = append(sizes, len(b))
		}
	}
	// The receiver's feedback is lost, so nothing is acknowledged.
	p.drop = func(from string, _ []byte) bool { return from == "server" }
	require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 3000), FrameInfo{Capture: p.now, Key: true}))
	p.tick()
	p.tap = nil
	require.Len(t, sent, 3)
	st := p.cc.Stats()
	assert.Zero(t, st.RecoveryBacklogPackets)
	assert.Zero(t, st.RecoveryBacklog)
	for _, pn := range sent[:2] {
		require.True(t, p.cc.snd.hist.OnNACK(p.now, pn))
	}
	st = p.cc.Stats()
	assert.Equal(t, 2, st.RecoveryBacklogPackets)
	want := int64(sizes[0]+sizes[1]) + 2*(wire.RetransmitHeaderLen-wire.DataHeaderLen)
	assert.Equal(t, want, st.RecoveryBacklog, "what the two retransmissions put on the wire")
	p.now = p.now.Add(50 * time.Millisecond)
	p.tick()
	st = p.cc.Stats()
	assert.Zero(t, st.RecoveryBacklogPackets, "sent")
	assert.Zero(t, st.RecoveryBacklog)
	assert.Equal(t, int64(2), st.RetransmittedPacketsSent)
}

// Frames evicted for the queue limit leave tombstones; those at a stream's
// tail once stayed after its last frame left (nothing walked past them),
// so the closed stream's id was never reused and its bitrate still counted
// in the pacing rate.
func TestEvictedTailLeavesWithTheStream(t *testing.T) {
	p := newPipe(t, Config{})
	a, _ := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Priority: PriorityLow, Bitrate: 300_000})
	b, _ := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Priority: PriorityHigh, Bitrate: 300_000})
	for i := 2; i < 16; i++ {
		_, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio, Bitrate: 8000})
		require.NoError(t, err)
	}
	p.tick()
	require.NoError(t, p.cc.WriteFrame(p.now, a, make([]byte, 1500), FrameInfo{Capture: p.now, Key: true}))
	require.NoError(t, p.cc.WriteFrame(p.now, b, make([]byte, 1500), FrameInfo{Capture: p.now, Key: true}))
	for p.cc.WriteFrame(p.now, a, make([]byte, 1500), FrameInfo{Capture: p.now, Droppable: true}) == nil {
	}
	// b's delta evicts a's newest droppable frames: tombstones at a's tail.
	require.NoError(t, p.cc.WriteFrame(p.now, b, make([]byte, 3000), FrameInfo{Capture: p.now}))
	require.Positive(t, p.cc.Stats().SendDrops.Frames[DropQueueLimit][cc.ClassVideo])
	require.NoError(t, p.cc.CloseStream(p.now, a))
	for range 1000 { // 10 s
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
	}
	assert.Zero(t, p.cc.snd.streams[a].queue.Len())
	assert.Equal(t, int64(300_000+14*8000), p.cc.snd.fixed.Rate, "the closed stream's rate no longer counts")
	_, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err, "stream %d closed 10 s ago, nothing queued: its id is free", a)
}

// A key frame on a data stream is data (cc.ClassData): it leaves after
// queued video, as the priority order says; the key-frame pass once took
// it first.
func TestDataKeyFrameAfterVideo(t *testing.T) {
	p := newPipe(t, Config{})
	vid, _ := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	did, _ := p.cc.OpenStream(p.now, StreamConfig{Kind: KindData})
	p.tick()
	require.NoError(t, p.cc.WriteFrame(p.now, vid, make([]byte, 6000), FrameInfo{Capture: p.now}))
	require.NoError(t, p.cc.WriteFrame(p.now, did, make([]byte, 6000), FrameInfo{Capture: p.now, Key: true}))
	var order []uint8
	p.tap = func(from string, b []byte) {
		var h wire.DataHeader
		if _, err := h.Parse(b); from == "client" && err == nil && !h.Retransmit {
			order = append(order, h.Stream)
		}
	}
	for range 50 {
		p.now = p.now.Add(time.Millisecond)
		p.tick()
	}
	require.Len(t, order, 12)
	for i, st := range order {
		want := vid
		if i >= 6 {
			want = did
		}
		assert.Equal(t, want, st, "packet %d of %v (video %d, data %d)", i, order, vid, did)
	}
}

// Deltas predicted late push the target down, but at most 5 updates a
// second go out unless a cut is of more than 10 %, and none repeats the
// target in force (a run of late deltas once made 9 in a second, 3 of them
// repeats at MinBitrate).
func TestPushbackKeepsTheTargetRate(t *testing.T) {
	est := &knob{rate: 300_000}
	cfg := Config{Estimator: func() cc.Estimator { return est }}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: link, rev: link})
	p.connected()
	var at []clock.Time
	var rate []int64
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventTargetRate {
			at, rate = append(at, now), append(rate, ev.Bitrate)
		}
	}
	sid, err := p.cc.OpenStream(p.sim.Now(), StreamConfig{Kind: KindVideo, Bitrate: 2_000_000, MinBitrate: 260_000})
	require.NoError(t, err)
	for i := range 60 {
		p.at(time.Duration(i)*33*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, make([]byte, 8000), FrameInfo{Capture: now, Key: i == 0, Droppable: i != 0})
		})
	}
	p.run(2 * time.Second)
	require.NotEmpty(t, at)
	require.Positive(t, p.cc.Stats().SendDrops.Frames[DropPredictedLate][cc.ClassVideo]+
		p.cc.Stats().SendDrops.Frames[DropLateOnArrival][cc.ClassVideo], "deltas were late")
	for i := range at {
		if i > 0 {
			assert.NotEqual(t, rate[i-1], rate[i], "a repeat at %v: %v", at[i], rate)
			if at[i].Sub(at[i-1]) < targetInterval {
				assert.Less(t, float64(rate[i]), 0.9*float64(rate[i-1]), "only a cut of more than 10 %% comes sooner: %v", rate)
			}
		}
	}
}

// A spaced retransmission copy waits on purpose: it counts neither in the
// retransmissions' pacer wait nor as one behind frames (71 copies once
// made 65 "behind frames", whose doc says 0 but for one already leaving).
func TestSpacedCopiesAreNotBehindFrames(t *testing.T) {
	cfg := Config{}
	fwd := netem.LinkConfig{Delay: 50 * time.Millisecond, GE: netem.GEFromLossBurst(0.10, 3)}
	rev := netem.LinkConfig{Delay: 50 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: fwd, rev: rev})
	p.connected()
	vid, _ := p.cc.OpenStream(p.sim.Now(), StreamConfig{Kind: KindVideo, Bitrate: 1_500_000})
	aid, _ := p.cc.OpenStream(p.sim.Now(), StreamConfig{Kind: KindAudio})
	for i := range 30 * 30 {
		p.at(time.Duration(i)*33*time.Millisecond, func(now clock.Time) {
			size := 6000
			if i%60 == 0 {
				size = 40000
			}
			_ = p.cc.WriteFrame(now, vid, make([]byte, size), FrameInfo{Capture: now, Key: i%60 == 0})
			_ = p.cc.WriteFrame(now, aid, make([]byte, 160), FrameInfo{Capture: now})
		})
	}
	p.run(31 * time.Second)
	st := p.cc.Stats()
	require.Positive(t, st.RTXSender.SpacedCopies)
	assert.LessOrEqual(t, st.RetransmissionsBehindFrames, int64(2), "spaced copies %d", st.RTXSender.SpacedCopies)
	assert.Less(t, st.PacerWait[cc.ClassRetransmission].Count, st.RetransmittedPacketsSent, "copies are not measured")
}

// A stream's dropped bytes are frame bytes, as its sent bytes are: ten
// 100-byte audio frames late on arrival once counted 1030.
func TestBytesDroppedAreFrameBytes(t *testing.T) {
	p := newPipe(t, Config{})
	sid, _ := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	p.tick()
	for range 10 {
		assert.ErrorIs(t, p.cc.WriteFrame(p.now, sid, make([]byte, 100), FrameInfo{Capture: p.now.Add(-time.Second)}), ErrFrameDropped)
	}
	st, ok := p.cc.StreamStats(sid)
	require.True(t, ok)
	assert.Equal(t, int64(1000), st.BytesSent)
	assert.Equal(t, int64(1000), st.BytesDropped)
}

// Consecutive frames dropped in either order make one notice while it is
// unsent: the queue limit evicts the newest first (14, 13, 12, 11 made four
// notices of the 64 a sender keeps). A gap, another stream, or a notice
// already sent starts a new one.
func TestDropNoticesMergeBothWays(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []int64
		want [][2]int64 // first frame, frames
	}{
		{"ascending", []int64{11, 12, 13, 14}, [][2]int64{{11, 4}}},
		{"descending", []int64{14, 13, 12, 11}, [][2]int64{{11, 4}}},
		{"both", []int64{12, 13, 11, 14, 10}, [][2]int64{{10, 5}}},
		{"a gap", []int64{14, 12}, [][2]int64{{14, 1}, {12, 1}}},
		{"a repeat", []int64{5, 5}, [][2]int64{{5, 1}, {5, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dropNotices
			for _, id := range tc.ids {
				d.addFrame(0, 1, id)
			}
			require.Equal(t, len(tc.want), d.n)
			for i, w := range tc.want {
				assert.Equal(t, w[0], d.at(i).firstFrame, "notice %d", i)
				assert.EqualValues(t, w[1], d.at(i).frames, "notice %d", i)
			}
		})
	}
	var d dropNotices
	d.addFrame(0, 1, 5)
	d.addFrame(0, 2, 4) // another stream
	d.at(1).sent = true
	d.addFrame(0, 2, 3) // after it was sent
	assert.Equal(t, 3, d.n)
}
