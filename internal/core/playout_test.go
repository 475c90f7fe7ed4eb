package core

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// TestPlayoutOffsetReachesTheSender: jitter makes the receiver play later
// than the 100 ms budget; it reports its offset (APP SPPO) and the sender
// then gives frames that long (Deadline, and the deadlines FEC and ARQ
// hold).
func TestPlayoutOffsetReachesTheSender(t *testing.T) {
	cfg := Config{Latency: 100 * time.Millisecond}
	fwd := netem.LinkConfig{Delay: 40 * time.Millisecond, Jitter: 120 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: fwd, rev: netem.LinkConfig{Delay: 40 * time.Millisecond}})
	sc := p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio}) })
	for i := range 300 {
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, payload(sid, int64(i), 100), FrameInfo{Capture: now})
		})
	}
	p.run(5 * time.Second)
	recv := sc.rcv.playoutDelay
	require.Greater(t, recv, cfg.Latency, "the receiver plays later than the budget")
	got := p.cc.PeerPlayoutDelay()
	assert.InDelta(t, float64(recv), float64(got), float64(playoutStep+time.Millisecond), "the sender knows the offset")
	assert.Equal(t, clock.Time(got), p.cc.Deadline(0), "and works to it")
	assert.Zero(t, p.cc.Stats().ProtocolErrors)
	assert.Equal(t, PlayoutAdaptive, sc.cfg.Playout)
}

func TestPlayoutReportHostile(t *testing.T) {
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	tests := []struct {
		name   string
		data   []byte
		want   time.Duration
		errors int64
	}{
		{"250 ms", be(250_000), 250 * time.Millisecond, 0},
		{"clamped", be(1<<32 - 1), MaxPeerPlayout, 0},
		{"short", []byte{1, 2}, 0, 1},
		{"long", make([]byte, 8), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.connected()
			c := p.cc
			before := c.stats.ProtocolErrors
			c.snd.handlePlayout(tt.data)
			assert.Equal(t, tt.want, c.PeerPlayoutDelay())
			assert.Equal(t, tt.errors, c.stats.ProtocolErrors-before)
			assert.Equal(t, max(DefaultLatency, tt.want), c.budget())
		})
	}
}

// TestKeyFrameAskedAtOnceWithoutOne: the first key frame never arrives (no
// recovery here); the receiver asks for one when the first frame that
// cannot decode without it completes, not when it plays.
func TestKeyFrameAskedAtOnceWithoutOne(t *testing.T) {
	cfg := Config{DisableFEC: true, DisableRetransmission: true}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg, clientFilter: dropFragment(0, 0)})
	sc := p.connected()
	reqAt := clock.Never
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventKeyFrameRequest && reqAt == clock.Never {
			reqAt = now
		}
	}
	var sid uint8
	var firstDelta clock.Time
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
	for i := range 10 {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			if i == 1 {
				firstDelta = now
			}
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 500), FrameInfo{Capture: now, Key: i == 0}))
		})
	}
	p.run(time.Second)
	req, ok := p.client.find(EventKeyFrameRequest)
	require.True(t, ok, "the sender was asked for a key frame")
	assert.False(t, req.Local)
	// Repeated while no key frame comes (this sender never sends one), at
	// most once per 40 ms RTT over the 330 ms of frames.
	assert.LessOrEqual(t, sc.Stats().PLIsSent, int64(330/40+1))
	// Frame 1 completes 20 ms after its capture; the request is written
	// then and takes 20 ms back: well before frame 1's playout.
	assert.Less(t, reqAt.Sub(firstDelta), 60*time.Millisecond)
}

// TestVideoWaitsForAMissingReference: a video frame lost once, long after
// the start (no recovery allowance left), is retransmitted and completes
// after its playout time; the frames after it wait for it rather than
// skipping it, which would leave every frame to the next key frame
// undecodable.
func TestVideoWaitsForAMissingReference(t *testing.T) {
	cfg := Config{DisableFEC: true}
	link := netem.LinkConfig{Delay: 70 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg, clientFilter: dropFragment(400, 0)})
	sc := p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
	const n = 450
	for i := range n {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 300), FrameInfo{Capture: now, Key: i == 0}))
		})
	}
	p.run(17 * time.Second)
	var got []int64
	var late, undecodable int
	for _, ev := range p.server.events {
		if ev.Type != EventFrame {
			continue
		}
		got = append(got, ev.Frame.ID)
		if ev.Frame.PlayedLate {
			late++
			assert.Equal(t, int64(400), ev.Frame.ID, "the lost frame is the late one")
		}
		if ev.Frame.Undecodable {
			undecodable++
		}
	}
	assert.Len(t, got, n, "every frame delivered, frame 400 included")
	assert.Equal(t, 1, late, "frame 400 completed after its playout time")
	assert.Zero(t, undecodable)
	assert.Zero(t, sc.Stats().PLIsSent, "no key frame needed")
}

// TestKeyFrameAskedBeforeALostReferencePlays: a video frame that loses one
// of its packets for good (every retransmission of it lost too) costs a
// key-frame request as soon as the NACK generator gives the packet up, not
// when the frame after it plays, and one request only once it is answered
// (an unanswered one is repeated: TestLostKeyFrameAnswerIsAskedAgain); a
// droppable frame, which nothing references, costs none.
func TestKeyFrameAskedBeforeALostReferencePlays(t *testing.T) {
	const lost = 200
	for _, tt := range []struct {
		name      string
		droppable bool
		want      int
	}{
		{"reference", false, 1},
		{"droppable", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{DisableFEC: true}
			link := netem.LinkConfig{Delay: 40 * time.Millisecond}
			p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg, clientFilter: dropFragmentAlways(lost, 1)})
			sc := p.connected()
			var sid uint8
			var captured clock.Time
			var asked []clock.Time
			keyNext := false // the encoder answers a request with its next frame
			p.client.onEvent = func(now clock.Time, ev Event) {
				if ev.Type == EventKeyFrameRequest && captured != 0 && now > captured {
					asked = append(asked, now)
					keyNext = true
				}
			}
			p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
			for i := range 260 {
				p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
					if i == lost {
						captured = now
					}
					require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000),
						FrameInfo{Capture: now, Key: i == 0 || keyNext, Droppable: tt.droppable && i == lost}))
					keyNext = false
				})
			}
			p.run(10 * time.Second)
			require.Len(t, asked, tt.want)
			if tt.want > 0 {
				// Sender and receiver clocks agree here; the request
				// reaches the sender 40 ms after it is written.
				playout := captured.Add(max(sc.rcv.playoutDelay, sc.rcv.peerLatency))
				assert.Less(t, asked[0], playout, "asked before the lost frame's playout time")
			}
		})
	}
}

// dropFragmentAlways drops one fragment of one frame, original and every
// retransmission.
func dropFragmentAlways(frame, frag uint16) func(now clock.Time, b []byte) bool {
	return dropFirstSends(frame, frag, math.MaxInt)
}

// TestKeyFrameRequestWaitsForItsKeyFrame: a second automatic request goes
// a smoothed RTT after the first once the key frame asked for has begun to
// arrive; while none has, not before two RTTs and keyFrameWait (the key
// frame may be on its way). The application's own requests only keep the
// RTT apart.
func TestKeyFrameRequestWaitsForItsKeyFrame(t *testing.T) {
	for _, tt := range []struct {
		name   string
		key    bool // the sender answers with a key frame
		app    bool // the application asks (RequestKeyFrame)
		second time.Duration
	}{
		{"answered", true, false, 100 * time.Millisecond},
		{"unanswered", false, false, 2*100*time.Millisecond + keyFrameWait},
		{"the application's, unanswered", false, true, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, sc, sid := keyFramePair(t)
			require.Equal(t, 100*time.Millisecond, sc.rtt.Smoothed())
			var start clock.Time
			var asked []time.Duration
			for i := range 60 { // a request every 10 ms for 600 ms
				p.at(time.Duration(i)*10*time.Millisecond, func(now clock.Time) {
					if i == 0 {
						start = now
					}
					before := sc.rcv.fb.lastPLI[sid]
					if tt.app {
						require.NoError(t, sc.RequestKeyFrame(now, sid))
					} else {
						sc.autoKeyFrame(now, sid)
					}
					if sc.rcv.fb.lastPLI[sid] != before {
						asked = append(asked, now.Sub(start))
					}
				})
			}
			if tt.key {
				p.at(20*time.Millisecond, func(now clock.Time) {
					require.NoError(t, p.cc.WriteFrame(now, sid, []byte{2}, FrameInfo{Capture: now, Key: true}))
				})
			}
			p.run(time.Second)
			require.GreaterOrEqual(t, len(asked), 2)
			assert.Equal(t, time.Duration(0), asked[0])
			assert.Equal(t, tt.second, asked[1])
		})
	}
}

// TestCatchUpAfterAStall: the forward link holds everything for 1 s.
// Without catch-up every frame plays and the stall's second stays in the
// latency, draining at 10 %; with Config.PlayoutCatchUp the frames before
// the newest key frame held are skipped, counted and reported on the next
// frame delivered, and the latency comes back at once. Every frame is
// delivered or skipped.
func TestCatchUpAfterAStall(t *testing.T) {
	latency := map[bool]time.Duration{}
	for _, catchUp := range []bool{false, true} {
		t.Run(fmt.Sprintf("catch-up %v", catchUp), func(t *testing.T) {
			cfg := Config{PlayoutCatchUp: catchUp}
			link := netem.LinkConfig{Delay: 40 * time.Millisecond}
			p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg})
			sc := p.connected()
			var sid uint8
			p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
			const n = 120
			for i := range n {
				p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
					// The sender may find a frame hopeless on arrival (its
					// deadline follows the receiver's offset).
					if err := p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now, Key: i%10 == 0}); err != nil {
						require.ErrorIs(t, err, ErrFrameDropped)
					}
				})
			}
			p.at(time.Second, func(now clock.Time) {
				l := p.sim.Link(clientAddr, serverAddr)
				c := l.Config()
				c.HoldUntil = time.Duration(now.Add(time.Second))
				require.NoError(t, l.SetConfig(c))
			})
			p.run(6 * time.Second)
			var delivered, reported, gaps, last int64
			for _, ev := range p.server.events {
				if ev.Type != EventFrame {
					continue
				}
				delivered++
				reported += ev.Frame.CaughtUpBefore
				gaps += ev.Frame.LostBefore + ev.Frame.DroppedBefore
				last = ev.Frame.ID
				latency[catchUp] = ev.Frame.Playout.Sub(ev.Frame.Capture)
			}
			rs, ok := sc.RecvStreamStats(sid)
			require.True(t, ok)
			assert.Equal(t, rs.FramesCaughtUp, reported, "each skipped frame reported once")
			assert.Equal(t, last+1, delivered+reported+gaps, "every id up to the last delivered, delivered or accounted for")
			assert.Greater(t, last, int64(n-5), "the stream ran to its end")
			if catchUp {
				assert.Positive(t, rs.FramesCaughtUp)
			} else {
				assert.Zero(t, rs.FramesCaughtUp)
			}
		})
	}
	// The last frame delivered, 2 s after the stall: still draining
	// without catch-up.
	assert.Less(t, latency[true], latency[false]-200*time.Millisecond)
}

// The A/V offset is taken at each video frame released at its playout
// time, against the audio frame playing then.
func TestAVOffsetMeasure(t *testing.T) {
	ms := time.Millisecond
	type rel struct {
		at   time.Duration
		kind Kind
		off  time.Duration
	}
	tests := []struct {
		name      string
		rels      []rel
		last, max time.Duration
		n         int64
	}{
		{"in sync", []rel{{0, KindAudio, 100 * ms}, {20 * ms, KindAudio, 100 * ms}, {30 * ms, KindVideo, 100 * ms}}, 0, 0, 1},
		{"video later, then earlier", []rel{{0, KindAudio, 100 * ms}, {20 * ms, KindAudio, 100 * ms},
			{25 * ms, KindVideo, 130 * ms}, {30 * ms, KindVideo, 90 * ms}}, -10 * ms, 30 * ms, 2},
		{"audio silent: nothing to compare", []rel{{0, KindAudio, 100 * ms}, {20 * ms, KindAudio, 100 * ms},
			{60 * ms, KindVideo, 300 * ms}}, 0, 0, 0},
		{"one audio frame: its length unknown", []rel{{0, KindAudio, 100 * ms}, {5 * ms, KindVideo, 300 * ms}}, 0, 0, 0},
		{"video only", []rel{{0, KindVideo, 100 * ms}}, 0, 0, 0},
		{"a pause is not a frame length", []rel{{0, KindAudio, 100 * ms}, {500 * ms, KindAudio, 100 * ms},
			{600 * ms, KindVideo, 300 * ms}}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a avOffset
			for _, r := range tt.rels {
				a.release(clock.Time(r.at), r.kind, r.off)
			}
			assert.Equal(t, tt.last, a.last)
			assert.Equal(t, tt.max, a.max)
			assert.Equal(t, tt.n, a.n)
		})
	}
}

// Audio and video with different jitter (video frames of many packets
// behind a 2 Mbit/s bottleneck, with 0-60 ms of jitter after it, then
// 0-10 ms, so the offset drains, and a 1 s stall): one playout offset for
// both, so the A/V offset stays within 40 ms at every video frame played
// on time (the jitterbuffer issue's A/V sync bound).
func TestAVOffsetStaysInSync(t *testing.T) {
	fwd := netem.LinkConfig{Delay: 40 * time.Millisecond, Jitter: 60 * time.Millisecond, Rate: 2_000_000, QueueDelay: 300 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: fwd, rev: netem.LinkConfig{Delay: 40 * time.Millisecond}})
	sc := p.connected()
	var aid, vid uint8
	p.at(0, func(now clock.Time) {
		aid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
		vid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
	})
	set := func(at time.Duration, jitter, hold time.Duration) {
		p.at(at, func(now clock.Time) {
			l := p.sim.Link(clientAddr, serverAddr)
			c := l.Config()
			c.Jitter = jitter
			if hold > 0 {
				c.HoldUntil = time.Duration(now.Add(hold))
			}
			require.NoError(t, l.SetConfig(c))
		})
	}
	set(6*time.Second, 10*time.Millisecond, 0)
	set(12*time.Second, 10*time.Millisecond, time.Second)
	for i := range 1000 { // 20 s
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, aid, payload(aid, int64(i), 120), FrameInfo{Capture: now})
			if i%2 == 0 {
				size := 3000
				if i%100 == 0 {
					size = 20000 // a key frame every 2 s
				}
				_ = p.cc.WriteFrame(now, vid, payload(vid, int64(i/2), size), FrameInfo{Capture: now, Key: i%100 == 0})
			}
		})
	}
	p.run(21 * time.Second)
	st := sc.Stats()
	require.Greater(t, st.AVOffsetFrames, int64(400), "measured at most video frames")
	assert.LessOrEqual(t, st.AVOffsetMax.Abs(), 40*time.Millisecond)
	v, _ := sc.PlayoutStats(p.sim.Now(), vid)
	a, _ := sc.PlayoutStats(p.sim.Now(), aid)
	// The jitter differs: video needs the larger target, which both
	// streams play at; and the stall left excess to drain.
	assert.Greater(t, v.Target, a.Target+20*time.Millisecond)
	assert.Positive(t, v.FramesAfterStall)
}

// TestHorizonKeepsFramesPastPlayout: the path's delay alone (200 ms)
// exceeds Latency (150 ms) and the receiver's MaxPlayoutDelay (150 ms), so
// every frame completes after its playout time. The sender still sends
// them (judged against capture + the one-way delay + Latency) and reports
// that horizon (APP SPPO subtype 1); the receiver keeps assembling frames
// until then instead of giving each up when its first fragment arrives.
// Once the path is fast again the horizon ends, and the receiver hears so.
func TestHorizonKeepsFramesPastPlayout(t *testing.T) {
	slow := netem.LinkConfig{Delay: 200 * time.Millisecond, Rate: 2_000_000}
	cfg := Config{Latency: 150 * time.Millisecond, DisableFEC: true, DisableRetransmission: true}
	rcfg := cfg
	rcfg.MaxPlayoutDelay = 150 * time.Millisecond
	p := newPair(t, pairOpts{client: cfg, server: rcfg, fwd: slow, rev: slow})
	sc := p.connected()
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
		require.NoError(t, err)
	})
	const n = 60
	for i := range n {
		p.at(time.Duration(2000+33*i)*time.Millisecond, func(now clock.Time) {
			// Five fragments: 4.8 ms apart at 2 Mbit/s.
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 5000), FrameInfo{Capture: now, Key: i == 0}))
		})
	}
	p.run(5 * time.Second)
	require.True(t, p.cc.Stats().PathOverBudget)
	assert.GreaterOrEqual(t, sc.rcv.peerHorizon, 350*time.Millisecond, "the one-way delay + Latency")
	assert.Equal(t, n, p.server.count(EventFrame), "every frame delivered, late")
	assert.Zero(t, sc.Stats().ProtocolErrors)

	fast := netem.LinkConfig{Delay: 20 * time.Millisecond}
	require.NoError(t, p.sim.Link(clientAddr, serverAddr).SetConfig(fast))
	require.NoError(t, p.sim.Link(serverAddr, clientAddr).SetConfig(fast))
	for i := range 450 {
		p.at(time.Duration(33*i)*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, payload(sid, int64(n+i), 1000), FrameInfo{Capture: now})
		})
	}
	p.run(15 * time.Second)
	require.False(t, p.cc.Stats().PathOverBudget)
	assert.Zero(t, sc.rcv.peerHorizon, "the end of the horizon reached the receiver")
}

func TestHorizonReportHostile(t *testing.T) {
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	tests := []struct {
		name   string
		data   []byte
		want   time.Duration
		errors int64
	}{
		{"350 ms", be(350_000), 350 * time.Millisecond, 0},
		{"none", be(0), 0, 0},
		{"clamped", be(1<<32 - 1), MaxPeerPlayout, 0},
		{"short", []byte{1, 2}, 0, 1},
		{"long", make([]byte, 8), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			sc := p.connected()
			r := &sc.rcv
			before := sc.stats.ProtocolErrors
			now := p.sim.Now()
			r.handleHorizon(now, tt.data)
			assert.Equal(t, tt.want, r.peerHorizon)
			assert.Equal(t, tt.errors, sc.stats.ProtocolErrors-before)
			// A horizon not repeated lapses.
			r.expireHorizon(now.Add(horizonExpiry - time.Millisecond))
			assert.Equal(t, tt.want, r.peerHorizon)
			r.expireHorizon(now.Add(horizonExpiry))
			assert.Zero(t, r.peerHorizon)
		})
	}
}

// giveUpAt: the sender's horizon, or the one-way delay packets now meet +
// Latency if longer (the sender predicts a frame's delay an RTT before the
// queue it meets), only while a horizon is reported.
func TestGiveUpAtHorizon(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	tests := []struct {
		name             string
		horizon, oneWay  time.Duration
		playout, latency time.Duration
		want             time.Duration // after the frame's capture
	}{
		{"no horizon", 0, ms(900), ms(150), ms(150), ms(150)},
		{"no horizon, later playout", 0, ms(900), ms(400), ms(150), ms(400)},
		{"horizon", ms(700), ms(300), ms(150), ms(150), ms(700)},
		{"the queue grew since", ms(700), ms(900), ms(150), ms(150), ms(1050)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			sc := p.connected()
			r := &sc.rcv
			r.peerHorizon, r.oneWay, r.playoutDelay, r.peerLatency = tt.horizon, tt.oneWay, tt.playout, tt.latency
			slot := &frameSlot{refTS: 1000}
			assert.Equal(t, r.localTime(1000).Add(tt.want), r.giveUpAt(slot))
		})
	}
}

// horizonDue: when the sender owes the receiver a horizon report.
func TestHorizonDue(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	at := func(v int) clock.Time { return clock.Time(ms(v)) }
	const last = 5000 // the connection's last send, ms
	tests := []struct {
		name string
		hz   horizonReport
		want clock.Time
	}{
		{"never over budget", horizonReport{}, clock.Never},
		{"the first", horizonReport{cur: ms(700), judged: at(4000)}, at(last)},
		{"unchanged", horizonReport{cur: ms(700), judged: at(4900), sent: ms(698), sentAt: at(4500), have: true}, at(5500)},
		{"changed", horizonReport{cur: ms(720), judged: at(4900), sent: ms(700), sentAt: at(4500), have: true}, at(4600)},
		{"ended", horizonReport{cur: 0, judged: at(4900), sent: ms(700), sentAt: at(4500), have: true}, at(4600)},
		{"ended, told", horizonReport{cur: 0, judged: at(4900), sent: 0, sentAt: at(4500), have: true}, clock.Never},
		{"no frame judged since", horizonReport{cur: ms(900), judged: at(4400), sent: ms(700), sentAt: at(4500), have: true}, clock.Never},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.connected()
			p.cc.lastSend = at(last)
			p.cc.snd.hz = tt.hz
			assert.Equal(t, tt.want, p.cc.snd.horizonDue())
		})
	}
}

// TestLostKeyFrameAnswerIsAskedAgain: an encoder that makes key frames
// only when asked (no periodic ones, as RTC encoders commonly run). A
// reference frame is lost for good; the key frame sent in answer to the
// request is lost too, every packet of it (a loss burst), or all but one
// (it began to arrive, and is given up at its deadline). The receiver asks
// again, and the stream decodes again: once only it stayed undecodable
// for good.
func TestLostKeyFrameAnswerIsAskedAgain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		arrive int // fragments of the answer that arrive
	}{
		{"none of it arrives", 0},
		{"part of it arrives", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const lost = 30
			cfg := Config{DisableFEC: true}
			link := netem.LinkConfig{Delay: 40 * time.Millisecond}
			answer := -1 // the frame ID of the first key frame sent on request
			fragSeen := 0
			filter := func(now clock.Time, b []byte) bool {
				if t := wire.Type(b[0] >> 3 & 7); t == wire.TypeData || t == wire.TypeRetransmit {
					var h wire.DataHeader
					if _, err := h.Parse(b); err == nil {
						switch {
						case h.FrameID == lost && h.FragIndex == 1:
							return false
						case answer >= 0 && int(h.FrameID) == answer:
							fragSeen++
							return h.FragIndex == 0 && fragSeen <= tt.arrive
						}
					}
				}
				return true
			}
			p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg, clientFilter: filter})
			p.connected()
			var sid uint8
			keyNext := false
			var requests int
			p.client.onEvent = func(now clock.Time, ev Event) {
				if ev.Type == EventKeyFrameRequest && !ev.Local {
					keyNext = true
					requests++
				}
			}
			p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
			const n = 150 // 5 s
			for i := range n {
				p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
					key := i == 0 || keyNext
					if key && i > 0 && answer < 0 {
						answer = i
					}
					keyNext = false
					if err := p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now, Key: key}); err != nil {
						require.ErrorIs(t, err, ErrFrameDropped)
					}
				})
			}
			p.run(6 * time.Second)
			require.Positive(t, answer, "a key frame was asked for")
			var decodable []int64
			for _, ev := range p.server.events {
				if ev.Type == EventFrame && ev.Frame.ID > int64(answer) && !ev.Frame.Undecodable {
					decodable = append(decodable, ev.Frame.ID)
				}
			}
			require.NotEmpty(t, decodable, "the stream decodes again")
			assert.Less(t, decodable[0], int64(answer)+30, "within a second of the lost answer")
			assert.Equal(t, n-1, int(decodable[len(decodable)-1]), "and to the end")
			assert.LessOrEqual(t, requests, 3, "no storm of requests")
		})
	}
}

// TestKeyFrameAskedWhenNoRepairCanReachIt: a reference frame that lacks a
// packet for good, the frames after it arriving (what it lacks was lost,
// not late), is asked for a key frame once a retransmission asked for
// could no longer reach it by its playout time (askKeysForUnreachable).
// Under an 800 ms playout offset and a 200 ms round trip the NACK
// generator gives the packet up only when its last round's answer is
// overdue: the request written then reached the sender 865 ms after the
// frame's capture, 65 ms after its playout time; now 750 ms.
func TestKeyFrameAskedWhenNoRepairCanReachIt(t *testing.T) {
	const lost = 200
	cfg := Config{DisableFEC: true, MinPlayoutDelay: 800 * time.Millisecond, MaxPlayoutDelay: 800 * time.Millisecond}
	link := netem.LinkConfig{Delay: 100 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link, client: cfg, server: cfg, clientFilter: dropFragmentAlways(lost, 1)})
	sc := p.connected()
	var sid uint8
	var captured clock.Time
	var asked []clock.Time
	keyNext := false
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventKeyFrameRequest && !ev.Local && captured != 0 && now > captured {
			asked = append(asked, now)
			keyNext = true
		}
	}
	p.at(0, func(now clock.Time) { sid, _ = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo}) })
	for i := range 300 {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			if i == lost {
				captured = now
			}
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now, Key: i == 0 || keyNext}))
			keyNext = false
		})
	}
	p.run(12 * time.Second)
	require.Len(t, asked, 1)
	require.Equal(t, 200*time.Millisecond, sc.rtt.WindowedMin())
	// Sender and receiver clocks agree here; the request takes 100 ms.
	playout := captured.Add(max(sc.rcv.playoutDelay, sc.rcv.peerLatency))
	assert.Less(t, asked[0], playout, "the request reaches the sender before the lost frame's playout time")
	var undecodable int
	for _, ev := range p.server.events {
		if ev.Type == EventFrame && ev.Frame.Undecodable {
			undecodable++
		}
	}
	assert.Positive(t, undecodable, "frames after the lost one wait for the key frame")
}
