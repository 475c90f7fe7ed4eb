package cc

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// PacketResult is what feedback says about one packet the sender sent.
type PacketResult struct {
	PacketNumber int64
	Size         int        // bytes on the wire (UDP payload)
	SendTime     clock.Time // on the sender's clock
	Received     bool
	ArrivalTime  clock.Time // on the receiver's clock (only differences mean anything); valid if Received
}

// Feedback is one transport-wide feedback report, translated from whatever
// the wire carried (RTCP transport-wide CC in version 1) into packets the
// sender recognises. Packets are in packet-number order.
type Feedback struct {
	ReceivedAt clock.Time // when the report reached the sender
	Packets    []PacketResult
	ECNCE      int // packets reported with ECN congestion experienced (0 until ECN is wired)
}

// RTT is the round-trip time picture an estimator is given.
type RTT struct {
	Min, Smoothed, Variation, Latest time.Duration
}

// Estimator turns feedback into a target rate. Implementations are not safe
// for concurrent use.
type Estimator interface {
	// OnFeedback takes one report. appLimited says the sender had less to
	// send than the target allowed while the reported packets left.
	OnFeedback(now clock.Time, fb *Feedback, rtt RTT, appLimited bool)
	// Target is the transport target in bit/s on the wire, all overhead
	// included.
	Target() int64
}

// Fixed is the version-1 estimator: a constant target, whatever the
// feedback says. It exists so the session core is wired through the
// interface real controllers will implement.
type Fixed struct {
	Rate int64 // bit/s
}

// OnFeedback ignores the report.
func (f *Fixed) OnFeedback(clock.Time, *Feedback, RTT, bool) {}

// Target returns Rate.
func (f *Fixed) Target() int64 { return f.Rate }

// DefaultPacingFactor is how much faster than the target the pacer sends:
// libwebrtc's 2.5, so frames larger than the mean (key frames) leave quickly.
const DefaultPacingFactor = 2.5

// DefaultBurst is the most the pacer lets out at once, as time at the
// pacing rate.
const DefaultBurst = 5 * time.Millisecond
