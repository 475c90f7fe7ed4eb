package netem

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Clock is an endpoint's own clock as the simulator skews it: at virtual
// time t it reads Offset + t x (1 + PPM / 10^6). The zero Clock reads
// virtual time. Real clocks drift by tens of ppm; 1000 ppm is a bad one.
type Clock struct {
	PPM    float64       `json:"ppm,omitzero"`
	Offset time.Duration `json:"offset,omitzero"`
}

// MaxClockPPM bounds a Clock's drift (±1 %).
const MaxClockPPM = 10_000

// Validate reports a drift beyond MaxClockPPM.
func (c Clock) Validate() error {
	if !(math.Abs(c.PPM) <= MaxClockPPM) {
		return fmt.Errorf("%w: Clock PPM %v outside ±%d", ErrInvalidConfig, c.PPM, MaxClockPPM)
	}
	return nil
}

func (c Clock) rate() float64 { return 1 + c.PPM/1e6 }

// Local returns what the clock reads at virtual time t (clock.Never stays
// Never).
func (c Clock) Local(t clock.Time) clock.Time {
	if t == clock.Never || (c.PPM == 0 && c.Offset == 0) {
		return t
	}
	return toTime(math.Floor(float64(t) * c.rate())).Add(c.Offset)
}

// toTime converts a time computed in float64, saturating at clock.Never
// and at the most negative Time: out of int64's range the conversion is
// undefined (on amd64 it gives the most negative value).
func toTime(f float64) clock.Time {
	switch {
	case f >= math.MaxInt64: // 2^63 as a float64
		return clock.Never
	case f <= math.MinInt64:
		return clock.Time(math.MinInt64)
	}
	return clock.Time(f)
}

// Global returns the first virtual time at which the clock reads l or
// later (clock.Never stays Never): a timer an endpoint sets for l fires
// then.
func (c Clock) Global(l clock.Time) clock.Time {
	if l == clock.Never || (c.PPM == 0 && c.Offset == 0) {
		return l
	}
	t := toTime(math.Ceil(float64(l.Add(-c.Offset)) / c.rate()))
	if t == clock.Never {
		return clock.Never // the clock reads l only after the last Time
	}
	for c.Local(t) < l {
		t++
	}
	for t > 0 && c.Local(t-1) >= l {
		t--
	}
	return t
}

// Skewed wraps a node so that it sees its own clock c instead of virtual
// time: every time passed to it is c.Local(now), and its NextTimeout is
// mapped back with c.Global.
func Skewed(n Node, c Clock) Node { return &skewedNode{n: n, c: c} }

type skewedNode struct {
	n Node
	c Clock
}

func (s *skewedNode) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	s.n.HandleDatagram(s.c.Local(now), from, b)
}

func (s *skewedNode) HandleTimeout(now clock.Time) { s.n.HandleTimeout(s.c.Local(now)) }

func (s *skewedNode) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	return s.n.PollTransmit(s.c.Local(now), dst)
}

func (s *skewedNode) NextTimeout() clock.Time { return s.c.Global(s.n.NextTimeout()) }
