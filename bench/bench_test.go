package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
)

func TestPercentilesRankNeverCompletedAsInfinite(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		lat  []float64
		p50  *float64
		p99  *float64
		max  *float64
	}{
		{"empty", nil, nil, nil, nil},
		{"one", []float64{5}, ptr(5), ptr(5), ptr(5)},
		{"hundred", seq(1, 100), ptr(50), ptr(99), ptr(100)},
		{"one lost in a hundred", append(seq(1, 99), inf), ptr(50), ptr(99), nil},
		{"two lost in a hundred", append(seq(1, 98), inf, inf), ptr(50), nil, nil},
		{"half lost", append(seq(1, 50), seq(inf, inf)...), ptr(50), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := percentiles(tt.lat)
			assert.Equal(t, tt.p50, p.P50)
			assert.Equal(t, tt.p99, p.P99)
			assert.Equal(t, tt.max, p.Max)
		})
	}
	b, err := json.Marshal(percentiles([]float64{1, inf}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"p50":1,"p95":null,"p99":null,"max":null}`, string(b))
}

func ptr(v float64) *float64 { return &v }

func seq(from, to float64) []float64 {
	if math.IsInf(from, 1) {
		out := make([]float64, 50)
		for i := range out {
			out[i] = from
		}
		return out
	}
	var out []float64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func TestGeneratorMatchesTheTrafficModel(t *testing.T) {
	tr := DefaultTraffic()
	g := NewGenerator(tr, 1)
	var videoBytes, keys, audio, video int
	var keySize, deltaSum, deltas int
	var last time.Duration
	for g.Peek() < 60*time.Second {
		f := g.Next()
		require.GreaterOrEqual(t, f.At, last, "capture-time order")
		last = f.At
		switch f.Source {
		case SourceAudio:
			audio++
			assert.True(t, f.Size >= 80 && f.Size <= 160)
			assert.Equal(t, time.Duration(f.Seq)*20*time.Millisecond, f.At)
		case SourceVideo:
			video++
			videoBytes += f.Size
			if f.Key {
				keys++
				keySize = f.Size
				assert.Zero(t, f.Seq%60, "a key frame every 2 s")
			} else {
				deltaSum += f.Size
				deltas++
			}
		}
	}
	assert.Equal(t, 3000, audio)
	assert.Equal(t, 1800, video)
	assert.Equal(t, 30, keys)
	assert.InEpsilon(t, 1_500_000, float64(videoBytes)*8/60, 0.01, "video averages its bitrate")
	assert.InEpsilon(t, 8, float64(keySize)/(float64(deltaSum)/float64(deltas)), 0.02, "key frames are 8 x a delta")

	a, b := NewGenerator(tr, 7), NewGenerator(tr, 7)
	for range 1000 {
		assert.Equal(t, a.Next(), b.Next())
	}
	assert.NotEqual(t, NewGenerator(tr, 1).Next(), NewGenerator(tr, 2).Next(), "audio sizes follow the seed")
}

// Like an encoder, the generator makes a key frame when asked (restarting
// the key-frame interval) and follows the bitrate it is given within its
// model's bounds.
func TestGeneratorFollowsTargetAndKeyRequests(t *testing.T) {
	tr := Traffic{Video: DefaultTraffic().Video}
	tr.Video.StartBitrate = 300_000
	g := NewGenerator(tr, 1)
	videoBits := func(d time.Duration) (bits float64, keys []int64) {
		end := g.Peek() + d
		for g.Peek() < end {
			f := g.Next()
			bits += float64(f.Size) * 8
			if f.Key {
				keys = append(keys, f.Seq)
			}
		}
		return bits / d.Seconds(), keys
	}
	rate, keys := videoBits(10 * time.Second)
	assert.InEpsilon(t, 300_000, rate, 0.02, "starts at StartBitrate")
	assert.Equal(t, []int64{0, 60, 120, 180, 240}, keys)

	g.SetVideoBitrate(1_000_000)
	rate, _ = videoBits(10 * time.Second)
	assert.InEpsilon(t, 1_000_000, rate, 0.02)
	g.SetVideoBitrate(9_000_000)
	rate, _ = videoBits(10 * time.Second)
	assert.InEpsilon(t, 1_500_000, rate, 0.02, "at most the model's Bitrate")
	g.SetVideoBitrate(1)
	rate, _ = videoBits(10 * time.Second)
	assert.InEpsilon(t, minVideoBitrate, rate, 0.05, "at least minVideoBitrate")

	// 40 s so far (frame 1200 a periodic key frame); half a second on,
	// frame 1215 is the next: a request makes it a key frame, and the next
	// periodic one comes 60 frames after it, not at 1260.
	_, keys = videoBits(500 * time.Millisecond)
	assert.Equal(t, []int64{1200}, keys)
	g.RequestKey()
	g.RequestKey() // asked twice before a frame: one key frame
	_, keys = videoBits(3 * time.Second)
	assert.Equal(t, []int64{1215, 1275}, keys)
	assert.Equal(t, int64(1), g.keysAsked)
	assert.Error(t, Traffic{Video: VideoModel{FPS: 30, Bitrate: 100, KeyInterval: time.Second, KeyFactor: 2, StartBitrate: 200}}.Validate())
}

// RFC 8593's source: one key frame at the start and then only on request,
// Laplacian size noise of 0.15 around the mean, and the rate following a
// new target by at most 10 % per 100 ms.
func TestGeneratorRFC8593(t *testing.T) {
	tr := Traffic{Video: RFC8593Video(150_000, 1_500_000)}
	require.NoError(t, tr.Validate())
	g := NewGenerator(tr, 3)
	var keys []int64
	var devs []float64
	for g.Peek() < 20*time.Second {
		f := g.Next()
		if f.Key {
			keys = append(keys, f.Seq)
			continue
		}
		devs = append(devs, float64(f.Size)/(150_000.0/8/30)-1)
		assert.LessOrEqual(t, f.Size, tr.maxFrameSize())
	}
	assert.Equal(t, []int64{0}, keys, "a key frame at the start only")
	var sum, sq, abs float64
	for _, d := range devs {
		sum += d
		sq += d * d
		abs += math.Abs(d)
	}
	n := float64(len(devs))
	assert.InDelta(t, 0, sum/n, 0.01, "the noise is centred")
	assert.InDelta(t, 0.15, math.Sqrt(sq/n), 0.015, "standard deviation 0.15")
	// A Laplace's mean absolute deviation is sd/√2 (a uniform's would be
	// sd·√3/2).
	assert.InDelta(t, 0.15/math.Sqrt2, abs/n, 0.01, "Laplacian, not uniform")

	// A jump to 1.5 Mbit/s: 10x takes log(10)/log(1.1) = 24.2 steps of
	// 100 ms.
	g.SetVideoBitrate(1_500_000)
	for g.Peek() < 21*time.Second { // 1 s: 1.1^10 = 2.59x
		g.Next()
	}
	assert.InEpsilon(t, 150_000*math.Pow(1.1, 10), float64(g.VideoBitrate()), 0.02, "%d", g.VideoBitrate())
	for g.Peek() < 23*time.Second {
		g.Next()
	}
	assert.Equal(t, int64(1_500_000), g.VideoBitrate(), "there after 2.42 s")
	g.SetVideoBitrate(300_000)
	for g.Peek() < 24*time.Second { // down by 1.1^10 in 1 s
		g.Next()
	}
	assert.InEpsilon(t, 1_500_000/math.Pow(1.1, 10), float64(g.VideoBitrate()), 0.02)
	g.RequestKey()
	f := g.Next()
	for f.Source != SourceVideo {
		f = g.Next()
	}
	assert.True(t, f.Key, "on request")

	// RFC 8867's source bounds: never under 150 kbit/s, whatever the
	// target says, and the stream tells the sender so.
	g.SetVideoBitrate(1)
	for g.Peek() < 40*time.Second {
		g.Next()
	}
	assert.Equal(t, int64(RFC8867MinBitrate), g.VideoBitrate())
	r := &run{sc: Scenario{Traffic: tr}}
	assert.Equal(t, int64(RFC8867MinBitrate), r.trackConfig(SourceVideo).MinBitrate)
	assert.Zero(t, (&run{sc: Scenario{Traffic: DefaultTraffic()}}).trackConfig(SourceVideo).MinBitrate,
		"the foundation's source has no floor")
}

func TestTrafficValidate(t *testing.T) {
	assert.NoError(t, DefaultTraffic().Validate())
	bad := []Traffic{
		{},
		{Video: VideoModel{FPS: 30}},
		{Video: VideoModel{FPS: 30, Bitrate: 1, KeyInterval: time.Millisecond, KeyFactor: 8}},
		{Video: VideoModel{FPS: 30, Bitrate: 1, KeyInterval: time.Second, KeyFactor: 0.5}},
		{Audio: AudioModel{FPS: 50, MinSize: 100, MaxSize: 50}},
		{Audio: AudioModel{FPS: -1}},
		{Video: VideoModel{FPS: 30, Bitrate: 1, KeyFactor: 8, KeyInterval: -time.Second}},
		{Video: VideoModel{FPS: 30, Bitrate: 1, KeyFactor: 8, RateStep: 1.5}},
		{Video: VideoModel{FPS: 30, Bitrate: 100_000, KeyFactor: 8, MinBitrate: 150_000}},
		{Video: VideoModel{FPS: 30, Bitrate: 100_000, KeyFactor: 8, MinBitrate: -1}},
		{Video: VideoModel{FPS: 30, Bitrate: 1_000_000, KeyFactor: 8, MinBitrate: 150_000, StartBitrate: 100_000}},
		// Frames past the transport's 4 MiB limit: a typo in a scenario
		// file must not allocate 50 GB for the payload buffer.
		{Video: VideoModel{FPS: 30, Bitrate: 100e9, KeyFactor: 8}},
		{Audio: AudioModel{FPS: 50, MinSize: 80, MaxSize: 1e9}},
	}
	for _, tr := range bad {
		assert.Error(t, tr.Validate(), "%+v", tr)
	}
	// The largest frames the limit allows: the payload buffer is the limit.
	atLimit := Traffic{Video: VideoModel{FPS: 30, Bitrate: 30 * 8 * core.DefaultMaxFrameSize / 8, KeyFactor: 8}}
	require.NoError(t, atLimit.Validate())
	assert.Equal(t, core.DefaultMaxFrameSize, atLimit.maxFrameSize())
	assert.Equal(t, 2*8*6250+1, DefaultTraffic().maxFrameSize(), "twice 8 x the mean frame of 1.5 Mbit/s at 30 fps")
	over := rfc8867Row("x", 10*time.Second, 1_000_000, 1, 1_500_000)
	over.SourceSteps = []SourceStep{{At: time.Second, Bitrate: 100e9}}
	assert.ErrorContains(t, over.Validate(), "frame limit", "a source step past the limit")
}

func TestSelect(t *testing.T) {
	def, err := Select("")
	require.NoError(t, err)
	var names []string
	for _, s := range def {
		names = append(names, s.Name)
		assert.NoError(t, s.Validate())
	}
	assert.Equal(t, []string{
		"rtc-rtt40-loss0", "rtc-rtt40-loss2", "rtc-rtt40-loss5", "rtc-rtt40-loss10",
		"rtc-rtt100-loss0", "rtc-rtt100-loss2", "rtc-rtt100-loss5", "rtc-rtt100-loss10",
		"rtc-rtt200-loss0", "rtc-rtt200-loss2", "rtc-rtt200-loss5", "rtc-rtt200-loss10",
	}, names)
	for _, s := range Scenarios() {
		assert.NoError(t, s.Validate(), s.Name)
	}
	arq, err := Select("^arq-")
	require.NoError(t, err)
	require.Len(t, arq, 4)
	assert.Equal(t, "arq-rtt100-ge10b3", arq[3].Name)
	assert.Equal(t, 0.1, arq[3].Forward.GE.StationaryLoss(), "Gilbert-Elliott: 10 % loss")
	assert.InDelta(t, 3, arq[3].Forward.GE.MeanBurst(), 1e-9, "in bursts of 3 on average")
	_, err = Select("(")
	assert.Error(t, err)
	_, err = Select("^nothing$")
	assert.Error(t, err)

	sc := def[0]
	sc.Forward.Loss = 2
	assert.ErrorContains(t, sc.Validate(), "forward link")
	sc = def[0]
	sc.Profile = "fast"
	assert.Error(t, sc.Validate())
	sc = def[0]
	sc.MaxFECOverhead = 2
	assert.ErrorContains(t, sc.Validate(), "max_fec_overhead")

	audio, err := Select("^fec-audio-loss5$")
	require.NoError(t, err)
	require.Len(t, audio, 1)
	assert.Equal(t, 0.25, audio[0].MaxFECOverhead, "the fec issue's audio case: at most 25 % redundancy")
}

// TestRunIsDeterministic runs a short lossy, jittery scenario twice.
func TestRunIsDeterministic(t *testing.T) {
	scs, err := Select("^netem-determinism$")
	require.NoError(t, err)
	sc := scs[0]
	sc.Media = 5 * time.Second
	a, err := Run(sc, 3)
	require.NoError(t, err)
	b, err := Run(sc, 3)
	require.NoError(t, err)
	for _, r := range []*Result{&a, &b} {
		r.SimSpeed, r.WallS = 0, 0
	}
	assert.Equal(t, a, b)
	c, err := Run(sc, 4)
	require.NoError(t, err)
	c.SimSpeed, c.WallS, c.Seed = 0, 0, a.Seed
	assert.NotEqual(t, a, c, "another seed, another run")

	assert.Equal(t, 400, a.FramesSent, "5 s of 50 audio and 30 video frames per second")
	assert.Zero(t, a.Corrupt)
	assert.Greater(t, a.LostPackets, int64(0))
	assert.InDelta(t, 0.05, float64(a.LostPackets)/float64(a.MediaPackets), 0.03)
	assert.Less(t, a.ResidualLoss, 0.2*float64(a.LostPackets)/float64(a.MediaPackets), "recovery repairs most losses")
	assert.Greater(t, a.OnTimeRatio, 0.97)
	assert.Len(t, a.FECOverhead1s, 5)
	require.NotNil(t, a.RTXPerLoss, "rtx_per_loss is defined when packets were lost")
	assert.Greater(t, *a.RTXPerLoss, 0.5, "losses are retransmitted")
	assert.Greater(t, a.Retransmissions, int64(0))
	assert.Zero(t, a.RTXSentTooLate, "no retransmission leaves that the ground truth says arrives late")
	assert.Nil(t, a.Controller, "a row without cc.GCC reports no controller")
}

// TestMaxFECOverheadCapsTheRun runs the fec issue's audio case under two
// caps: a scenario's max_fec_overhead must reach the sender, so repair
// packets stay within the cap of media packets while FEC still works.
func TestMaxFECOverheadCapsTheRun(t *testing.T) {
	scs, err := Select("^fec-audio-loss5$")
	require.NoError(t, err)
	for _, limit := range []float64{0.125, 0.25} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			sc := scs[0]
			sc.Media = 10 * time.Second
			sc.MaxFECOverhead = limit
			res, err := Run(sc, 1)
			require.NoError(t, err)
			require.Positive(t, res.MediaPackets)
			ratio := float64(res.FECPackets) / float64(res.MediaPackets)
			assert.LessOrEqual(t, ratio, limit, "repair packets per media packet")
			assert.Greater(t, ratio, limit/2, "at 5 %% loss and RTT 200 ms FEC carries the audio, near its cap")
			assert.Positive(t, res.RecoveredFEC)
		})
	}
}

// TestPlayoutQuantileReachesTheReceiver: a scenario's playout_quantile
// sets the share of frames the receiver aims to play on time (audio under
// 0-50 ms of jitter): the median leaves many late at a small added delay,
// the default (0.99) few, 0.999 as few or fewer at a larger delay.
func TestPlayoutQuantileReachesTheReceiver(t *testing.T) {
	sc := symmetric("quantile", ProfileRTC, 100*time.Millisecond, 0, time.Minute, Traffic{Audio: DefaultTraffic().Audio})
	sc.Forward.Jitter = 50 * time.Millisecond
	sc.Baselines = true
	var late, added [3]float64
	for i, q := range []float64{0.5, 0, 0.999} {
		sc.PlayoutQuantile = q
		res, err := Run(sc, 1)
		require.NoError(t, err)
		require.NotNil(t, res.Baselines)
		late[i], added[i] = res.Baselines.LateRatio, res.Baselines.AddedMS
	}
	assert.Greater(t, late[0], 0.05, "late %v", late)
	assert.Less(t, late[1], 0.03, "late %v", late)
	assert.LessOrEqual(t, late[2], late[1], "late %v", late)
	assert.Less(t, added[0], added[1], "added %v", added)
	assert.Less(t, added[1], added[2], "added %v", added)
}

// TestNoRetransmissionSentTooLate runs the first seconds of the arq rows,
// where a start-up key frame fills the bottleneck before the sender has
// measured the path, on several seeds: by the simulator's ground truth no
// retransmission leaves that arrives after its deadline.
func TestNoRetransmissionSentTooLate(t *testing.T) {
	scs, err := Select("^arq-")
	require.NoError(t, err)
	require.Len(t, scs, 4)
	for _, sc := range scs {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/%d", sc.Name, seed), func(t *testing.T) {
				sc.Media = 5 * time.Second
				res, err := Run(sc, seed)
				require.NoError(t, err)
				require.Positive(t, res.Retransmissions)
				assert.Zero(t, res.RTXSentTooLate)
			})
		}
	}
}

// TestDriftKnownWithinThirtySeconds: the jb-drift rows' forward path has
// 30 ms of jitter without reordering, whose per-second floor moves by
// milliseconds; the path back has none, and the pongs' arrival times
// (docs/PROTOCOL.md §8) give the drift from it. Seed 3 was 39 ppm off
// after 30 s from the forward path alone.
func TestDriftKnownWithinThirtySeconds(t *testing.T) {
	scs, err := Select("^jb-drift-(1000ppm|neg100ppm)$")
	require.NoError(t, err)
	require.Len(t, scs, 2)
	for _, sc := range scs {
		for _, seed := range []uint64{2, 3} {
			t.Run(fmt.Sprintf("%s/%d", sc.Name, seed), func(t *testing.T) {
				sc.Media = 31 * time.Second
				res, err := Run(sc, seed)
				require.NoError(t, err)
				assert.InDelta(t, sc.ReceiverClock.PPM, res.DriftPPM30s, 10)
			})
		}
	}
}

func TestWriteTable(t *testing.T) {
	var sb strings.Builder
	v := 12.5
	require.NoError(t, WriteTable(&sb, []Result{{Scenario: "x", FramesSent: 3, LatencyMS: Percentiles{P50: &v}}}))
	out := sb.String()
	assert.Contains(t, out, "scenario")
	assert.Contains(t, out, "12.5")
	assert.Contains(t, out, "inf")
}

// shortDeterminism is the netem-determinism row cut to a few seconds.
func shortDeterminism(t *testing.T) Scenario {
	t.Helper()
	scs, err := Select("^netem-determinism$")
	require.NoError(t, err)
	sc := scs[0]
	sc.Media = 3 * time.Second
	return sc
}

// TestRunPcap writes a row's captures and decodes them: one record per
// datagram each link delivered, in non-decreasing virtual time, each a valid
// Spillway packet; the same seed writes the same bytes.
func TestRunPcap(t *testing.T) {
	sc := shortDeterminism(t)
	dir := t.TempDir()
	res, r, err := runWith(sc, 3, RunOptions{PcapDir: dir})
	require.NoError(t, err)
	plain, err := Run(sc, 3)
	require.NoError(t, err)
	res.SimSpeed, res.WallS, plain.SimSpeed, plain.WallS = 0, 0, 0, 0
	assert.Equal(t, plain, res, "capturing changes nothing")

	for _, d := range []struct {
		file     string
		from, to netip.AddrPort
	}{
		{sc.Name + "-fwd.pcap", senderAddr, receiverAddr},
		{sc.Name + "-rev.pcap", receiverAddr, senderAddr},
	} {
		recs, err := pcap.ReadFile(filepath.Join(dir, d.file))
		require.NoError(t, err, d.file)
		st := r.sim.Link(d.from, d.to).Stats()
		require.NotZero(t, st.PacketsDelivered)
		assert.EqualValues(t, st.PacketsDelivered, len(recs), "%s: one record per delivered datagram", d.file)
		last := clock.Time(0)
		data := 0
		for i, rec := range recs {
			require.NoError(t, rec.Err, "%s record %d", d.file, i)
			assert.Equal(t, d.from, rec.Src)
			assert.Equal(t, d.to, rec.Dst)
			at := rec.Virtual()
			require.GreaterOrEqual(t, at, last, "%s record %d: virtual time never goes back", d.file, i)
			last = at
			if rec.Spillway.IsData() {
				data++
			}
		}
		assert.LessOrEqual(t, last, r.sim.Now(), "virtual, not wall-clock, times")
		if d.from == senderAddr {
			assert.Positive(t, data)
			assert.LessOrEqual(t, int64(data), res.MediaPackets+res.Retransmissions)
		}
	}

	again := t.TempDir()
	_, err = RunWith(sc, 3, RunOptions{PcapDir: again})
	require.NoError(t, err)
	for _, f := range []string{sc.Name + "-fwd.pcap", sc.Name + "-rev.pcap"} {
		a, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(again, f))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%s: the same seed writes the same capture", f)
	}

	_, err = RunWith(sc, 3, RunOptions{PcapDir: filepath.Join(dir, "missing")})
	assert.Error(t, err, "the directory must exist")
}

// TestCollapseKeepsThePacerQueueBounded runs the pacer issue's collapse in
// both profiles: the pacer queue is within its limit (150 ms RTC, 1 s Live)
// at every enqueue, the video source follows the targets down and back up,
// and the run is deterministic with the scripted target.
func TestCollapseKeepsThePacerQueueBounded(t *testing.T) {
	scs, err := Select("^collapse-av")
	require.NoError(t, err)
	require.Len(t, scs, 2)
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			limit := 150.0
			if sc.Profile == ProfileLive {
				limit = 1000
			}
			a, err := Run(sc, 1)
			require.NoError(t, err)
			b, err := Run(sc, 1)
			require.NoError(t, err)
			a.SimSpeed, a.WallS, b.SimSpeed, b.WallS = 0, 0, 0, 0
			assert.Equal(t, a, b)
			assert.Greater(t, a.PacerQueueMSMax, 0.0)
			assert.LessOrEqual(t, a.PacerQueueMSMax, limit)
			assert.Zero(t, a.Corrupt)
			// Video bytes per second: full rate before, a fraction during
			// the 0.5 Mbit/s collapse (15-25 s), full rate again after.
			before, during, after := sum(a.VideoDelivered1s[5:15]), sum(a.VideoDelivered1s[16:25]), sum(a.VideoDelivered1s[30:40])
			assert.Greater(t, before, int64(10*150_000), "about 1.5 Mbit/s before")
			assert.Less(t, during, int64(9*62_500), "under 0.5 Mbit/s during the collapse")
			assert.Greater(t, during, int64(9*20_000), "but not starved")
			assert.Greater(t, after, int64(10*150_000), "back up after")
			require.Len(t, a.WindowP95LatencyMS, len(a.VideoDelivered1s))
			assert.Nil(t, a.WindowP95LatencyMS[15], "the second after the drop is left out")
			assert.Greater(t, a.WindowP95LatencyMSMax, 0.0)
		})
	}
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// TestPlayoutMetricsSeeAStall: the 1 s stall of jb-drain-rtc freezes the
// video once or more, shows in the playout latency's maximum, and the
// drain leaves the latency falling over the run; nothing pauses.
func TestPlayoutMetricsSeeAStall(t *testing.T) {
	scs, err := Select("^jb-drain-rtc$")
	require.NoError(t, err)
	require.Len(t, scs, 1)
	res, err := Run(scs[0], 1)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.FreezeCount, int64(1))
	assert.Positive(t, res.TotalFreezesDurationS)
	assert.Zero(t, res.PauseCount)
	require.NotNil(t, res.PlayoutLatencyMS.Max)
	assert.GreaterOrEqual(t, *res.PlayoutLatencyMS.Max, 800.0, "frames held by the stall play late")
	require.NotNil(t, res.PlayoutLatencyMS.P50)
	assert.Less(t, *res.PlayoutLatencyMS.P50, 300.0)
	assert.Less(t, res.PlayedOnTimeRatio, 1.0)
	assert.Greater(t, res.PlayedOnTimeRatio, 0.95)
	assert.Positive(t, res.AVOffsetMSMax)
}

// TestAVOffsetPairsTheAudioPlaying: the A/V offset compares each video
// frame played at its playout time with the audio playing then: the last
// audio frame while it lasts (20 ms at 50 fps), else the next (audio
// silent through a step up of the offset); frames played late are left
// out.
func TestAVOffsetPairsTheAudioPlaying(t *testing.T) {
	type fr struct {
		at   time.Duration // capture
		lat  time.Duration // capture to release
		late bool
	}
	ms := time.Millisecond
	steady := func(lat time.Duration, from, to time.Duration, every time.Duration) []fr {
		var out []fr
		for at := from; at < to; at += every {
			out = append(out, fr{at: at, lat: lat})
		}
		return out
	}
	tests := []struct {
		name         string
		audio, video []fr
		want         float64
	}{
		{"in sync", steady(100*ms, 0, time.Second, 20*ms), steady(100*ms, 0, time.Second, 33*ms), 0},
		{"video 50 ms behind", steady(100*ms, 0, time.Second, 20*ms), steady(150*ms, 0, time.Second, 33*ms), 50},
		{
			// The offset steps from 100 to 180 ms at 500 ms: audio is
			// silent 80 ms; a video frame in that gap plays at the new
			// offset, as the audio to come does.
			"step up",
			append(steady(100*ms, 0, 500*ms, 20*ms), steady(180*ms, 500*ms, time.Second, 20*ms)...),
			append(steady(100*ms, 0, 440*ms, 40*ms), steady(180*ms, 440*ms, time.Second, 40*ms)...),
			0,
		},
		{
			"late burst left out",
			steady(100*ms, 0, time.Second, 20*ms),
			append(steady(100*ms, 0, 500*ms, 33*ms), fr{at: 500 * ms, lat: 900 * ms, late: true}),
			0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{sc: Scenario{Traffic: DefaultTraffic()}}
			add := func(id uint8, src Source, frames []fr) {
				st := &streamRec{source: src, id: id}
				for _, f := range frames {
					st.frames = append(st.frames, frameRec{submit: clock.Time(f.at), playout: clock.Time(f.at + f.lat),
						completed: clock.Time(f.at + f.lat), late: f.late})
				}
				r.streams[id] = st
			}
			add(0, SourceAudio, tt.audio)
			add(1, SourceVideo, tt.video)
			var res Result
			r.playoutMetrics(&res)
			assert.InDelta(t, tt.want, res.AVOffsetMSMax, 1e-6)
		})
	}
}

// TestMeanExcess: the mean excess over the frames released in a window of
// the media, nil when none was; rows under 10 min leave the fields out.
func TestMeanExcess(t *testing.T) {
	r := &run{sc: Scenario{Traffic: DefaultTraffic(), Media: 10 * time.Minute}, mediaStart: clock.Time(time.Second)}
	st := &streamRec{source: SourceAudio}
	for i, ex := range []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 10 * time.Millisecond} {
		at := r.mediaStart.Add(time.Duration(i) * 4 * time.Minute) // 0, 4, 8 min in
		st.frames = append(st.frames, frameRec{submit: at, completed: at, playout: at, excess: ex})
	}
	st.frames = append(st.frames, frameRec{submit: r.mediaStart, completed: clock.Never, playout: clock.Never, excess: time.Hour})
	r.streams[0] = st
	first, last := r.meanExcess(0, 5*time.Minute), r.meanExcess(5*time.Minute, 10*time.Minute)
	require.NotNil(t, first)
	require.NotNil(t, last)
	assert.InDelta(t, 3.0, *first, 1e-9, "frames at 0 and 4 min; the one never released left out")
	assert.InDelta(t, 10.0, *last, 1e-9)
	assert.Nil(t, r.meanExcess(10*time.Minute, 15*time.Minute))

	var res Result
	r.playoutMetrics(&res)
	require.NotNil(t, res.ExcessMSFirst5)
	assert.InDelta(t, 3.0, *res.ExcessMSFirst5, 1e-9)
	r.sc.Media = 2 * time.Minute
	res = Result{}
	r.playoutMetrics(&res)
	assert.Nil(t, res.ExcessMSFirst5)
	assert.Nil(t, res.ExcessMSLast5)
}

// TestAllowanceFadesAfterLossStops: fec-lossstop reports the recovery
// allowance when loss stops and 10 s later; it has faded (3 s time
// constant); rows where loss never stops leave both fields out.
func TestAllowanceFadesAfterLossStops(t *testing.T) {
	scs, err := Select("^(fec-lossstop|rtc-rtt100-loss5)$")
	require.NoError(t, err)
	require.Len(t, scs, 2)
	for _, sc := range scs {
		res, err := Run(sc, 1)
		require.NoError(t, err)
		if sc.LossStop == 0 {
			assert.Nil(t, res.AllowanceMSAtLossStop, sc.Name)
			assert.Nil(t, res.AllowanceMS10sAfterStop, sc.Name)
			continue
		}
		require.NotNil(t, res.AllowanceMSAtLossStop)
		require.NotNil(t, res.AllowanceMS10sAfterStop)
		assert.Positive(t, *res.AllowanceMSAtLossStop, "losses recurred until then")
		assert.Less(t, *res.AllowanceMS10sAfterStop, *res.AllowanceMSAtLossStop/10, "e^(-10/3) of it, or less")
		require.NotNil(t, res.AllowanceMSDuringLoss)
		require.NotNil(t, res.AllowanceMSDuringLoss.P50)
		assert.Positive(t, *res.AllowanceMSDuringLoss.P50)
		// Frames that lost a packet: some waited a retransmission round
		// trip (RTT 100 ms), none more than the 800 ms MaxPlayoutDelay.
		require.NotNil(t, res.RecoveryMS)
		require.NotNil(t, res.RecoveryMS.Max)
		assert.GreaterOrEqual(t, *res.RecoveryMS.Max, 100.0)
		assert.Less(t, *res.RecoveryMS.Max, 800.0)
	}
}

// A schedule step after loss stopped keeps it stopped: the step's config
// is the whole link's, the scenario's loss with it.
func TestLossStaysStoppedThroughSchedule(t *testing.T) {
	scs, err := Select("^rtc-rtt100-loss5$")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		stepAt time.Duration
	}{
		{"step before the stop", time.Second},
		{"step at the stop", 2 * time.Second},
		{"step after the stop", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := scs[0]
			require.Positive(t, sc.Forward.Loss)
			sc.Media, sc.LossStop = 4*time.Second, 2*time.Second
			fwd, rev := sc.Forward, sc.Reverse
			fwd.Rate, rev.Rate = 3_000_000, 3_000_000
			sc.Schedule = []LinkStep{{At: tc.stepAt, Forward: &fwd, Reverse: &rev}}
			require.NoError(t, sc.Validate())
			_, r, err := runWith(sc, 1, RunOptions{})
			require.NoError(t, err)
			for _, l := range []*netem.Link{r.sim.Link(senderAddr, receiverAddr), r.sim.Link(receiverAddr, senderAddr)} {
				cfg := l.Config()
				assert.Equal(t, int64(3_000_000), cfg.Rate, "the step applied")
				assert.Zero(t, cfg.Loss, "loss stays stopped")
			}
		})
	}
}

// A datagram the link duplicates arrives twice but was sent once: the
// lost count stays the link's, never negative.
func TestDuplicatesAreNotArrivals(t *testing.T) {
	scs, err := Select("^rtc-rtt100-loss5$")
	require.NoError(t, err)
	sc := scs[0]
	sc.Media = 5 * time.Second
	sc.Forward.Loss, sc.Forward.Duplicate = 0.02, 0.05
	res, r, err := runWith(sc, 1, RunOptions{})
	require.NoError(t, err)
	st := r.sim.Link(senderAddr, receiverAddr).Stats()
	require.Positive(t, st.PacketsDuplicated, "the link made copies")
	require.Positive(t, st.PacketsLost)
	assert.Positive(t, res.LostPackets)
	// The link's losses include the sender's few non-media datagrams.
	assert.LessOrEqual(t, uint64(res.LostPackets), st.PacketsLost)
	assert.Greater(t, uint64(res.LostPackets), st.PacketsLost*8/10)
	require.NotNil(t, res.RTXPerLoss)
}

// TestRecoveryTimes: the time loss added to the frames that lost an
// original and completed, and only those.
func TestRecoveryTimes(t *testing.T) {
	ms := func(v int) clock.Time { return clock.Time(time.Duration(v) * time.Millisecond) }
	r := &run{}
	r.streams[0] = &streamRec{frames: []frameRec{
		{expect: ms(100), completed: ms(220), origSent: 3, origArrive: 2},                // 120 ms
		{expect: ms(200), completed: ms(230), origSent: 4, origArrive: 3},                // 30 ms (FEC)
		{expect: ms(300), completed: ms(300), origSent: 3, origArrive: 3},                // nothing lost
		{expect: ms(400), completed: clock.Never, origSent: 3, origArrive: 1},            // never complete
		{expect: ms(500), completed: ms(900), origSent: 2, origArrive: 1, dropped: true}, // the sender dropped it
	}}
	p := r.recoveryTimes()
	require.NotNil(t, p)
	require.NotNil(t, p.P50)
	require.NotNil(t, p.Max)
	assert.InDelta(t, 30.0, *p.P50, 1e-9)
	assert.InDelta(t, 120.0, *p.Max, 1e-9)

	r.streams[0].frames = r.streams[0].frames[2:3]
	assert.Nil(t, r.recoveryTimes(), "no frame lost an original")
}

// A scenario file's name becomes file names (-pcap) and its media length
// sizes per-second records: both are bounded, with an error naming them.
func TestScenarioValidateBounds(t *testing.T) {
	base := Scenario{Name: "x", Profile: ProfileRTC, Media: time.Second, Target: TargetNominal, Traffic: DefaultTraffic()}
	require.NoError(t, base.Validate())
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"a path up", func(s *Scenario) { s.Name = "../escape" }, "slash"},
		{"a path down", func(s *Scenario) { s.Name = "a/b" }, "slash"},
		{"a backslash", func(s *Scenario) { s.Name = `a\b` }, "slash"},
		{"dot dot", func(s *Scenario) { s.Name = ".." }, "may not be"},
		{"a year of media", func(s *Scenario) { s.Media = 8760 * time.Hour }, "outside (0, 6h0m0s]"},
		{"a quantile a hair under 1", func(s *Scenario) { s.PlayoutQuantile = 0.9999999 }, "playout_quantile"},
		{"a negative loss", func(s *Scenario) { s.Loss = -3 }, "loss -3 outside [0, 1]"},
		{"a loss over 1", func(s *Scenario) { s.Loss = 7 }, "loss 7 outside [0, 1]"},
		{"a NaN loss", func(s *Scenario) { s.Loss = math.NaN() }, "outside [0, 1]"},
		{"a negative rtt", func(s *Scenario) { s.RTT = -100 * time.Millisecond }, "negative rtt"},
		{"audio frames of a gigabyte", func(s *Scenario) { s.Traffic.Audio.MaxSize = 1e9 }, "frame limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := base
			tc.edit(&sc)
			err := sc.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	sc := base
	sc.Media = MaxMedia
	assert.NoError(t, sc.Validate())
}

// A run stops when its Context ends, with the context's error.
func TestRunWithContext(t *testing.T) {
	scs, err := Select("^rtc-rtt40-loss0$")
	require.NoError(t, err)
	require.Len(t, scs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = RunWith(scs[0], 1, RunOptions{Context: ctx})
	assert.ErrorIs(t, err, context.Canceled)
	res, err := RunWith(scs[0], 1, RunOptions{Context: context.Background()})
	require.NoError(t, err)
	assert.Positive(t, res.FramesSent)
}

// The first second after a capacity drop is left out of the per-second
// p95 latencies by the frames' completion times, on the simulator's
// clock. In a row with Flows the schedule counts from the run's start
// while the windows count from the media's, a handshake later: the second
// left out was the window starting at the drop's time counted from the
// media's start, which kept the frames of the drop's first 0.25 s and
// dropped others a second after it.
func TestWindowsLeaveOutTheSecondAfterADrop(t *testing.T) {
	const mediaStart = clock.Time(250 * time.Millisecond)
	fwd := func(rate int64) *netem.LinkConfig { return &netem.LinkConfig{Rate: rate} }
	tests := []struct {
		name   string
		flows  bool
		origin clock.Time
		drop   clock.Time // on the simulator's clock
	}{
		{"schedule from the media's start", false, mediaStart, mediaStart + clock.Time(2*time.Second)},
		{"row clock (Flows)", true, 0, clock.Time(2 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Scenario{Media: 5 * time.Second, Forward: netem.LinkConfig{Rate: 4_000_000}, Traffic: Traffic{Video: VideoModel{FPS: 30}},
				Schedule: []LinkStep{{At: 2 * time.Second, Forward: fwd(500_000)}, {At: 4 * time.Second, Forward: fwd(4_000_000)}}}
			if tt.flows {
				sc.Flows = []FlowSpec{{}}
			}
			r := &run{sc: sc, latency: 300 * time.Millisecond, mediaStart: mediaStart, mediaEnd: mediaStart.Add(sc.Media),
				acct: &flowAcct{origin: tt.origin}}
			// A frame completing every 10 ms, 400 ms after capture; those
			// completing in the second after the drop take 900 ms.
			st := &streamRec{source: SourceVideo}
			for c := mediaStart; c < r.mediaEnd; c += clock.Time(10 * time.Millisecond) {
				lat := 400 * time.Millisecond
				if c >= tt.drop && c < tt.drop.Add(time.Second) {
					lat = 900 * time.Millisecond
				}
				st.frames = append(st.frames, frameRec{submit: c.Add(-lat), completed: c, size: 1000})
			}
			// Frames the sender dropped: one captured right after the drop
			// (counted), one right before it (not).
			st.frames = append(st.frames, frameRec{submit: tt.drop.Add(10 * time.Millisecond), completed: clock.Never, playout: clock.Never, dropped: true},
				frameRec{submit: tt.drop.Add(-10 * time.Millisecond), completed: clock.Never, playout: clock.Never, dropped: true})
			r.streams[0] = st
			var res Result
			r.windows(&res)
			assert.InDelta(t, 400, res.WindowP95LatencyMSMax, 1e-9, "the second after the drop is left out, no other")
			assert.InDelta(t, 1/30.0, r.droppedAfterDrops(), 1e-4, "the frame dropped after the drop counts, not the one before")
		})
	}
}

// TestAccumulateRowsStallTenTimes: the jb-accumulate rows hold the
// forward link ten times for 1 s, evenly spaced, outside the first and
// last 5 min (the jitterbuffer issue's "never accumulates" trace), each
// stall on the jitter its period draws and released to the same.
func TestAccumulateRowsStallTenTimes(t *testing.T) {
	scs, err := Select("^jb-accumulate")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(scs), 2, "RTC and Live at least")
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			var at []time.Duration
			for i, st := range sc.Schedule {
				if st.Forward == nil || st.Forward.HoldUntil == 0 {
					continue
				}
				at = append(at, st.At)
				assert.Equal(t, st.At+time.Second, st.Forward.HoldUntil, "a 1 s stall at %v", st.At)
				require.Less(t, i+1, len(sc.Schedule), "a stall is released")
				next := sc.Schedule[i+1]
				require.NotNil(t, next.Forward)
				assert.Equal(t, st.Forward.HoldUntil, next.At, "released when the hold ends")
				assert.Zero(t, next.Forward.HoldUntil)
				assert.Equal(t, st.Forward.Jitter, next.Forward.Jitter, "the period's jitter on both sides")
			}
			require.Len(t, at, 10)
			for i, a := range at {
				assert.GreaterOrEqual(t, a, 5*time.Minute)
				assert.LessOrEqual(t, a+time.Second, sc.Media-5*time.Minute)
				if i > 0 {
					assert.Equal(t, at[1]-at[0], a-at[i-1], "evenly spaced")
				}
			}
		})
	}
}
