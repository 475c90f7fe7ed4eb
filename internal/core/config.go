package core

import (
	"crypto/rand"
	"fmt"
	"github.com/spillway-rt/spillway/jitterbuffer"
	"io"
	"log/slog"
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/wire"
)

// LivePlayoutWindow is the Live profile's PlayoutWindow: the memory of a
// jitter burst fades by 1/e in 20 s, so a 0.999 quantile keeps its delay
// about two minutes (on the bench's jb-accumulate trace) rather than risk
// a stall.
const LivePlayoutWindow = 20 * time.Second

// LiveRecoveryResidual is the Live profile's RecoveryResidual. Live asks
// for no freeze at all: a 10 min run plays about 48000 frames (30 fps
// video, 50 fps audio), so the chance per frame must be well under
// 1/48000. At 1e-6 a run at 20 % loss expects about 0.05 misses; at the
// 1e-5 used before it expected about 0.2, and 2 of 20 seeds of the bench's
// e2e-live-rtt300-loss20 froze once.
const LiveRecoveryResidual = 1e-6

// Config configures an Endpoint and every connection on it. The zero value
// works: each field's comment gives its default.
type Config struct {
	// Rand supplies connection IDs and the cookie secret. Default
	// crypto/rand.Reader; the simulator passes a seeded source.
	Rand io.Reader

	// Accept makes the endpoint accept incoming connections (a server).
	Accept bool
	// MaxConns bounds the connections on the endpoint. Default 1024.
	MaxConns int

	// Latency is the transport budget: a frame's deadline is its capture
	// time plus Latency. Default 300 ms (the RTC profile).
	Latency time.Duration
	// MinPlayoutDelay and MaxPlayoutDelay bound the playout offset (capture
	// to playout) of received frames. Zero MaxPlayoutDelay: 10 s
	// (jitterbuffer.DefaultMaxDelay).
	MinPlayoutDelay time.Duration
	MaxPlayoutDelay time.Duration
	// Playout says how received frames are timed (package jitterbuffer):
	// PlayoutAdaptive (default: the offset follows the jitter and the
	// recovery time), PlayoutFixed (at the sender's Latency clamped to the
	// bounds above) or PlayoutPassThrough (each frame as it completes).
	Playout PlayoutMode
	// DrainRate is how fast an adaptive playout offset drains excess delay,
	// as a fraction of real time. Default 0.10 (RTC); Live uses 0.03.
	DrainRate float64
	// PlayoutQuantile is the share of frames an adaptive playout offset
	// aims to play on time, in (0, jitterbuffer.MaxQuantile]. Default 0.99 (RTC); Live, smoothness
	// first, uses 0.999.
	PlayoutQuantile float64
	// PlayoutWindow is the time constant of an adaptive playout offset's
	// jitter memory (jitterbuffer.Config.Window). Default 2 s x
	// sqrt(0.01 / (1 - PlayoutQuantile)): 2 s at 0.99, 6.3 s at 0.999;
	// Live, smoothness first, uses LivePlayoutWindow.
	PlayoutWindow time.Duration
	// RecoveryResidual is the chance per frame an adaptive playout offset
	// leaves of a frame missing its playout time after loss recovery:
	// while losses recur, the offset keeps as many retransmission rounds
	// as bring a frame's chance of missing under it (within
	// MaxPlayoutDelay). In (0, 0.1]. Default 6e-4 (RTC: each lost video
	// frame freezes the picture until a key frame, and 99.94 % of frames
	// in time keeps that under 0.5 % of play time); Live, smoothness
	// first, uses LiveRecoveryResidual.
	RecoveryResidual float64
	// PlayoutCatchUp: after a video freeze, skip to the newest decodable
	// frame (the newest key frame held that is due, past frames nothing
	// references)
	// instead of playing the backlog late and draining it
	// (jitterbuffer.Config.CatchUp); the skipped frames are freed, counted
	// (StreamRecvStats.FramesCaughtUp) and reported on the next frame
	// delivered (FrameMeta.CaughtUpBefore). An RTC option; off by default.
	PlayoutCatchUp bool
	// PlayoutKeyAllowanceAlways: video buffers cover their key frames'
	// longer transit at all times, not only around the next key frame when
	// key frames come periodically (jitterbuffer.Config.KeyAllowanceAlways).
	PlayoutKeyAllowanceAlways bool
	// PlayoutStallTogether: while a video stream waits past its playout
	// time for a missing reference frame, the other streams of the
	// connection wait too (lip sync over audio continuity; Live sets it).
	// False: audio plays on (RTC: audio first).
	PlayoutStallTogether bool

	// FragmentSize is the bytes of frame prefix (wire.FramePrefixLen, in
	// the first fragment) and frame data per data packet. Default 1200;
	// at least 64. A datagram is FragmentSize plus at most
	// wire.MaxPacketOverhead (31) bytes: an FEC repair packet.
	FragmentSize int
	// MaxDatagramSize is the largest datagram accepted. Default 1472 (a
	// 1500-byte Ethernet MTU less IPv4 and UDP headers); at least 1200, since
	// a handshake Hello is padded to 1200 bytes.
	MaxDatagramSize int
	// MaxFrameSize is the largest frame sent or accepted. Default 4 MiB; at
	// most 4096 fragments.
	MaxFrameSize int

	// MaxBitrate caps the pacing rate, in bit/s. Default 20 Mbit/s.
	MaxBitrate int64
	// PacingFactor multiplies the transport target to give the pacing
	// rate. Default 2.5 (cc.DefaultPacingFactor says why).
	PacingFactor float64
	// PacerQueueLimit bounds the send queue in time: its bytes at the
	// pacing rate. A frame that would take it past the limit pushes out
	// frames that matter less (droppable, then deltas) or is dropped; key
	// frames and audio stretch the drain rate instead. Default Latency / 2
	// within 150 ms-1 s: 150 ms for RTC, 1 s for Live.
	PacerQueueLimit time.Duration
	// Estimator makes the congestion controller a connection uses (one
	// per connection). Default: version 1's cc.Fixed at the streams'
	// nominal rates. The bench plugs scripted targets in here.
	Estimator func() cc.Estimator

	// DisableFEC turns off forward error correction of what this side
	// sends (by default the fec package's adaptive policy protects frames
	// when a retransmission could not arrive in time, and stays near zero
	// otherwise). A receiver always uses the repair packets it gets.
	DisableFEC bool
	// MaxFECOverhead caps FEC redundancy: a block of k media packets gets
	// at most MaxFECOverhead x k repair packets. Within 0-1; default 0.5
	// (fec.DefaultMaxOverhead, libwebrtc's cap).
	MaxFECOverhead float64
	// DisableRetransmission turns off selective retransmission both ways:
	// this side neither sends NACKs nor answers them.
	DisableRetransmission bool

	// IdleTimeout closes a connection that has received nothing for this
	// long (the smaller of the two sides' values applies). Default 30 s.
	IdleTimeout time.Duration
	// KeepAlivePeriod: a ping goes out when nothing was sent for this long.
	// Default 5 s; must be below IdleTimeout.
	KeepAlivePeriod time.Duration
	// HandshakeTimeout bounds Connect. Default 10 s.
	HandshakeTimeout time.Duration
	// FeedbackInterval is how often a receiver reports arrivals. Default 50 ms.
	FeedbackInterval time.Duration

	// MaxPendingFrames bounds the frames of one received stream being
	// assembled at once. Default 256; rounded up to a power of two.
	MaxPendingFrames int
	// MaxReceiveBuffer bounds the bytes a connection holds for frames being
	// assembled or waiting for playout. Default 16 MiB; at least 2 x
	// MaxFrameSize.
	MaxReceiveBuffer int
	// MaxSendBuffer bounds the bytes of frames queued to send on a
	// connection; WriteFrame fails with ErrFrameDropped beyond it. Default
	// 16 MiB; at least MaxFrameSize.
	MaxSendBuffer int

	// Logger receives debug logs about connections (never per packet).
	// Default: discard.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxConns         = 1024
	DefaultLatency          = 300 * time.Millisecond
	DefaultFragmentSize     = 1200
	DefaultMaxDatagramSize  = 1472
	DefaultMaxFrameSize     = 4 << 20
	DefaultMaxBitrate       = 20_000_000
	DefaultIdleTimeout      = 30 * time.Second
	DefaultKeepAlivePeriod  = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultFeedbackInterval = 50 * time.Millisecond
	DefaultMaxPendingFrames = 256
	DefaultMaxReceiveBuffer = 16 << 20
	DefaultMaxSendBuffer    = 16 << 20
)

// withDefaults returns a copy with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	setDefault(&c.MaxConns, DefaultMaxConns)
	setDefault(&c.Latency, DefaultLatency)
	setDefault(&c.FragmentSize, DefaultFragmentSize)
	setDefault(&c.MaxDatagramSize, DefaultMaxDatagramSize)
	setDefault(&c.MaxFrameSize, DefaultMaxFrameSize)
	setDefault(&c.MaxBitrate, DefaultMaxBitrate)
	setDefault(&c.PacingFactor, cc.DefaultPacingFactor)
	setDefault(&c.PacerQueueLimit, min(max(c.Latency/2, 150*time.Millisecond), time.Second))
	setDefault(&c.RecoveryResidual, DefaultRecoveryResidual)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.KeepAlivePeriod, DefaultKeepAlivePeriod)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.FeedbackInterval, DefaultFeedbackInterval)
	setDefault(&c.MaxPendingFrames, DefaultMaxPendingFrames)
	setDefault(&c.MaxReceiveBuffer, max(DefaultMaxReceiveBuffer, 2*c.MaxFrameSize))
	setDefault(&c.MaxSendBuffer, max(DefaultMaxSendBuffer, c.MaxFrameSize))
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	p := 1
	for p < c.MaxPendingFrames {
		p <<= 1
	}
	c.MaxPendingFrames = p
	return c
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
// Zero fields are valid (they take defaults).
func (c Config) Validate() error {
	d := c.withDefaults()
	bad := func(field, why string, v any) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.MaxConns < 0:
		return bad("MaxConns", "negative", c.MaxConns)
	case c.Latency < 0 || c.Latency > 60*time.Second:
		return bad("Latency", "must be within 0-60 s (timestamps wrap after 67 s)", c.Latency)
	case c.MinPlayoutDelay < 0 || c.MinPlayoutDelay > 60*time.Second:
		return bad("MinPlayoutDelay", "must be within 0-60 s", c.MinPlayoutDelay)
	case c.MaxPlayoutDelay < 0 || c.MaxPlayoutDelay > 60*time.Second:
		return bad("MaxPlayoutDelay", "must be within 0-60 s", c.MaxPlayoutDelay)
	case c.MaxPlayoutDelay != 0 && c.MaxPlayoutDelay < c.MinPlayoutDelay:
		return bad("MaxPlayoutDelay", fmt.Sprintf("below MinPlayoutDelay %v", c.MinPlayoutDelay), c.MaxPlayoutDelay)
	case c.Playout > PlayoutPassThrough:
		return bad("Playout", "unknown mode", c.Playout)
	case !(c.DrainRate >= 0 && c.DrainRate < 1):
		return bad("DrainRate", "must be within [0, 1)", c.DrainRate)
	case !(c.PlayoutQuantile >= 0 && c.PlayoutQuantile <= jitterbuffer.MaxQuantile):
		return bad("PlayoutQuantile", fmt.Sprintf("must be within (0, %v], or 0 for the default", jitterbuffer.MaxQuantile), c.PlayoutQuantile)
	case c.PlayoutWindow < 0 || c.PlayoutWindow > time.Hour:
		return bad("PlayoutWindow", "must be within 0-1h, 0 for the default", c.PlayoutWindow)
	case !(c.RecoveryResidual >= 0 && c.RecoveryResidual <= 0.1):
		return bad("RecoveryResidual", "must be within (0, 0.1], or 0 for the default", c.RecoveryResidual)
	case c.FragmentSize != 0 && (c.FragmentSize < wire.MinFragmentSize || c.FragmentSize > 65000):
		return bad("FragmentSize", fmt.Sprintf("must be within %d-65000", wire.MinFragmentSize), c.FragmentSize)
	case c.MaxDatagramSize != 0 && (c.MaxDatagramSize < wire.MinHelloSize || c.MaxDatagramSize > wire.MaxDatagramSize):
		return bad("MaxDatagramSize", fmt.Sprintf("must be within %d-%d", wire.MinHelloSize, wire.MaxDatagramSize), c.MaxDatagramSize)
	case d.FragmentSize+wire.MaxPacketOverhead > d.MaxDatagramSize:
		return bad("FragmentSize", fmt.Sprintf("plus a %d-byte header exceeds MaxDatagramSize %d", wire.MaxPacketOverhead, d.MaxDatagramSize), d.FragmentSize)
	case c.MaxFrameSize < 0:
		return bad("MaxFrameSize", "negative", c.MaxFrameSize)
	case d.MaxFrameSize+wire.FramePrefixLen > wire.MaxFragments*d.FragmentSize:
		return bad("MaxFrameSize", fmt.Sprintf("more than %d fragments of FragmentSize %d", wire.MaxFragments, d.FragmentSize), d.MaxFrameSize)
	case c.MaxBitrate < 0:
		return bad("MaxBitrate", "negative", c.MaxBitrate)
	case c.PacingFactor < 0 || (c.PacingFactor > 0 && c.PacingFactor < 1) || c.PacingFactor > 100:
		return bad("PacingFactor", "must be within 1-100", c.PacingFactor)
	case c.PacerQueueLimit < 0 || c.PacerQueueLimit > 60*time.Second:
		return bad("PacerQueueLimit", "must be within 0-60 s", c.PacerQueueLimit)
	case !(c.MaxFECOverhead >= 0 && c.MaxFECOverhead <= 1):
		return bad("MaxFECOverhead", "must be within 0-1", c.MaxFECOverhead)
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", "negative", c.IdleTimeout)
	case c.KeepAlivePeriod < 0:
		return bad("KeepAlivePeriod", "negative", c.KeepAlivePeriod)
	case d.KeepAlivePeriod >= d.IdleTimeout:
		return bad("KeepAlivePeriod", fmt.Sprintf("must be below IdleTimeout %v", d.IdleTimeout), d.KeepAlivePeriod)
	case c.HandshakeTimeout < 0:
		return bad("HandshakeTimeout", "negative", c.HandshakeTimeout)
	case c.FeedbackInterval < 0 || c.FeedbackInterval > time.Second:
		return bad("FeedbackInterval", "must be within 0-1 s", c.FeedbackInterval)
	case c.MaxPendingFrames < 0 || c.MaxPendingFrames > 1<<16:
		return bad("MaxPendingFrames", "must be within 0-65536", c.MaxPendingFrames)
	case c.MaxReceiveBuffer != 0 && c.MaxReceiveBuffer < 2*d.MaxFrameSize:
		return bad("MaxReceiveBuffer", fmt.Sprintf("must be at least 2 x MaxFrameSize (%d)", 2*d.MaxFrameSize), c.MaxReceiveBuffer)
	case c.MaxSendBuffer != 0 && c.MaxSendBuffer < d.MaxFrameSize:
		return bad("MaxSendBuffer", fmt.Sprintf("must be at least MaxFrameSize (%d)", d.MaxFrameSize), c.MaxSendBuffer)
	}
	return nil
}

// PlayoutMode says how a receiver times the frames it releases.
type PlayoutMode uint8

// Playout modes (jitterbuffer.Adaptive, Fixed and PassThrough).
const (
	PlayoutAdaptive PlayoutMode = iota
	PlayoutFixed
	PlayoutPassThrough
)

func (m PlayoutMode) String() string { return jitterbuffer.Mode(m).String() }
