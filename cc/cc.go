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
	ProbeID      int        // the probe cluster it was sent in (Prober), 0 if none
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

// Timed is implemented by estimators that act on time passing without
// feedback. The session core calls OnTime every 200 ms or so while it has
// streams open.
type Timed interface {
	OnTime(now clock.Time, rtt RTT)
}

// Competing is implemented by estimators that can tell a standing queue
// is another flow's (a loss-based flow keeps it full whatever we send):
// the sender then takes that queue as part of the path's delay.
type Competing interface {
	Competing() bool
}

// ProbeCluster asks the sender to send Bytes (at least MinPackets
// packets) at Rate, tagging each packet with ID, padding with redundant
// copies of recent packets when it has no media: the delivery rate the
// feedback then shows says whether the path carries Rate.
type ProbeCluster struct {
	ID         int // > 0
	Rate       int64
	Bytes      int
	MinPackets int
}

// Prober is implemented by estimators that probe. The session core asks
// PollProbe whenever it could send; at most one cluster is active at once.
type Prober interface {
	PollProbe(now clock.Time) (ProbeCluster, bool)
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
// libwebrtc's 2.5. A key frame of 239 ms at the media rate (8 x a delta,
// a key frame every 2 s at 30 fps) then leaves in 96 ms, within the RTC
// queue limit of 150 ms, which needs at least 1.6 (see the package doc).
const DefaultPacingFactor = 2.5

// DefaultBurst is the most the pacer lets out at once, as time at the
// pacing rate.
const DefaultBurst = 5 * time.Millisecond

// ScriptStep is a point of a Scripted estimator's schedule: from At on,
// the rate is Rate (bit/s).
type ScriptStep struct {
	At   clock.Time
	Rate int64
}

// Scripted is an estimator whose target follows a schedule instead of
// feedback: the bench drives the pacer with one that follows the path's
// capacity Lag late, until a controller lands. Its target is Share x the
// rate of the last step at or before (the latest feedback's time - Lag),
// so it moves when feedback arrives (every 50-100 ms); before the first
// step, the first step's rate applies. Steps must be in time order.
type Scripted struct {
	Steps []ScriptStep
	Lag   time.Duration
	Share float64 // of the scheduled rate; 0 means 1
	now   clock.Time
	init  bool
}

// OnFeedback notes the time; the report itself is ignored.
func (s *Scripted) OnFeedback(now clock.Time, _ *Feedback, _ RTT, _ bool) {
	s.now, s.init = now, true
}

// Target returns the scheduled rate as of the latest feedback, Lag late.
func (s *Scripted) Target() int64 {
	if len(s.Steps) == 0 {
		return 0
	}
	rate := s.Steps[0].Rate
	if s.init {
		at := s.now.Add(-s.Lag)
		for _, st := range s.Steps {
			if st.At > at {
				break
			}
			rate = st.Rate
		}
	}
	if s.Share > 0 {
		rate = int64(float64(rate) * s.Share)
	}
	return rate
}
