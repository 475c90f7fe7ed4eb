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
	kalmanK      = 60   // §5.3: the groups f_max looks back over
	lossIncrease = 1.05 // §6
)

// NewGCC02 returns the reference controller starting at cfg.StartRate
// (defaults as GCC's).
func NewGCC02(cfg GCCConfig) *GCC02 {
	cfg = cfg.withDefaults()
	return &GCC02{cfg: cfg, e: 0.1, varV: 1, det: newDetector(), state: rcIncrease,
		delayRate: float64(cfg.StartRate), lossRate: float64(cfg.StartRate)}
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
	if d, sendDelta, _, ok := g.groups.add(p); ok {
		g.periods[g.nPeriods%len(g.periods)] = max(float64(sendDelta)/float64(time.Millisecond), 1)
		g.nPeriods++
		g.kalman(d)
		g.detect(now)
	}
}

// kalman is §5.3's scalar Kalman filter of the inter-group delay
// variation d (ms).
func (g *GCC02) kalman(d float64) {
	z := d - g.mHat
	// Outliers count at most 3 standard deviations (§5.3).
	if lim := 3 * math.Sqrt(g.varV); math.Abs(z) > lim {
		z = math.Copysign(lim, z)
	}
	// alpha = (1-chi)^(30/(1000 f_max)), f_max the highest rate (per ms)
	// the last K groups came at: 30/(1000 f_max) = 0.03 x their shortest
	// period in ms.
	minPeriod := math.Inf(1)
	for _, v := range g.periods[:min(g.nPeriods, len(g.periods))] {
		minPeriod = min(minPeriod, v)
	}
	alpha := math.Pow(1-kalmanChi, 0.03*minPeriod)
	g.varV = max(alpha*g.varV+(1-alpha)*z*z, 1)
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
	switch g.det.signal {
	case usageOver:
		if r > 0 {
			g.delayRate = min(g.delayRate, beta*r)
			g.atMax.note(r)
		}
		g.state = rcHold
		g.det.signal = usageNormal
	case usageUnder:
		g.state = rcHold
	default:
		if g.state == rcHold {
			g.state = rcIncrease
		}
	}
	if g.state != rcIncrease || dt == 0 {
		return
	}
	if g.atMax.near(r) {
		response := max(rtt.Smoothed, 100*time.Millisecond) + 100*time.Millisecond
		g.delayRate += max(1000, 1200*8*dt/response.Seconds())
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
	// As_hat never runs far ahead of what the delay-based side allows.
	g.lossRate = min(g.lossRate, 1.5*g.delayRate)
}
