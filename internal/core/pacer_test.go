package core

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// slowPair is a connected pair whose forward path carries 1 Mbit/s, with a
// sender whose target is fixed at 1 Mbit/s (so the pacer runs at 2.5
// Mbit/s and the frame's own bytes cross at 1 Mbit/s).
func slowPair(t *testing.T, cfg Config) (*pair, *Conn) {
	cfg.Estimator = func() cc.Estimator { return &cc.Scripted{Steps: []cc.ScriptStep{{Rate: 1_000_000}}} }
	link := netem.LinkConfig{Delay: 20 * time.Millisecond, Rate: 1_000_000, QueueDelay: time.Second}
	p := newPair(t, pairOpts{client: cfg, fwd: link, rev: netem.LinkConfig{Delay: 20 * time.Millisecond}})
	sc := p.connected()
	return p, sc
}

// A dropped reference frame takes its dependents with it, and the
// application is asked for a key frame at once; a key frame restores the
// stream.
func TestDroppedReferenceTakesDependentsAndAsksForAKeyFrame(t *testing.T) {
	p, _ := slowPair(t, Config{})
	var sid uint8
	var errs []error
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 2000), FrameInfo{Capture: now, Key: true}))
	})
	// Frame 1: 40 kB at 1 Mbit/s is 320 ms: hopeless on arrival.
	p.at(33*time.Millisecond, func(now clock.Time) {
		errs = append(errs, p.cc.WriteFrame(now, sid, make([]byte, 40_000), FrameInfo{Capture: now}))
	})
	// Frames 2-3: small deltas referencing it; frame 4 droppable: all go.
	for i, dropp := range []bool{false, false, true} {
		p.at(time.Duration(66+33*i)*time.Millisecond, func(now clock.Time) {
			errs = append(errs, p.cc.WriteFrame(now, sid, make([]byte, 500), FrameInfo{Capture: now, Droppable: dropp}))
		})
	}
	// Frame 5: the key frame asked for; frame 6 a delta on it.
	p.at(165*time.Millisecond, func(now clock.Time) {
		errs = append(errs, p.cc.WriteFrame(now, sid, make([]byte, 3000), FrameInfo{Capture: now, Key: true}))
	})
	p.at(198*time.Millisecond, func(now clock.Time) {
		errs = append(errs, p.cc.WriteFrame(now, sid, make([]byte, 500), FrameInfo{Capture: now}))
	})
	p.run(2 * time.Second)

	require.Len(t, errs, 6)
	for i, err := range errs[:4] {
		assert.ErrorIs(t, err, ErrFrameDropped, "frame %d", i+1)
	}
	assert.NoError(t, errs[4])
	assert.NoError(t, errs[5])

	var reasons []DropReason
	var ids []int64
	for _, ev := range p.client.events {
		if ev.Type == EventFrameDropped {
			reasons = append(reasons, ev.Frame.DropReason)
			ids = append(ids, ev.Frame.ID)
		}
	}
	assert.Equal(t, []int64{1, 2, 3, 4}, ids)
	assert.Equal(t, []DropReason{DropLateOnArrival, DropReference, DropReference, DropReference}, reasons)

	var asks int
	for _, ev := range p.client.events {
		if ev.Type == EventKeyFrameRequest {
			assert.True(t, ev.Local)
			asks++
		}
	}
	assert.Equal(t, 1, asks, "one request for the one broken chain")
	st := p.cc.Stats()
	assert.Equal(t, int64(1), st.KeyFrameRequestsLocal)
	assert.Equal(t, int64(1), st.SendDrops.Frames[DropLateOnArrival][cc.ClassVideo])
	assert.Equal(t, int64(3), st.SendDrops.Frames[DropReference][cc.ClassVideo])
	assert.Equal(t, int64(4), st.FramesDroppedOnSend)

	var got []int64
	for _, ev := range p.server.events {
		if ev.Type == EventFrame {
			got = append(got, ev.Frame.ID)
		}
	}
	assert.Equal(t, []int64{0, 5, 6}, got, "the key frame restores the stream")
}

// The local key-frame request comes as the reference frame is dropped,
// not a round trip later.
func TestLocalKeyFrameRequestAtTheDrop(t *testing.T) {
	p, _ := slowPair(t, Config{})
	var sid uint8
	var dropAt, askAt clock.Time = -1, -1
	p.client.onEvent = func(now clock.Time, ev Event) {
		switch {
		case ev.Type == EventFrameDropped && dropAt < 0:
			dropAt = now
		case ev.Type == EventKeyFrameRequest && askAt < 0:
			askAt = now
		}
	}
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
	})
	// A burst of 6 kB deltas every 33 ms: 2.9 Mbit/s into 1 Mbit/s. The
	// first to be predicted late goes from the head of the queue.
	for i := range 30 {
		p.at(time.Duration(33*i)*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, make([]byte, 12_000), FrameInfo{Capture: now, Key: i == 0})
		})
	}
	p.run(2 * time.Second)
	require.GreaterOrEqual(t, dropAt, clock.Time(0), "a frame was dropped")
	require.GreaterOrEqual(t, askAt, clock.Time(0), "a key frame was asked for")
	assert.Equal(t, dropAt, askAt, "asked at the moment of the drop")
}

// limitDrops returns the frames the client dropped (each for the pacer
// queue's limit) and those of stream sid the server delivered, and which of
// those were undecodable.
func limitDrops(t *testing.T, p *pair, sid uint8) (drops, ids, undecodable []int64) {
	for _, ev := range p.client.events {
		if ev.Type == EventFrameDropped {
			drops = append(drops, ev.Frame.ID)
			assert.Equal(t, DropQueueLimit, ev.Frame.DropReason)
		}
	}
	for _, ev := range p.server.events {
		if ev.Type == EventFrame && ev.Stream == sid {
			ids = append(ids, ev.Frame.ID)
			if ev.Frame.Undecodable {
				undecodable = append(undecodable, ev.Frame.ID)
			}
		}
	}
	return drops, ids, undecodable
}

// writerAt writes frames of a given size on stream sid, captured at now.
func writerAt(p *pair, now clock.Time, sid uint8) func(size int, info FrameInfo) error {
	return func(size int, info FrameInfo) error {
		info.Capture = now
		return p.cc.WriteFrame(now, sid, make([]byte, size), info)
	}
}

// The pacer queue stays within its limit at every enqueue: droppable
// frames go first, then deltas, then a key frame the new one supersedes;
// a key frame and audio that still do not fit stretch the drain rate.
func TestPacerQueueLimit(t *testing.T) {
	p, sc := slowPair(t, Config{PacerQueueLimit: 100 * time.Millisecond, Latency: 2 * time.Second})
	var vid, aud uint8
	p.at(0, func(now clock.Time) {
		var err error
		aud, err = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
		require.NoError(t, err)
		vid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		// 2.5 Mbit/s pacing x 100 ms = 31,250 bytes of queue.
		w := writerAt(p, now, vid)
		require.NoError(t, w(10_000, FrameInfo{Key: true}))      // 0
		require.NoError(t, w(8_000, FrameInfo{}))                // 1
		require.NoError(t, w(8_000, FrameInfo{Droppable: true})) // 2
		require.NoError(t, w(4_000, FrameInfo{}))                // 3: 30,036 queued
		assert.ErrorIs(t, w(4_000, FrameInfo{Droppable: true}), ErrFrameDropped,
			"4: a droppable frame that does not fit goes; it pushes out no other")
		require.NoError(t, w(5_000, FrameInfo{}), "5: a delta fits once droppable frame 2 goes")
		assert.Zero(t, p.cc.Stats().PacerStretches)
		require.NoError(t, w(40_000, FrameInfo{Key: true}),
			"6: a key frame pushes out deltas 5, 3 and 1, newest first, then key frame 0, which it supersedes, then stretches the drain rate")
		assert.Equal(t, int64(1), p.cc.Stats().PacerStretches)
		require.NoError(t, p.cc.WriteFrame(now, aud, make([]byte, 100), FrameInfo{Capture: now}),
			"audio is never dropped for the limit")
		assert.Equal(t, int64(2), p.cc.Stats().PacerStretches)
	})
	p.run(3 * time.Second)
	drops, ids, _ := limitDrops(t, p, vid)
	assert.Equal(t, []int64{4, 2, 5, 3, 1, 0}, drops)
	assert.Equal(t, []int64{6}, ids, "the new key frame arrives")
	st := p.cc.Stats()
	assert.Equal(t, 100*time.Millisecond, st.PacerQueueLimit)
	assert.LessOrEqual(t, st.PacerQueueDelayMax, 100*time.Millisecond, "within the limit at every enqueue")
	assert.Equal(t, int64(5), st.SendDrops.Frames[DropQueueLimit][cc.ClassVideo])
	assert.Equal(t, int64(1), st.SendDrops.Frames[DropQueueLimit][cc.ClassKey], "only the superseded key frame")
	assert.Zero(t, st.KeyFrameRequestsLocal, "the deltas went for a key frame of their own stream")
	rs, ok := sc.RecvStreamStats(aud)
	require.True(t, ok)
	assert.Equal(t, int64(1), rs.FramesDelivered)
}

// A frame cut short while sending: the receiver is told (a drop notice),
// gives it up as dropped by the sender rather than lost, and never NACKs
// its packets once it knows; the sender never retransmits them.
func TestCutShortFrameIsDeclaredDropped(t *testing.T) {
	var framePNs = map[uint16]bool{} // low 16 bits of the cut frame's packet numbers
	var ackAt clock.Time = -1
	type nackAt struct {
		at  clock.Time
		seq uint16
	}
	var nacks []nackAt
	var rtxAt []clock.Time
	lost := 0
	sched := &cc.Scripted{Steps: []cc.ScriptStep{{Rate: 1_000_000}}}
	cfg := Config{Estimator: func() cc.Estimator { return sched }}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond, Rate: 1_000_000, QueueDelay: time.Second}
	p := newPair(t, pairOpts{client: cfg, fwd: link, rev: netem.LinkConfig{Delay: 20 * time.Millisecond},
		// Data from the client: note frame 1's packets, lose two of them.
		clientFilter: func(now clock.Time, b []byte) bool {
			var h wire.DataHeader
			if _, err := h.Parse(b); err != nil || h.FrameID != 1 {
				return true
			}
			if h.Retransmit {
				rtxAt = append(rtxAt, now)
				return true
			}
			framePNs[uint16(h.PacketNumber)] = true
			if h.FragIndex == 2 || h.FragIndex == 3 {
				lost++
				return false
			}
			return true
		},
		// Feedback from the server: NACKs and the drop notices' ack.
		serverFilter: func(now clock.Time, b []byte) bool {
			var sh wire.ShortHeader
			rtcp, err := wire.ParseFeedbackHeader(b, &sh)
			if err != nil {
				return true
			}
			var fb wire.Feedback
			if wire.ParseFeedback(rtcp, &fb) != nil {
				return true
			}
			for i := range fb.NACKs {
				fb.NACKs[i].Range(func(seq uint16) bool {
					nacks = append(nacks, nackAt{now, seq})
					return true
				})
			}
			for _, a := range fb.Apps {
				if a.Name == appDropName && a.Subtype == appSubDropAck && ackAt < 0 {
					ackAt = now
				}
			}
			return true
		}})
	sc := p.connected()
	dropTime := clock.Never
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventFrameDropped && dropTime == clock.Never {
			dropTime = now
		}
	}
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 500), FrameInfo{Capture: now, Key: true}))
	})
	p.at(10*time.Millisecond, func(now clock.Time) {
		// 24 kB: 192 ms at 1 Mbit/s, on time when written.
		require.NoError(t, p.cc.WriteFrame(now, sid, make([]byte, 24_000), FrameInfo{Capture: now}))
		// Then the target collapses to 100 kbit/s: the rest of the frame
		// would take seconds.
		sched.Steps = append(sched.Steps, cc.ScriptStep{At: now.Add(15 * time.Millisecond), Rate: 100_000})
	})
	p.run(2 * time.Second)

	dropped, ok := p.client.find(EventFrameDropped)
	require.True(t, ok)
	assert.Equal(t, int64(1), dropped.Frame.ID)
	assert.Equal(t, DropPredictedLate, dropped.Frame.DropReason)
	assert.Contains(t, dropped.Frame.Reason, "cut short")
	require.Equal(t, 2, lost, "two of its fragments were lost on the way")

	lostEv, ok := p.server.find(EventFrameLost)
	require.True(t, ok)
	assert.Equal(t, int64(1), lostEv.Frame.ID)
	assert.True(t, lostEv.Frame.DroppedBySender, "reported as dropped by the sender")
	assert.Equal(t, "dropped by the sender", lostEv.Frame.Reason)

	require.GreaterOrEqual(t, ackAt, clock.Time(0), "the receiver acknowledged the notice")
	named := 0
	for _, n := range nacks {
		if framePNs[n.seq] {
			named++
			assert.Less(t, n.at, ackAt, "a NACK for a packet of the dropped frame after the receiver knew")
		}
	}
	assert.Positive(t, named, "the lost fragments were NACKed before the drop")
	for _, at := range rtxAt {
		assert.Less(t, at, dropTime, "a retransmission for a frame declared dropped")
	}
	st := p.cc.Stats()
	assert.GreaterOrEqual(t, st.DropNotices.Acked, int64(1))
	assert.Equal(t, int64(1), st.FramesDroppedOnSend)
	ss := sc.Stats()
	assert.GreaterOrEqual(t, ss.DropNoticesReceived, int64(1))
	assert.Positive(t, ss.RTXReceiver.Forgotten, "the declared packets left the NACK list")
}

// While the path's delay alone exceeds Latency (a standing queue the
// sender cannot drain, as behind a TCP flow), frames are judged against
// capture + that delay + Latency instead of all being dropped.
func TestPathDelayOverBudgetStillSends(t *testing.T) {
	link := netem.LinkConfig{Delay: 200 * time.Millisecond}
	cfg := Config{Latency: 150 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: link, rev: link})
	p.connected()
	var sid uint8
	var errs int
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
	})
	for i := range 60 {
		p.at(time.Duration(1000+33*i)*time.Millisecond, func(now clock.Time) {
			if p.cc.WriteFrame(now, sid, make([]byte, 1000), FrameInfo{Capture: now, Key: i%30 == 0}) != nil {
				errs++
			}
		})
	}
	p.run(4 * time.Second)
	require.Equal(t, 200*time.Millisecond, p.cc.owd(), "the path's one-way delay, measured")
	assert.Zero(t, errs, "no frame refused")
	st := p.cc.Stats()
	assert.Zero(t, st.FramesDroppedOnSend)
	assert.Equal(t, int64(60), st.FramesSent)

	// The application hears of it once, and again when the delay falls
	// back (the 10 s windowed least RTT forgets the deep path).
	pathEvents := func() (out []Event) {
		for _, ev := range p.client.events {
			if ev.Type == EventPathDelay {
				out = append(out, ev)
			}
		}
		return out
	}
	evs := pathEvents()
	require.Len(t, evs, 1)
	assert.True(t, evs[0].Over)
	assert.Equal(t, 200*time.Millisecond, evs[0].Delay)
	assert.True(t, st.PathOverBudget)
	assert.Equal(t, int64(1), st.PathOverBudgetEvents)

	fast := netem.LinkConfig{Delay: 20 * time.Millisecond}
	require.NoError(t, p.sim.Link(clientAddr, serverAddr).SetConfig(fast))
	require.NoError(t, p.sim.Link(serverAddr, clientAddr).SetConfig(fast))
	for i := range 450 {
		p.at(time.Duration(33*i)*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, sid, make([]byte, 1000), FrameInfo{Capture: now, Key: i%30 == 0})
		})
	}
	p.run(15 * time.Second)
	evs = pathEvents()
	require.Len(t, evs, 2)
	assert.False(t, evs[1].Over)
	assert.Less(t, evs[1].Delay, cfg.Latency)
	st = p.cc.Stats()
	assert.False(t, st.PathOverBudget)
	assert.Equal(t, int64(1), st.PathOverBudgetEvents)
}

// A path within the budget never tells of one over it.
func TestPathDelayWithinBudgetIsQuiet(t *testing.T) {
	link := netem.LinkConfig{Delay: 50 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	p.connected()
	p.at(0, func(now clock.Time) {
		sid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		for i := range 90 {
			p.at(time.Duration(33*i)*time.Millisecond, func(now clock.Time) {
				_ = p.cc.WriteFrame(now, sid, make([]byte, 1000), FrameInfo{Capture: now, Key: i%30 == 0})
			})
		}
	})
	p.run(4 * time.Second)
	for _, ev := range p.client.events {
		assert.NotEqual(t, EventPathDelay, ev.Type)
	}
	assert.Zero(t, p.cc.Stats().PathOverBudgetEvents)
}

// competingEstimator is a fixed target whose standing queue is, or is not,
// another flow's (cc.Competing).
type competingEstimator struct {
	cc.Fixed
	competing bool
}

func (e *competingEstimator) Competing() bool { return e.competing }

// modelQueue makes the sender's path model see q of queue at at (1
// Mbit/s through the path).
func modelQueue(t *testing.T, s *sender, at clock.Time, q time.Duration) {
	t.Helper()
	k := int64(at) / int64(pathRateSlotLen)
	s.path.rates[k%pathRateSlots] = rateSlot{start: clock.Time(k * int64(pathRateSlotLen)), bps: 1e6}
	s.path.rateOK, s.path.fit, s.path.vqAt = false, q.Seconds()*1e6/8, at
	require.Equal(t, q, s.path.fitQueueDelay(at))
}

// pathDelayEvents takes the client's events and returns how many were
// EventPathDelay, and the last of them.
func pathDelayEvents(p *pipe) (n int, last Event) {
	for e, more := p.client.PollEvent(); more; e, more = p.client.PollEvent() {
		if e.Type == EventPathDelay {
			n, last = n+1, e
		}
	}
	return n, last
}

// While the estimator says the standing queue is another flow's, the path's
// delay is the most of half the windowed least RTT, half the smoothed RTT
// (a TCP sawtooth's trough would hide the queue from the least) and the
// least RTT's half plus the queue the path model sees now (the smoothed
// RTT, from pings a second apart, lags a sawtooth's rise: in RFC 8867 5.6
// with a 1000 ms queue it read 243 ms while a frame met 685 ms, and key
// frames, judged against the 800 ms budget, were dropped one after
// another); frames are judged against capture + that delay + Latency.
// A queue of our own never counts.
func TestPathDelayWhileCompeting(t *testing.T) {
	for _, tc := range []struct {
		name      string
		competing bool
		srtt      time.Duration // the RTT of the samples after the 200 ms one
		modelQ    time.Duration // the queue the path model sees now
		wantDelay time.Duration // pathDelay
	}{
		{"own queue, RTT 800 ms", false, 800 * time.Millisecond, 0, 100 * time.Millisecond},
		{"own queue, the model's 600 ms", false, 200 * time.Millisecond, 600 * time.Millisecond, 100 * time.Millisecond},
		{"another flow's, RTT 800 ms", true, 800 * time.Millisecond, 0, 400 * time.Millisecond},
		{"another flow's, the model's 600 ms", true, 200 * time.Millisecond, 600 * time.Millisecond, 700 * time.Millisecond},
		{"another flow's, both", true, 800 * time.Millisecond, 600 * time.Millisecond, 700 * time.Millisecond},
		{"another flow's, short", true, 300 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := &competingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, competing: tc.competing}
			cfg := Config{Latency: 300 * time.Millisecond, Estimator: func() cc.Estimator { return est }}
			p := newPipe(t, cfg)
			s := &p.cc.snd
			p.drainEvents()
			// A least RTT of 200 ms a few seconds ago, tc.srtt since.
			// (The pipe's own samples, about 1 us, are more than 10 s
			// older.)
			p.cc.pingSampled = true
			base := p.now.Add(20 * time.Second)
			p.cc.rtt.Add(base, 200*time.Millisecond)
			for i := range 40 {
				p.cc.rtt.Add(base.Add(time.Duration(i+1)*100*time.Millisecond), tc.srtt)
			}
			require.Equal(t, 100*time.Millisecond, p.cc.owd())
			require.InDelta(t, float64(tc.srtt), float64(p.cc.rtt.Smoothed()), float64(10*time.Millisecond))
			if tc.modelQ > 0 {
				modelQueue(t, s, p.now, tc.modelQ)
			}
			got := s.pathDelay(p.now)
			if tc.wantDelay == 400*time.Millisecond {
				assert.Equal(t, p.cc.rtt.Smoothed()/2, got)
			} else {
				assert.Equal(t, tc.wantDelay, got)
			}
			over := got >= cfg.Latency
			s.checkPathDelay(p.now)
			assert.Equal(t, over, s.pathOver)
			n, ev := pathDelayEvents(p)
			assert.Equal(t, over, n == 1, "the event comes when the path goes over")
			if n == 1 {
				assert.True(t, ev.Over)
				assert.Equal(t, got, ev.Delay)
			}
			capture := p.now
			if over {
				ow := max(got, s.frameOneWay(p.now))
				assert.Equal(t, capture.Add(max(ow+300*time.Millisecond, p.cc.budget())), s.judgeDeadline(p.now, capture))
			} else {
				assert.Equal(t, capture.Add(p.cc.budget()), s.judgeDeadline(p.now, capture))
			}
		})
	}
}

// The path is said to be back under Latency only once its delay has
// stayed under for pathUnderHold while the queue is another flow's: a
// loss-based flow's sawtooth passes its trough in less, and the state
// would flap with it. Once the estimator no longer competes (the other
// flow left, or the queue is ours), it is under at once.
func TestPathDelayUnderHold(t *testing.T) {
	est := &competingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, competing: true}
	cfg := Config{Latency: 300 * time.Millisecond, Estimator: func() cc.Estimator { return est }}
	p := newPipe(t, cfg)
	s := &p.cc.snd
	p.drainEvents()
	events := func() (int, Event) { return pathDelayEvents(p) }
	queueAt := func(at clock.Time, q time.Duration) { modelQueue(t, s, at, q) }
	p.cc.pingSampled = true
	p.cc.rtt.Add(p.now, 200*time.Millisecond)
	queueAt(p.now, 600*time.Millisecond)
	s.checkPathDelay(p.now)
	require.True(t, s.pathOver)
	n, ev := events()
	require.Equal(t, 1, n)
	require.True(t, ev.Over)

	// The sawtooth's trough: the other flow's queue is down to 50 ms.
	start := p.now
	for _, d := range []time.Duration{0, time.Second, pathUnderHold - time.Millisecond} {
		now := start.Add(d)
		queueAt(now, 50*time.Millisecond)
		require.Less(t, s.pathDelay(now), cfg.Latency)
		assert.Equal(t, now.Add(max(s.pathDelay(now), s.frameOneWay(now))+300*time.Millisecond), s.judgeDeadline(now, now), "held at %v", d)
		assert.True(t, s.pathOver, "held at %v", d)
	}
	n, _ = events()
	assert.Zero(t, n, "no event while held")
	now := start.Add(pathUnderHold)
	queueAt(now, 50*time.Millisecond)
	assert.Equal(t, now.Add(p.cc.budget()), s.judgeDeadline(now, now))
	assert.False(t, s.pathOver)
	n, ev = events()
	require.Equal(t, 1, n)
	assert.False(t, ev.Over)

	// Over again, and a dip shorter than the hold: no event, and the
	// dip's start is forgotten once the delay is over again.
	queueAt(now, 600*time.Millisecond)
	s.checkPathDelay(now)
	require.True(t, s.pathOver)
	queueAt(now.Add(time.Second), 50*time.Millisecond)
	s.checkPathDelay(now.Add(time.Second))
	queueAt(now.Add(1500*time.Millisecond), 600*time.Millisecond)
	s.checkPathDelay(now.Add(1500 * time.Millisecond))
	later := now.Add(1500*time.Millisecond + pathUnderHold)
	queueAt(later, 50*time.Millisecond)
	s.checkPathDelay(later)
	assert.True(t, s.pathOver)
	n, _ = events()
	assert.Equal(t, 1, n, "only the first rise")

	// The other flow leaves: under at once.
	est.competing = false
	s.checkPathDelay(later.Add(time.Millisecond))
	assert.False(t, s.pathOver)
	n, ev = events()
	require.Equal(t, 1, n)
	assert.False(t, ev.Over)
}

// The hold's start is an instant like any other, time 0 included (the
// zero clock.Time is valid): it once meant "no start", and a path back
// under at 0 was held 1 s longer.
func TestPathDelayUnderHoldFromTimeZero(t *testing.T) {
	est := &competingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, competing: true}
	cfg := Config{Latency: 300 * time.Millisecond, Estimator: func() cc.Estimator { return est }}
	p := newEndpoints(t, cfg)
	p.now = clock.Time(-30 * time.Second)
	p.connect(t)
	s := &p.cc.snd
	p.cc.pingSampled = true
	// Over: round trips of 800 ms (half the smoothed RTT, 400 ms).
	base := clock.Time(-3 * time.Second)
	p.cc.rtt.Add(base, 200*time.Millisecond)
	for i := range 40 {
		p.cc.rtt.Add(base.Add(time.Duration(i+1)*10*time.Millisecond), 800*time.Millisecond)
	}
	s.checkPathDelay(clock.Time(-2 * time.Second))
	require.True(t, s.pathOver)
	// Under from time 0: round trips of 200 ms.
	for i := range 60 {
		p.cc.rtt.Add(clock.Time(-time.Second).Add(time.Duration(i)*10*time.Millisecond), 200*time.Millisecond)
	}
	for _, at := range []clock.Time{0, clock.Time(time.Second), clock.Time(pathUnderHold - time.Millisecond)} {
		require.Less(t, s.pathDelay(at), cfg.Latency)
		s.checkPathDelay(at)
		require.True(t, s.pathOver, "held at %v", at)
	}
	s.checkPathDelay(clock.Time(pathUnderHold))
	assert.False(t, s.pathOver, "under since 0, pathUnderHold on")
}

// Pushback counts the path's standing queue only while it is ours: behind
// another flow's (cc.Competing), a smaller encoder target would not drain
// it.
func TestStandingQueueWhileCompeting(t *testing.T) {
	for _, competing := range []bool{false, true} {
		est := &competingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, competing: competing}
		p := newPipe(t, Config{Estimator: func() cc.Estimator { return est }})
		s := &p.cc.snd
		modelQueue(t, s, p.now, 600*time.Millisecond)
		if competing {
			assert.Equal(t, s.pacer.QueueDelay(), s.standingQueue(p.now), "another flow's queue")
		} else {
			assert.Equal(t, s.pacer.QueueDelay()+600*time.Millisecond, s.standingQueue(p.now), "our queue")
		}
	}
}

// The pacing rate is the target times the pacing factor within
// [minPacingRate, MaxBitrate], whatever an app's own Estimator returns: a
// target near int64's range must not wrap to the least rate.
func TestPacingRateClamps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target int64
		want   func(cfg Config) int64
	}{
		{"1 Mbit/s", 1_000_000, func(cfg Config) int64 { return int64(1_000_000 * cfg.PacingFactor) }},
		{"zero", 0, func(Config) int64 { return minPacingRate }},
		{"100 Gbit/s", 100e9, func(cfg Config) int64 { return cfg.MaxBitrate }},
		{"9e18", 9e18, func(cfg Config) int64 { return cfg.MaxBitrate }},
		{"MaxInt64", math.MaxInt64, func(cfg Config) int64 { return cfg.MaxBitrate }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := &cc.Fixed{Rate: tc.target}
			p := newPipe(t, Config{Estimator: func() cc.Estimator { return est }})
			p.cc.snd.updateRate()
			assert.Equal(t, tc.want(*p.cc.cfg), p.cc.Stats().PacingRate)
		})
	}
}

// A delta that does not fit pushes out the frames of its stream that a key
// frame queued before it supersedes, newest first, instead of being
// refused: refused, it broke the key frame's chain and asked for another
// key frame (collapse-av-live: five in a row pushed out so).
func TestDeltaPushesOutWhatAQueuedKeyFrameSupersedes(t *testing.T) {
	p, _ := slowPair(t, Config{PacerQueueLimit: 100 * time.Millisecond, Latency: 2 * time.Second})
	var vid uint8
	p.at(0, func(now clock.Time) {
		var err error
		vid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		// 2.5 Mbit/s pacing x 100 ms = 31,250 bytes of queue.
		w := writerAt(p, now, vid)
		require.NoError(t, w(6_000, FrameInfo{Key: true})) // 0
		require.NoError(t, w(6_000, FrameInfo{}))          // 1
		require.NoError(t, w(6_000, FrameInfo{}))          // 2
		require.NoError(t, w(8_000, FrameInfo{Key: true})) // 3
		require.NoError(t, w(4_000, FrameInfo{}))          // 4: 30,015 queued
		require.NoError(t, w(4_000, FrameInfo{}), "5: fits once 2, which key frame 3 supersedes, goes")
	})
	p.run(3 * time.Second)
	drops, ids, undecodable := limitDrops(t, p, vid)
	assert.Equal(t, []int64{2}, drops)
	assert.Equal(t, []int64{0, 1, 3, 4, 5}, ids)
	assert.Empty(t, undecodable)
	st := p.cc.Stats()
	assert.Zero(t, st.KeyFrameRequestsLocal, "the key frame's chain held")
	assert.LessOrEqual(t, st.PacerQueueDelayMax, 100*time.Millisecond, "within the limit at every enqueue")
}
