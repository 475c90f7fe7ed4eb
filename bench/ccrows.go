package bench

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/spillway-rt/spillway/netem"
)

// The cc issue's rows (SCENARIOS.md, RFC 8867), all with its controller
// (Target "gcc") and RFC 8593 sources with the foundation's audio beside
// them; their results add phases and flows.

// rfc8867Path is RFC 8867's common bottleneck: capacity c counting IPv4
// and UDP headers, a 300 ms drop-tail queue (its byte bound recomputed when
// the capacity changes), jitter uniform in 0-30 ms after it without
// reordering, no loss. The propagation delay is each flow's access delay.
func rfc8867Path(c int64) netem.LinkConfig {
	return netem.LinkConfig{Rate: c, QueueDelay: 300 * time.Millisecond, Overhead: netem.OverheadIPv4UDP, Jitter: 30 * time.Millisecond}
}

// rfc8867Row is a row on that path: flows media flows, each 50 ms one way
// unless changed, the source from 150 kbit/s to rmax.
func rfc8867Row(name string, dur time.Duration, c int64, flows int, rmax int64) Scenario {
	t := Traffic{Video: RFC8593Video(RFC8867MinBitrate, rmax), Audio: DefaultTraffic().Audio}
	s := Scenario{Name: name, Profile: ProfileRTC, RTT: 100 * time.Millisecond, Forward: rfc8867Path(c),
		Traffic: t, Media: dur, Target: TargetGCC, Reference: true}
	for range flows {
		s.Flows = append(s.Flows, FlowSpec{Delay: 50 * time.Millisecond})
	}
	return s
}

// capSteps returns a schedule of bottleneck capacities (row clock).
func capSteps(base netem.LinkConfig, steps ...any) []LinkStep {
	var out []LinkStep
	for i := 0; i+1 < len(steps); i += 2 {
		l := base
		l.Rate = steps[i+1].(int64)
		out = append(out, LinkStep{At: steps[i].(time.Duration), Forward: &l})
	}
	return out
}

func ccRows() []Scenario {
	var out []Scenario
	// 5.1: one flow, 1.0, 2.5, 0.6, 1.0 Mbit/s at 0, 40, 60, 80 s; R_max
	// 1.5 Mbit/s, and the variant with 4 Mbit/s.
	for _, rmax := range []int64{1_500_000, 4_000_000} {
		name := "rfc8867-5.1"
		if rmax == 4_000_000 {
			name += "-rmax4"
		}
		s := rfc8867Row(name, 100*time.Second, 1_000_000, 1, rmax)
		s.Schedule = capSteps(s.Forward, 40*time.Second, int64(2_500_000), 60*time.Second, int64(600_000), 80*time.Second, int64(1_000_000))
		out = append(out, s)
	}
	// 5.1 with the receiver's clock 1000 ppm fast, and slow: no figure
	// should move by more than 5 % (the delay signal is robust to skew).
	for _, ppm := range []float64{1000, -1000} {
		s := out[0]
		s.Name = "rfc8867-5.1-skew1000"
		if ppm < 0 {
			s.Name = "rfc8867-5.1-skewneg1000"
		}
		s.Schedule = slices.Clone(s.Schedule)
		s.Flows = slices.Clone(s.Flows)
		s.ReceiverClock = netem.Clock{PPM: ppm}
		out = append(out, s)
	}
	// 5.2: two flows, 4.0, 2.0, 3.5, 1.0, 2.0 at 0, 25, 50, 75, 100 s.
	s := rfc8867Row("rfc8867-5.2", 125*time.Second, 4_000_000, 2, 1_500_000)
	s.Schedule = capSteps(s.Forward, 25*time.Second, int64(2_000_000), 50*time.Second, int64(3_500_000),
		75*time.Second, int64(1_000_000), 100*time.Second, int64(2_000_000))
	out = append(out, s)
	// 5.3: one media flow each way. The forward bottleneck is 2.0, 1.0,
	// 0.5, 2.0 Mbit/s at 0, 20, 40, 60 s; the reverse one, which carries
	// the forward flow's feedback and the other flow's media, 2.0, 0.8,
	// 2.0 at 0, 35, 70 s. The control run holds the reverse one at 2.0
	// (forward cuts in 35-70 s, FlowResult.TargetCuts1s, at most one more
	// than it); -revloss10 adds 10 % random loss to the reverse path only
	// (forward throughput within 0.05 of the lossless row).
	for _, v := range []struct {
		suffix string
		steps  bool
		loss   float64
	}{{"", true, 0}, {"-control", false, 0}, {"-revloss10", true, 0.1}} {
		s := rfc8867Row("rfc8867-5.3"+v.suffix, 100*time.Second, 2_000_000, 2, 1_500_000)
		s.Flows[1].Reverse = true
		s.Reverse = rfc8867Path(2_000_000)
		s.Reverse.Loss = v.loss
		s.Schedule = capSteps(s.Forward, 20*time.Second, int64(1_000_000), 40*time.Second, int64(500_000), 60*time.Second, int64(2_000_000))
		if v.steps {
			for _, rs := range []struct {
				at   time.Duration
				rate int64
			}{{35 * time.Second, 800_000}, {70 * time.Second, 2_000_000}} {
				rev := s.Reverse
				rev.Rate = rs.rate
				s.Schedule = append(s.Schedule, LinkStep{At: rs.at, Reverse: &rev})
			}
			slices.SortStableFunc(s.Schedule, func(a, b LinkStep) int { return cmp.Compare(a.At, b.At) })
		}
		out = append(out, s)
	}
	// 5.4: three flows joining at 0, 20, 40 s on 3.5 Mbit/s, measured
	// from 10 s after each join.
	s = rfc8867Row("rfc8867-5.4", 120*time.Second, 3_500_000, 3, 1_500_000)
	s.Flows[1].Start, s.Flows[2].Start = 20*time.Second, 40*time.Second
	s.ConvergeSkip = 10 * time.Second
	out = append(out, s)
	// 5.5: five flows, one way 10, 25, 50, 100, 150 ms, joining every 10 s,
	// on 3.5 and on 4.0 Mbit/s, measured over 100-299 s as the cc issue
	// judges RTT fairness (from the last join at 40 s it took in the
	// flows' first minute together).
	for _, c := range []int64{3_500_000, 4_000_000} {
		s := rfc8867Row(fmt.Sprintf("rfc8867-5.5-%.1f", float64(c)/1e6), 300*time.Second, c, 5, 1_500_000)
		for i, d := range []int{10, 25, 50, 100, 150} {
			s.Flows[i].Delay = time.Duration(d) * time.Millisecond
			s.Flows[i].Start = time.Duration(i) * 10 * time.Second
		}
		s.MeasureFrom = 100 * time.Second
		out = append(out, s)
	}
	// 5.6: media from 5 s against one bulk TCP flow (CUBIC, or NewReno)
	// from 0 s on 2 Mbit/s, measured from 20 s; the TCP flow stops at
	// 119 s (SCENARIOS.md's end of the media) and the media goes on to
	// 130 s, past SCENARIOS.md's 120 s, for the cc issue's queueing once
	// TCP stops. A 300 ms queue in RTC, a 1000 ms one in Live and in RTC.
	for _, v := range []netem.TCPVariant{netem.TCPCubic, netem.TCPReno} {
		for _, q := range []struct {
			suffix string
			queue  time.Duration
			p      Profile
		}{{"", 300 * time.Millisecond, ProfileRTC}, {"-q1000-live", time.Second, ProfileLive}, {"-q1000", time.Second, ProfileRTC}} {
			name := "rfc8867-5.6" + q.suffix
			if v == netem.TCPReno {
				name = "rfc8867-5.6-newreno" + q.suffix
			}
			s := rfc8867Row(name, 125*time.Second, 2_000_000, 1, 1_500_000)
			s.Profile = q.p
			s.Forward.QueueDelay = q.queue
			s.Flows[0].Start = 5 * time.Second
			s.Cross = []CrossSpec{{Variant: v, Delay: 50 * time.Millisecond, Stop: 119 * time.Second}}
			s.MeasureFrom = 20 * time.Second
			out = append(out, s)
		}
	}
	// 5.7: two media flows 5-299 s against ten on/off TCP flows (two
	// start on) of 30-50 kB files with exponential idle times of mean 10 s.
	s = rfc8867Row("rfc8867-5.7", 294*time.Second, 2_000_000, 2, 1_500_000)
	s.Flows[0].Start, s.Flows[1].Start = 5*time.Second, 5*time.Second
	for i := range 10 {
		s.Cross = append(s.Cross, CrossSpec{Variant: netem.TCPCubic, Delay: 50 * time.Millisecond,
			FileSize: 30_000, FileSizeMax: 50_000, IdleMean: 10 * time.Second, StartIdle: i >= 2})
	}
	out = append(out, s)
	// 5.8: three flows on 3.5 Mbit/s; the third pauses at 40 s and
	// resumes at 60 s.
	s = rfc8867Row("rfc8867-5.8", 120*time.Second, 3_500_000, 3, 1_500_000)
	s.Flows[2].PauseAt, s.Flows[2].ResumeAt = 40*time.Second, 60*time.Second
	out = append(out, s)

	// Outside RFC 8867, R_max 4 Mbit/s (SCENARIOS.md: the rest of RFC
	// 8867's source, from 150 kbit/s, as it is), one flow, jitter only
	// where named.
	single := func(name string, c int64, oneWay time.Duration, loss float64, media time.Duration) Scenario {
		s := symmetric(name, ProfileRTC, 2*oneWay, loss, media, Traffic{Video: RFC8593Video(RFC8867MinBitrate, 4_000_000), Audio: DefaultTraffic().Audio})
		s.Forward.Rate, s.Reverse.Rate = c, c
		s.Target, s.Reference = TargetGCC, true
		return s
	}
	// The collapse: 4 -> 0.5 Mbit/s for 10 s at 15 s and back; 50 ms one
	// way; a 300 ms queue.
	col := single("collapse", 4_000_000, 50*time.Millisecond, 0, 40*time.Second)
	low, high := col.Forward, col.Forward
	low.Rate = collapseRate
	col.Schedule = []LinkStep{{At: collapseAt, Forward: &low}, {At: collapseAt + collapseFor, Forward: &high}}
	col.StartTarget = 1_000_000
	col.Traffic.Video.StartBitrate = 1_000_000
	out = append(out, col)
	// App-limited: 4 Mbit/s, 50 ms one way; the application offers at most
	// 784 kbit/s for 60 s, then asks for 3 Mbit/s.
	app := single("app-limited", 4_000_000, 50*time.Millisecond, 0, 90*time.Second)
	// Both totals are audio and video together: the video gets what the
	// audio (48 kbit/s on average) leaves.
	audio := int64(app.Traffic.Audio.FPS * float64(app.Traffic.Audio.MinSize+app.Traffic.Audio.MaxSize) / 2 * 8)
	app.Traffic.Video.Bitrate = 784_000 - audio
	app.SourceSteps = []SourceStep{{At: 60 * time.Second, Bitrate: 3_000_000 - audio}}
	out = append(out, app)
	// Random loss (both ways) and jitter on 2 Mbit/s, 100 ms one way,
	// measured after 30 s.
	for _, loss := range []int{5, 10, 20} {
		s := single(fmt.Sprintf("random-loss-%d", loss), 2_000_000, 100*time.Millisecond, float64(loss)/100, 60*time.Second)
		s.MeasureFrom = 30 * time.Second
		out = append(out, s)
	}
	jit := single("jitter-30", 2_000_000, 100*time.Millisecond, 0, 60*time.Second)
	jit.Forward.Jitter = 30 * time.Millisecond
	jit.MeasureFrom = 30 * time.Second
	out = append(out, jit)
	return out
}
