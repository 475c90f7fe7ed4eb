package cc

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// GCC02 is the bench's reference column: draft-ietf-rmcat-gcc-02 as
// written. These check the places a review found it departing.

// §5.5's additive increase: half the expected packet size (a 30 fps frame
// of A_hat in packets of at most 1200 bytes) per 100 ms + RTT, at least
// 1000 bit/s. It was 9600 bit per max(RTT, 100 ms) + 100 ms: +48000 bit/s
// in a second at 1 Mbit/s where the draft gives +4167.
func TestGCC02AdditiveIncrease(t *testing.T) {
	draft := func(aHat, dtMS, rttMS float64) float64 {
		alpha := 0.5 * math.Min(dtMS/(100+rttMS), 1)
		bpf := aHat / 30
		return math.Max(1000, alpha*bpf/math.Ceil(bpf/(1200*8)))
	}
	for _, tc := range []struct{ rate, dtMS, rttMS, want float64 }{
		{1e6, 50, 100, 1042}, {1e6, 1000, 100, 4167}, {100e3, 50, 0, 1000}, {3e6, 100, 50, 3030},
	} {
		g := NewGCC02(GCCConfig{StartRate: int64(tc.rate)})
		g.ack.rate = tc.rate
		g.atMax = maxTracker{avg: tc.rate / 1000, variance: 0.4, have: true}
		now := clock.Time(10 * time.Second)
		g.lastUpdate = now.Add(-time.Duration(tc.dtMS * float64(time.Millisecond)))
		g.control(now, RTT{Smoothed: time.Duration(tc.rttMS * float64(time.Millisecond))})
		assert.InDelta(t, draft(tc.rate, tc.dtMS, tc.rttMS), g.delayRate-tc.rate, 0.5, "%+v", tc)
		assert.InDelta(t, tc.want, g.delayRate-tc.rate, 1, "%+v", tc)
	}
}

// §5.3: the outlier filter is around var_v_hat's update, for z above 3
// standard deviations; m_hat takes z in full. A 100 ms step moved m_hat
// 0.257 where the draft says 8.56.
func TestGCC02KalmanOutlier(t *testing.T) {
	for _, tc := range []struct{ d, mHat, varV float64 }{{100, 8.558, 1.08}, {-100, -0.101, 100}} {
		g := NewGCC02(GCCConfig{})
		g.periods[0], g.nPeriods = 33, 1
		g.kalman(tc.d)
		assert.InDelta(t, tc.mHat, g.mHat, 0.001, "d %v", tc.d)
		assert.InDelta(t, tc.varV, g.varV, 0.01, "d %v", tc.d)
	}
}

// §5.5's state table: an over-use decreases to beta x R_hat; the next
// normal signal holds (Decrease -> Hold) and only the one after increases.
func TestGCC02HoldAfterDecrease(t *testing.T) {
	g := NewGCC02(GCCConfig{StartRate: 1_000_000})
	g.ack.rate = 1e6
	now := clock.Time(10 * time.Second)
	g.lastUpdate = now.Add(-50 * time.Millisecond)
	g.det.signal = usageOver
	rtt := RTT{Smoothed: 100 * time.Millisecond}
	g.control(now, rtt)
	assert.Equal(t, rcDecrease, g.state)
	assert.InDelta(t, 850_000, g.delayRate, 1)
	g.det.signal = usageNormal
	for i, want := range []rcState{rcHold, rcIncrease} {
		before := g.delayRate
		now = now.Add(50 * time.Millisecond)
		g.control(now, rtt)
		assert.Equal(t, want, g.state, "normal %d", i+1)
		if want == rcHold {
			assert.Equal(t, before, g.delayRate, "Hold keeps A_hat")
		} else {
			assert.Greater(t, g.delayRate, before)
		}
	}
}

// §5.5: R_hat more than 3 standard deviations above the average max
// bitrate resets it, and the increase is multiplicative again.
func TestGCC02AverageMaxReset(t *testing.T) {
	g := NewGCC02(GCCConfig{StartRate: 1_000_000})
	g.atMax.note(1e6)
	g.ack.rate = 3e6
	now := clock.Time(10 * time.Second)
	g.lastUpdate = now.Add(-50 * time.Millisecond)
	g.control(now, RTT{Smoothed: 100 * time.Millisecond})
	assert.False(t, g.atMax.have, "reset")
	g.ack.rate, g.delayRate = 1.05e6, 1.05e6
	now = now.Add(time.Second)
	g.lastUpdate = now.Add(-time.Second)
	g.control(now, RTT{Smoothed: 100 * time.Millisecond})
	assert.InDelta(t, 1.05e6*1.08, g.delayRate, 1, "multiplicative: 8 %/s")
}

// §6's As_hat is held within 1.5 x A_hat (a documented departure: see
// lossControl), and the target is min(A_hat, As_hat).
func TestGCC02LossEstimateBound(t *testing.T) {
	g := NewGCC02(GCCConfig{StartRate: 500_000})
	g.lossRate = 2e6
	g.lossControl(0)
	assert.InDelta(t, 750_000, g.lossRate, 1)
	assert.Equal(t, int64(500_000), g.Target())
	g.lossControl(0.2) // p > 10 %: x (1 - 0.5 p)
	assert.InDelta(t, 675_000, g.lossRate, 1)
}

// §5.2's second rule: a packet arriving within burst_time of the one
// before with a negative delay variation joins the current group: packets
// held by an outage and delivered in a burst make no under-use samples.
// GCC (ours) keeps its own grouping.
func TestGCC02BurstJoinsTheGroup(t *testing.T) {
	for _, burst := range []bool{false, true} {
		gs := groups{burst: burst}
		var ds []float64
		for i := range 10 {
			p := PacketResult{SendTime: clock.Time(i) * clock.Time(10*time.Millisecond), Received: true,
				ArrivalTime: clock.Time(200*time.Millisecond) + clock.Time(i)*clock.Time(time.Millisecond)}
			if d, _, _, ok := gs.add(&p); ok {
				ds = append(ds, d)
			}
		}
		if burst {
			assert.Empty(t, ds, "one group")
		} else {
			assert.Len(t, ds, 8)
			for _, d := range ds {
				assert.Less(t, d, 0.0)
			}
		}
	}
	assert.True(t, NewGCC02(GCCConfig{}).groups.burst)
	assert.False(t, NewGCC(GCCConfig{}).groups.burst)
}

// §5.4 times the detector by each group's arrival t(i): an overuse that
// builds within one report fires in it (with the report's time for every
// group, the groups after the first added no time, and it could not), and
// one that fired is kept until the rate controller reads it, whatever
// later groups of the report say (tail: the queue empties at its end).
func TestGCC02DetectorTimesGroups(t *testing.T) {
	for _, tail := range []bool{false, true} {
		g := NewGCC02(GCCConfig{StartRate: 1_000_000})
		var pn int64
		send := clock.Time(0)
		report := func(owds []float64, now clock.Time) {
			fb := Feedback{ReceivedAt: now}
			for _, owd := range owds {
				fb.Packets = append(fb.Packets, PacketResult{PacketNumber: pn, Size: 1200, SendTime: send, Received: true,
					ArrivalTime: send.Add(time.Duration(owd * float64(time.Millisecond)))})
				pn++
				send = send.Add(10 * time.Millisecond)
			}
			g.OnFeedback(now, &fb, RTT{Smoothed: 100 * time.Millisecond}, false)
		}
		flat := []float64{50, 50, 50, 50, 50}
		for range 100 { // 5 s flat
			report(flat, send.Add(50*time.Millisecond))
		}
		before := g.Target()
		var ramp []float64
		for i := range 25 { // a queue growing 15 ms a group: 2.5 x the path's rate
			ramp = append(ramp, 50+float64(i)*15)
		}
		if tail {
			for range 25 {
				ramp = append(ramp, 50) // the queue empties within the same report
			}
		}
		report(ramp, send.Add(50*time.Millisecond))
		assert.Less(t, g.Target(), before, "tail %v: the overuse cut in the report it built in", tail)
		assert.Equal(t, rcDecrease, g.state, "tail %v", tail)
	}
}

// The target stays within [MinRate, MaxRate] through the state changes.
func TestGCC02Bounds(t *testing.T) {
	g := NewGCC02(GCCConfig{StartRate: 500_000, MinRate: 100_000, MaxRate: 600_000})
	for i := range 200 {
		now := clock.Time(i) * clock.Time(50*time.Millisecond)
		fb := Feedback{ReceivedAt: now}
		for k := range 5 {
			fb.Packets = append(fb.Packets, PacketResult{PacketNumber: int64(i*5 + k), Size: 1200, SendTime: now, Received: k != 0,
				ArrivalTime: now.Add(time.Duration(50+i%7) * time.Millisecond)})
		}
		g.OnFeedback(now, &fb, RTT{Smoothed: 100 * time.Millisecond}, false)
		require.GreaterOrEqual(t, g.Target(), int64(100_000))
		require.LessOrEqual(t, g.Target(), int64(600_000))
	}
}
