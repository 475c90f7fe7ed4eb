package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/spillway-rt/spillway/internal/core"
)

// VideoModel is a synthetic video source: frames at FPS whose sizes average
// Bitrate, a key frame every KeyInterval (0: only the first and those asked
// for) that is KeyFactor times a delta frame, and delta sizes varying
// uniformly by +-Variation, or (Laplace) by a Laplacian deviation whose
// standard deviation is Variation.
type VideoModel struct {
	FPS         float64       `json:"fps"`
	Bitrate     int64         `json:"bitrate"`
	KeyInterval time.Duration `json:"key_interval"`
	KeyFactor   float64       `json:"key_factor"`
	Variation   float64       `json:"variation"`
	// StartBitrate is where a source that follows the target starts
	// (0: Bitrate).
	StartBitrate int64 `json:"start_bitrate,omitempty"`
	// Laplace draws the delta frames' deviation from a Laplace
	// distribution (RFC 8593's size noise) instead of a uniform one.
	Laplace bool `json:"laplace,omitempty"`
	// RateStep bounds how fast the source follows a new bitrate: at most
	// this fraction per 100 ms of media (RFC 8593's encoder lag: 0.1); 0
	// follows at once.
	RateStep float64 `json:"rate_step,omitempty"`
	// MinBitrate is the least rate the source goes down to, and its
	// stream's core.StreamConfig.MinBitrate: the sender's target never
	// says less, and while the path carries less the sender drops frames
	// (RFC 8867's source bounds: 150 kbit/s). 0: minVideoBitrate, and the
	// stream unbounded.
	MinBitrate int64 `json:"min_bitrate,omitempty"`
}

// RFC8867MinBitrate is RFC 8867's least media rate (SCENARIOS.md's source
// bounds, 150 kbit/s to R_max), RFC8593Video's MinBitrate.
const RFC8867MinBitrate = 150_000

// RFC8593Video is the cc issue's rate-adaptive source (RFC 8593's model as
// it words it): 30 fps, a key frame at the start and on request only, 8 x a
// delta, Laplacian size noise of 0.15, the rate following the target by at
// most 10 % per 100 ms, from start up to rmax bit/s, never under
// RFC8867MinBitrate.
func RFC8593Video(start, rmax int64) VideoModel {
	return VideoModel{FPS: 30, Bitrate: rmax, StartBitrate: start, KeyFactor: 8, Variation: 0.15, Laplace: true, RateStep: 0.1,
		MinBitrate: RFC8867MinBitrate}
}

// AudioModel is a synthetic audio source: FPS frames per second of sizes
// uniform in [MinSize, MaxSize].
type AudioModel struct {
	FPS     float64 `json:"fps"`
	MinSize int     `json:"min_size"`
	MaxSize int     `json:"max_size"`
}

// Traffic is what a scenario's sender offers. A zero FPS turns a source off.
type Traffic struct {
	Video VideoModel `json:"video"`
	Audio AudioModel `json:"audio"`
}

// DefaultTraffic is the foundation issue's stream pair: 30 fps video at
// 1.5 Mbit/s with a key frame every 2 s about 8 x a delta frame, and audio at
// 50 frames/s of 80-160 bytes.
func DefaultTraffic() Traffic {
	return Traffic{
		Video: VideoModel{FPS: 30, Bitrate: 1_500_000, KeyInterval: 2 * time.Second, KeyFactor: 8, Variation: 0.1},
		Audio: AudioModel{FPS: 50, MinSize: 80, MaxSize: 160},
	}
}

// Validate reports the first bad field.
func (t Traffic) Validate() error {
	v, a := t.Video, t.Audio
	switch {
	case v.FPS < 0 || v.FPS > 1000:
		return fmt.Errorf("traffic: video fps %v outside 0-1000", v.FPS)
	case v.FPS > 0 && v.Bitrate <= 0:
		return fmt.Errorf("traffic: video bitrate %d must be positive", v.Bitrate)
	case v.FPS > 0 && v.KeyInterval != 0 && v.KeyInterval < time.Duration(float64(time.Second)/v.FPS):
		return fmt.Errorf("traffic: video key interval %v shorter than a frame", v.KeyInterval)
	case v.KeyInterval < 0:
		return fmt.Errorf("traffic: video key interval %v negative", v.KeyInterval)
	case v.RateStep < 0 || v.RateStep > 1:
		return fmt.Errorf("traffic: video rate step %v outside [0, 1]", v.RateStep)
	case v.FPS > 0 && v.KeyFactor < 1:
		return fmt.Errorf("traffic: video key factor %v below 1", v.KeyFactor)
	case v.StartBitrate < 0 || (v.FPS > 0 && v.StartBitrate > v.Bitrate):
		return fmt.Errorf("traffic: video start bitrate %d outside 0-%d", v.StartBitrate, v.Bitrate)
	case v.MinBitrate < 0 || (v.FPS > 0 && v.MinBitrate > v.Bitrate):
		return fmt.Errorf("traffic: video min bitrate %d outside 0-%d", v.MinBitrate, v.Bitrate)
	case v.StartBitrate > 0 && v.StartBitrate < v.MinBitrate:
		return fmt.Errorf("traffic: video start bitrate %d under its min bitrate %d", v.StartBitrate, v.MinBitrate)
	case v.Variation < 0 || v.Variation >= 1:
		return fmt.Errorf("traffic: video variation %v outside [0, 1)", v.Variation)
	case a.FPS < 0 || a.FPS > 1000:
		return fmt.Errorf("traffic: audio fps %v outside 0-1000", a.FPS)
	case a.FPS > 0 && (a.MinSize < 1 || a.MaxSize < a.MinSize):
		return fmt.Errorf("traffic: audio sizes %d-%d invalid", a.MinSize, a.MaxSize)
	case v.FPS == 0 && a.FPS == 0:
		return fmt.Errorf("traffic: no source")
	case a.FPS > 0 && a.MaxSize > core.DefaultMaxFrameSize:
		return fmt.Errorf("traffic: audio frames up to %d bytes exceed the transport's %d-byte frame limit", a.MaxSize, core.DefaultMaxFrameSize)
	}
	return v.checkFrameSize(v.Bitrate)
}

// checkFrameSize reports a video source whose frames at bps could exceed
// the transport's frame limit (frameBound).
func (v VideoModel) checkFrameSize(bps int64) error {
	if v.FPS == 0 {
		return nil
	}
	if b := v.frameBound(bps); b > core.DefaultMaxFrameSize {
		return fmt.Errorf("traffic: video frames of up to %.0f bytes at %d bit/s exceed the transport's %d-byte frame limit",
			b, bps, core.DefaultMaxFrameSize)
	}
	return nil
}

// maxFrameSize bounds the frames the traffic makes, twice the largest any
// can be: a key frame is at most KeyFactor x the mean frame (less with a
// key interval, the deltas shrinking to make room for it), a delta at most
// 5 x its mean (laplace) or 1 + Variation x.
func (t Traffic) maxFrameSize() int {
	n := 1
	if v := t.Video; v.FPS > 0 {
		n = int(v.frameBound(v.Bitrate)*2) + 1
	}
	// Validate keeps the frames within the transport's limit; the bound's
	// margin must not make a buffer larger than a frame can be.
	return min(max(n, t.Audio.MaxSize), core.DefaultMaxFrameSize)
}

// frameBound is the largest frame the video source makes at bps.
func (v VideoModel) frameBound(bps int64) float64 {
	return float64(bps) / 8 / v.FPS * max(v.KeyFactor, 5)
}

// Source says which source a Frame came from.
type Source uint8

// Sources.
const (
	SourceAudio Source = iota
	SourceVideo
)

func (s Source) String() string {
	if s == SourceAudio {
		return "audio"
	}
	return "video"
}

// Frame is one frame the generator offers: At is its capture time from the
// start of media.
type Frame struct {
	Source Source
	Seq    int64 // per source, from 0
	At     time.Duration
	Size   int
	Key    bool
}

// Generator yields a Traffic's frames in capture-time order,
// deterministically for a seed. Like an encoder, it makes a key frame when
// asked (RequestKey) and follows a bitrate it is given (SetVideoBitrate).
type Generator struct {
	t         Traffic
	rng       *rand.Rand
	videoSeq  int64
	audioSeq  int64
	deltaSize float64
	gopFrames int64   // 0: no periodic key frames
	rate      float64 // the bitrate the frames follow now
	goal      float64 // the bitrate asked for (SetVideoBitrate), clamped
	asked     int64   // the bitrate asked for
	sinceKey  int64   // video frames since the last key frame; -1 before the first
	keyAsked  bool
	video     bool
	audio     bool
	keysAsked int64
}

// NewGenerator returns a generator; t must be valid.
func NewGenerator(t Traffic, seed uint64) *Generator {
	g := &Generator{t: t, rng: rand.New(rand.NewPCG(seed, 0x7261666669630a))}
	g.sinceKey = -1
	if v := t.Video; v.FPS > 0 {
		g.video = true
		if v.KeyInterval > 0 {
			g.gopFrames = max(1, int64(math.Round(v.KeyInterval.Seconds()*v.FPS)))
		}
		start := v.Bitrate
		if v.StartBitrate > 0 {
			start = v.StartBitrate
		}
		g.SetVideoBitrate(start)
		g.rate = g.goal
		g.sizeFor(g.rate)
	}
	g.audio = t.Audio.FPS > 0
	return g
}

// SetVideoBitrate makes the video frames from now on average bps (with
// the model's key-frame pattern), clamped to the model's Bitrate at most
// and its MinBitrate (or minVideoBitrate) at least; with a RateStep, the
// frames move towards it by at most that fraction per 100 ms.
func (g *Generator) SetVideoBitrate(bps int64) {
	v := g.t.Video
	g.asked = bps
	g.goal = float64(min(max(bps, v.floor()), v.Bitrate))
	if v.RateStep == 0 {
		g.rate = g.goal
		g.sizeFor(g.rate)
	}
}

// SetMaxBitrate changes the model's Bitrate, the most the source offers
// (an application asking for more or less, Scenario.SourceSteps); the
// bitrate last asked for is clamped to it again.
func (g *Generator) SetMaxBitrate(bps int64) {
	g.t.Video.Bitrate = max(bps, g.t.Video.floor())
	g.SetVideoBitrate(g.asked)
}

// floor is the least rate the source goes down to.
func (v VideoModel) floor() int64 { return max(v.MinBitrate, minVideoBitrate) }

// VideoBitrate returns the bitrate the video frames follow now.
func (g *Generator) VideoBitrate() int64 { return int64(math.Round(g.rate)) }

// sizeFor sets the delta frame size that makes the frames average bps.
func (g *Generator) sizeFor(bps float64) {
	v := g.t.Video
	if g.gopFrames == 0 {
		g.deltaSize = bps / 8 / v.FPS
		return
	}
	gopBytes := bps / 8 * float64(g.gopFrames) / v.FPS
	g.deltaSize = gopBytes / (float64(g.gopFrames-1) + v.KeyFactor)
}

// step moves the rate towards the goal by at most RateStep per 100 ms for
// one frame interval.
func (g *Generator) step() {
	v := g.t.Video
	if v.RateStep == 0 || g.rate == g.goal {
		return
	}
	f := math.Pow(1+v.RateStep, 10/v.FPS) // one frame's share of 100 ms
	if g.goal > g.rate {
		g.rate = min(g.goal, g.rate*f)
	} else {
		g.rate = max(g.goal, g.rate/f)
	}
	g.sizeFor(g.rate)
}

// minVideoBitrate is the least rate the synthetic encoder goes down to.
const minVideoBitrate = 50_000

// RequestKey makes the next video frame a key frame; the key-frame
// interval restarts from it.
func (g *Generator) RequestKey() {
	if !g.keyAsked {
		g.keysAsked++
	}
	g.keyAsked = true
}

// Capture times are computed from the frame number, not accumulated, so
// they do not drift (30 fps is not a whole number of nanoseconds).
func (g *Generator) videoAt() time.Duration {
	return time.Duration(math.Round(float64(g.videoSeq) * float64(time.Second) / g.t.Video.FPS))
}

func (g *Generator) audioAt() time.Duration {
	return time.Duration(math.Round(float64(g.audioSeq) * float64(time.Second) / g.t.Audio.FPS))
}

// Peek returns the capture time of the next frame.
func (g *Generator) Peek() time.Duration {
	switch {
	case !g.video:
		return g.audioAt()
	case !g.audio:
		return g.videoAt()
	}
	return min(g.videoAt(), g.audioAt())
}

// Next returns the next frame; audio goes first when both fall at once.
func (g *Generator) Next() Frame {
	if g.audio && (!g.video || g.audioAt() <= g.videoAt()) {
		a := g.t.Audio
		f := Frame{Source: SourceAudio, Seq: g.audioSeq, At: g.audioAt(), Key: true,
			Size: a.MinSize + g.rng.IntN(a.MaxSize-a.MinSize+1)}
		g.audioSeq++
		return f
	}
	v := g.t.Video
	g.step()
	f := Frame{Source: SourceVideo, Seq: g.videoSeq, At: g.videoAt()}
	if g.sinceKey < 0 || (g.gopFrames > 0 && g.sinceKey >= g.gopFrames) || g.keyAsked {
		g.sinceKey = 0
		g.keyAsked = false
		f.Key = true
		f.Size = int(math.Round(g.deltaSize * v.KeyFactor))
	} else if v.Laplace {
		f.Size = int(math.Round(g.deltaSize * (1 + laplace(g.rng, v.Variation))))
	} else {
		f.Size = int(math.Round(g.deltaSize * (1 + v.Variation*(2*g.rng.Float64()-1))))
	}
	f.Size = max(f.Size, 1)
	g.videoSeq++
	g.sinceKey++
	return f
}

// laplace draws a Laplace deviation of standard deviation sd, kept within
// [-0.9, 4] so a frame never vanishes or dwarfs a key frame.
func laplace(rng *rand.Rand, sd float64) float64 {
	b := sd / math.Sqrt2 // a Laplace(0, b) has standard deviation b√2
	u := rng.Float64() - 0.5
	x := -b * math.Copysign(math.Log1p(-2*math.Abs(u)), u)
	return min(max(x, -0.9), 4)
}
