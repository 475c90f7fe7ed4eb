package cc

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
)

// The skew comes out of one-way delays with 30 ms of jitter and queues
// that come and go; until 32 s of minima are in it is not trusted.
func TestSkewEstimator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ppm   float64
		queue bool // a queue of 0-80 ms for a random 1-3 s now and then
	}{
		{"none", 0, false},
		{"fast", 1000, false},
		{"slow", -1000, false},
		{"fast, queues", 1000, true},
		{"slow, queues", -1000, true},
		{"small", 150, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 1))
			var s skewEstimator
			var queueUntil clock.Time
			var q float64
			for at := clock.Time(0); at < clock.Time(90*time.Second); at = at.Add(5 * time.Millisecond) {
				if tc.queue && at >= queueUntil && rng.Float64() < 0.002 {
					queueUntil = at.Add(time.Duration(1+rng.IntN(3)) * time.Second)
					q = rng.Float64() * 80
				}
				owd := 40 + rng.Float64()*30 + tc.ppm/1000*at.Sub(0).Seconds()
				if at < queueUntil {
					owd += q
				}
				s.add(at, owd)
				if at == clock.Time(30*time.Second) {
					assert.False(t, s.ok, "not before 32 s")
				}
			}
			assert.True(t, s.ok)
			assert.InDelta(t, tc.ppm, s.ppm, 60)
			assert.InDelta(t, tc.ppm/1000*10, s.correction(clock.Time(20*time.Second), clock.Time(10*time.Second)), 0.6)
		})
	}
}

// A steady flow on a fixed capacity: a receiver clock 1000 ppm fast or
// slow biases neither the queue estimate nor the target much (without the
// skew brought forward, +1000 ppm reads as up to 10 ms of queue that never
// drains, and the controller holds its increase on it). The estimate is
// judged against the path's true queue in the same run: the skew changes
// the run itself a little (its cuts come at other times), so the mean
// queue differs by a millisecond or two whatever the estimate does.
func TestGCCUnderClockSkew(t *testing.T) {
	flat := func(time.Duration) float64 { return 1_500_000 }
	target, bias := map[float64]float64{}, map[float64]float64{}
	for _, ppm := range []float64{0, 1000, -1000} {
		g := NewGCC(GCCConfig{StartRate: 300_000})
		p := gccPath{capacity: flat, oneWay: 50 * time.Millisecond, maxQueue: 300 * time.Millisecond, skewPPM: ppm}
		s := p.run(g, 120*time.Second, 1)
		target[ppm] = meanTarget(s, 60*time.Second, 120*time.Second)
		n := 0
		for _, x := range s {
			if x.at >= 60*time.Second {
				bias[ppm] += x.queueMS - float64(x.queue)/float64(time.Millisecond)
				n++
			}
		}
		bias[ppm] /= float64(n)
		assert.True(t, g.skew.ok, "ppm %v", ppm)
		assert.InDelta(t, ppm, g.skew.ppm, 100, "ppm %v", ppm)
	}
	for _, ppm := range []float64{1000, -1000} {
		assert.InEpsilon(t, target[0], target[ppm], 0.05, "ppm %v: mean target %.0f, without skew %.0f", ppm, target[ppm], target[0])
		assert.InDelta(t, bias[0], bias[ppm], 1, "ppm %v: queue estimate minus the true queue %.2f ms on average, without skew %.2f ms", ppm, bias[ppm], bias[0])
	}
}
