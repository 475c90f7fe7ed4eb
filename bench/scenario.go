package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/spillway-rt/spillway/jitterbuffer"
	"github.com/spillway-rt/spillway/netem"
)

// Profile names a set of transport defaults (DESIGN §4).
type Profile string

// Profiles.
const (
	ProfileRTC  Profile = "rtc"
	ProfileLive Profile = "live"
)

// Latency returns the profile's transport budget.
func (p Profile) Latency() time.Duration {
	if p == ProfileLive {
		return 3 * time.Second
	}
	return 300 * time.Millisecond
}

// Scenario is one row of the bench: a path, traffic and a profile.
type Scenario struct {
	Name    string           `json:"name"`
	Profile Profile          `json:"profile"`
	RTT     time.Duration    `json:"rtt"`
	Loss    float64          `json:"loss"` // nominal random loss, for the report
	Forward netem.LinkConfig `json:"forward"`
	Reverse netem.LinkConfig `json:"reverse"`
	Traffic Traffic          `json:"traffic"`
	Media   time.Duration    `json:"media"` // seconds of media offered
	// LossStop, if set, turns loss off in both directions after this much
	// media.
	LossStop time.Duration `json:"loss_stop,omitempty"`
	// Schedule changes the links at given points of the media, in time
	// order.
	Schedule []LinkStep `json:"schedule,omitempty"`
	// MaxFECOverhead caps the sender's FEC redundancy (repair packets per
	// media packet of a block, 0-1); 0 keeps the transport's default.
	MaxFECOverhead float64 `json:"max_fec_overhead,omitempty"`
	// PlayoutQuantile sets the receiver's core.Config.PlayoutQuantile (the
	// share of frames its playout offset aims to play on time, in (0, jitterbuffer.MaxQuantile]);
	// 0 keeps the profile's (RTC 0.99, Live 0.999).
	PlayoutQuantile float64 `json:"playout_quantile,omitempty"`
	// Target says what drives the sender's transport target: "" (the
	// version-1 nominal rates, cc.Fixed) or "scripted" (cc.Scripted: the
	// forward link's capacity, TargetLag late, times TargetShare, until the
	// cc issue's controller lands). With "scripted" the video source
	// follows the core's TargetRate events like an encoder.
	Target      TargetMode    `json:"target,omitempty"`
	TargetLag   time.Duration `json:"target_lag,omitempty"`
	TargetShare float64       `json:"target_share,omitempty"`
	// IgnoreTarget makes the video source keep its nominal rate whatever
	// the target says: an application offering more than the path takes.
	IgnoreTarget bool `json:"ignore_target,omitempty"`
	// StartTarget is where a controller (Target "gcc") starts, bit/s; 0:
	// its default. With Target "fixed" it is the rate itself.
	StartTarget int64 `json:"start_target,omitempty"`
	// Reference runs the row a second time with gcc-02 as written
	// (Target "gcc02") and reports that run in Result.Reference: the
	// baseline column of the cc issue's rows.
	Reference bool `json:"reference,omitempty"`
	// ReceiverClock skews the receiver's clock (netem.Clock): the jitter
	// buffer's drift rows.
	ReceiverClock netem.Clock `json:"receiver_clock,omitzero"`
	// Flows, if set, makes the row several media flows (the first is the
	// one every per-frame field describes) through one shared bottleneck
	// configured by Forward, each behind its own access delay; Cross adds
	// TCP flows through it. A flow may go the other way (FlowSpec.Reverse):
	// Reverse then configures a second shared bottleneck. In such a row,
	// every time (Schedule's At, the flows' and cross flows' times) counts
	// from the run's start, and Schedule changes the bottlenecks only.
	Flows []FlowSpec  `json:"flows,omitempty"`
	Cross []CrossSpec `json:"cross,omitempty"`
	// ConvergeSkip is how much of each phase Result.Phases leaves out
	// (0: 5 s, SCENARIOS.md's converged window); MeasureFrom (row clock)
	// leaves out everything before it.
	ConvergeSkip time.Duration `json:"converge_skip,omitempty"`
	MeasureFrom  time.Duration `json:"measure_from,omitempty"`
	// SourceSteps change the most every flow's video source offers (its
	// R_max) at given times (row clock), in time order: the cc issue's
	// app-limited row.
	SourceSteps []SourceStep `json:"source_steps,omitempty"`
	// Baselines computes the playout baselines (Result.Baselines).
	Baselines bool `json:"baselines,omitempty"`
	// Default marks the rows a bare `spillway bench` runs.
	Default bool `json:"default"`
}

// SourceStep sets the video sources' R_max (VideoModel.Bitrate) from At on.
type SourceStep struct {
	At      time.Duration `json:"at"`
	Bitrate int64         `json:"bitrate"`
}

// end is where the schedule's times end: the media's end, on the row
// clock of a row with Flows.
func (s Scenario) end() time.Duration {
	if len(s.Flows) > 0 {
		return s.Flows[0].Start + s.Media
	}
	return s.Media
}

// TargetMode names what drives a scenario's transport target.
type TargetMode string

// Target modes.
const (
	TargetNominal  TargetMode = ""
	TargetScripted TargetMode = "scripted"
	// TargetGCC runs the delay-based controller (cc.GCC), started at
	// StartTarget (default 300 kbit/s).
	TargetGCC TargetMode = "gcc"
	// TargetGCC02 runs gcc-02 as written (cc.GCC02), the reference.
	TargetGCC02 TargetMode = "gcc02"
	// TargetFixed holds every media flow's transport target at
	// StartTarget (cc.Fixed), whatever the path does: a sender without
	// congestion control (SRT live, kcptun), as a baseline for the
	// controller's rows. The video source follows the TargetRate events
	// as with "gcc".
	TargetFixed TargetMode = "fixed"
)

// MaxMedia bounds a scenario's media duration: a run keeps per-second
// figures and per-frame records (6 h: about 2 M frames of the foundation's
// av traffic).
const MaxMedia = 6 * time.Hour

// Validate reports the first bad field.
func (s Scenario) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("scenario: empty name")
	case s.Name == "." || s.Name == ".." || strings.ContainsAny(s.Name, "/\\\x00"):
		// It names files (-pcap DIR/<name>-fwd.pcap).
		return fmt.Errorf("scenario %q: a name may not be . or .. nor hold a slash, backslash or NUL", s.Name)
	case s.Profile != ProfileRTC && s.Profile != ProfileLive:
		return fmt.Errorf("scenario %s: unknown profile %q", s.Name, s.Profile)
	case s.Media <= 0 || s.Media > MaxMedia:
		return fmt.Errorf("scenario %s: media duration %v outside (0, %v]", s.Name, s.Media, MaxMedia)
	case !(s.MaxFECOverhead >= 0 && s.MaxFECOverhead <= 1):
		return fmt.Errorf("scenario %s: max_fec_overhead %v outside [0, 1]", s.Name, s.MaxFECOverhead)
	case !(s.PlayoutQuantile >= 0 && s.PlayoutQuantile <= jitterbuffer.MaxQuantile):
		return fmt.Errorf("scenario %s: playout_quantile %v outside (0, %v]", s.Name, s.PlayoutQuantile, jitterbuffer.MaxQuantile)
	case s.Target != TargetNominal && s.Target != TargetScripted && s.Target != TargetGCC && s.Target != TargetGCC02 && s.Target != TargetFixed:
		return fmt.Errorf("scenario %s: unknown target %q", s.Name, s.Target)
	case s.StartTarget < 0:
		return fmt.Errorf("scenario %s: start_target %d bit/s is negative", s.Name, s.StartTarget)
	case s.Target == TargetFixed && s.StartTarget == 0:
		return fmt.Errorf("scenario %s: a fixed target needs start_target, the rate it holds", s.Name)
	case s.Target == TargetScripted && s.Forward.Rate <= 0:
		return fmt.Errorf("scenario %s: a scripted target follows the forward link's rate, which is unlimited", s.Name)
	case s.TargetLag < 0 || !(s.TargetShare >= 0 && s.TargetShare <= 1):
		return fmt.Errorf("scenario %s: target lag %v / share %v invalid", s.Name, s.TargetLag, s.TargetShare)
	case s.LossStop < 0 || s.LossStop > s.Media:
		return fmt.Errorf("scenario %s: loss stop %v outside the media", s.Name, s.LossStop)
	}
	if err := s.validateFlows(); err != nil {
		return err
	}
	if s.ConvergeSkip < 0 || s.MeasureFrom < 0 {
		return fmt.Errorf("scenario %s: negative converge skip or measure-from", s.Name)
	}
	for i, st := range s.SourceSteps {
		if st.Bitrate <= 0 || st.At < 0 || (i > 0 && st.At < s.SourceSteps[i-1].At) || s.Traffic.Video.FPS == 0 {
			return fmt.Errorf("scenario %s: source step %d: needs video, a positive bitrate and time order", s.Name, i)
		}
		if err := s.Traffic.Video.checkFrameSize(st.Bitrate); err != nil {
			return fmt.Errorf("scenario %s: source step %d: %w", s.Name, i, err)
		}
	}
	if err := s.ReceiverClock.Validate(); err != nil {
		return fmt.Errorf("scenario %s: receiver clock: %w", s.Name, err)
	}
	if err := s.Forward.Validate(); err != nil {
		return fmt.Errorf("scenario %s: forward link: %w", s.Name, err)
	}
	if err := s.Reverse.Validate(); err != nil {
		return fmt.Errorf("scenario %s: reverse link: %w", s.Name, err)
	}
	if err := s.Traffic.Validate(); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	// The reported loss and RTT (after the links, whose own checks name
	// the field a file set).
	switch {
	case !(s.Loss >= 0 && s.Loss <= 1):
		return fmt.Errorf("scenario %s: loss %v outside [0, 1]", s.Name, s.Loss)
	case s.RTT < 0:
		return fmt.Errorf("scenario %s: negative rtt %v", s.Name, s.RTT)
	}
	var prev time.Duration
	for i, st := range s.Schedule {
		if st.At < prev || st.At > s.end() {
			return fmt.Errorf("scenario %s: schedule[%d] at %v: not in time order within the media", s.Name, i, st.At)
		}
		prev = st.At
		if st.Forward != nil {
			if err := st.Forward.Validate(); err != nil {
				return fmt.Errorf("scenario %s: schedule[%d] forward link: %w", s.Name, i, err)
			}
		}
		if st.Reverse != nil {
			if err := st.Reverse.Validate(); err != nil {
				return fmt.Errorf("scenario %s: schedule[%d] reverse link: %w", s.Name, i, err)
			}
		}
	}
	return nil
}

// bottleneck is the default matrix's path, each way: 4 Mbit/s counting IPv4
// and UDP headers, a 300 ms drop-tail queue, random loss.
func bottleneck(rtt time.Duration, loss float64) netem.LinkConfig {
	return netem.LinkConfig{Delay: rtt / 2, Loss: loss, Rate: 4_000_000, QueueDelay: 300 * time.Millisecond, Overhead: netem.OverheadIPv4UDP}
}

func symmetric(name string, p Profile, rtt time.Duration, loss float64, media time.Duration, t Traffic) Scenario {
	return Scenario{Name: name, Profile: p, RTT: rtt, Loss: loss,
		Forward: bottleneck(rtt, loss), Reverse: bottleneck(rtt, loss), Traffic: t, Media: media}
}

// Scenarios returns every scenario the bench knows, default matrix first
// (DESIGN §9 names them).
func Scenarios() []Scenario {
	var out []Scenario
	for _, rtt := range []int{40, 100, 200} {
		for _, loss := range []int{0, 2, 5, 10} {
			s := symmetric(fmt.Sprintf("rtc-rtt%d-loss%d", rtt, loss), ProfileRTC,
				time.Duration(rtt)*time.Millisecond, float64(loss)/100, time.Minute, DefaultTraffic())
			s.Default = true
			out = append(out, s)
		}
	}
	out = append(out, symmetric("rtc-rtt100-loss1", ProfileRTC, 100*time.Millisecond, 0.01, time.Minute, DefaultTraffic()))

	lossStop := symmetric("fec-lossstop", ProfileRTC, 100*time.Millisecond, 0.05, time.Minute, DefaultTraffic())
	lossStop.LossStop = 30 * time.Second
	out = append(out, lossStop)
	// The same with Gilbert-Elliott bursts (10 %, burst 3): the
	// jitterbuffer issue's recovery-aware case.
	lossStopGE := lossStop
	lossStopGE.Name = "fec-lossstop-ge10b3"
	lossStopGE.Loss = 0.1
	lossStopGE.Forward.Loss, lossStopGE.Reverse.Loss = 0, 0
	lossStopGE.Forward.GE = netem.GEFromLossBurst(0.1, 3)
	lossStopGE.Reverse.GE = lossStopGE.Forward.GE
	out = append(out, lossStopGE)

	audioOnly := Traffic{Audio: DefaultTraffic().Audio}
	// The fec issue's audio case: 50 packets/s, 5 % random loss, at most
	// 25 % redundancy; RTT 200 ms, so no retransmission fits the budget
	// and FEC alone carries it.
	audio := symmetric("fec-audio-loss5", ProfileRTC, 200*time.Millisecond, 0.05, time.Minute, audioOnly)
	audio.MaxFECOverhead = 0.25
	out = append(out, audio)

	arqTraffic := DefaultTraffic()
	arqTraffic.Video.Bitrate = 2_000_000
	for _, loss := range []int{5, 10, 20} {
		out = append(out, symmetric(fmt.Sprintf("arq-rtt100-loss%d", loss), ProfileRTC, 100*time.Millisecond, float64(loss)/100, time.Minute, arqTraffic))
	}
	ge := symmetric("arq-rtt100-ge10b3", ProfileRTC, 100*time.Millisecond, 0.1, time.Minute, arqTraffic)
	// Gilbert-Elliott bursts: 10 % loss, mean burst 3 (p = 1/27, r = 1/3).
	ge.Forward.Loss, ge.Reverse.Loss = 0, 0
	ge.Forward.GE = netem.GEFromLossBurst(0.1, 3)
	ge.Reverse.GE = ge.Forward.GE
	out = append(out, ge)
	out = append(out, symmetric("live-rtt300-loss20", ProfileLive, 300*time.Millisecond, 0.2, 10*time.Minute, DefaultTraffic()))

	// The pacer issue's capacity collapse: 4 -> 0.5 Mbit/s for 10 s and
	// back, 50 ms one way, a 300 ms drop-tail queue; the target follows
	// capacity 0.5 s late.
	for _, p := range []Profile{ProfileRTC, ProfileLive} {
		name := "collapse-av"
		if p == ProfileLive {
			name += "-live"
		}
		out = append(out, collapse(name, p))
	}

	// The pacer issue's priority case: an application offering twice the
	// target (3.8 Mbit/s of video, key frames every 2 s, into a 2 Mbit/s
	// path whose target is 1.9 Mbit/s), 2 % loss each way: audio and
	// retransmissions must not wait behind the video.
	// In RTC such a source's key frames (478 ms of the target rate) can
	// never arrive in time; the Live variant's can, so its queue fills.
	for _, p := range []Profile{ProfileRTC, ProfileLive} {
		name := "pacer-priority"
		if p == ProfileLive {
			name += "-live"
		}
		prio := symmetric(name, p, 100*time.Millisecond, 0.02, time.Minute, DefaultTraffic())
		prio.Forward.Rate, prio.Reverse.Rate = 2_000_000, 2_000_000
		prio.Traffic.Video.Bitrate = 3_800_000
		prio.Target, prio.TargetLag, prio.TargetShare, prio.IgnoreTarget = TargetScripted, 500*time.Millisecond, 0.95, true
		out = append(out, prio)
	}

	out = append(out, ccRows()...)

	out = append(out, jitterBufferRows()...)

	det := symmetric("netem-determinism", ProfileRTC, 100*time.Millisecond, 0.05, 20*time.Second, DefaultTraffic())
	det.Forward.Jitter, det.Reverse.Jitter = 20*time.Millisecond, 20*time.Millisecond
	out = append(out, det)
	return out
}

// Select returns the default matrix when pattern is empty, else every
// scenario whose name matches the regular expression.
func Select(pattern string) ([]Scenario, error) {
	all := Scenarios()
	var out []Scenario
	if pattern == "" {
		for _, s := range all {
			if s.Default {
				out = append(out, s)
			}
		}
		return out, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("bench: -scenario: %w", err)
	}
	for _, s := range all {
		if re.MatchString(s.Name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no scenario matches %q", pattern)
	}
	return out, nil
}

// Collapse timing: capacity drops at collapseAt for collapseFor.
const (
	collapseAt   = 15 * time.Second
	collapseFor  = 10 * time.Second
	collapseRate = 500_000
)

func collapse(name string, p Profile) Scenario {
	s := symmetric(name, p, 100*time.Millisecond, 0, 40*time.Second, DefaultTraffic())
	low := s.Forward
	low.Rate = collapseRate
	high := s.Forward
	s.Schedule = []LinkStep{{At: collapseAt, Forward: &low}, {At: collapseAt + collapseFor, Forward: &high}}
	s.Target = TargetScripted
	s.TargetLag = 500 * time.Millisecond
	// A controller holds the path below its capacity (GCC backs off to
	// 0.85 x the measured rate): at 100 % the link's IP and UDP headers
	// alone would build a standing queue.
	s.TargetShare = 0.95
	// The foundation's av traffic (a key frame every 2 s, 8 x a delta),
	// its video encoder following TargetRate as the cc issue's RFC 8593
	// model does: at most 10 % per 100 ms, Laplacian size noise of 0.15.
	s.Traffic.Video.RateStep = 0.1
	s.Traffic.Video.Laplace = true
	s.Traffic.Video.Variation = 0.15
	return s
}

// jitterBufferRows are the jitterbuffer issue's rows. Adaptation rows run
// the foundation's av traffic at RTT 100 ms (50 ms each way, no loss) with
// the profile's bounds (RTC's MinPlayoutDelay is 0):
//   - jb-accumulate-*: 60 min, forward jitter redrawn every 30 s uniformly
//     from 0-100 ms (no reordering), ten 1 s stalls evenly spaced between
//     5 and 55 min;
//   - jb-stationary-30ms: RTC, 10 min, jitter 0-30 ms (no reordering),
//     no loss, with the baselines;
//   - jb-drain-*: 2 min, jitter 0-10 ms, one stall at 30 s: 1 s (RTC,
//     whose 0.8 s MaxPlayoutDelay caps the excess near 0.5 s) or 2 s
//     (Live, over its 1 s floor: about 1 s of excess).
//
// End-to-end rows, 10 min each: e2e-rtc-rtt100-loss5 (30 ms jitter),
// e2e-rtc-rtt200-ge10b3 (Gilbert-Elliott 10 %, burst 3),
// e2e-live-rtt300-loss20.
func jitterBufferRows() []Scenario {
	var out []Scenario
	for _, p := range []Profile{ProfileRTC, ProfileLive} {
		suffix := "-rtc"
		if p == ProfileLive {
			suffix = "-live"
		}
		acc := symmetric("jb-accumulate"+suffix, p, 100*time.Millisecond, 0, time.Hour, DefaultTraffic())
		// The redraws are part of the scenario (the same for every seed),
		// drawn once from a fixed stream.
		rng := rand.New(rand.NewPCG(0x6a62, 1))
		var steps []LinkStep
		// Ten stalls, 5 min apart from 7.5 min: the last at 52.5 min, each
		// on a redraw (with the link its period draws).
		const stalls = 10
		stallEvery := 50 * time.Minute / stalls
		var stall time.Duration = 5*time.Minute + stallEvery/2
		last := stall + (stalls-1)*stallEvery
		for at := time.Duration(0); at < time.Hour; at += 30 * time.Second {
			l := acc.Forward
			l.Jitter = time.Duration(rng.Int64N(int64(100*time.Millisecond) + 1))
			steps = append(steps, LinkStep{At: at, Forward: &l})
			if stall >= at && stall < at+30*time.Second && stall <= last {
				held := l
				held.HoldUntil = stall + time.Second
				back := l
				steps = append(steps, LinkStep{At: stall, Forward: &held}, LinkStep{At: stall + time.Second, Forward: &back})
				stall += stallEvery
			}
		}
		acc.Forward = *steps[0].Forward
		acc.Schedule = steps[1:]
		// The baselines compare offsets from capture, which Live's 1 s
		// floor would hide.
		acc.Baselines = p == ProfileRTC
		out = append(out, acc)
		if p == ProfileRTC {
			// The same trace with audio alone: no key frames, whose
			// transit (about 100 ms to cross 4 Mbit/s) sets the video's
			// tail whatever the jitter.
			audio := acc
			audio.Name = "jb-accumulate-rtc-audio"
			audio.Traffic = Traffic{Audio: DefaultTraffic().Audio}
			out = append(out, audio)
			// The near-optimal case's second late rate: the quantile
			// 0.999 (the default 0.99 gives about 0.6 %, this about 0.1 %).
			q := audio
			q.Name = "jb-accumulate-rtc-audio-q999"
			q.PlayoutQuantile = 0.999
			out = append(out, q)
			// The near-optimal case's stationary jitter: 30 ms
			// uniform, no reordering, no loss, 10 min, with the
			// baselines (ours against a fixed buffer).
			st := symmetric("jb-stationary-30ms", ProfileRTC, 100*time.Millisecond, 0, 10*time.Minute, DefaultTraffic())
			st.Forward.Jitter = 30 * time.Millisecond
			st.Baselines = true
			out = append(out, st)
		}

		drain := symmetric("jb-drain"+suffix, p, 100*time.Millisecond, 0, 2*time.Minute, DefaultTraffic())
		drain.Forward.Jitter = 10 * time.Millisecond
		hold := time.Second
		if p == ProfileLive {
			hold = 2 * time.Second
		}
		held := drain.Forward
		held.HoldUntil = 30*time.Second + hold
		back := drain.Forward
		drain.Schedule = []LinkStep{{At: 30 * time.Second, Forward: &held}, {At: 30*time.Second + hold, Forward: &back}}
		out = append(out, drain)
	}
	// jb-drift-*: the receiver's clock runs fast (or, -neg, slow) by 100
	// or 1000 ppm; 60 min, jitter 0-30 ms without reordering, no loss.
	for _, ppm := range []float64{100, 1000, -100, -1000} {
		name := fmt.Sprintf("jb-drift-%.0fppm", math.Abs(ppm))
		if ppm < 0 {
			name = fmt.Sprintf("jb-drift-neg%.0fppm", -ppm)
		}
		d := symmetric(name, ProfileRTC, 100*time.Millisecond, 0, time.Hour, DefaultTraffic())
		d.Forward.Jitter = 30 * time.Millisecond
		d.ReceiverClock = netem.Clock{PPM: ppm}
		out = append(out, d)
	}
	e1 := symmetric("e2e-rtc-rtt100-loss5", ProfileRTC, 100*time.Millisecond, 0.05, 10*time.Minute, DefaultTraffic())
	e1.Forward.Jitter, e1.Reverse.Jitter = 30*time.Millisecond, 30*time.Millisecond
	e2 := symmetric("e2e-rtc-rtt200-ge10b3", ProfileRTC, 200*time.Millisecond, 0.1, 10*time.Minute, DefaultTraffic())
	e2.Forward.Loss, e2.Reverse.Loss = 0, 0
	e2.Forward.GE = netem.GEFromLossBurst(0.1, 3)
	e2.Reverse.GE = e2.Forward.GE
	e3 := symmetric("e2e-live-rtt300-loss20", ProfileLive, 300*time.Millisecond, 0.2, 10*time.Minute, DefaultTraffic())
	return append(out, e1, e2, e3)
}
