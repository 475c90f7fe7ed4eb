package cc

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// GCC02 is draft-ietf-rmcat-gcc-02 as written, the bench's reference
// controller: the arrival-time Kalman filter (§5.3), the overuse detector
// with its adaptive threshold (§5.4), the AIMD rate controller (§5.5) and
// the loss-based controller (§6), the target being the smaller of the
// delay-based and the loss-based estimates. No probes, no
// application-limited handling, no standing-queue estimate: the baseline
// that GCC's additions are measured against. The zero value is unusable:
// use NewGCC02.
type GCC02 struct {
	cfg GCCConfig

	groups groups // §5.2

	// Kalman filter (§5.3): the estimated inter-group delay variation
	// m_hat (ms), its error variance e and the measurement noise
	// variance var_v_hat; the last K groups' send periods (ms), for f_max.
	mHat, e, varV float64
	periods       [kalmanK]float64
	nPeriods      int

	// Detector (§5.4).
	det detector

	// Rate control (§5.5).
	delayRate  float64 // A_hat, bit/s
	state      rcState
	lastUpdate clock.Time
	atMax      maxTracker

	// Loss control (§6): As_hat, bit/s.
	lossRate float64

	ack ackWindowRate
}

// gcc-02's constants.
const (
	kalmanQ      = 1e-3 // §5.3: state noise variance
	kalmanChi    = 0.01 // §5.3: between 0.1 and 0.001
	kalmanK      = 60   // the groups f_max looks back over (§5.3 leaves K open)
	lossIncrease = 1.05 // §6
)

// NewGCC02 returns the reference controller starting at cfg.StartRate
// (defaults as GCC's).
func NewGCC02(cfg GCCConfig) *GCC02 {
	cfg = cfg.withDefaults()
	g := &GCC02{cfg: cfg, e: 0.1, varV: 1, det: newDetector(), state: rcIncrease,
		delayRate: float64(cfg.StartRate), lossRate: float64(cfg.StartRate)}
	g.groups.burst, g.det.asWritten = true, true
	return g
}

// Target returns the transport target in bit/s: min(A_hat, As_hat).
func (g *GCC02) Target() int64 { return int64(min(g.delayRate, g.lossRate)) }

// OnFeedback takes one report (appLimited is ignored: gcc-02 has no such
// notion).
func (g *GCC02) OnFeedback(now clock.Time, fb *Feedback, rtt RTT, _ bool) {
	lost, total := 0, 0
	for i := range fb.Packets {
		p := &fb.Packets[i]
		total++
		if !p.Received {
			lost++
			continue
		}
		g.ack.add(p.ArrivalTime, p.Size)
		g.onArrival(now, p)
	}
	g.ack.update()
	g.control(now, rtt)
	if total > 0 {
		g.lossControl(float64(lost) / float64(total))
	}
	lo, hi := float64(g.cfg.MinRate), float64(g.cfg.MaxRate)
	g.delayRate = min(max(g.delayRate, lo), hi)
	g.lossRate = min(max(g.lossRate, lo), hi)
}

// onArrival groups packets sent within 5 ms (§5.2) and feeds each group's
// delay variation to the filter.
func (g *GCC02) onArrival(now clock.Time, p *PacketResult) {
	if d, sendDelta, arrival, ok := g.groups.add(p); ok {
		g.periods[g.nPeriods%len(g.periods)] = max(float64(sendDelta)/float64(time.Millisecond), 1)
		g.nPeriods++
		g.kalman(d)
		// §5.4 times the detector by the groups' arrivals t(i), not the
		// report's: every group of a report once added no time.
		g.detect(arrival)
	}
}

// kalman is §5.3's scalar Kalman filter of the inter-group delay
// variation d (ms).
func (g *GCC02) kalman(d float64) {
	z := d - g.mHat
	// §5.3's outlier filter is around var_v_hat's update: a z above 3
	// standard deviations counts as 3 there, and in full in m_hat's.
	zv := min(z, 3*math.Sqrt(g.varV))
	// alpha = (1-chi)^(30/(1000 f_max)), f_max the highest rate (per ms)
	// the last K groups came at: 30/(1000 f_max) = 0.03 x their shortest
	// period in ms.
	minPeriod := math.Inf(1)
	for _, v := range g.periods[:min(g.nPeriods, len(g.periods))] {
		minPeriod = min(minPeriod, v)
	}
	alpha := math.Pow(1-kalmanChi, 0.03*minPeriod)
	g.varV = max(alpha*g.varV+(1-alpha)*zv*zv, 1)
	k := (g.e + kalmanQ) / (g.varV + g.e + kalmanQ)
	g.mHat += z * k
	g.e = (1 - k) * (g.e + kalmanQ)
}

// detect is §5.4's overuse detector on m_hat.
func (g *GCC02) detect(now clock.Time) { g.det.update(now, g.mHat) }

// control is §5.5's rate controller.
func (g *GCC02) control(now clock.Time, rtt RTT) {
	dt := 0.0
	if g.lastUpdate != 0 {
		dt = min(now.Sub(g.lastUpdate).Seconds(), 1)
	}
	g.lastUpdate = now
	r := g.ack.rate
	// §5.5's state table: over-use decreases from any state; normal moves
	// Decrease to Hold and Hold to Increase; under-use holds.
	signal := g.det.signal
	if g.det.sawOver {
		signal, g.det.sawOver = usageOver, false
	}
	switch signal {
	case usageOver:
		g.state = rcDecrease
	case usageUnder:
		g.state = rcHold
	default:
		switch g.state {
		case rcDecrease:
			g.state = rcHold
		case rcHold:
			g.state = rcIncrease
		}
	}
	// R_hat more than 3 standard deviations above the average max: the
	// congestion level changed; the average is reset and the increase is
	// multiplicative again (§5.5).
	if g.atMax.have && r > 0 && r/1000 > g.atMax.avg+3*math.Sqrt(g.atMax.variance*g.atMax.avg) {
		g.atMax = maxTracker{}
	}
	switch {
	case g.state == rcDecrease:
		if r > 0 {
			g.delayRate = beta * r // A_hat = beta x R_hat (§5.5)
			g.atMax.note(r)
		}
		return
	case g.state != rcIncrease || dt == 0:
		return
	}
	if g.atMax.near(r) {
		// Additive, close to convergence (§5.5): half the expected packet
		// size (a 30 fps frame of A_hat in packets of at most 1200 bytes)
		// per response time of 100 ms + RTT, at least 1000 bit/s.
		response := 100*time.Millisecond + rtt.Smoothed
		alpha := 0.5 * min(dt/response.Seconds(), 1)
		bitsPerFrame := g.delayRate / 30
		packetsPerFrame := math.Ceil(bitsPerFrame / (1200 * 8))
		g.delayRate += max(1000, alpha*bitsPerFrame/max(packetsPerFrame, 1))
	} else {
		g.delayRate *= math.Pow(1+maxIncreasePerS, dt)
	}
	if r > 0 {
		g.delayRate = min(g.delayRate, 1.5*r) // §5.5: A_hat < 1.5 R
	}
}

// lossControl is §6 on one report's loss fraction p.
func (g *GCC02) lossControl(p float64) {
	switch {
	case p > lossHigh:
		g.lossRate *= 1 - 0.5*p
	case p < lossLow:
		g.lossRate *= lossIncrease
	}
	// A departure from §6, which bounds As_hat by nothing but the target's
	// min(A_hat, As_hat): As_hat is held within 1.5 x A_hat (§5.5's bound
	// on A_hat against R_hat, applied here). Unbounded, it grows 5 % a
	// report without loss to MaxRate, and after a capacity drop behind a
	// full drop-tail queue (no delay trend left for the detector) it came
	// down at (1 - 0.5 p) a report: the reference column's reaction to
	// RFC 8867 5.1's 2.5 -> 0.6 Mbit/s drop went from 0.7 to 15.7 s
	// (seed 1), a baseline no implementation would ship.
	g.lossRate = min(g.lossRate, 1.5*g.delayRate)
}
