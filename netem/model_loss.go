package netem

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// GilbertElliott is a Gilbert-Elliott loss chain with tc-netem's parameters
// ("loss gemodel p r 1-h 1-k"; the kernel's struct tc_netem_gemodel holds
// p, r, h and k1 = 1-k, as this struct does). The chain has a Good and a Bad
// state and starts in Good. For each datagram entering the link, the state
// it finds decides its fate (lost with probability K1 in Good, 1-H in Bad),
// then the chain moves: Good to Bad with probability P, Bad to Good with
// probability R (as the Linux kernel's loss_gilb_ell does).
//
// The zero value is off (it would never lose a datagram). With H = 0 and
// K1 = 0, the defaults, every datagram in Bad is lost and none in Good: the
// simple Gilbert model, whose stationary loss is P/(P+R) and whose losses
// come in bursts of mean length 1/R (GEFromLossBurst builds one).
type GilbertElliott struct {
	// P is the probability of moving from Good to Bad, in [0, 1].
	P float64 `json:"p"`
	// R is the probability of moving from Bad to Good, in [0, 1]; it must
	// be positive when P is (the Bad state would otherwise never end).
	R float64 `json:"r"`
	// H is the probability that a datagram is delivered in Bad (tc's "1-h"
	// argument is the loss probability). Zero: every datagram in Bad is lost.
	H float64 `json:"h"`
	// K1 is 1-k, the probability that a datagram is lost in Good (tc's
	// "1-k" argument). Zero: none is lost in Good.
	K1 float64 `json:"k1"`
}

// GEFromLossBurst returns the simple Gilbert chain (H = 0, K1 = 0) whose
// stationary loss is loss and whose bursts of consecutive losses have mean
// length meanBurst: P = loss/((1-loss)*meanBurst), R = 1/meanBurst. For
// example 10 % loss in bursts of 3 gives P = 1/27, R = 1/3 (SCENARIOS.md).
// Inputs no such chain has (loss outside [0, 1), meanBurst below 1, or
// loss/(1-loss) above meanBurst) give a value whose Validate fails.
func GEFromLossBurst(loss, meanBurst float64) GilbertElliott {
	return GilbertElliott{P: loss / ((1 - loss) * meanBurst), R: 1 / meanBurst}
}

// IsZero reports whether g is the zero value (no Gilbert-Elliott loss).
func (g GilbertElliott) IsZero() bool { return g == GilbertElliott{} }

// Validate reports the first invalid field in an error wrapping
// ErrInvalidConfig.
func (g GilbertElliott) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"P", g.P}, {"R", g.R}, {"H", g.H}, {"K1", g.K1}} {
		if !isProb(f.v) {
			return fmt.Errorf("%w: GE.%s %v outside [0, 1]", ErrInvalidConfig, f.name, f.v)
		}
	}
	if g.P > 0 && g.R == 0 {
		return fmt.Errorf("%w: GE.R is 0 while GE.P is %v: the Bad state would never end", ErrInvalidConfig, g.P)
	}
	return nil
}

// stationary returns the long-run probability of the Bad state.
func (g GilbertElliott) stationaryBad() float64 {
	if g.P+g.R == 0 {
		return 0 // stays in Good, where it starts
	}
	return g.P / (g.P + g.R)
}

// StationaryLoss returns the long-run fraction of datagrams lost:
// (R*K1 + P*(1-H)) / (P+R), which is P/(P+R) when H = K1 = 0. A chain
// with P = R = 0 stays in Good and loses K1.
func (g GilbertElliott) StationaryLoss() float64 {
	b := g.stationaryBad()
	return (1-b)*g.K1 + b*(1-g.H)
}

// MeanBurst returns the mean length of a run of consecutive losses in the
// long run: the loss rate divided by the rate at which a delivered datagram
// is followed by a lost one. It is 1/R when H = K1 = 0. It returns 0 when
// nothing is lost and +Inf when everything is.
func (g GilbertElliott) MeanBurst() float64 {
	b := g.stationaryBad()
	lg, lb := g.K1, 1-g.H
	// P(delivered now, lost next), over the state now and the state next.
	starts := (1-b)*(1-lg)*((1-g.P)*lg+g.P*lb) + b*(1-lb)*(g.R*lg+(1-g.R)*lb)
	return burstRatio(g.StationaryLoss(), starts)
}

func burstRatio(loss, starts float64) float64 {
	switch {
	case loss == 0:
		return 0
	case starts == 0:
		return math.Inf(1)
	}
	return loss / starts
}

// FourState is the 4-state Markov loss model of tc-netem's "loss state p13
// p31 p32 p23 p14" (Salsano, Ludovici, Ordine; after Bregni et al.). The
// states are 1, delivered in a gap period; 2, delivered in a burst period;
// 3, lost in a burst period; 4, an isolated loss in a gap period. The chain
// starts in state 1. For each datagram entering the link the chain moves
// first, and the state it reaches decides the datagram's fate (lost in 3 and
// 4), as the Linux kernel's loss_4state does:
//
//	from 1: to 3 with P13, to 4 with P14, else stay in 1
//	from 2: to 3 with P23, else stay in 2
//	from 3: to 1 with P31, to 2 with P32, else stay in 3
//	from 4: to 1
//
// The zero value is off (it would never lose a datagram).
type FourState struct {
	P13 float64 `json:"p13"` // gap to burst (a loss), in [0, 1]
	P31 float64 `json:"p31"` // burst loss back to the gap period, in [0, 1]
	P32 float64 `json:"p32"` // burst loss to a delivery within the burst, in [0, 1]
	P23 float64 `json:"p23"` // delivery within the burst to a loss, in [0, 1]
	P14 float64 `json:"p14"` // gap to an isolated loss, in [0, 1]
}

// IsZero reports whether f is the zero value (no 4-state loss).
func (f FourState) IsZero() bool { return f == FourState{} }

// Validate reports the first invalid field in an error wrapping
// ErrInvalidConfig.
func (f FourState) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"P13", f.P13}, {"P31", f.P31}, {"P32", f.P32}, {"P23", f.P23}, {"P14", f.P14}} {
		if !isProb(p.v) {
			return fmt.Errorf("%w: FourState.%s %v outside [0, 1]", ErrInvalidConfig, p.name, p.v)
		}
	}
	switch {
	case f.P13+f.P14 > 1:
		return fmt.Errorf("%w: FourState.P13+P14 = %v above 1", ErrInvalidConfig, f.P13+f.P14)
	case f.P31+f.P32 > 1:
		return fmt.Errorf("%w: FourState.P31+P32 = %v above 1", ErrInvalidConfig, f.P31+f.P32)
	case f.P13 > 0 && f.P31+f.P32 == 0:
		return fmt.Errorf("%w: FourState.P31 and P32 are 0 while P13 is %v: a loss burst would never end", ErrInvalidConfig, f.P13)
	}
	return nil
}

// stationary returns the long-run distribution over the states 1..4 of the
// recurrent class the chain ends in, starting from state 1.
func (f FourState) stationary() (pi [5]float64) {
	switch {
	case f.P13 == 0: // 1 <-> 4 only
		pi[1], pi[4] = 1/(1+f.P14), f.P14/(1+f.P14)
	case f.P31 == 0: // trapped in {2, 3} after the first burst
		if f.P32 == 0 {
			pi[3] = 1
		} else {
			pi[2], pi[3] = f.P32/(f.P23+f.P32), f.P23/(f.P23+f.P32)
		}
	case f.P32 > 0 && f.P23 == 0: // absorbed in 2 after some burst
		pi[2] = 1
	default: // ergodic: balance equations relative to state 1
		w3 := f.P13 / f.P31
		w2 := 0.0
		if f.P32 > 0 {
			w2 = w3 * f.P32 / f.P23
		}
		sum := 1 + w2 + w3 + f.P14
		pi[1], pi[2], pi[3], pi[4] = 1/sum, w2/sum, w3/sum, f.P14/sum
	}
	return pi
}

// StationaryLoss returns the long-run fraction of datagrams lost, the
// stationary probability of states 3 and 4. For the ergodic chain (P13,
// P31 > 0, and P23 > 0 if P32 > 0), with w3 = P13/P31 and w2 = w3*P32/P23:
// (w3 + P14) / (1 + w2 + w3 + P14).
func (f FourState) StationaryLoss() float64 {
	pi := f.stationary()
	return pi[3] + pi[4]
}

// MeanBurst returns the mean length of a run of consecutive losses in the
// long run (not the model's "burst period", which includes the deliveries
// of state 2): the loss rate divided by the rate of delivered-then-lost
// transitions, pi1*(P13+P14) + pi2*P23. It returns 0 when nothing is lost
// and +Inf when everything is.
func (f FourState) MeanBurst() float64 {
	pi := f.stationary()
	return burstRatio(pi[3]+pi[4], pi[1]*(f.P13+f.P14)+pi[2]*f.P23)
}

// lossChain is a link's loss-model state; it carries over config changes.
type lossChain struct {
	geBad bool  // Gilbert-Elliott: in Bad
	four  uint8 // 4-state: 1..4 (0 before the first datagram: read as 1)
}

// lose decides whether the datagram now entering the link is lost, drawing
// from rng (the link's loss stream).
func (c *lossChain) lose(cfg *LinkConfig, rng *rand.Rand) bool {
	switch {
	case cfg.Loss > 0:
		return rng.Float64() < cfg.Loss
	case cfg.GE != GilbertElliott{}:
		return c.loseGE(&cfg.GE, rng)
	case cfg.FourState != FourState{}:
		return c.loseFour(&cfg.FourState, rng)
	}
	return false
}

func (c *lossChain) loseGE(g *GilbertElliott, rng *rand.Rand) bool {
	// The state the datagram finds decides its fate; then the chain moves.
	loss, move := g.K1, g.P
	if c.geBad {
		loss, move = 1-g.H, g.R
	}
	if move > 0 && rng.Float64() < move {
		c.geBad = !c.geBad
	}
	switch {
	case loss <= 0:
		return false
	case loss >= 1:
		return true
	}
	return rng.Float64() < loss
}

func (c *lossChain) loseFour(f *FourState, rng *rand.Rand) bool {
	u := rng.Float64()
	switch c.four {
	case 0, 1:
		switch {
		case u < f.P13:
			c.four = 3
		case u < f.P13+f.P14:
			c.four = 4
		default:
			c.four = 1
		}
	case 2:
		if u < f.P23 {
			c.four = 3
		}
	case 3:
		switch {
		case u < f.P31:
			c.four = 1
		case u < f.P31+f.P32:
			c.four = 2
		}
	case 4:
		c.four = 1
	}
	return c.four >= 3
}
