package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// bytesPerSlot is what a sender sends in one target interval, by kind.
type bytesPerSlot struct {
	audioFrame, audioWire int64 // audio frame bytes, and its datagrams' bytes
	frame, media          int64 // other frame bytes, and their media datagrams' bytes
	ctrl                  int64 // control datagrams
}

// scriptedPair is a connected pair whose client's transport target is
// rate, over link both ways.
func scriptedPair(t *testing.T, rate int64, link netem.LinkConfig) *pair {
	sched := &cc.Scripted{Steps: []cc.ScriptStep{{Rate: rate}}}
	p := newPair(t, pairOpts{client: Config{Estimator: func() cc.Estimator { return sched }}, fwd: link, rev: link})
	p.connected()
	return p
}

// send adds one slot's bytes to the sender's counters.
func (b bytesPerSlot) send(s *sender) {
	c := s.c
	c.stats.MediaBytesSent += b.audioFrame + b.frame
	c.stats.BytesSent += b.audioWire + b.media + b.ctrl
	s.audioFrame += b.audioFrame
	s.audioWire += b.audioWire
	s.ctrlBytes += b.ctrl
}

// The encoder targets' overhead over a second of sending: control
// datagrams as a rate, the audio's wire bytes per frame byte, the share of
// the other media datagrams that were not frame bytes.
func TestOverheadCostByKind(t *testing.T) {
	tests := []struct {
		name      string
		slot      bytesPerSlot
		wantCtrl  float64 // bit/s
		wantAudio float64
		wantShare float64
	}{
		{name: "steady audio and video",
			slot:     bytesPerSlot{audioFrame: 1_500, audioWire: 2_000, frame: 48_500, media: 50_000, ctrl: 100},
			wantCtrl: 4_000, wantAudio: 2_000.0 / 1_500, wantShare: 0.03},
		{name: "video waiting for a key frame: audio, and drop notices flowing",
			slot:     bytesPerSlot{audioFrame: 1_500, audioWire: 2_000, frame: 300, media: 400, ctrl: 400},
			wantCtrl: 16_000, wantAudio: 2_000.0 / 1_500, wantShare: defaultOverhead}, // 2 kB of video a second: not measured
		{name: "the path carrying the video's retransmissions",
			slot:      bytesPerSlot{audioFrame: 1_500, audioWire: 2_000, frame: 200, media: 10_000},
			wantAudio: 2_000.0 / 1_500, wantShare: 0.9},
		{name: "probe padding, no audio", slot: bytesPerSlot{frame: 20_000, media: 50_000},
			wantAudio: 1 / (1 - defaultOverhead), wantShare: 0.6}, // no audio sent: its default
		{name: "FEC at 25 %", slot: bytesPerSlot{audioFrame: 1_000, audioWire: 1_250, frame: 40_000, media: 50_000},
			wantAudio: 1.25, wantShare: 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, pairOpts{})
			p.connected()
			s := &p.cc.snd
			base := p.sim.Now()
			var ctrl, audio, share float64
			for i := range overheadSlots + 1 {
				ctrl, audio, share = s.overheadCost(base.Add(time.Duration(i) * targetInterval))
				tt.slot.send(s)
			}
			assert.InDelta(t, tt.wantCtrl, ctrl, 1, "control rate")
			assert.InDelta(t, tt.wantAudio, audio, 1e-9, "audio cost")
			assert.InDelta(t, tt.wantShare, share, 1e-9, "share")
		})
	}
}

// Audio comes first, in the targets as in the pacer: a second of the path
// carrying the video's retransmissions cuts the video's target, not the
// audio's (collapse-av-live's collapse once took the audio's from 64 to
// 25 kbit/s).
func TestAudioTargetKeepsWhileVideoRetransmits(t *testing.T) {
	p := scriptedPair(t, 500_000, netem.LinkConfig{Delay: 20 * time.Millisecond})
	now := p.sim.Now()
	aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Bitrate: 64_000})
	require.NoError(t, err)
	vid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_500_000})
	require.NoError(t, err)
	s := &p.cc.snd
	// 500 kbit/s on the wire: audio 64 kbit/s of frames at 1.3 x, the rest
	// retransmissions carrying next to no new video.
	slot := bytesPerSlot{audioFrame: 1_600, audioWire: 2_080, frame: 200, media: 10_400}
	for i := range overheadSlots + 2 {
		slot.send(s)
		s.updateTargets(now.Add(time.Duration(i+1) * targetInterval))
	}
	assert.Equal(t, int64(64_000), s.stream(aid).target, "audio keeps its rate")
	assert.Less(t, s.stream(vid).target, int64(100_000), "the video's falls")
}

// A datagram's bytes go to the counter of its kind.
func TestSentBytesByKind(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.connected()
	s := &p.cc.snd
	now := p.sim.Now()
	aid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Bitrate: 64_000})
	require.NoError(t, err)
	vid, err := p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
	require.NoError(t, err)
	ctrl0, aw0, af0 := s.ctrlBytes, s.audioWire, s.audioFrame
	p.cc.sent(now, 40, classControl)
	p.cc.sent(now, 1000, classMedia)
	assert.Equal(t, int64(40), s.ctrlBytes-ctrl0)

	p.at(0, func(now clock.Time) {
		require.NoError(t, p.cc.WriteFrame(now, vid, make([]byte, 3000), FrameInfo{Capture: now, Key: true}))
		require.NoError(t, p.cc.WriteFrame(now, aid, make([]byte, 100), FrameInfo{Capture: now}))
	})
	p.run(100 * time.Millisecond)
	frame := s.audioFrame - af0
	assert.Equal(t, int64(100+wire.FramePrefixLen), frame, "the audio frame and its prefix")
	assert.Greater(t, s.audioWire-aw0, frame, "with its header")
	assert.Less(t, s.audioWire-aw0, int64(200), "and not the video's")
}

// Audio's FEC repair is the audio's cost, not the video's: audio alone on
// a lossy path (the video waiting for a key frame) leaves the video most
// of the target. Its repair once counted as the video's overhead, whose
// share then read 0.9 (a helper's review: video target 74.5 kbit/s of
// 1 Mbit/s).
func TestAudioFECIsTheAudiosCost(t *testing.T) {
	p := scriptedPair(t, 1_000_000, netem.LinkConfig{Delay: 40 * time.Millisecond, Loss: 0.2})
	var aid, vid uint8
	p.at(0, func(now clock.Time) {
		var err error
		aid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio, Bitrate: 192_000})
		require.NoError(t, err)
		vid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_500_000})
		require.NoError(t, err)
	})
	for i := range 200 { // 4 s of 20 ms frames, 480 B each (192 kbit/s)
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, aid, payload(aid, int64(i), 480), FrameInfo{Capture: now}))
		})
	}
	p.run(4010 * time.Millisecond)
	s := &p.cc.snd
	st := p.cc.Stats()
	require.Positive(t, st.FECSent.FECPacketsSent, "the audio was protected")
	other := st.BytesSent - s.ctrlBytes - s.audioWire
	assert.Less(t, other, st.FECSent.FECBytesSent/10, "every media byte was the audio's")
	assert.Greater(t, s.stream(vid).target, int64(500_000), "the video keeps most of 1 Mbit/s less the audio")
}

// The control datagrams' rate is measured over at least half a second:
// updates come sooner when streams open, and five stream announcements
// within 5 ms once read as 280 kbit/s and cut the video's target by a
// third (a helper's review).
func TestControlRateNotFromAFewMilliseconds(t *testing.T) {
	p := scriptedPair(t, 1_000_000, netem.LinkConfig{Delay: 20 * time.Millisecond})
	var vid uint8
	p.at(0, func(now clock.Time) {
		var err error
		vid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 1_500_000})
		require.NoError(t, err)
	})
	for i := range 90 { // 3 s at 30 fps, about 600 kbit/s
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, vid, payload(vid, int64(i), 2500), FrameInfo{Capture: now, Key: i == 0}))
		})
	}
	p.run(2 * time.Second)
	before := p.cc.snd.stream(vid).target
	for i := range 5 { // the application opens its other streams, 1 ms apart
		p.at(time.Duration(i+1)*time.Millisecond, func(now clock.Time) {
			_, err := p.cc.OpenStream(now, StreamConfig{Kind: KindData, Bitrate: 1_000, MaxBitrate: 1_000})
			require.NoError(t, err)
		})
	}
	p.run(7 * time.Millisecond)
	assert.Greater(t, p.cc.snd.stream(vid).target, before*9/10, "before %d", before)
}
