package fec

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// A small link simulation around one Encoder and one Decoder: the bench's
// default streams (audio at 50 packets/s of 80-160 B; 30 fps video at
// 1.5 Mbit/s, a key frame 8x a delta every 2 s, sizes +-10 %), video paced
// at 2.5x its rate, audio and repair packets sent at once, every packet
// delayed by the one-way delay and lost by the loss model, no
// retransmission. It measures what the package decides alone: frames
// complete (every packet received or recovered) by capture + budget, and
// FEC bytes per media byte. The end-to-end rows (pacer, ARQ, congestion)
// are measured by `spillway bench`.
type simConfig struct {
	enc      EncoderConfig
	duration time.Duration
	budget   time.Duration
	oneWay   time.Duration
	loss     func(t time.Duration) lossModel                       // the link's model at time t
	cond     func(t time.Duration, loss, burst float64) Conditions // from the measured loss and burst
	audio    bool
	video    bool
	seed     uint64
}

type simFrame struct {
	capture, deadline clock.Time
	pns               []int64
	audio, key        bool
}

type simResult struct {
	audioFrames, audioOnTime int
	videoFrames, videoOnTime int
	mediaBytes, fecBytes     [600]int64 // per second
	mediaPackets, fecPackets int64
	lostBefore, lostAfter    int64 // media packets lost on the link; not available by their deadline
}

func (r *simResult) overhead(from, to int) float64 {
	var m, f int64
	for s := from; s < to; s++ {
		m += r.mediaBytes[s]
		f += r.fecBytes[s]
	}
	return float64(f) / float64(m)
}

func runSim(t *testing.T, cfg simConfig) *simResult {
	e, err := NewEncoder(cfg.enc)
	require.NoError(t, err)
	d := newDecoder(t)
	rng := rand.New(rand.NewPCG(cfg.seed, 99))
	res := &simResult{}
	const (
		fps        = 30
		videoRate  = 1_500_000
		keyEvery   = 60
		keyFactor  = 8
		pacingRate = 2.5 * videoRate
		mtu        = 1200
	)
	deltaSize := float64(videoRate) / 8 * 2 / float64(keyEvery-1+keyFactor) // bytes: a 2 s GOP carries the rate
	var avail []clock.Time                                                  // by packet number: when the receiver has it; 0: not
	var frames []*simFrame
	var videoQ []struct {
		f   *simFrame
		eof bool
		n   int
		cls Class
	}
	var pn int64
	var nextPace clock.Time
	var curLoss lossModel
	var est LossEstimator
	var feedback []struct { // outcomes the sender learns one RTT after sending
		at   clock.Time
		lost bool
	}
	buf := make([]byte, DefaultMaxSymbol+SymbolOverhead)
	out := make([]byte, DefaultMaxSymbol)
	payload := make([]byte, mtu)

	// send puts a packet on the link at now; deliver hands the receiver
	// what arrives (in order: no reordering, constant delay).
	send := func(now clock.Time, media bool, lost bool) {
		feedback = append(feedback, struct {
			at   clock.Time
			lost bool
		}{now, lost})
	}
	type arrival struct {
		at     clock.Time
		pn     int64
		media  bool
		b      Block
		sym    []byte
		length int
	}
	var inflight []arrival
	deliver := func(upTo clock.Time) {
		i := 0
		for ; i < len(inflight) && inflight[i].at <= upTo; i++ {
			a := inflight[i]
			if a.media {
				d.OnMedia(a.at, a.pn, payload[:a.length])
				if avail[a.pn] == 0 {
					avail[a.pn] = a.at
				}
			} else {
				d.OnRepair(a.at, a.b, a.sym)
			}
			for {
				rpn, _, ok := d.PollRecovered(out)
				if !ok {
					break
				}
				if avail[rpn] == 0 {
					avail[rpn] = a.at
				}
			}
		}
		inflight = inflight[i:]
	}
	sec := func(now clock.Time) int { return min(int(time.Duration(now)/time.Second), len(res.mediaBytes)-1) }
	pollRepairs := func(now clock.Time) {
		for {
			b, _, n, ok := e.PollRepair(now, buf)
			if !ok {
				return
			}
			lost := curLoss.lost()
			send(now, false, lost)
			res.fecPackets++
			res.fecBytes[sec(now)] += int64(n)
			if !lost {
				inflight = append(inflight, arrival{at: now.Add(cfg.oneWay), b: b, sym: append([]byte(nil), buf[:n]...)})
			}
			avail = append(avail, 0)
			pn++
		}
	}
	sendMedia := func(now clock.Time, f *simFrame, n int, cls Class, eof bool) {
		e.AddMedia(now, pn, payload[:n], cls, f.deadline, eof)
		f.pns = append(f.pns, pn)
		avail = append(avail, 0)
		lost := curLoss.lost()
		send(now, true, lost)
		res.mediaPackets++
		res.mediaBytes[sec(now)] += int64(n)
		if lost {
			res.lostBefore++
		} else {
			inflight = append(inflight, arrival{at: now.Add(cfg.oneWay), pn: pn, media: true, length: n})
		}
		pn++
		pollRepairs(now)
	}

	end := clock.Time(cfg.duration)
	nextAudio, nextVideo, nextCond := clock.Time(0), clock.Time(0), clock.Time(0)
	videoFrame := 0
	for {
		now := clock.Min(clock.Min(nextAudio, nextVideo), nextCond)
		if len(videoQ) > 0 {
			now = clock.Min(now, clock.Max(nextPace, 0))
		}
		now = clock.Min(now, e.NextTimeout())
		if now >= end {
			break
		}
		deliver(now)
		curLoss = cfg.loss(time.Duration(now))
		if now == nextCond {
			// The sender's estimate, from feedback an RTT old.
			for len(feedback) > 0 && feedback[0].at.Add(2*cfg.oneWay) <= now {
				est.OnPacket(feedback[0].at, feedback[0].lost)
				feedback = feedback[1:]
			}
			p, burst := est.Estimate(now.Add(-2 * cfg.oneWay))
			e.SetConditions(now, cfg.cond(time.Duration(now), p, burst))
			nextCond = now.Add(100 * time.Millisecond)
		}
		e.HandleTimeout(now)
		pollRepairs(now)
		if cfg.audio && now == nextAudio {
			f := &simFrame{capture: now, deadline: now.Add(cfg.budget), audio: true}
			frames = append(frames, f)
			sendMedia(now, f, 80+rng.IntN(81), ClassAudio, true)
			nextAudio = now.Add(20 * time.Millisecond)
		}
		if cfg.video && now == nextVideo {
			key := videoFrame%keyEvery == 0
			size := deltaSize * (0.9 + 0.2*rng.Float64())
			cls := ClassDelta
			if key {
				size *= keyFactor
				cls = ClassKey
			}
			f := &simFrame{capture: now, deadline: now.Add(cfg.budget), key: key}
			frames = append(frames, f)
			np := int(math.Ceil(size / mtu))
			for i := range np {
				n := mtu
				if i == np-1 {
					n = int(size) - (np-1)*mtu
				}
				videoQ = append(videoQ, struct {
					f   *simFrame
					eof bool
					n   int
					cls Class
				}{f, i == np-1, n, cls})
			}
			videoFrame++
			nextVideo = clock.Time(time.Duration(videoFrame) * time.Second / fps)
		}
		if cfg.video && len(videoQ) > 0 && now >= nextPace {
			v := videoQ[0]
			videoQ = videoQ[1:]
			sendMedia(now, v.f, v.n, v.cls, v.eof)
			nextPace = now.Add(time.Duration(float64(v.n*8) / pacingRate * float64(time.Second)))
		}
		if !cfg.video {
			nextVideo = clock.Never
		}
		if !cfg.audio {
			nextAudio = clock.Never
		}
		if now.Sub(0)%time.Second == 0 {
			d.Expire(now, pn-200)
		}
	}
	deliver(clock.Never)
	for _, f := range frames {
		if f.capture.Add(cfg.budget+time.Second) > end {
			continue // too close to the end to judge
		}
		on := true
		for _, p := range f.pns {
			at := avail[p]
			if at == 0 || at > f.deadline {
				on = false
				res.lostAfter++
			}
		}
		if f.audio {
			res.audioFrames++
			if on {
				res.audioOnTime++
			}
		} else {
			res.videoFrames++
			if on {
				res.videoOnTime++
			}
		}
	}
	return res
}

func steady(p float64, seed uint64, burst float64) func(time.Duration) lossModel {
	rng := rand.New(rand.NewPCG(seed, 1))
	var m lossModel = &bernoulli{rng: rng, p: p}
	if burst > 1 {
		m = newGilbert(rng, p, burst)
	}
	return func(time.Duration) lossModel { return m }
}

// RTC at RTT 200 ms with 5 % random loss: a retransmission cannot arrive
// within the 300 ms budget, so FEC alone must get video frames on time at
// >= 0.995 and audio at >= 0.999 (the bounds for the end-to-end
// row, here for the package's own decisions).
func TestSimRTT200Loss5(t *testing.T) {
	dur := 1200 * time.Second
	if testing.Short() || raceEnabled {
		dur = 300 * time.Second
	}
	res := runSim(t, simConfig{
		duration: dur, budget: 300 * time.Millisecond, oneWay: 100 * time.Millisecond,
		loss: steady(0.05, 1, 1),
		cond: func(_ time.Duration, p, b float64) Conditions {
			return Conditions{Loss: p, MeanBurst: b, RTT: 200 * time.Millisecond, OneWay: 100 * time.Millisecond, ARQ: true}
		},
		audio: true, video: true, seed: 1,
	})
	video := float64(res.videoOnTime) / float64(res.videoFrames)
	audio := float64(res.audioOnTime) / float64(res.audioFrames)
	t.Logf("%d video frames on time %.4f; %d audio frames on time %.4f; FEC %.1f %% of media bytes, %.1f %% of packets; loss %.4f before, %.5f after",
		res.videoFrames, video, res.audioFrames, audio, 100*res.overhead(0, len(res.mediaBytes)),
		100*float64(res.fecPackets)/float64(res.mediaPackets),
		float64(res.lostBefore)/float64(res.mediaPackets), float64(res.lostAfter)/float64(res.mediaPackets))
	assert.GreaterOrEqual(t, video, 0.995)
	assert.GreaterOrEqual(t, audio, 0.999)
}

// Audio alone, 50 packets/s, 5 % random loss, at most 25 % redundancy:
// loss after recovery <= 0.5 % (the policy picks (8,2): 0.36 %).
func TestSimAudioAt25Percent(t *testing.T) {
	dur := 8000 * time.Second // 400 k packets: ~1,400 expected losses after recovery
	if testing.Short() || raceEnabled {
		dur = 2000 * time.Second
	}
	res := runSim(t, simConfig{
		enc:      EncoderConfig{MaxOverhead: 0.25},
		duration: dur, budget: 300 * time.Millisecond, oneWay: 100 * time.Millisecond,
		loss: steady(0.05, 2, 1),
		cond: func(_ time.Duration, p, b float64) Conditions {
			return Conditions{Loss: p, MeanBurst: b, RTT: 200 * time.Millisecond, OneWay: 100 * time.Millisecond, ARQ: true}
		},
		audio: true, seed: 2,
	})
	n := float64(res.audioFrames)
	after := 1 - float64(res.audioOnTime)/n
	half := 2.5758 * math.Sqrt(after*(1-after)/n)
	redundancy := float64(res.fecPackets) / float64(res.mediaPackets)
	t.Logf("%d audio packets: loss before %.4f, after %.4f (99%% interval %.4f-%.4f); redundancy %.3f",
		res.audioFrames, float64(res.lostBefore)/float64(res.mediaPackets), after, after-half, after+half, redundancy)
	assert.LessOrEqual(t, redundancy, 0.25)
	assert.Less(t, after+half, 0.005)
}

// Loss stops after 30 s at RTT 100 ms: with LossEstimator's estimate, FEC
// falls below 1 % of media within 2 s.
func TestSimLossStops(t *testing.T) {
	stop := 30 * time.Second
	rng := rand.New(rand.NewPCG(3, 3))
	lossy := &bernoulli{rng: rng, p: 0.05}
	clean := &bernoulli{rng: rng, p: 0}
	res := runSim(t, simConfig{
		duration: 60 * time.Second, budget: 300 * time.Millisecond, oneWay: 50 * time.Millisecond,
		loss: func(at time.Duration) lossModel {
			if at < stop {
				return lossy
			}
			return clean
		},
		cond: func(_ time.Duration, p, b float64) Conditions {
			return Conditions{Loss: p, MeanBurst: b, RTT: 100 * time.Millisecond, OneWay: 50 * time.Millisecond, ARQ: true}
		},
		audio: true, video: true, seed: 3,
	})
	var per []float64
	for s := 25; s < 40; s++ {
		per = append(per, math.Round(1000*res.overhead(s, s+1))/10)
	}
	t.Logf("FEC %% of media, seconds 25-39: %v; whole lossy phase %.2f %%", per, 100*res.overhead(0, 30))
	for s := 32; s < 60; s++ {
		assert.Less(t, res.overhead(s, s+1), 0.01, "second %d", s)
	}
	// While lossy, ARQ retransmits each loss (p/(1-p) of media); FEC must
	// fit in what the bound 1.3 p + 2 % leaves.
	assert.Less(t, res.overhead(0, 30), 1.3*0.05+0.02-0.05/0.95, "FEC while ARQ suffices: key frames only")
}
