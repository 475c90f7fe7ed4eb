package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

func TestPushback(t *testing.T) {
	limit := 150 * time.Millisecond
	tests := []struct {
		queue time.Duration
		want  float64
	}{
		{0, 1},
		{37 * time.Millisecond, 1},       // under a quarter of the limit: free
		{37500 * time.Microsecond, 1},    // exactly a quarter
		{93750 * time.Microsecond, 0.75}, // half way to the limit
		{150 * time.Millisecond, 0.5},    // at the limit
		{time.Second, pushbackFloor},     // past it: the floor
		{-time.Millisecond, 1},           // nonsense in, no cut
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, pushback(tt.queue, limit), 1e-9, "queue %v", tt.queue)
	}
	assert.Equal(t, 1.0, pushback(time.Second, 0), "no limit: no pushback")
}

// The encoder's target: audio first at its nominal rate, the rest to the
// video, less the measured overhead; it falls at once when the transport
// target falls by more than 10 %, falls when a standing queue builds
// (pushback), and rises smoothed.
func TestTargetRate(t *testing.T) {
	sched := &cc.Scripted{Steps: []cc.ScriptStep{{Rate: 2_000_000}}}
	cfg := Config{Estimator: func() cc.Estimator { return sched }}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, fwd: link, rev: link})
	p.connected()
	var video, audio []int64
	var videoAt []clock.Time
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventTargetRate {
			if ev.Kind == KindAudio {
				audio = append(audio, ev.Bitrate)
			} else {
				video = append(video, ev.Bitrate)
				videoAt = append(videoAt, now)
			}
		}
	}
	s := &p.cc.snd
	p.at(0, func(now clock.Time) {
		aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Bitrate: 64_000})
		require.NoError(t, err)
		_, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 3_000_000})
		require.NoError(t, err)
		// Audio frames throughout, so that feedback (and with it the
		// scripted target's clock) keeps coming.
		for i := range 250 {
			p.at(time.Duration(i)*20*time.Millisecond, func(now clock.Time) {
				_ = p.cc.WriteFrame(now, aid, make([]byte, 100), FrameInfo{Capture: now})
			})
		}
	})
	p.run(100 * time.Millisecond)
	require.Equal(t, []int64{64_000}, audio, "audio first, at its nominal rate")
	require.Len(t, video, 1)
	// 2 Mbit/s less the 10 % assumed before a second of sending, less audio.
	assert.Equal(t, int64(2_000_000*0.9-64_000), video[0])

	// A standing queue of 0.6 x the limit for over a second: pushback.
	p.at(0, func(now clock.Time) { s.pacer.Add(cc.ClassVideo, int(float64(s.pacer.Rate())/8*0.09)) })
	p.run(1500 * time.Millisecond)
	pushed := video[len(video)-1]
	want := int64(float64(video[0]) * pushback(90*time.Millisecond, 150*time.Millisecond))
	assert.InDelta(t, want, pushed, float64(want)*0.02, "pushback at a 90 ms standing queue")

	// The queue goes: the target rises again, a quarter of the way per
	// update.
	n := len(video)
	p.at(0, func(now clock.Time) { s.pacer.Remove(cc.ClassVideo, int(s.pacer.Queued())) })
	p.run(250 * time.Millisecond) // one update once the 1 s minimum forgets the queue
	p.run(1000 * time.Millisecond)
	require.Greater(t, len(video), n+1)
	for i := n; i < len(video); i++ {
		rise := video[i] - video[i-1]
		assert.Positive(t, rise)
		assert.LessOrEqual(t, rise, (video[0]-video[i-1])/4+1, "rises are smoothed")
	}

	// The transport target halves 20 ms after an update: the encoder hears
	// at the next feedback (every 50 ms), not the next update 180 ms on.
	n = len(video)
	var cutAt clock.Time
	p.at(0, func(now clock.Time) {
		p.sim.Schedule(s.targetAt.Add(20*time.Millisecond), func(now clock.Time) {
			cutAt = now
			sched.Steps = append(sched.Steps, cc.ScriptStep{At: now, Rate: 1_000_000})
		})
	})
	p.run(time.Second)
	for n < len(video) && videoAt[n] < cutAt {
		n++
	}
	require.Greater(t, len(video), n)
	assert.Less(t, video[n], int64(1_000_000), "cut at once, not smoothed")
	assert.Less(t, videoAt[n].Sub(cutAt), 100*time.Millisecond, "before the next regular update")
}

// A stream's MinBitrate and MaxBitrate clamp its target: the most stops a
// stream's share (the rest going to the others), the least holds when the
// transport target falls under it.
func TestTargetRateClamps(t *testing.T) {
	sched := &cc.Scripted{Steps: []cc.ScriptStep{{Rate: 2_000_000}}}
	cfg := Config{Estimator: func() cc.Estimator { return sched }}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, fwd: link, rev: link})
	p.connected()
	last := map[uint8]int64{}
	p.client.onEvent = func(now clock.Time, ev Event) {
		if ev.Type == EventTargetRate {
			last[ev.Stream] = ev.Bitrate
		}
	}
	var capped, floored, free uint8
	p.at(0, func(now clock.Time) {
		var err error
		capped, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Priority: PriorityHigh, Bitrate: 3_000_000, MaxBitrate: 300_000})
		require.NoError(t, err)
		floored, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 3_000_000, MinBitrate: 250_000})
		require.NoError(t, err)
		free, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 3_000_000})
		require.NoError(t, err)
		for i := range 200 {
			p.at(time.Duration(i)*20*time.Millisecond, func(now clock.Time) {
				_ = p.cc.WriteFrame(now, free, make([]byte, 100), FrameInfo{Capture: now, Key: i == 0})
			})
		}
	})
	p.run(100 * time.Millisecond)
	// 2 Mbit/s less the 10 % assumed: 1.8 Mbit/s. The high-priority stream
	// would take 4/6 of it, but stops at 300 kbit/s; the other two share
	// the rest equally.
	assert.Equal(t, int64(300_000), last[capped])
	assert.Equal(t, int64(750_000), last[floored])
	assert.Equal(t, int64(750_000), last[free])

	// The transport target falls to 400 kbit/s: the floored stream keeps
	// 250 kbit/s however little is left for it.
	p.at(0, func(now clock.Time) { sched.Steps = append(sched.Steps, cc.ScriptStep{At: now, Rate: 400_000}) })
	p.run(time.Second)
	assert.Equal(t, int64(250_000), last[floored])
	assert.Less(t, last[free], int64(250_000))
	assert.LessOrEqual(t, last[capped], int64(300_000))
}

// Bounds a stream cannot have are refused.
func TestStreamBitrateBounds(t *testing.T) {
	tests := []struct {
		name string
		cfg  StreamConfig
		ok   bool
	}{
		{"unset", StreamConfig{Kind: KindVideo}, true},
		{"min under the nominal rate", StreamConfig{Kind: KindVideo, Bitrate: 1_000_000, MinBitrate: 1_000_000}, true},
		{"min over the nominal rate", StreamConfig{Kind: KindVideo, Bitrate: 1_000_000, MinBitrate: 1_000_001}, false},
		{"min under max", StreamConfig{Kind: KindVideo, Bitrate: 1_000_000, MinBitrate: 2_000_000, MaxBitrate: 3_000_000}, true},
		{"min over max", StreamConfig{Kind: KindVideo, MinBitrate: 500_000, MaxBitrate: 400_000}, false},
		{"negative min", StreamConfig{Kind: KindVideo, MinBitrate: -1}, false},
		{"negative max", StreamConfig{Kind: KindVideo, MaxBitrate: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t, Config{})
			_, err := p.cc.OpenStream(p.now, tc.cfg)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidConfig)
			}
		})
	}
}

// gccPairWithSilence connects a client sending with GCC to a server over
// 20 ms links; setting *silent loses everything the server sends (its
// feedback).
func gccPairWithSilence(t *testing.T, cfg Config, g cc.GCCConfig) (*pair, *bool) {
	silent := new(bool)
	cfg.Estimator = func() cc.Estimator { return cc.NewGCC(g) }
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	p := newPair(t, pairOpts{client: cfg, fwd: link, rev: link,
		serverFilter: func(now clock.Time, b []byte) bool { return !*silent }})
	p.connected()
	return p, silent
}

// With a controller that acts on silence (cc.Timed), feedback that stops
// coming while the sender sends halves the transport target; an
// application that stops sending gets no feedback, and nothing awaits any,
// so its target does not halve away meanwhile (RFC 8867 5.8's pause).
func TestFeedbackSilence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames int  // 20 ms of audio each from 0 s
		silent bool // the feedback is lost from 1 s on
		halved bool
	}{
		{"feedback stops while the sender sends", 150, true, true},
		{"the sender pauses", 50, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, silent := gccPairWithSilence(t, Config{}, cc.GCCConfig{StartRate: 2_000_000})
			p.at(0, func(now clock.Time) {
				aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
				require.NoError(t, err)
				for i := range tc.frames {
					p.at(time.Duration(i)*20*time.Millisecond, func(now clock.Time) {
						_ = p.cc.WriteFrame(now, aid, make([]byte, 100), FrameInfo{Capture: now})
					})
				}
			})
			p.run(time.Second)
			before := p.cc.Stats().AvailableOutgoingBitrate
			require.GreaterOrEqual(t, before, int64(2_000_000))
			*silent = tc.silent
			if tc.halved {
				p.run(2 * time.Second)
				assert.Less(t, p.cc.Stats().AvailableOutgoingBitrate, before/4, "halved at least twice in 2 s of silence")
			} else {
				p.run(3 * time.Second)
				assert.Equal(t, before, p.cc.Stats().AvailableOutgoingBitrate, "no halving while nothing is sent")
			}
		})
	}
}

// A prober's clusters go out at their rate, padded with copies of recent
// packets, their packets tagged so feedback reaches the controller: from
// 300 kbit/s on a 4 Mbit/s path, GCC's start-up probes lift the target
// within a second; an audio-only session sends no padding.
func TestProbesGoOutAndLiftTheTarget(t *testing.T) {
	for _, tc := range []struct {
		video bool
		first time.Duration // from the streams' opening to the first frame
	}{{true, 0}, {true, 100 * time.Millisecond}, {false, 0}} {
		video := tc.video
		cfg := Config{Estimator: func() cc.Estimator { return cc.NewGCC(cc.GCCConfig{StartRate: 300_000}) }}
		link := netem.LinkConfig{Delay: 25 * time.Millisecond, Rate: 4_000_000, QueueDelay: 300 * time.Millisecond}
		p := newPair(t, pairOpts{client: cfg, fwd: link, rev: netem.LinkConfig{Delay: 25 * time.Millisecond}})
		p.connected()
		p.at(0, func(now clock.Time) {
			aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
			require.NoError(t, err)
			var vid uint8
			if video {
				vid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 4_000_000})
				require.NoError(t, err)
			}
			// The start-up clusters wait for a packet to pad with: asked
			// for at the opening, they would end at once, unsent.
			for i := range 100 {
				p.at(tc.first+time.Duration(i)*20*time.Millisecond, func(now clock.Time) {
					_ = p.cc.WriteFrame(now, aid, make([]byte, 100), FrameInfo{Capture: now})
					if video && i%2 == 0 {
						_ = p.cc.WriteFrame(now, vid, make([]byte, 1500), FrameInfo{Capture: now, Key: i == 0})
					}
				})
			}
		})
		p.run(time.Second + tc.first)
		st := p.cc.Stats()
		// The controller's own counters come through (ConnStats.Congestion).
		assert.Positive(t, st.Congestion.Groups)
		assert.Equal(t, st.ProbeClusters, st.Congestion.Probes, "every cluster GCC handed out went out")
		if !video {
			assert.Zero(t, st.ProbeClusters, "audio only: no probes")
			assert.Zero(t, st.ProbePaddingSent)
			continue
		}
		assert.Positive(t, st.ProbeClusters)
		assert.Positive(t, st.ProbePaddingSent)
		assert.Greater(t, st.AvailableOutgoingBitrate, int64(1_500_000), "start-up probes lifted the target (first frame after %v)", tc.first)
		// Padding is not counted as retransmission: every retransmission
		// answers a packet a NACK named. (With clusters paced at their own
		// rate, one NACK comes on this path although the link loses and
		// reorders nothing; why is not traced yet.)
		assert.LessOrEqual(t, st.RetransmittedPacketsSent, st.PacketsNACKedByPeer, "padding is not counted as retransmission")
	}
}

// While feedback is missing, the bytes in flight stop at the window
// (target x (smoothed RTT + allowance)); audio still goes; once reports
// come again, so does the rest.
func TestWindowBoundsBytesInFlight(t *testing.T) {
	p, silent := gccPairWithSilence(t, Config{Latency: 100 * time.Millisecond}, cc.GCCConfig{StartRate: 2_000_000, MaxRate: 2_000_000})
	p.at(0, func(now clock.Time) {
		aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
		require.NoError(t, err)
		vid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 4_000_000})
		require.NoError(t, err)
		for i := range 150 {
			p.at(time.Duration(i)*20*time.Millisecond, func(now clock.Time) {
				_ = p.cc.WriteFrame(now, aid, make([]byte, 100), FrameInfo{Capture: now})
				// 4 Mbit/s offered: twice the target.
				_ = p.cc.WriteFrame(now, vid, make([]byte, 10_000), FrameInfo{Capture: now, Key: i == 0, Droppable: i > 0})
			})
		}
	})
	p.run(time.Second)
	st := p.cc.Stats()
	require.Positive(t, st.Window)
	require.Less(t, st.BytesInFlight, st.Window/2, "with feedback, well within the window")
	before := st
	*silent = true
	p.run(450 * time.Millisecond) // under the 500 ms after which unreported packets stop counting
	st = p.cc.Stats()
	assert.Equal(t, before.Window, st.Window, "no feedback: the same target")
	assert.Greater(t, st.BytesInFlight, before.BytesInFlight)
	assert.LessOrEqual(t, st.BytesInFlight, st.Window+int64(p.cc.cfg.MaxDatagramSize), "stopped at the window")
	assert.Positive(t, st.WindowBlocked)
	audio, _ := p.cc.StreamStats(0)
	audioBefore := audio.FramesSent
	p.run(100 * time.Millisecond)
	audio, _ = p.cc.StreamStats(0)
	assert.Greater(t, audio.FramesSent, audioBefore, "audio goes through a full window")

	*silent = false
	sent := p.cc.Stats().FramesSent
	p.run(time.Second)
	st = p.cc.Stats()
	assert.Greater(t, st.FramesSent, sent+40, "video flows again")
	assert.Less(t, st.BytesInFlight, st.Window)
}
