package netem_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/allocs"
	"github.com/spillway-rt/spillway/netem"
)

// steadyModels is BenchmarkSteadyForward's scenario with the version 2
// models on: Gilbert-Elliott loss, paretonormal jitter with reordering,
// duplication, corruption, tc-style reordering and CoDel.
func steadyModels(tb testing.TB) *netem.Simulator {
	tb.Helper()
	src := &source{interval: time.Millisecond, size: 1200, left: math.MaxInt}
	s, k := oneWay(tb, 1, netem.LinkConfig{
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: netem.ParetoNormal, Reorder: true,
		GE: netem.GEFromLossBurst(0.01, 2), Duplicate: 0.01, Corrupt: 0.01, ReorderProb: 0.01,
		Rate: 10_000_000, Overhead: netem.OverheadIPv4UDP, QueueDisc: netem.CoDel,
	}, src)
	k.count = true
	s.RunUntil(ms(1000))
	return s
}

// steadyBottleneck sends through a link into a shared bottleneck that
// follows a trace (12 Mbit/s).
func steadyBottleneck(tb testing.TB) *netem.Simulator {
	tb.Helper()
	tr, err := netem.LoadTrace("testdata/traces/const-12mbps.trace")
	require.NoError(tb, err)
	src := &source{interval: time.Millisecond, size: 1200, left: math.MaxInt}
	s, k := oneWay(tb, 1, netem.LinkConfig{Delay: 10 * time.Millisecond, Loss: 0.01}, src)
	k.count = true
	neck, err := s.AddBottleneck(netem.LinkConfig{Trace: tr, Overhead: netem.OverheadIPv4UDP, Delay: 10 * time.Millisecond})
	require.NoError(tb, err)
	require.NoError(tb, s.Link(addrA, addrB).SetVia(neck))
	s.RunUntil(ms(1000))
	return s
}

func TestSteadyModelsNoAllocs(t *testing.T) {
	for name, mk := range map[string]func(testing.TB) *netem.Simulator{"models": steadyModels, "bottleneck": steadyBottleneck} {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			s.RunUntil(s.Now().Add(60 * time.Second)) // grow every ring and pool
			before := s.Link(addrA, addrB).Stats()
			runs := uint64(0)
			got := allocs.Mallocs(3, func() {
				s.RunUntil(s.Now().Add(10_000 * time.Millisecond))
				runs++
			})
			after := s.Link(addrA, addrB).Stats()
			require.Equal(t, 10_000*runs, after.PacketsOffered-before.PacketsOffered)
			assert.Zero(t, got, "allocations while forwarding 10,000 datagrams")
		})
	}
}

func benchSteady(b *testing.B, s *netem.Simulator) {
	ev0 := s.Stats().PacketEvents
	b.ReportAllocs()
	b.SetBytes(1200)
	for b.Loop() { // one datagram offered per op
		s.RunUntil(s.Now().Add(time.Millisecond))
	}
	b.ReportMetric(float64(s.Stats().PacketEvents-ev0)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSteadyForwardModels(b *testing.B) {
	s := steadyModels(b)
	s.RunUntil(s.Now().Add(5 * time.Second))
	benchSteady(b, s)
}

func BenchmarkSteadyForwardBottleneck(b *testing.B) {
	s := steadyBottleneck(b)
	s.RunUntil(s.Now().Add(5 * time.Second))
	benchSteady(b, s)
}
