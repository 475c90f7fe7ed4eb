package jitterbuffer

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Errors Push returns; the caller still owns the frame's data.
var (
	// ErrLate: a frame at or before one already released arrived; releasing
	// it would break order.
	ErrLate = errors.New("jitterbuffer: frame arrived after a later frame was released")
	// ErrFull: the buffer holds its maximum number of frames.
	ErrFull = errors.New("jitterbuffer: full")
	// ErrDuplicate: the buffer already holds a frame with this id, or (in
	// PassThrough, which releases out of order) released it lately.
	ErrDuplicate = errors.New("jitterbuffer: duplicate frame")
)

// Mode says how a buffer times its releases.
type Mode uint8

const (
	// Adaptive (the default): playout = capture + the group's playout
	// offset, which follows a high quantile of the frames' transit above
	// the least, plus the recovery allowance, moving toward it at
	// DrainRate either way, and rising at once to a frame played late.
	Adaptive Mode = iota
	// Fixed: playout = capture + Delay, always (version 1's buffer and the
	// bench's fixed baseline).
	Fixed
	// PassThrough: every frame is released as soon as it is complete, in
	// the order frames complete (relays, applications with their own
	// player).
	PassThrough
)

func (m Mode) String() string {
	switch m {
	case Adaptive:
		return "adaptive"
	case Fixed:
		return "fixed"
	case PassThrough:
		return "pass-through"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Frame is a complete frame waiting for its playout time. Data is owned by
// whoever pushed it; the buffer only holds the slice.
type Frame struct {
	ID        int64
	Capture   clock.Time // capture time on the receiver's clock
	Completed clock.Time // when its last fragment arrived
	// FirstArrival is when its first packet arrived, where
	// JitterBufferDelay starts (W3C: from the first packet received); 0
	// (or later than Completed): from Completed.
	FirstArrival clock.Time
	// Transit is Completed minus the frame's capture timestamp read on the
	// sender's clock: the two clocks' offset is unknown and may drift, so
	// only differences between frames mean anything. Adaptive buffers
	// schedule by it.
	Transit   time.Duration
	Key       bool
	Droppable bool // no later frame references it
	Recovered bool // some of it came by retransmission or FEC

	// Set on release.
	// LostBefore counts the ids skipped since the previous release. A
	// PassThrough buffer releases in completion order, so one of them may
	// still come: it is then released Reordered, and taken back from
	// Stats.FramesSkipped (within reorderMemory ids).
	LostBefore int64
	Reordered  bool       // PassThrough: an id an earlier LostBefore counted
	Playout    clock.Time // the playout time it was released for
	Late       bool       // completed after its playout time
	// Undecodable: a video frame that references a frame never released
	// (since the last key frame); NeedKey marks the first such frame of a
	// break, when a key frame should be asked for.
	Undecodable bool
	NeedKey     bool
	// Dropped: released only to be dropped, not played (Config.CatchUp
	// skipped it after a freeze).
	Dropped bool

	Data []byte
}

// Defaults of Config's zero fields.
const (
	DefaultMaxFrames = 512 // 10 s of 50 fps audio, beyond any playout delay a profile allows
	DefaultQuantile  = 0.99
	// MaxQuantile is the highest Quantile a buffer takes: one frame in
	// 100000 late. Closer to 1 the share above it falls below what the
	// quantiles' weights resolve, and the target sits at the top of their
	// range (4 s) whatever the jitter.
	MaxQuantile           = 0.99999
	DefaultWindow         = 2 * time.Second
	DefaultRecoveryWindow = 10 * time.Second
	DefaultDrainRate      = 0.10
	DefaultInitialDelay   = 60 * time.Millisecond
	DefaultMaxDelay       = 10 * time.Second
	// MaxDelayLimit bounds MinDelay and MaxDelay: an hour of playout delay
	// is far beyond any live use, and times stay clear of int64's range.
	MaxDelayLimit = time.Hour
	// DefaultRecoveryDecay is the time constant over which the recovery
	// allowance fades once losses stop: e^(-10/3) leaves 4 % after 10 s.
	DefaultRecoveryDecay = 3 * time.Second
	pauseThreshold       = 5 * time.Second
	stallGap             = 500 * time.Millisecond
	// memberIdle: a group member with no frame completed for this long no
	// longer holds the group's offset (a stream that ended, or paused).
	memberIdle     = 5 * time.Second
	stallIntervals = 4
	maxMeanGap     = 2 * time.Second
	meanGapWeight  = 8
	maxWindow      = time.Hour       // the longest default memory a Quantile derives
	maxSpan        = 4 * time.Second // the quantiles' histogram range
	jitterHorizon  = 2               // Horizon's default above DefaultQuantile, in Windows
	freezeWindow   = 30
	minSamples     = 25
	minRecovered   = 5 // repaired frames' weight (about a count over RecoveryWindow) that makes their quantile count
	// keyMemory is how many of a video stream's last key frames the target
	// covers: key frames are a few per GOP at most, too rare for a
	// quantile over seconds to keep (one every 4 s is 0.8 % of 30 fps),
	// and each one late freezes the video.
	keyMemory = 3
	// keyPeriodSlack: key frames are periodic (Config.KeyAllowanceAlways)
	// when the last two intervals between them differ by at most
	// 1/keyPeriodSlack of the latest.
	keyPeriodSlack = 16
	// keyLead: the offset starts to rise for a periodic key frame this
	// much earlier than the drain rate needs, besides the tolerance on
	// when it comes (keyNeed).
	keyLead = 100 * time.Millisecond
	// keyShapeAllowance: under this recovery allowance, losses are rare
	// enough for the key frames' allowance to be shaped (keyShaped).
	keyShapeAllowance = 10 * time.Millisecond
	// reorderMemory is how far behind the next id a PassThrough buffer
	// remembers the ids it counted skipped (Frame.Reordered).
	reorderMemory = 256
	// noSkip is skipTo when not catching up: no id is below it.
	noSkip = math.MinInt64
)

// Config configures a Buffer.
type Config struct {
	Mode Mode
	// Delay is Fixed's playout delay: playout = capture + Delay.
	Delay time.Duration
	// MinDelay and MaxDelay bound an Adaptive buffer's playout offset
	// (capture to playout), at most MaxDelayLimit. Zero MaxDelay:
	// DefaultMaxDelay.
	MinDelay, MaxDelay time.Duration
	// Quantile of the frames' transit above the least that the target
	// covers, in (0, MaxQuantile]. Default 0.99: about 1 % of frames late while the
	// jitter holds still.
	Quantile float64
	// Window is the time constant of the jitter quantile's memory (frames
	// that needed no repair). Default 2 s x sqrt(0.01 / (1 - Quantile)):
	// 2 s at 0.99, jitter that eases forgotten within seconds; 6.3 s at
	// 0.999. A higher quantile needs a longer memory (more samples above
	// it) to keep its late share, and a longer one forgets eased jitter
	// later. On the bench's jb-accumulate trace (audio, jitter redrawn
	// every 30 s), 0.999 with 6.3 s left 0.10 % late at 68 ms of mean
	// added delay without a Horizon (0.15 % at 58 ms with its default);
	// with 20 s (0.01/(1 - Quantile) times 2 s), 0.08 % at 80 ms. A
	// smoothness-first profile may want the longer.
	Window time.Duration
	// Horizon is the age at which a frame's transit leaves the jitter
	// quantile altogether. Exponential forgetting alone keeps a share
	// e^(-age/Window) of an eased jitter's samples, and the quantile waits
	// until that share falls under 1 - Quantile: Window ln(1/(1-Quantile)),
	// 9.2 s at the defaults but 43 s at 0.999 (6.3 s), longer than a
	// jitter that eases every 30 s lasts. Default: 2 x Window for a
	// Quantile above 0.99, none (the exponential memory alone) at or
	// under. On the bench's jb-accumulate trace (audio, 0.999), 12.6 s
	// took the mean added delay from 68 to 58 ms, late frames from 0.10
	// to 0.15 %.
	Horizon time.Duration
	// RecoveryWindow is that of the repaired frames' quantile, which only
	// counts while such frames keep coming. Default 10 s x 0.01 / (1 -
	// Quantile).
	RecoveryWindow time.Duration
	// DrainRate is how fast excess delay drains, as a fraction of real
	// time (0.10: 100 ms per second, playout 10 % faster). Default 0.10;
	// RTC uses 0.10, Live 0.03.
	DrainRate float64
	// InitialDelay is the target above the least transit until 25 frames
	// have been seen. Default 60 ms.
	InitialDelay time.Duration
	// MaxFrames bounds the frames held. Default DefaultMaxFrames.
	MaxFrames int
	// Video turns on decodability tracking (a key frame first, then
	// references) and the W3C freeze and pause counts.
	Video bool
	// CatchUp (Adaptive video buffers; an RTC option) skips, after a
	// freeze, to the newest decodable frame instead of playing the
	// backlog late: when the next frame is due and completed after its
	// playout time, the frames before the newest key frame held whose
	// playout time has come too, or a droppable frame, are released
	// Dropped at once (not to be played);
	// late frames play at once and do not lift the offset. Off: every
	// frame plays, late ones lift the offset, and the excess drains at
	// DrainRate.
	CatchUp bool
	// KeyAllowanceAlways (Adaptive video buffers) keeps the last key
	// frames' delay in the target at all times, and the key frames in the
	// jitter quantile. Off (the default), while losses do not recur (a
	// recovery allowance under 10 ms, NoteRecovery), the key frames and
	// the frames captured after one but before it completed (less the
	// least transit: sent behind it) count in the key frames' allowance
	// alone, not in the jitter quantile; and when key frames come
	// periodically (the last three evenly spaced, as a fixed GOP sends
	// them) the target holds that allowance only around the next one: the
	// offset rises at the group's drain rate to meet it, and once it and
	// the frames behind it have played drains back to what the other
	// frames need. A key frame takes several times a delta's time to cross
	// the path, so a constant allowance for it delays every frame; this
	// one delays those near it. Key frames that do not keep the period
	// (sent on request, or two in a row missing) are covered at all times.
	// While losses recur the buffer works as with this set: a frame sent
	// behind a key frame then needs its repair on top of its wait.
	KeyAllowanceAlways bool
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Mode > PassThrough:
		return fmt.Errorf("jitterbuffer: Mode %d unknown", c.Mode)
	case c.Delay < 0:
		return fmt.Errorf("jitterbuffer: Delay %v is negative", c.Delay)
	case c.MinDelay < 0 || c.MaxDelay < 0 || (c.MaxDelay != 0 && c.MaxDelay < c.MinDelay):
		return fmt.Errorf("jitterbuffer: MinDelay %v / MaxDelay %v invalid", c.MinDelay, c.MaxDelay)
	case c.MinDelay > MaxDelayLimit || c.MaxDelay > MaxDelayLimit:
		return fmt.Errorf("jitterbuffer: MinDelay %v / MaxDelay %v over MaxDelayLimit %v", c.MinDelay, c.MaxDelay, MaxDelayLimit)
	case c.Quantile != 0 && !(c.Quantile > 0 && c.Quantile <= MaxQuantile):
		return fmt.Errorf("jitterbuffer: Quantile %v outside (0, %v]", c.Quantile, MaxQuantile)
	case c.Window < 0 || c.RecoveryWindow < 0 || c.InitialDelay < 0 || c.MaxFrames < 0 || c.Horizon < 0:
		return fmt.Errorf("jitterbuffer: negative Window, Horizon, RecoveryWindow, InitialDelay or MaxFrames")
	case !(c.DrainRate >= 0 && c.DrainRate < 1):
		return fmt.Errorf("jitterbuffer: DrainRate %v outside [0, 1)", c.DrainRate)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxFrames <= 0 {
		c.MaxFrames = DefaultMaxFrames
	}
	if c.Quantile == 0 {
		c.Quantile = DefaultQuantile
	}
	// A higher quantile looks further back: the jitter's memory by the
	// square root of the ratio of the shares above (Window's comment), the
	// repaired frames' (rarer samples) by the ratio.
	// (At most maxWindow: a Quantile a hair under 1 would otherwise
	// overflow a Duration.)
	scale := (1 - DefaultQuantile) / (1 - c.Quantile)
	if c.Window == 0 {
		c.Window = time.Duration(min(float64(DefaultWindow)*math.Sqrt(scale), float64(maxWindow)))
	}
	if c.RecoveryWindow == 0 {
		c.RecoveryWindow = time.Duration(min(float64(DefaultRecoveryWindow)*scale, float64(maxWindow)))
	}
	if c.Horizon == 0 && c.Quantile > DefaultQuantile {
		c.Horizon = time.Duration(min(jitterHorizon*float64(c.Window), float64(maxWindow)))
	}
	if c.DrainRate == 0 {
		c.DrainRate = DefaultDrainRate
	}
	if c.InitialDelay == 0 {
		c.InitialDelay = DefaultInitialDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = max(DefaultMaxDelay, c.MinDelay)
	}
	return c
}

// Stats counts what a buffer did. The W3C names (webrtc-stats
// RTCInboundRtpStreamStats) are given where a field is one; durations sum
// over emitted frames.
type Stats struct {
	FramesReleased     int64 // jitterBufferEmittedCount
	FramesSkipped      int64 // ids never pushed before a later frame's release
	FramesLate         int64 // pushes refused with ErrLate
	FramesReleasedLate int64 // released after their playout time (completed too late)
	// FramesReleasedEarly: released before their playout time (Flush, as
	// a stream ends).
	FramesReleasedEarly int64
	FramesUndecodable   int64 // video frames released with a broken reference
	FramesAfterStall    int64 // frames that arrived in a burst after a stall, left out of the target
	// FramesDropped is W3C's framesDropped: frames that came and missed
	// their display, released Dropped by catch-up (Config.CatchUp) or
	// refused as too late to play in order (FramesLate).
	FramesDropped int64

	JitterBufferDelay        time.Duration // jitterBufferDelay: first packet (Frame.FirstArrival) to release
	JitterBufferTargetDelay  time.Duration // jitterBufferTargetDelay: the target (with the bounds) at each release
	JitterBufferMinimumDelay time.Duration // jitterBufferMinimumDelay: the target the network needs, bounds aside

	// Audio (not Video) underruns: concealmentEvents, each time playout
	// had nothing to play after playing (a frame missing, or completing
	// after its playout time), and the time concealed (W3C counts
	// concealedSamples; this is their duration).
	ConcealmentEvents int64
	ConcealedDuration time.Duration

	FreezeCount                 int64         // freezeCount (Video)
	TotalFreezesDuration        time.Duration // totalFreezesDuration
	PauseCount                  int64         // pauseCount
	TotalPausesDuration         time.Duration // totalPausesDuration
	TotalInterFrameDelay        time.Duration // totalInterFrameDelay
	TotalSquaredInterFrameDelay float64       // totalSquaredInterFrameDelay, s²

	// Now, not sums.
	Target time.Duration // delay above the least transit the buffer aims for
	Excess time.Duration // playout offset above the one wanted, draining
	// Allowance is the recovery allowance in the target now (NoteRecovery),
	// fading once losses stop.
	Allowance time.Duration
	Offset    time.Duration // capture to playout of the last frame released
	DriftPPM  float64       // receiver clock rate minus sender's, ppm
	Rate      float64       // playout speed: 1, or 1 + DrainRate while draining
}

// Buffer is a playout buffer for one stream.
type Buffer struct {
	cfg    Config
	g      *Group
	frames []Frame // sorted by ID (completion order in PassThrough); capacity MaxFrames, never grown
	next   int64   // lowest id still releasable, once nextSet
	// nextSet: a frame was released (or Expect called); until then any id
	// is releasable. (Any int64 is an id: no value of next can mean "none".)
	nextSet bool
	stats   Stats

	// Adaptive state.
	jit, rec quantile                 // transit above the floor: frames that needed no repair; repaired frames
	keys     [keyMemory]time.Duration // Video: the last key frames' transit above the floor
	nKeys    int
	// Video: the capture times (transit space: Completed - Transit) of
	// the last key frames, whether or not they taught the target, and
	// their count; keyOpen: the last one completed (or was refused late),
	// and it or the frames behind it are not all released yet; keyTrain:
	// frames captured after the last one and before this are behind it.
	keyTs    [keyMemory]clock.Time
	nKeyTs   int
	keyOpen  bool
	keyTrain clock.Time
	// keyClosed: when the last key frame and the frames behind it had
	// been released (keyClosedSet: they were).
	keyClosed    clock.Time
	keyClosedSet bool
	// lastTs is the transit-space capture of the last frame released
	// (lastTsSet: one was).
	lastTs    clock.Time
	lastTsSet bool
	floor     floor
	target    time.Duration
	want      time.Duration // raw-space offset this stream needs: floor + target
	// mapK is Capture minus the transit-space capture (Completed -
	// Transit) of the last frame released: a raw-space offset off plays
	// at capture + off - mapK, before the bounds.
	mapK        time.Duration
	mapSet      bool
	wantSet     bool
	allowance   time.Duration // recovery allowance at allowanceAt
	allowanceAt clock.Time

	// Release statistics.
	lastRelease   clock.Time
	released      bool
	intervals     [freezeWindow]time.Duration
	nIntervals    int
	ringAt        int        // where intervals' next entry goes
	lastCapture   clock.Time // audio: the capture of the last frame released (if released)
	sumInterval   time.Duration
	seen          bool
	lastCompleted clock.Time
	meanGap       time.Duration // the mean time between completions (each gap at most maxMeanGap)
	inStall       bool
	broken        bool                  // Video: references lost since the last key frame
	skipTo        int64                 // CatchUp: frames below this id are released Dropped; noSkip none
	gone          [GoneMemory]goneFrame // frames that will not come (NoteGone)
	nGone         int
	skipped       idWindow // PassThrough: the ids below next counted skipped
	keyAsked      bool
}

// New returns a buffer in a group of its own. It allocates its storage
// once. New panics on a config Validate refuses (a programming error).
func New(cfg Config) *Buffer {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	b := &Buffer{cfg: cfg, frames: make([]Frame, 0, cfg.MaxFrames), broken: cfg.Video, skipTo: noSkip}
	if cfg.Mode == Adaptive {
		// Transit above the floor beyond the offset's bound plays late
		// whatever the target: the histogram need not tell such values
		// apart (and a shorter one rescales faster).
		span := min(cfg.MaxDelay, maxSpan-time.Second) + time.Second
		b.jit = newQuantile(cfg.Quantile, cfg.Window, span, cfg.Horizon)
		b.rec = newQuantile(cfg.Quantile, cfg.RecoveryWindow, span, 0)
		b.floor = newFloor()
	}
	b.g = NewGroup(cfg.DrainRate)
	b.g.members = append(b.g.members, b)
	return b
}

// Config returns the buffer's configuration, defaults filled in.
func (b *Buffer) Config() Config { return b.cfg }

// Group returns the group whose playout offset the buffer follows.
func (b *Buffer) Group() *Group { return b.g }

// Delay returns the current playout offset (capture to playout) of the
// last frame released, or Fixed's Delay.
func (b *Buffer) Delay() time.Duration {
	if b.cfg.Mode == Fixed {
		return b.cfg.Delay
	}
	return b.stats.Offset
}

// SetVideo turns decodability tracking and the freeze counts on or off
// (a stream's kind may be learnt after its first frames arrive). A video
// stream that has released nothing yet waits for a key frame.
func (b *Buffer) SetVideo(v bool) {
	if v && !b.cfg.Video {
		// Frames released meanwhile were not rendered as video: the next
		// interval starts at the next one.
		b.released = false
	}
	b.cfg.Video = v
	if b.stats.FramesReleased == 0 {
		b.broken = v
	}
}

// Head returns the capture time of the next frame to release; ok is false
// when the buffer is empty.
func (b *Buffer) Head() (capture clock.Time, ok bool) {
	if len(b.frames) == 0 {
		return 0, false
	}
	return b.frames[0].Capture, true
}

// Len returns the number of frames held.
func (b *Buffer) Len() int { return len(b.frames) }

// NoteRecovery tells the buffer that a loss was detected at now whose
// repair takes about d (a retransmission round trip, or the FEC block's
// span): the target keeps d above the jitter quantile while losses recur,
// and the allowance fades over DefaultRecoveryDecay once they stop.
func (b *Buffer) NoteRecovery(now clock.Time, d time.Duration) {
	b.allowance, b.allowanceAt = max(b.allowanceNow(now), d), now
}

func (b *Buffer) allowanceNow(now clock.Time) time.Duration {
	if b.allowance == 0 {
		return 0
	}
	dt := now.Sub(b.allowanceAt)
	if dt <= 0 {
		return b.allowance
	}
	if dt > 10*DefaultRecoveryDecay {
		return 0 // under 0.005 % of it: spare the exponential
	}
	return time.Duration(float64(b.allowance) * math.Exp(-dt.Seconds()/DefaultRecoveryDecay.Seconds()))
}

// Push adds a complete frame. On error the frame was not taken.
func (b *Buffer) Push(now clock.Time, f Frame) error {
	if b.cfg.Mode != PassThrough && b.nextSet && f.ID < b.next {
		b.stats.FramesLate++
		b.stats.FramesDropped++
		if b.cfg.Mode == Adaptive {
			// Too late to play, but its transit is what the target must
			// learn: leaving it out would bias the quantile low.
			b.observe(now, &f)
		}
		return ErrLate
	}
	if len(b.frames) == cap(b.frames) {
		return ErrFull
	}
	i := len(b.frames)
	if b.cfg.Mode != PassThrough {
		// Frames nearly always arrive in order: find the place from the end.
		for i > 0 && b.frames[i-1].ID > f.ID {
			i--
		}
		if i > 0 && b.frames[i-1].ID == f.ID {
			return ErrDuplicate
		}
	} else if b.passedAlready(f.ID) {
		return ErrDuplicate
	}
	if b.cfg.Mode == Adaptive {
		b.observe(now, &f)
	}
	b.frames = append(b.frames, Frame{})
	copy(b.frames[i+1:], b.frames[i:])
	b.frames[i] = f
	return nil
}

// passedAlready reports, in PassThrough, an id held now or released
// before: one below the next id that no frame's LostBefore counted
// skipped, within reorderMemory (beyond it, an id cannot be told apart
// and is let through).
func (b *Buffer) passedAlready(id int64) bool {
	for i := range b.frames {
		if b.frames[i].ID == id {
			return true
		}
	}
	d := b.next - id
	return b.nextSet && d > 0 && d <= reorderMemory && !b.skipped.has(id)
}

// observe feeds a frame's transit to the target.
func (b *Buffer) observe(now clock.Time, f *Frame) {
	t := f.Completed
	b.g.drift.add(t, f.Transit)
	b.floor.add(t, f.Transit)
	base, _ := b.floor.at(t, b.g.drift.slope)
	rel := f.Transit - base
	// Frames released together after a stall (nothing for stallGap, or
	// for stallIntervals of the stream's own mean interval if longer: a
	// 1 fps stream's every frame would be after a "stall") are not jitter
	// a target could cover: they raise the offset when played late, which
	// then drains, but stay out of the quantile until one arrives within
	// the target again.
	if b.seen && t > b.lastCompleted {
		gap := t.Sub(b.lastCompleted)
		if gap >= max(stallGap, stallIntervals*b.meanGap) {
			b.inStall = true
		}
		b.meanGap += (min(gap, maxMeanGap) - b.meanGap) / meanGapWeight
	}
	ts := f.Completed.Add(-f.Transit)
	if f.Key && b.cfg.Video {
		b.keyTs[b.nKeyTs%keyMemory] = ts
		b.nKeyTs++
		b.keyOpen = true
	}
	if b.inStall && rel > b.target {
		b.stats.FramesAfterStall++
	} else {
		b.inStall = false
		// While the key frames' allowance is shaped (keyShaped), the key
		// frames count in it alone, and so do the frames captured after
		// one but before it completed (less the least transit), which
		// were sent behind it: their transit above the key frame's falls
		// with their capture, and in the jitter quantile they would hold
		// every frame's delay up by nearly a key frame's, a few frames a
		// GOP.
		shaped := b.keyShaped(t)
		behindKey := shaped && !f.Key && b.nKeyTs > 0 && ts > b.keyTs[(b.nKeyTs-1)%keyMemory] && ts < b.keyTrain
		switch {
		case behindKey, f.Key && shaped:
		case f.Recovered:
			b.rec.add(t, rel)
		default:
			b.jit.add(t, rel)
		}
		if f.Key && b.cfg.Video {
			// Repaired or not: a repaired key frame, the likeliest kind,
			// was left out, and the repaired frames' quantile counts only
			// with several a RecoveryWindow (one key frame every 4 s never
			// got there: 28 of 28 played late).
			// Beyond the quantiles' span a key frame plays late whatever
			// the target, as any frame does (and a transit read from a
			// peer's garbage timestamps holds no offset up).
			b.keys[b.nKeys%keyMemory] = min(rel, b.jit.span())
			b.nKeys++
			b.keyTrain = ts.Add(b.keys[(b.nKeys-1)%keyMemory])
		}
	}
	if !b.seen || t > b.lastCompleted {
		b.lastCompleted, b.seen = t, true
	}
	b.updateTarget(now)
	b.g.update(now)
}

func (b *Buffer) updateTarget(now clock.Time) {
	base, ok := b.floor.at(now, b.g.drift.slope)
	if !ok {
		return
	}
	// Jitter, plus the time a repair takes while losses recur; and, while
	// repaired frames keep coming, their own quantile.
	tg := b.jit.value() + b.allowanceNow(now)
	if b.rec.n > 0 && b.rec.weight(now) >= minRecovered {
		tg = max(tg, b.rec.value())
	}
	if b.jit.n+b.rec.n < minSamples {
		tg = max(tg, b.cfg.InitialDelay)
	}
	var need time.Duration
	for _, k := range b.keys[:min(b.nKeys, keyMemory)] {
		need = max(need, k) // the last key frames' delays
	}
	if need > tg {
		tg = max(tg, b.keyNeed(now, base, tg, need))
	}
	b.target = tg
	b.want, b.wantSet = base+tg, true
}

// keyShaped says whether a video buffer shapes its key frames' allowance
// at now: unless Config.KeyAllowanceAlways, while the recovery allowance
// is under keyShapeAllowance. While losses recur, a frame sent behind a
// key frame needs its repair on top of its wait there, and the sender
// gives up repairs at the offset fed back: the allowance is then held
// throughout, and the key frames and the frames behind them count in the
// jitter quantile as any frame does.
func (b *Buffer) keyShaped(now clock.Time) bool {
	return b.cfg.Video && !b.cfg.KeyAllowanceAlways && b.allowanceNow(now) < keyShapeAllowance
}

// keyPeriod returns the interval between the last key frames and how much
// the last two intervals differ, if the last three were evenly spaced
// (within 1/keyPeriodSlack of the latest interval), else 0, 0.
func (b *Buffer) keyPeriod() (p, dev time.Duration) {
	n := b.nKeyTs
	if n < keyMemory {
		return 0, 0
	}
	t1, t2, t3 := b.keyTs[(n-3)%keyMemory], b.keyTs[(n-2)%keyMemory], b.keyTs[(n-1)%keyMemory]
	i1, i2 := t2.Sub(t1), t3.Sub(t2)
	if i2 <= 0 || i1 <= 0 || (i1-i2).Abs() > i2/keyPeriodSlack {
		return 0, 0
	}
	return i2, (i1 - i2).Abs()
}

// keyNeed returns how much of the key frames' delay need the target holds
// at now (floor base, the target without it tg < need): all of it, unless
// key frames come periodically (keyPeriod, keyShaped). Then it is held
// from when the next key frame is due until it and the frames sent behind
// it have been released, and ramps at the group's rate to and from it: up
// from the time the offset must start to rise to meet that key frame, down
// from the release of the last one (or from when one that never came
// would have played), so that the offset, which moves at that rate, is at
// its target all the while. The next key frame is expected within tol of
// the period: the last two intervals' difference, and at least two of the
// stream's mean gaps between frames (the target is only updated at this
// buffer's completions and releases). If two in a row do not come, the
// key frames no longer keep the period and the need is held throughout.
func (b *Buffer) keyNeed(now clock.Time, base, tg, need time.Duration) time.Duration {
	p, dev := b.keyPeriod()
	r := b.g.rate
	if !b.keyShaped(now) || p == 0 || b.keyOpen || !b.lastTsSet || r <= 0 {
		return need
	}
	tol := max(dev, 2*b.meanGap)
	last := b.keyTs[(b.nKeyTs-1)%keyMemory]
	next := last.Add(p)
	held := tg
	if b.keyClosedSet {
		held = need - time.Duration(r*float64(now.Sub(b.keyClosed)))
	}
	if b.lastTs >= next.Add(tol) {
		// The next did not come (lost, or no longer sent): the need
		// ramps down from when it would have played at the latest, and
		// up for the one after. If that one does not come either, its
		// ramp up has begun and holds the need from then on.
		held = max(held, need-time.Duration(r*float64(now.Sub(next.Add(tol+base+need)))))
		next = next.Add(p)
	}
	rise := time.Duration(float64(need-tg) / r)
	if start := next.Add(base + need - rise - keyLead - tol); now > start {
		held = max(held, tg+time.Duration(r*float64(now.Sub(start))))
	}
	return min(need, held)
}

// playout returns when f plays.
func (b *Buffer) playout(f *Frame) clock.Time {
	switch b.cfg.Mode {
	case Fixed:
		return f.Capture.Add(b.cfg.Delay)
	case PassThrough:
		return clock.Time(-1 << 62)
	}
	ts := f.Completed.Add(-f.Transit) // capture, read on the receiver's clock
	lo, hi := f.Capture.Add(b.cfg.MinDelay), f.Capture.Add(b.cfg.MaxDelay)
	if ts == clock.Never {
		// A transit so negative that its capture time saturates (garbage
		// timestamps): no offset places it, and read as Never it would
		// look like a stalled group and never play. It plays at the bound.
		return hi
	}
	p := b.g.playoutAt(ts)
	if p == clock.Never {
		return p // the group is stalled
	}
	return min(max(p, lo), hi)
}

// PlayoutTime returns when a frame captured at capture (receiver's clock)
// plays in a Fixed buffer; other modes time each frame by its transit.
func (b *Buffer) PlayoutTime(capture clock.Time) clock.Time { return capture.Add(b.cfg.Delay) }

// Pop releases the next frame if its playout time has come. LostBefore says
// how many ids were skipped to reach it.
func (b *Buffer) Pop(now clock.Time) (Frame, bool) {
	if len(b.frames) == 0 {
		return Frame{}, false
	}
	if b.frames[0].ID < b.skipTo {
		return b.drop(now), true // catching up to a key frame
	}
	b.skipTo = noSkip
	p := b.playout(&b.frames[0])
	if p > now {
		return Frame{}, false
	}
	if b.catchUp() && b.frames[0].Completed > p {
		// A freeze: the next frame is due and came too late. Skip to the
		// newest key frame held that is due too, or past a frame nothing
		// references. Not to one still ahead: that drops frames that came
		// on time and stops the display until it is due (a head 40 ms late
		// and key frame 90 ms ahead stopped it 198 ms, where playing the
		// head late stops it 73: TestCatchUpWaitsForADueKeyFrame).
		for k := len(b.frames) - 1; k > 0; k-- {
			if b.frames[k].Key && b.playout(&b.frames[k]) <= now {
				b.skipTo = b.frames[k].ID
				return b.drop(now), true
			}
		}
		if b.frames[0].Droppable {
			return b.drop(now), true
		}
	}
	if b.cfg.Mode == Adaptive {
		b.updateTarget(now)
		b.g.update(now)
	}
	f := b.releaseFor(now, p, false)
	if b.cfg.Mode == Adaptive && b.cfg.Video {
		b.lastTs, b.lastTsSet = f.Completed.Add(-f.Transit), true
		if b.keyOpen && b.lastTs >= b.keyTrain && b.lastTs > b.keyTs[(b.nKeyTs-1)%keyMemory] {
			// The key frame and the frames sent behind it played: what
			// the frames after them need.
			b.keyOpen = false
			b.keyClosed, b.keyClosedSet = now, true
			b.updateTarget(now)
			b.g.update(now)
		}
	}
	return f, true
}

func (b *Buffer) catchUp() bool {
	return b.cfg.CatchUp && b.cfg.Video && b.cfg.Mode == Adaptive
}

// drop releases the next frame Dropped (catch-up): it is not played, so it
// neither lifts the offset nor counts as rendered; a reference frame
// dropped, or one lost before it (a gap not known droppable, as decodable
// reads it), leaves the frames after it undecodable until a key frame.
func (b *Buffer) drop(now clock.Time) Frame {
	f := b.takeHead()
	f.Playout, f.Late, f.Dropped = now, f.Completed > now, true
	if (!f.Droppable && !f.Key) || (f.LostBefore > 0 && !b.gapKnown(f.ID-f.LostBefore, f.ID, true)) {
		b.broken = true
	}
	b.stats.FramesDropped++
	return f
}

// Flush releases the next frame at now whatever its playout time (used
// when a stream ends and what it holds should go out at once). Its Playout
// is still the time it was due (now, if the group is stalled), and so is
// Stats.Offset; its time in the buffer (JitterBufferDelay) ends at now. When
// the caller renders it is unknown here: a flushed frame is left out of the
// freeze and pause counts.
func (b *Buffer) Flush(now clock.Time) (Frame, bool) {
	if len(b.frames) == 0 {
		return Frame{}, false
	}
	p := b.playout(&b.frames[0])
	if p == clock.Never {
		p = now // the group is stalled: no playout time
	}
	return b.releaseFor(now, p, true), true
}

// Discard removes the next frame without releasing it: nothing is counted
// and nothing learnt. It is for freeing what a buffer holds when its
// stream is reset or its connection closes (the frames' Data is the
// caller's).
func (b *Buffer) Discard() (Frame, bool) {
	if len(b.frames) == 0 {
		return Frame{}, false
	}
	return b.removeHead(), true
}

func (b *Buffer) removeHead() Frame {
	f := b.frames[0]
	copy(b.frames, b.frames[1:])
	b.frames[len(b.frames)-1] = Frame{}
	b.frames = b.frames[:len(b.frames)-1]
	return f
}

// takeHead removes the next frame and counts the ids skipped before it.
func (b *Buffer) takeHead() Frame {
	f := b.removeHead()
	switch {
	case b.nextSet && f.ID > b.next:
		f.LostBefore = f.ID - b.next
		b.stats.FramesSkipped += f.LostBefore
	case b.nextSet && f.ID < b.next:
		// PassThrough, which releases in completion order: an id an
		// earlier frame's LostBefore counted may have come after all.
		if d := b.next - f.ID; d > 0 && d <= reorderMemory && b.skipped.has(f.ID) {
			b.skipped.set(f.ID, false)
			f.Reordered = true
			b.stats.FramesSkipped--
		}
		return f
	}
	// The id after the last (none after math.MaxInt64: it stays there,
	// and every id below it is past).
	next := f.ID + min(1, math.MaxInt64-f.ID)
	if b.cfg.Mode == PassThrough {
		b.skipped.advance(b.next, next, f.ID, b.nextSet)
	}
	b.next, b.nextSet = next, true
	return f
}

// releaseFor releases the next frame at now for its playout time p
// (flushed: before it, perhaps).
func (b *Buffer) releaseFor(now, p clock.Time, flushed bool) Frame {
	f := b.takeHead()
	if b.cfg.Mode == PassThrough {
		p = f.Completed
	}
	b.g.played = true
	f.Playout = p
	f.Late = f.Completed > p
	if f.Late && b.cfg.Mode == Adaptive && !b.catchUp() {
		// Played late, it sets the offset the frames after it keep: the
		// excess then drains at the group's rate instead of being skipped.
		// (Catching up, the frames after it keep the offset: they play
		// at once until they are due on time again.)
		ts := f.Completed.Add(-f.Transit)
		b.g.raise(now, min(now, f.Capture.Add(b.cfg.MaxDelay)).Sub(ts))
	}
	st := &b.stats
	st.FramesReleased++
	if f.Late {
		st.FramesReleasedLate++
	}
	in := f.Completed
	if f.FirstArrival != 0 && f.FirstArrival < in {
		in = f.FirstArrival
	}
	st.JitterBufferDelay += max(0, now.Sub(in))
	switch b.cfg.Mode {
	case Adaptive:
		// The target with the bounds: the group's (the largest any member
		// wants), moved by as much as the bounds move the playout it
		// wants for this frame (W3C's jitterBufferTargetDelay includes a
		// minimum delay set from outside; jitterBufferMinimumDelay not).
		ts := f.Completed.Add(-f.Transit)
		b.mapK, b.mapSet = f.Capture.Sub(ts), true
		wantAt := ts.Add(b.g.want)
		bound := min(max(wantAt, f.Capture.Add(b.cfg.MinDelay)), f.Capture.Add(b.cfg.MaxDelay)).Sub(wantAt)
		st.JitterBufferMinimumDelay += b.target
		st.JitterBufferTargetDelay += max(0, b.target+max(0, b.g.want-b.want)+bound)
	case Fixed:
		st.JitterBufferMinimumDelay += b.cfg.Delay
		st.JitterBufferTargetDelay += b.cfg.Delay
	}
	st.Offset = now.Sub(f.Capture)
	if flushed {
		st.Offset = p.Sub(f.Capture)
		if now < p {
			st.FramesReleasedEarly++
		}
	}
	if !b.cfg.Video && b.cfg.Mode != PassThrough && !flushed {
		b.concealStats(&f, now, p)
	}
	if b.cfg.Video {
		b.decodable(&f)
		if !f.Undecodable && !flushed {
			// An undecodable frame is not rendered: the picture stays
			// frozen on the last one until a key frame (W3C counts
			// freezes between rendered frames).
			b.renderStats(now)
		}
	}
	return f
}

// goneFrame is a run of frames, from to to (inclusive), known never to
// come.
type goneFrame struct {
	from, to  int64
	droppable bool
}

// GoneMemory is how many runs of frames known never to come a buffer
// remembers (NoteGone, NoteGoneRange): a gap of only droppable ones breaks
// nothing, and a gap of only gone ones is not worth waiting for.
const GoneMemory = 32

// NoteGone tells the buffer that frame id will not come (given up, refused
// as late, or dropped by the sender) and whether any frame references it.
func (b *Buffer) NoteGone(id int64, droppable bool) { b.NoteGoneRange(id, id, droppable) }

// NoteGoneRange is NoteGone for the frames from to to, inclusive: a
// sender's drop notice of any length is one run (one id a frame once: a
// notice of more than GoneMemory frames left the frames after it
// undecodable).
func (b *Buffer) NoteGoneRange(from, to int64, droppable bool) {
	if to < from {
		return
	}
	b.gone[b.nGone%GoneMemory] = goneFrame{from: from, to: to, droppable: droppable}
	b.nGone++
}

// gapKnown reports whether every id in [from, to) was noted gone, and
// (droppable) only droppable ones: the runs noted cover it.
func (b *Buffer) gapKnown(from, to int64, droppable bool) bool {
	known := b.gone[:min(b.nGone, GoneMemory)]
	for cur := from; cur < to; {
		next := cur
		for _, g := range known {
			if g.from <= cur && cur <= g.to && (g.droppable || !droppable) {
				if g.to >= to-1 {
					return true
				}
				next = max(next, g.to+1)
			}
		}
		if next == cur {
			return false
		}
		cur = next
	}
	return true
}

// Gap returns the frame ids missing before the next frame held, [from,
// to); ok is false when there is no gap (or nothing held, or nothing
// released yet).
func (b *Buffer) Gap() (from, to int64, ok bool) {
	if len(b.frames) == 0 || !b.nextSet || b.frames[0].ID <= b.next || b.cfg.Mode == PassThrough {
		return 0, 0, false
	}
	return b.next, b.frames[0].ID, true
}

// IsGone reports whether frame id was noted gone (NoteGone).
func (b *Buffer) IsGone(id int64) bool {
	for _, g := range b.gone[:min(b.nGone, GoneMemory)] {
		if g.from <= id && id <= g.to {
			return true
		}
	}
	return false // (gapKnown(id, id+1) read math.MaxInt64 as gone: id+1 wraps)
}

// decodable marks frames whose references were lost: after a gap (which
// may have held a reference, unless it held only droppable frames) every
// frame up to the next key frame.
func (b *Buffer) decodable(f *Frame) {
	if f.LostBefore > 0 && !b.gapKnown(f.ID-f.LostBefore, f.ID, true) {
		b.broken = true
	}
	if f.Key {
		b.broken, b.keyAsked = false, false
		return
	}
	if b.broken {
		f.Undecodable = true
		b.stats.FramesUndecodable++
		if !b.keyAsked {
			f.NeedKey, b.keyAsked = true, true
		}
	}
}

// concealStats counts an audio underrun at f's release (at now, for its
// playout time p): the frames missing before it, their share of the
// capture time since the last frame released, and, if it came late, the
// time from p to now.
func (b *Buffer) concealStats(f *Frame, now, p clock.Time) {
	var d time.Duration
	if f.LostBefore > 0 && b.stats.FramesReleased > 1 {
		gap := f.Capture.Sub(b.lastCapture)
		d += time.Duration(float64(gap) * float64(f.LostBefore) / float64(f.LostBefore+1))
	}
	if f.Late {
		d += now.Sub(p)
	}
	if d > 0 {
		b.stats.ConcealmentEvents++
		b.stats.ConcealedDuration += d
	}
	b.lastCapture = f.Capture
}

// renderStats applies W3C's freeze and pause rules to the release times
// of the frames rendered (released and decodable).
func (b *Buffer) renderStats(now clock.Time) {
	st := &b.stats
	if b.released {
		// A now before the last release (the caller's clock stepped
		// back) counts as no time: the totals never fall.
		now = clock.Max(now, b.lastRelease)
		d := now.Sub(b.lastRelease)
		st.TotalInterFrameDelay += d
		st.TotalSquaredInterFrameDelay += d.Seconds() * d.Seconds()
		switch {
		case d > pauseThreshold:
			st.PauseCount++
			st.TotalPausesDuration += d
		case b.nIntervals > 0:
			avg := b.sumInterval / time.Duration(b.nIntervals)
			if d >= max(3*avg, avg+150*time.Millisecond) {
				st.FreezeCount++
				st.TotalFreezesDuration += d
			}
		}
		i := b.ringAt
		b.ringAt = (b.ringAt + 1) % freezeWindow
		if b.nIntervals == freezeWindow {
			b.sumInterval -= b.intervals[i]
		} else {
			b.nIntervals++
		}
		b.intervals[i] = d
		b.sumInterval += d
	}
	b.lastRelease, b.released = now, true
}

// NextTimeout returns when Pop next has a frame to give, or clock.Never.
func (b *Buffer) NextTimeout() clock.Time {
	if len(b.frames) == 0 {
		return clock.Never
	}
	if b.frames[0].ID < b.skipTo {
		return clock.Time(-1 << 62) // catching up: due at once
	}
	return b.playout(&b.frames[0])
}

// Expect says the stream's frames start at id: ids below it are not waited
// for, and a first frame released after id counts the ids it skipped as
// lost. Without it, the first frame released sets where the stream starts
// (a receiver joining mid-stream).
func (b *Buffer) Expect(id int64) {
	if len(b.frames) == 0 || b.frames[0].ID >= id {
		b.next, b.nextSet = id, true
	}
}

// Reset empties the buffer for a new stream on the same id: it forgets the
// frames it holds (their data is the caller's to free first, with Discard)
// and what it released. Counters and the delay statistics are kept; the
// render intervals start again with the new stream's first frame (the
// time between the streams is neither's freeze or pause).
func (b *Buffer) Reset() {
	clear(b.frames)
	b.frames = b.frames[:0]
	b.next, b.nextSet = 0, false
	b.released, b.nIntervals, b.sumInterval, b.ringAt = false, 0, 0, 0
	b.broken, b.keyAsked, b.skipTo = b.cfg.Video, false, noSkip
	// The old stream's frames noted gone are not the new one's (its ids
	// start again), and the offset it wanted no longer holds its group.
	b.gone, b.nGone, b.skipped = [GoneMemory]goneFrame{}, 0, idWindow{}
	b.wantSet = false
	// Its key frames keep their own period.
	b.nKeyTs, b.keyOpen, b.keyTrain, b.lastTsSet, b.keyClosedSet = 0, false, 0, false, false
}

// Stats returns the buffer's counters and its state at now.
func (b *Buffer) Stats(now clock.Time) Stats {
	st := b.stats
	st.Target = b.target
	st.Allowance = b.allowanceNow(now)
	st.DriftPPM = b.g.drift.ppm()
	if b.cfg.Mode == Adaptive && b.g.set {
		st.Excess, st.Rate = b.excessRate(now)
	} else {
		st.Rate = 1
	}
	return st
}

// idWindow marks ids in [next-reorderMemory, next): a bit per id mod
// reorderMemory.
type idWindow [reorderMemory / 64]uint64

func (w *idWindow) has(id int64) bool {
	i := uint64(id) % reorderMemory
	return w[i/64]&(1<<(i%64)) != 0
}

func (w *idWindow) set(id int64, on bool) {
	i := uint64(id) % reorderMemory
	if on {
		w[i/64] |= 1 << (i % 64)
	} else {
		w[i/64] &^= 1 << (i % 64)
	}
}

// advance moves the window's end from `from` (if known) to `to`, the ids
// between marked skipped but for `got`, the one released.
func (w *idWindow) advance(from, to, got int64, known bool) {
	switch {
	case !known:
		*w, from = idWindow{}, got
	case to-from < 0 || to-from >= reorderMemory: // (to-from < 0: it overflowed)
		*w = idWindow{}
		from = math.MinInt64
		if to >= math.MinInt64+reorderMemory {
			from = to - reorderMemory
		}
	}
	for id := from; id < to; id++ {
		w.set(id, id != got)
	}
}

// excessRate returns the group's offset above the one wanted, and the
// playout speed, as this stream plays them: within its bounds (from the
// last release's capture mapping). An offset below MinDelay, or above
// MaxDelay, moves no frame: playout runs at 1 with no excess to drain.
func (b *Buffer) excessRate(now clock.Time) (time.Duration, float64) {
	off := b.g.offset(now)
	if !b.mapSet {
		return max(0, off-b.g.want), b.g.Rate(now)
	}
	lo, hi := b.cfg.MinDelay, b.cfg.MaxDelay
	cur := off - b.mapK
	excess := max(0, min(max(cur, lo), hi)-min(max(b.g.want-b.mapK, lo), hi))
	if !b.g.stalled && (cur <= lo || cur >= hi) {
		return excess, 1
	}
	return excess, b.g.Rate(now)
}
