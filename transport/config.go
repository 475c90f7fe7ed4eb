package transport

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/internal/core"
)

// Profile is a set of defaults (DESIGN §4): a profile only fills the fields
// left zero; every field stays settable.
type Profile uint8

// Profiles.
const (
	// RTC: about 500 ms end to end; a 300 ms transport budget; playout
	// 0-0.8 s.
	RTC Profile = iota
	// Live: 2-5 s end to end; a 3 s transport budget; playout 1-3 s.
	Live
)

func (p Profile) String() string {
	switch p {
	case RTC:
		return "rtc"
	case Live:
		return "live"
	}
	return fmt.Sprintf("Profile(%d)", uint8(p))
}

// MarshalText returns the profile's name.
func (p Profile) MarshalText() ([]byte, error) {
	if p > Live {
		return nil, fmt.Errorf("%w: unknown profile %d", ErrInvalidConfig, uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses "rtc" or "live".
func (p *Profile) UnmarshalText(b []byte) error {
	switch string(b) {
	case "rtc", "RTC":
		*p = RTC
	case "live", "Live", "LIVE":
		*p = Live
	default:
		return fmt.Errorf("%w: unknown profile %q (want rtc or live)", ErrInvalidConfig, b)
	}
	return nil
}

// Latency returns the profile's default transport budget: 300 ms for RTC,
// 3 s for Live.
func (p Profile) Latency() time.Duration {
	if p == Live {
		return 3 * time.Second
	}
	return core.DefaultLatency
}

// Config configures a Transport and its sessions. The zero value works (the
// RTC profile). Each field's comment gives its default and unit.
type Config struct {
	// Profile picks the defaults of Latency and the playout bounds. Default RTC.
	Profile Profile

	// Latency is the transport budget from capture to frame complete at the
	// receiver: a frame's deadline is its capture time plus Latency, and no
	// byte is spent on a frame that cannot make it. Default 300 ms (RTC) or
	// 3 s (Live).
	Latency time.Duration
	// MinPlayoutDelay and MaxPlayoutDelay bound the playout offset (capture
	// to playout) of received frames, which adapts to the jitter and the
	// time recovery needs (package jitterbuffer) and drains excess at 10 %
	// (RTC) or 3 % (Live) of real time. Defaults: 0 and 800 ms (RTC), 1 s
	// and 3 s (Live); an unset MaxPlayoutDelay is at least MinPlayoutDelay.
	MinPlayoutDelay time.Duration
	MaxPlayoutDelay time.Duration
	// DrainRate is how fast excess playout delay drains, as a fraction of
	// real time (playout that much faster; Stats.Rate tells an audio
	// renderer to time-stretch by it). Within 0-1, exclusive; default 0.10
	// (RTC) or 0.03 (Live).
	DrainRate float64
	// CatchUp: after a video freeze, skip to the newest decodable frame
	// held (a key frame, or past frames nothing references) rather than
	// play the backlog late and drain it; skipped frames show as
	// FrameInfo.CaughtUpBefore. An RTC option; off by default.
	CatchUp bool
	// KeyFrameAllowanceAlways: the playout offset covers the key frames'
	// longer transit (a key frame is several deltas in size) at all times.
	// Off (the default), when key frames come periodically (a fixed GOP)
	// the offset rises at DrainRate ahead of each and drains after it, so
	// the frames between key frames play sooner; audio in the same
	// broadcast follows the offset (Stats.Rate), stretching and
	// compressing a little each GOP. Key frames sent on request, and all
	// key frames while losses recur, are covered at all times either way.
	KeyFrameAllowanceAlways bool
	// PassThrough delivers each received frame as soon as it completes,
	// in completion order, with no playout buffering (a relay, or an
	// application with its own player). FrameInfo.PlayoutTime is then the
	// completion time; MinPlayoutDelay, MaxPlayoutDelay and CatchUp do not
	// apply. Off by default.
	PassThrough bool

	// MaxBitrate caps the sending rate, in bit/s. Default 20 Mbit/s.
	MaxBitrate int64
	// MinBitrate is the least the congestion controller's target falls
	// to, in bit/s (GCC and GCC02). Default 50 kbit/s.
	MinBitrate int64
	// CongestionControl chooses what sets the sending rate: GCC, our
	// delay-based controller with probing (the default), GCC02 (gcc-02 as
	// written, the bench's reference), or Fixed (no congestion control:
	// the tracks' nominal Bitrate sums, for a path known to carry them).
	CongestionControl CongestionControl
	// Estimator, if set, makes each session's congestion controller
	// instead (the cc package's one plug point: fed transport-wide
	// feedback, it returns the target on the wire); CongestionControl,
	// StartBitrate and MinBitrate are then its business. Called once per
	// session; the estimator runs on the session's goroutine.
	Estimator func() cc.Estimator
	// StartBitrate is where the controller starts, in bit/s (probes
	// check 3x and 6x it at once). Default 300 kbit/s.
	StartBitrate int64
	// PacerQueueLimit bounds the send queue in time (its bytes at the
	// pacing rate): past it, frames that matter least are dropped
	// (droppable ones, then deltas; key frames and audio make the queue
	// drain faster instead). Defaults: 150 ms (RTC), 1 s (Live).
	PacerQueueLimit time.Duration
	// MaxFrameSize is the largest frame sent or accepted, in bytes. Default
	// 4 MiB.
	MaxFrameSize int
	// FragmentSize is the frame bytes per datagram. Default 1200 (a datagram
	// is then at most 1231 bytes: an FEC repair packet adds 31).
	FragmentSize int

	// DisableFEC turns off forward error correction of what this side
	// sends. By default an adaptive policy adds repair packets where a
	// retransmission could not arrive before a frame's deadline (long RTTs,
	// key frames), and next to none on a clean network.
	DisableFEC bool
	// MaxFECOverhead caps FEC redundancy: a block of k media packets gets
	// at most MaxFECOverhead x k repair packets. Within 0-1; default 0.5
	// (libwebrtc's cap). A lower cap trades residual loss for bytes.
	MaxFECOverhead float64
	// DisableRetransmission turns off selective retransmission both ways.
	DisableRetransmission bool

	// KeepAlivePeriod: a ping goes out after this long without sending.
	// Default 5 s.
	KeepAlivePeriod time.Duration
	// IdleTimeout closes a session that received nothing for this long.
	// Default 30 s.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds Dial. Default 10 s.
	HandshakeTimeout time.Duration

	// MaxSessions bounds the sessions of one Transport. Default 1024.
	MaxSessions int
	// ReceiveQueue is how many received datagrams may wait between the
	// socket reader and the session loop (and one read's worth more: 32
	// on Linux, 1 elsewhere); beyond it they are dropped and counted
	// (Stats.DatagramsDropped). Each costs a buffer of MaxDatagramSize.
	// Default 1024.
	ReceiveQueue int
	// FrameQueue is how many frames a received track holds for ReadFrame;
	// beyond it the oldest is dropped and counted. Default 256.
	FrameQueue int
	// StatsInterval is the period of Session.OnNetStatus reports. Default 1 s.
	StatsInterval time.Duration

	// Logger receives debug logs (never per packet). Default: none.
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	setDefault(&d.Latency, d.Profile.Latency())
	if d.Profile == Live {
		setDefault(&d.PacerQueueLimit, time.Second)
	} else {
		setDefault(&d.PacerQueueLimit, 150*time.Millisecond)
	}
	setDefault(&d.DrainRate, d.Profile.drainRate())
	if d.Profile == Live {
		setDefault(&d.MinPlayoutDelay, time.Second)
		setDefault(&d.MaxPlayoutDelay, max(3*time.Second, d.MinPlayoutDelay))
	} else {
		setDefault(&d.MaxPlayoutDelay, max(800*time.Millisecond, d.MinPlayoutDelay))
	}
	setDefault(&d.MaxSessions, core.DefaultMaxConns)
	setDefault(&d.ReceiveQueue, 1024)
	setDefault(&d.FrameQueue, 256)
	setDefault(&d.StatsInterval, time.Second)
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Validate reports the first invalid field in an error wrapping
// ErrInvalidConfig.
func (c *Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Profile > Live:
		return fmt.Errorf("%w: Profile = %d: unknown", ErrInvalidConfig, d.Profile)
	case d.ReceiveQueue < 0 || d.ReceiveQueue > 1<<20:
		return fmt.Errorf("%w: ReceiveQueue = %d: must be within 0-1048576", ErrInvalidConfig, d.ReceiveQueue)
	case d.FrameQueue < 0 || d.FrameQueue > 1<<16:
		return fmt.Errorf("%w: FrameQueue = %d: must be within 0-65536", ErrInvalidConfig, d.FrameQueue)
	case d.StatsInterval < 10*time.Millisecond:
		return fmt.Errorf("%w: StatsInterval = %v: must be at least 10 ms", ErrInvalidConfig, d.StatsInterval)
	}
	if d.CongestionControl > Fixed {
		return fmt.Errorf("%w: CongestionControl = %d: unknown", ErrInvalidConfig, d.CongestionControl)
	}
	// Against the MaxBitrate in force: the core's default when unset.
	maxRate := cmp.Or(d.MaxBitrate, core.DefaultMaxBitrate)
	if d.StartBitrate < 0 || (maxRate > 0 && d.StartBitrate > maxRate) {
		return fmt.Errorf("%w: StartBitrate = %d: must be within 0-MaxBitrate (%d)", ErrInvalidConfig, d.StartBitrate, maxRate)
	}
	if d.MinBitrate < 0 || (maxRate > 0 && d.MinBitrate > maxRate) {
		return fmt.Errorf("%w: MinBitrate = %d: must be within 0-MaxBitrate (%d)", ErrInvalidConfig, d.MinBitrate, maxRate)
	}
	if !(d.DrainRate > 0 && d.DrainRate < 1) {
		return fmt.Errorf("%w: DrainRate = %v: must be within 0-1, exclusive", ErrInvalidConfig, d.DrainRate)
	}
	cfg := d.core()
	return cfg.Validate()
}

// core translates to the session core's configuration.
func (c Config) core() core.Config {
	return core.Config{
		MaxConns:                  c.MaxSessions,
		Latency:                   c.Latency,
		MinPlayoutDelay:           c.MinPlayoutDelay,
		MaxPlayoutDelay:           c.MaxPlayoutDelay,
		DrainRate:                 c.DrainRate,
		PlayoutQuantile:           c.Profile.playoutQuantile(),
		PlayoutWindow:             c.Profile.playoutWindow(),
		PlayoutCatchUp:            c.CatchUp,
		PlayoutKeyAllowanceAlways: c.KeyFrameAllowanceAlways,
		Playout:                   c.playout(),
		RecoveryResidual:          c.Profile.recoveryResidual(),
		PlayoutStallTogether:      c.Profile == Live,
		FragmentSize:              c.FragmentSize,
		MaxFrameSize:              c.MaxFrameSize,
		MaxBitrate:                c.MaxBitrate,
		Estimator:                 c.estimator(),
		PacerQueueLimit:           c.PacerQueueLimit,
		IdleTimeout:               c.IdleTimeout,
		KeepAlivePeriod:           c.KeepAlivePeriod,
		HandshakeTimeout:          c.HandshakeTimeout,
		Logger:                    c.Logger,

		DisableFEC:            c.DisableFEC,
		MaxFECOverhead:        c.MaxFECOverhead,
		DisableRetransmission: c.DisableRetransmission,
	}
}

func (c Config) playout() core.PlayoutMode {
	if c.PassThrough {
		return core.PlayoutPassThrough
	}
	return core.PlayoutAdaptive
}

// CongestionControl chooses the controller a session sends with.
type CongestionControl uint8

// Congestion controllers.
const (
	// GCC: cc.GCC, a delay-based controller of the GCC family with probes,
	// a loss bound that tells random from congestive loss, and a
	// competitive mode against loss-based flows.
	GCC CongestionControl = iota
	// GCC02: cc.GCC02, draft-ietf-rmcat-gcc-02 as written (no probes).
	GCC02
	// Fixed: no congestion control; the sending rate is the sum of the
	// tracks' nominal Bitrate.
	Fixed
)

var ccNames = [...]string{"gcc", "gcc-02", "fixed"}

func (c CongestionControl) String() string {
	if int(c) < len(ccNames) {
		return ccNames[c]
	}
	return fmt.Sprintf("CongestionControl(%d)", uint8(c))
}

// MarshalText gives the controller's name ("gcc", "gcc-02", "fixed").
func (c CongestionControl) MarshalText() ([]byte, error) {
	if c > Fixed {
		return nil, fmt.Errorf("%w: unknown congestion control %d", ErrInvalidConfig, uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText parses "gcc", "gcc-02" or "fixed".
func (c *CongestionControl) UnmarshalText(b []byte) error {
	for i, n := range ccNames {
		if string(b) == n {
			*c = CongestionControl(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown congestion control %q (want gcc, gcc-02 or fixed)", ErrInvalidConfig, b)
}

// estimator makes the core's controller factory (nil: the core's Fixed).
func (c Config) estimator() func() cc.Estimator {
	if c.Estimator != nil {
		return c.Estimator
	}
	g := cc.GCCConfig{StartRate: c.StartBitrate, MaxRate: c.MaxBitrate, MinRate: c.MinBitrate}
	switch c.CongestionControl {
	case GCC:
		return func() cc.Estimator { return cc.NewGCC(g) }
	case GCC02:
		return func() cc.Estimator { return cc.NewGCC02(g) }
	}
	return nil
}

// drainRate is how fast the profile's playout drains excess delay: 10 %
// for RTC, 3 % for Live (media players stay within 3 %).
func (p Profile) drainRate() float64 {
	if p == Live {
		return 0.03
	}
	return 0.10
}

// playoutQuantile is the share of frames the profile's playout aims to
// play on time: 0.99 for RTC, 0.999 for Live (smoothness first).
// recoveryResidual is the share of frames the playout offset may leave
// to miss their playout after loss recovery (core.Config.RecoveryResidual).
func (p Profile) recoveryResidual() float64 {
	if p == Live {
		return core.LiveRecoveryResidual
	}
	return core.DefaultRecoveryResidual
}

// playoutWindow is the memory of the profile's playout jitter quantile
// (core.Config.PlayoutWindow): the default for RTC; 20 s for Live, which
// keeps a jitter burst's delay rather than risk a stall.
func (p Profile) playoutWindow() time.Duration {
	if p == Live {
		return core.LivePlayoutWindow
	}
	return 0
}

func (p Profile) playoutQuantile() float64 {
	if p == Live {
		return 0.999
	}
	return 0.99
}
