package bench

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// Run runs one scenario in the simulator with the given seed and returns its
// row. The same scenario and seed give the same row, but for SimSpeed and
// WallS.
func Run(sc Scenario, seed uint64) (Result, error) {
	return RunWith(sc, seed, RunOptions{})
}

func (r *run) result(seed uint64) Result {
	sc := r.sc
	res := Result{
		Scenario:        sc.Name,
		Profile:         sc.Profile,
		Seed:            seed,
		RTTMS:           ms(sc.RTT),
		Loss:            sc.Loss,
		LatencyBudgetMS: ms(r.latency),
		MediaS:          sc.Media.Seconds(),
		Streams:         map[string]StreamResult{},
		PayloadBytes:    r.payloadBytes,
		Corrupt:         r.corrupt,
	}
	if sc.LossStop > 0 {
		s := sc.LossStop.Seconds()
		res.LossStopS = &s
	}
	res.Phases, res.Flows = r.phasesAndFlows()
	if b := r.appBound; b != nil && b.checked {
		v := round4(b.maxRatio)
		res.AppLimitedBoundMax = &v
	}
	var all []float64
	onTime, goodBytes := 0, int64(0)
	var fragsSent, fragsAvail int64
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		var lat []float64
		ok := 0
		for i := range st.frames {
			fr := &st.frames[i]
			l := math.Inf(1)
			if fr.completed != clock.Never {
				l = ms(fr.completed.Sub(fr.submit))
				goodBytes += int64(fr.size)
				if fr.completed <= r.deadline(fr) {
					ok++
				}
			}
			if fr.dropped {
				res.SenderDropped++
			}
			if fr.completed <= r.deadline(fr) {
				// Complete in time: every fragment was available, whether
				// it arrived, was retransmitted or FEC rebuilt it.
				fragsAvail += int64(fr.frags)
			} else {
				for _, w := range fr.avail {
					fragsAvail += int64(bits.OnesCount64(w))
				}
			}
			lat = append(lat, l)
		}
		all = append(all, lat...)
		onTime += ok
		res.FramesSent += len(st.frames)
		sr := StreamResult{FramesSent: len(st.frames), LatencyMS: percentiles(lat)}
		if len(st.frames) > 0 {
			sr.OnTimeRatio = float64(ok) / float64(len(st.frames))
		}
		res.Streams[st.source.String()] = sr
	}
	if res.FramesSent > 0 {
		res.OnTimeRatio = float64(onTime) / float64(res.FramesSent)
	}
	res.LatencyMS = percentiles(all)
	res.GoodputBPS = math.Round(float64(goodBytes) * 8 / sc.Media.Seconds())

	fwdPackets, fwdBytes := r.fwd.total()
	fwdPackets, fwdBytes = fwdPackets+r.padPackets, fwdBytes+r.padBytes
	if r.payloadBytes > 0 {
		res.WireOverhead = round4(float64(fwdBytes) / float64(r.payloadBytes))
		res.WireOverheadIP = round4(float64(fwdBytes+netem.OverheadIPv4UDP*fwdPackets) / float64(r.payloadBytes))
	}
	res.MediaPackets = r.fwd.packets[wire.TypeData]
	res.MediaBytes = r.fwd.bytes[wire.TypeData]
	res.FECBytes = r.fwd.bytes[wire.TypeRepair]
	res.FECPackets = r.fwd.packets[wire.TypeRepair]
	res.RTXBytes = r.fwd.bytes[wire.TypeRetransmit]
	res.ProbePaddingPackets, res.ProbePaddingBytes = r.padPackets, r.padBytes
	res.FeedbackBytes = r.fwd.bytes[wire.TypeFeedback] + r.rev.bytes[wire.TypeFeedback]
	res.Retransmissions = r.fwd.packets[wire.TypeRetransmit]
	res.LostPackets = res.MediaPackets + res.Retransmissions - r.mediaArrived - r.rtxArrived
	if conns := r.rcv.ep.Conns(); len(conns) > 0 {
		st := conns[0].Stats()
		res.RecoveredFEC = st.FECReceived.PacketsRecovered
		res.ReceiverDroppedBySender = st.FramesDroppedBySender
	}
	res.RTXForDropped = r.rtxDropped
	if unrecovered := res.LostPackets - res.RecoveredFEC; unrecovered > 0 {
		v := round4(float64(res.Retransmissions) / float64(unrecovered))
		res.RTXPerLoss = &v
	}
	res.RTXSentTooLate = r.rtxTooLate
	res.RTXArrivedLate = r.rtxLate
	fragsSent = res.MediaPackets
	if fragsSent > 0 {
		res.ResidualLoss = round6(float64(fragsSent-min(fragsAvail, fragsSent)) / float64(fragsSent))
	}
	r.windows(&res)
	r.playoutMetrics(&res)
	if r.sc.Baselines {
		res.Baselines = r.baselines(r.drainRate, r.maxPlayout)
	}
	res.AllowanceMSAtLossStop, res.AllowanceMS10sAfterStop = r.allowStop, r.allowAfter
	if len(r.allowLoss) > 0 {
		p := percentiles(r.allowLoss)
		res.AllowanceMSDuringLoss = &p
	}
	res.RecoveryMS = r.recoveryTimes()
	if len(r.driftEach) >= 30 {
		res.DriftPPM30s = round4(r.driftEach[29])
	}
	res.DriftPPMEnd = round4(r.driftPPM())
	if truth := r.sc.ReceiverClock.PPM; truth != 0 && len(r.driftEach) > 0 {
		// The first second from which the estimate stays within ±10 ppm.
		settled := len(r.driftEach)
		for settled > 0 && math.Abs(r.driftEach[settled-1]-truth) <= 10 {
			settled--
		}
		if settled < len(r.driftEach) {
			v := float64(settled + 1)
			res.DriftSettledS = &v
		}
	}
	if r.snd.conn != nil {
		st := r.snd.conn.Stats()
		res.PacerQueueMSMax = round4(ms(st.PacerQueueDelayMax))
		res.RTXBehindFrames = st.RetransmissionsBehindFrames
		res.SenderDroppedBy = map[string]map[string]int64{}
		for why := range st.SendDrops.Frames {
			for c, n := range st.SendDrops.Frames[why] {
				if n == 0 {
					continue
				}
				name := core.DropReason(why).String()
				if res.SenderDroppedBy[name] == nil {
					res.SenderDroppedBy[name] = map[string]int64{}
				}
				res.SenderDroppedBy[name][cc.Class(c).String()] = n
			}
		}
		if g := st.Congestion; g.Groups > 0 { // zero unless the sender runs cc.GCC
			res.Controller = &ControllerResult{Overuses: g.Overuses, OveruseCuts: g.Decreases, StandingCuts: g.StandingCuts,
				LossCuts: g.LossCuts, Undos: g.Undos, DrainRestores: g.DrainRestores, CompetitiveEntries: g.CompetitiveEntries, Probes: g.Probes,
				ProbeHits: g.ProbeHits, UpProbes: g.UpProbes, UpProbeMisses: g.UpProbeMisses, CutsAfterUpProbe: g.CutsAfterUpProbe}
		}
		res.PacerWaitMS = map[string]WaitResult{}
		for c, w := range st.PacerWait {
			if w.Count > 0 {
				res.PacerWaitMS[cc.Class(c).String()] = WaitResult{Count: w.Count, P50: round4(ms(w.P50)),
					P99: round4(ms(w.P99)), Max: round4(ms(w.Max))}
			}
		}
	}
	res.FECOverhead1s = make([]float64, len(r.mediaPerSec))
	for i := range r.mediaPerSec {
		if r.mediaPerSec[i] > 0 {
			res.FECOverhead1s[i] = round4(float64(r.fecPerSec[i]) / float64(r.mediaPerSec[i]))
		}
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func round4(v float64) float64   { return math.Round(v*1e4) / 1e4 }
func round6(v float64) float64   { return math.Round(v*1e6) / 1e6 }

// windows computes the per-second figures: the p95 latency of the frames
// completed in each 1 s window of the media (by completion time; frames
// the sender dropped are not there, nor those completed within a second
// after a capacity drop), the video bytes completed per
// second, and the share of completed frames that completed after their
// deadline.
func (r *run) windows(res *Result) {
	secs := int(math.Ceil((r.sc.Media + r.latency + drainAfter).Seconds()))
	drops := r.capacityDrops()
	lat := make([][]float64, secs)
	res.VideoDelivered1s = make([]int64, secs)
	var delivered, late int
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for i := range st.frames {
			fr := &st.frames[i]
			if fr.completed == clock.Never {
				continue
			}
			delivered++
			if fr.completed > r.deadline(fr) {
				late++
			}
			w := int(fr.completed.Sub(r.mediaStart) / time.Second)
			if w < 0 || w >= secs {
				continue
			}
			if st.source == SourceVideo {
				res.VideoDelivered1s[w] += int64(fr.size)
			}
			if !afterDrop(drops, fr.completed) {
				lat[w] = append(lat[w], ms(fr.completed.Sub(fr.submit)))
			}
		}
	}
	if delivered > 0 {
		res.LateDeliveredRatio = round6(float64(late) / float64(delivered))
	}
	res.SenderDroppedAfterDropS = r.droppedAfterDrops()
	res.WindowP95LatencyMS = make([]*float64, secs)
	for w := range lat {
		if len(lat[w]) == 0 {
			continue
		}
		p := percentiles(lat[w]).P95
		res.WindowP95LatencyMS[w] = p
		if p != nil && *p > res.WindowP95LatencyMSMax {
			res.WindowP95LatencyMSMax = *p
		}
	}
}

// capacityDrop is a drop of the forward link's capacity: when it came and
// when the next capacity change (or the media's end) did, on the
// simulator's clock.
type capacityDrop struct{ at, until clock.Time }

// capacityDrops lists the forward link's capacity drops. Schedule times
// count from the media's start, or in a row with Flows from the run's
// (r.acct.origin): the windows and frame times count from the media's
// start, about a handshake later, so the steps are placed on the
// simulator's clock first.
func (r *run) capacityDrops() []capacityDrop {
	var out []capacityDrop
	rate := r.sc.Forward.Rate
	for i, step := range r.sc.Schedule {
		if step.Forward == nil {
			continue
		}
		newRate := step.Forward.Rate
		if newRate > 0 && (rate == 0 || newRate < rate) {
			d := capacityDrop{at: r.acct.origin.Add(step.At), until: r.mediaEnd}
			for _, next := range r.sc.Schedule[i+1:] {
				if next.Forward != nil && next.Forward.Rate != newRate {
					d.until = r.acct.origin.Add(next.At)
					break
				}
			}
			out = append(out, d)
		}
		rate = newRate
	}
	return out
}

// afterDrop reports whether t falls within the first second after a
// capacity drop: no sender can know of it before feedback says so.
func afterDrop(drops []capacityDrop, t clock.Time) bool {
	for _, d := range drops {
		if t >= d.at && t < d.at.Add(time.Second) {
			return true
		}
	}
	return false
}

// droppedAfterDrops is SenderDroppedAfterDropS: for each capacity drop of
// the forward link and each stream, the stream's media seconds (frames x
// frame interval) the sender dropped among the frames captured from the
// drop until the next capacity change; the largest.
func (r *run) droppedAfterDrops() float64 {
	best := 0.0
	for _, d := range r.capacityDrops() {
		for _, st := range r.streams {
			if st == nil {
				continue
			}
			fps := r.sc.Traffic.Video.FPS
			if st.source == SourceAudio {
				fps = r.sc.Traffic.Audio.FPS
			}
			secs := 0.0
			for k := range st.frames {
				fr := &st.frames[k]
				if fr.dropped && fr.submit >= d.at && fr.submit < d.until && fps > 0 {
					secs += 1 / fps
				}
			}
			best = max(best, secs)
		}
	}
	return round4(best)
}

// playoutMetrics fills the jitter buffer's fields from when the receiver
// released each frame (the simulator's clock): capture-to-playout
// percentiles and their least-squares trend, W3C freezes and pauses of the
// video, and the largest A/V offset (a video frame's capture-to-playout
// against the last audio frame's before it).
func (r *run) playoutMetrics(res *Result) {
	var lat []float64
	var n, sx, sy, sxx, sxy float64
	var played, onTime int64
	var audio, video []frameRec
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for _, fr := range st.frames {
			if fr.playout == clock.Never {
				continue
			}
			played++
			if !fr.late {
				onTime++
			}
			l := ms(fr.playout.Sub(fr.submit))
			lat = append(lat, l)
			x := fr.submit.Sub(r.mediaStart).Minutes()
			n++
			sx += x
			sy += l
			sxx += x * x
			sxy += x * l
			switch st.source {
			case SourceAudio:
				audio = append(audio, fr)
			case SourceVideo:
				if !fr.undecodable { // a decoder renders only what it can decode
					video = append(video, fr)
				}
			}
		}
	}
	res.PlayoutLatencyMS = percentiles(lat)
	if n > 0 {
		res.PlayoutLatencyMSMean = round4(sy / n)
	}
	if d := n*sxx - sx*sx; n > 1 && d > 0 {
		res.LatencySlopeMSPerMin = round6((n*sxy - sx*sy) / d)
	}
	if frames := res.FramesSent; frames > 0 {
		res.PlayedOnTimeRatio = round6(float64(onTime) / float64(frames))
	}
	if r.sc.Media >= 10*time.Minute {
		res.ExcessMSFirst5, res.ExcessMSLast5 = r.meanExcess(0, 5*time.Minute), r.meanExcess(r.sc.Media-5*time.Minute, r.sc.Media)
	}
	// W3C webrtc-stats: a freeze is an interval between rendered (released
	// and decodable) frames of
	// at least max(3 avg, avg + 150 ms), avg over the last 30 intervals; a
	// pause, none rendered for more than 5 s.
	var ring [30]time.Duration
	var k int
	var sum time.Duration
	for i := 1; i < len(video); i++ {
		d := video[i].playout.Sub(video[i-1].playout)
		switch {
		case d > 5*time.Second:
			res.PauseCount++
		case k > 0:
			avg := sum / time.Duration(min(k, len(ring)))
			if d >= max(3*avg, avg+150*time.Millisecond) {
				res.FreezeCount++
				res.TotalFreezesDurationS += d.Seconds()
				if r.trace != nil {
					fmt.Fprintf(r.trace, "%s freeze video ms=%.1f after_frame_captured=%s\n", r.traceAt(video[i-1].playout),
						ms(d), r.traceAt(video[i-1].submit))
				}
			}
		}
		j := k % len(ring)
		if k >= len(ring) {
			sum -= ring[j]
		}
		ring[j] = d
		sum += d
		k++
	}
	res.TotalFreezesDurationS = round6(res.TotalFreezesDurationS)
	// A/V offset at each rendered video frame: its capture-to-playout
	// minus that of the audio playing at the same moment: the last audio
	// frame released at or before it if that one still plays (it lasts an
	// audio frame interval), else, the audio being silent (a pause, or the
	// gap a step up of the offset leaves), the next one, which carries the
	// offset audio resumes at. Rendered as the jitterbuffer issue's terms
	// have it: released at its playout time. Frames played late (completed
	// after it: the burst a stall releases, a repair that came late) are
	// left out on both sides: released together, their capture times differ
	// by the stall, which is not an offset between the streams' playout.
	var aOn []frameRec
	for _, fr := range audio {
		if !fr.late {
			aOn = append(aOn, fr)
		}
	}
	aDur := time.Duration(0)
	if f := r.sc.Traffic.Audio.FPS; f > 0 {
		aDur = time.Duration(float64(time.Second) / f)
	}
	a := -1
	var worst time.Duration
	for _, v := range video {
		if v.late {
			continue
		}
		for a+1 < len(aOn) && aOn[a+1].playout <= v.playout {
			a++
		}
		n := a
		if n < 0 || v.playout.Sub(aOn[n].playout) >= aDur {
			n++ // silent: the audio to come
		}
		if n >= len(aOn) {
			continue // no audio plays near it
		}
		d := v.playout.Sub(v.submit) - aOn[n].playout.Sub(aOn[n].submit)
		if d.Abs() > 40*time.Millisecond && r.trace != nil {
			fmt.Fprintf(r.trace, "%s avoffset ms=%.1f video_ms=%.1f audio_ms=%.1f\n", r.traceAt(v.playout), ms(d),
				ms(v.playout.Sub(v.submit)), ms(aOn[n].playout.Sub(aOn[n].submit)))
		}
		worst = max(worst, d.Abs())
	}
	res.AVOffsetMSMax = round4(ms(worst))
}

// meanExcess is the mean playout excess (ms) of the frames released
// between from and to after the media's start, or nil if none was.
func (r *run) meanExcess(from, to time.Duration) *float64 {
	var sum time.Duration
	var n int64
	lo, hi := r.mediaStart.Add(from), r.mediaStart.Add(to)
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for _, fr := range st.frames {
			if fr.playout != clock.Never && fr.playout >= lo && fr.playout < hi {
				sum += fr.excess
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	v := round4(ms(sum) / float64(n))
	return &v
}
