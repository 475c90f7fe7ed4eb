package bench

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// Run runs one scenario in the simulator with the given seed and returns its
// row. The same scenario and seed give the same row, but for SimSpeed and
// WallS.
func Run(sc Scenario, seed uint64) (Result, error) {
	if err := sc.Validate(); err != nil {
		return Result{}, err
	}
	wallStart := time.Now()
	r := &run{sc: sc, latency: sc.Profile.Latency(), sim: netem.New(seed)}
	cfg := core.Config{Latency: r.latency}
	sndCfg, rcvCfg := cfg, cfg
	sndCfg.Rand = newSeeded(seed, 1)
	rcvCfg.Rand = newSeeded(seed, 2)
	rcvCfg.Accept = true
	sndEP, err := core.NewEndpoint(sndCfg)
	if err != nil {
		return Result{}, err
	}
	rcvEP, err := core.NewEndpoint(rcvCfg)
	if err != nil {
		return Result{}, err
	}
	maxFrame := 1
	if v := sc.Traffic.Video; v.FPS > 0 {
		maxFrame = int(float64(v.Bitrate)/8*v.KeyInterval.Seconds()*2) + 1 // far above any key frame
	}
	maxFrame = max(maxFrame, sc.Traffic.Audio.MaxSize)
	r.snd = &host{r: r, ep: sndEP, addr: senderAddr, sender: true, gen: NewGenerator(sc.Traffic, seed), payload: make([]byte, maxFrame)}
	r.rcv = &host{r: r, ep: rcvEP, addr: receiverAddr}
	if err := r.sim.AddNode(receiverAddr, r.rcv); err != nil {
		return Result{}, err
	}
	if err := r.sim.AddNode(senderAddr, r.snd); err != nil {
		return Result{}, err
	}
	if err := r.sim.Connect(senderAddr, receiverAddr, sc.Forward, sc.Reverse); err != nil {
		return Result{}, err
	}
	if _, err := sndEP.Connect(r.sim.Now(), receiverAddr); err != nil {
		return Result{}, err
	}
	// The handshake takes a round trip or a few (lost Hellos); media starts
	// when it completes and runs for sc.Media.
	limit := clock.Time(sc.Media + 30*time.Second)
	for r.err == nil {
		if !r.started {
			if r.sim.Now() > clock.Time(30*time.Second) {
				return Result{}, fmt.Errorf("bench %s: handshake did not complete in 30 s", sc.Name)
			}
			r.sim.RunUntil(r.sim.Now().Add(10 * time.Millisecond))
			continue
		}
		end := r.mediaEnd.Add(r.latency + drainAfter)
		if end > limit {
			end = limit
		}
		r.sim.RunUntil(end)
		break
	}
	if r.err != nil {
		return Result{}, fmt.Errorf("bench %s: %w", sc.Name, r.err)
	}
	res := r.result(seed)
	res.SimS = r.sim.Now().Sub(0).Seconds()
	res.WallS = time.Since(wallStart).Seconds()
	if res.WallS > 0 {
		res.SimSpeed = math.Round(res.SimS/res.WallS*10) / 10
	}
	return res, nil
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
			for _, w := range fr.avail {
				fragsAvail += int64(bits.OnesCount64(w))
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
	if r.payloadBytes > 0 {
		res.WireOverhead = round4(float64(fwdBytes) / float64(r.payloadBytes))
		res.WireOverheadIP = round4(float64(fwdBytes+netem.OverheadIPv4UDP*fwdPackets) / float64(r.payloadBytes))
	}
	res.MediaPackets = r.fwd.packets[wire.TypeData]
	res.MediaBytes = r.fwd.bytes[wire.TypeData]
	res.FECBytes = r.fwd.bytes[wire.TypeRepair]
	res.RTXBytes = r.fwd.bytes[wire.TypeRetransmit]
	res.FeedbackBytes = r.fwd.bytes[wire.TypeFeedback] + r.rev.bytes[wire.TypeFeedback]
	res.Retransmissions = r.fwd.packets[wire.TypeRetransmit]
	res.LostPackets = res.MediaPackets + res.Retransmissions - r.mediaArrived - r.rtxArrived
	if conns := r.rcv.ep.Conns(); len(conns) > 0 {
		res.RecoveredFEC = conns[0].Stats().FECReceived.PacketsRecovered
	}
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
