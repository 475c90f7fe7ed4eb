package netem_test

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

func TestClockLocalGlobal(t *testing.T) {
	tests := []struct {
		name string
		c    netem.Clock
	}{
		{"identity", netem.Clock{}},
		{"fast 1000 ppm", netem.Clock{PPM: 1000}},
		{"slow 1000 ppm", netem.Clock{PPM: -1000}},
		{"offset", netem.Clock{PPM: 100, Offset: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.c.Validate())
			hour := clock.Time(time.Hour)
			// An hour of virtual time reads an hour plus the drift.
			want := float64(time.Hour)*(1+tt.c.PPM/1e6) + float64(tt.c.Offset)
			assert.InDelta(t, want, float64(tt.c.Local(hour)), 1)
			for _, l := range []clock.Time{tt.c.Local(0) + 1, tt.c.Local(hour), tt.c.Local(hour) + 7, tt.c.Local(3 * hour)} {
				g := tt.c.Global(l)
				assert.GreaterOrEqual(t, tt.c.Local(g), l, "the timer fires once the clock reads l")
				assert.Less(t, tt.c.Local(g-1), l, "and not earlier")
			}
			assert.Equal(t, clock.Never, tt.c.Local(clock.Never))
			assert.Equal(t, clock.Never, tt.c.Global(clock.Never))
		})
	}
	// Near the end of time: Global saturates at Never (it looped for ever
	// on an out-of-range conversion), Local too.
	for _, c := range []netem.Clock{{PPM: -100}, {PPM: 100}, {PPM: 1000, Offset: time.Hour}, {PPM: -1000, Offset: -time.Hour}} {
		for _, l := range []clock.Time{clock.Never - clock.Time(time.Hour), clock.Never - 1, clock.Time(math.MinInt64 + 1)} {
			g := c.Global(l)
			if g != clock.Never {
				assert.GreaterOrEqual(t, c.Local(g), l, "%+v: the timer for %d fires once the clock reads it", c, l)
			}
		}
		if c.PPM > 0 {
			assert.Equal(t, clock.Never, c.Local(clock.Never-1), "%+v: a fast clock passes the end of time", c)
		}
	}
	assert.Error(t, netem.Clock{PPM: 20_000}.Validate())
	assert.Error(t, netem.Clock{PPM: math.NaN()}.Validate())
}

// TestSkewedNodeSeesItsOwnClock: a skewed node's timers and arrivals are
// on its clock; the simulator still runs virtual time.
func TestSkewedNodeSeesItsOwnClock(t *testing.T) {
	c := netem.Clock{PPM: 1000}
	n := &tickNode{every: clock.Time(time.Second)}
	s := netem.New(1)
	require.NoError(t, s.AddNode(addrA, netem.Skewed(n, c)))
	s.RunUntil(clock.Time(9995 * time.Millisecond))
	require.NotEmpty(t, n.fired)
	for i, at := range n.fired {
		// Local second k comes 1 ms per second early in virtual time.
		assert.Equal(t, clock.Time(i+1)*clock.Time(time.Second), at, "local reading of timer %d", i)
	}
	assert.Len(t, n.fired, 10, "ten local seconds pass by virtual 9.995 s (at 9.99 s)")
}

type tickNode struct {
	every clock.Time
	fired []clock.Time
}

func (n *tickNode) HandleDatagram(clock.Time, netip.AddrPort, []byte) {}
func (n *tickNode) HandleTimeout(now clock.Time) {
	if now >= n.NextTimeout() {
		n.fired = append(n.fired, now)
	}
}
func (n *tickNode) PollTransmit(clock.Time, []byte) (int, netip.AddrPort, bool) {
	return 0, netip.AddrPort{}, false
}
func (n *tickNode) NextTimeout() clock.Time { return clock.Time(len(n.fired)+1) * n.every }
