package netem_test

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

func TestBlackoutSchedule(t *testing.T) {
	const n = 3000
	base := netem.LinkConfig{Delay: 20 * time.Millisecond}
	src := &source{interval: time.Millisecond, size: 100, left: n}
	s, k := oneWay(t, 1, base, src)
	l := s.Link(addrA, addrB)
	require.NoError(t, s.ApplySchedule(l, netem.Blackout(base, time.Second, 1500*time.Millisecond)))
	s.RunUntil(clock.Never)
	st := l.Stats()
	requireAllConserved(t, st)
	// Datagrams sent in [1 s, 1.5 s) met the blackout; those in flight at
	// 1 s (sent in (0.98 s, 1 s)) arrived.
	assert.Equal(t, uint64(500), st.PacketsBlackout)
	assert.Equal(t, uint64(500*100), st.BytesBlackout)
	assert.Zero(t, st.PacketsLost)
	require.Len(t, k.arrivals, n-500)
	for _, a := range k.arrivals {
		sent := src.sendTime(0, a.seq)
		assert.False(t, sent >= ms(1000) && sent < ms(1500), "datagram %d", a.seq)
	}
	assert.False(t, l.Config().Down)
}

func TestStallHoldsAndReleases(t *testing.T) {
	const n = 3000
	inStall := func(sent clock.Time) bool { return sent >= ms(1000) && sent < ms(1500) }
	tests := []struct {
		name string
		base netem.LinkConfig
		want func(sent clock.Time) clock.Time // delivery of a datagram sent then
		held int                              // delivered at 1.5 s
	}{
		{"propagating", netem.LinkConfig{Delay: 20 * time.Millisecond},
			// Sent during the stall: delivered when it ends; those already
			// propagating when it began arrive as usual.
			func(sent clock.Time) clock.Time {
				if inStall(sent) {
					return clock.Max(ms(1500), sent.Add(20*time.Millisecond))
				}
				return sent.Add(20 * time.Millisecond)
			}, 481}, // sent in [1 s, 1.48 s]: due before 1.5 s
		// ReorderProb's datagrams, sent at once, went straight through a
		// stall.
		{"sent at once (ReorderProb)", netem.LinkConfig{Delay: 20 * time.Millisecond, ReorderProb: 1},
			func(sent clock.Time) clock.Time {
				if inStall(sent) {
					return ms(1500)
				}
				return sent
			}, 501}, // sent in [1 s, 1.5 s], the last one at once
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &source{interval: time.Millisecond, size: 100, left: n}
			s, k := oneWay(t, 1, tt.base, src)
			l := s.Link(addrA, addrB)
			require.NoError(t, s.ApplySchedule(l, netem.Stall(tt.base, time.Second, 1500*time.Millisecond)))
			s.RunUntil(clock.Never)
			requireAllConserved(t, l.Stats())
			require.Len(t, k.arrivals, n, "a stall loses nothing")
			held := 0
			for i, a := range k.arrivals {
				assert.Equal(t, uint32(i), a.seq, "in order")
				require.Equal(t, tt.want(src.sendTime(0, a.seq)), a.at, "datagram %d", a.seq)
				if a.at == ms(1500) {
					held++
				}
			}
			assert.Equal(t, tt.held, held)
			assert.Zero(t, l.Config().HoldUntil)
		})
	}
}

func TestApplyScheduleErrors(t *testing.T) {
	s := netem.New(1)
	require.NoError(t, s.AddNode(addrA, &sink{}))
	require.NoError(t, s.AddNode(addrB, &sink{}))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{}, netem.LinkConfig{}))
	l := s.Link(addrA, addrB)
	tests := []struct {
		name  string
		steps []netem.ScheduleStep
		want  string
	}{
		{"negative", []netem.ScheduleStep{{At: -1}}, "schedule step 0: At -1ns is negative"},
		{"out of order", []netem.ScheduleStep{{At: 2 * time.Second}, {At: time.Second}}, "schedule step 1: At 1s is before step 0's 2s"},
		{"bad config", []netem.ScheduleStep{{At: 0}, {At: time.Second, Config: netem.LinkConfig{Loss: 2}}}, "schedule step 1 (at 1s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ApplySchedule(l, tt.steps)
			require.ErrorIs(t, err, netem.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	assert.Equal(t, clock.Time(0), s.NextEvent(), "only the nodes' first polls are pending: nothing was scheduled")
	s.RunUntil(0)
	assert.Equal(t, clock.Never, s.NextEvent())
}

func TestCapacityDropKeepsQueued(t *testing.T) {
	// A 2 Mbit/s link with a 300 ms queue, overloaded, drops to 500 kbit/s
	// at 5 s: its queue bound shrinks from 75,000 to 18,750 bytes. What is
	// queued then stays and drains at the new rate; only new arrivals see
	// the new bound.
	const wire = 1000 + netem.OverheadIPv4UDP
	src := &source{interval: 3 * time.Millisecond, size: 1000, left: 3000} // 2.7 Mbit/s
	cfg := netem.LinkConfig{Rate: 2_000_000, Overhead: netem.OverheadIPv4UDP}
	s, k := oneWay(t, 1, cfg, src)
	l := s.Link(addrA, addrB)
	var atChange netem.LinkStats
	slow := cfg
	slow.Rate = 500_000
	s.Schedule(ms(5000), func(clock.Time) {
		atChange = l.Stats()
		require.NoError(t, l.SetConfig(slow))
	})
	var mid netem.LinkStats
	s.Schedule(ms(5000+4*8*wire/500), func(clock.Time) { mid = l.Stats() }) // 4 serialisations later
	s.RunUntil(clock.Never)
	st := l.Stats()
	requireAllConserved(t, st)
	require.Greater(t, atChange.QueueBytes, int64(18_750), "the queue was above the new bound")
	// Every datagram queued at the change was delivered.
	queuedAt := atChange.InFlight
	assert.Equal(t, atChange.PacketsDelivered+uint64(queuedAt), minDelivered(k, atChange, src))
	// Arrivals after the change were dropped while the queue stayed above
	// the new bound.
	assert.Greater(t, mid.PacketsDropped, atChange.PacketsDropped)
	assert.Equal(t, atChange.PacketsDropped+(mid.PacketsOffered-atChange.PacketsOffered), mid.PacketsDropped,
		"every arrival during the first serialisations at the new rate was dropped")
	// Waiting datagrams drain at the new rate: after the one being
	// serialised at the change, deliveries come every wire*8/500k.
	var gaps []time.Duration
	for i := 1; i < len(k.arrivals); i++ {
		if k.arrivals[i-1].at > ms(5100) && k.arrivals[i].at < ms(6000) {
			gaps = append(gaps, k.arrivals[i].at.Sub(k.arrivals[i-1].at))
		}
	}
	require.NotEmpty(t, gaps)
	for _, g := range gaps {
		assert.Equal(t, time.Duration(wire*8*int64(time.Second)/500_000), g)
	}
}

// minDelivered returns how many of the datagrams offered before the stats
// snapshot were eventually delivered.
func minDelivered(k *sink, at netem.LinkStats, src *source) uint64 {
	var n uint64
	for _, a := range k.arrivals {
		if uint64(a.seq) < at.PacketsOffered {
			n++
		}
	}
	return n
}

func TestCoDelNoDropBelowInterval(t *testing.T) {
	// Bursts of 100 datagrams (75 kB) every 500 ms at 10 Mbit/s: the
	// sojourn goes above 5 ms for about 55 ms each time, less than an
	// interval: CoDel never drops.
	s := netem.New(1)
	src := &burstSource{to: addrB, interval: 500 * time.Millisecond, burst: 100, left: 4000}
	k := &sink{count: true}
	require.NoError(t, s.AddNode(addrA, src))
	require.NoError(t, s.AddNode(addrB, k))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{Rate: 10_000_000, QueueDisc: netem.CoDel}, netem.LinkConfig{}))
	s.RunUntil(clock.Never)
	st := s.Link(addrA, addrB).Stats()
	assert.Zero(t, st.PacketsCoDelDropped)
	assert.Equal(t, uint64(4000), st.PacketsDelivered)
	assert.Greater(t, st.QueueDelayMax, 5*time.Millisecond)

	// The same with a 30 ms interval: now it drops.
	s = netem.New(1)
	src = &burstSource{to: addrB, interval: 500 * time.Millisecond, burst: 100, left: 4000}
	require.NoError(t, s.AddNode(addrA, src))
	require.NoError(t, s.AddNode(addrB, &sink{count: true}))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{Rate: 10_000_000, QueueDisc: netem.CoDel, CoDelInterval: 30 * time.Millisecond}, netem.LinkConfig{}))
	// The queue hook sees CoDel's drops, each after more than the 5 ms
	// target at the head.
	var hookDrops, hookDeparts uint64
	require.NoError(t, s.SetQueueHook(addrA, addrB, func(ev netem.QueueEvent) {
		if ev.Dropped {
			hookDrops++
			assert.Greater(t, ev.Queued, 5*time.Millisecond)
		} else {
			hookDeparts++
		}
	}))
	s.RunUntil(clock.Never)
	st = s.Link(addrA, addrB).Stats()
	requireAllConserved(t, st)
	assert.NotZero(t, st.PacketsCoDelDropped)
	assert.Equal(t, st.PacketsCoDelDropped, hookDrops)
	assert.Equal(t, st.PacketsDelivered, hookDeparts)
}

func TestBottleneckShared(t *testing.T) {
	// Two senders with 10 ms and 40 ms access delays share a 4 Mbit/s
	// bottleneck (5 ms delay, 100 ms drop-tail queue) to one receiver;
	// each offers 3 Mbit/s.
	const (
		rate = 4_000_000
		size = 1200
		wire = size + netem.OverheadIPv4UDP
	)
	s := netem.New(1)
	a := &source{to: addrC, interval: 3200 * time.Microsecond, size: size, left: 5000}
	b := &source{to: addrC, interval: 3200 * time.Microsecond, size: size, left: 5000}
	c := &sink{}
	require.NoError(t, s.AddNode(addrA, a))
	require.NoError(t, s.AddNode(addrB, b))
	require.NoError(t, s.AddNode(addrC, c))
	require.NoError(t, s.Connect(addrA, addrC, netem.LinkConfig{Delay: 10 * time.Millisecond}, netem.LinkConfig{}))
	require.NoError(t, s.Connect(addrB, addrC, netem.LinkConfig{Delay: 40 * time.Millisecond}, netem.LinkConfig{}))
	neck, err := s.AddBottleneck(netem.LinkConfig{Rate: rate, Overhead: netem.OverheadIPv4UDP, Delay: 5 * time.Millisecond, QueueDelay: 100 * time.Millisecond})
	require.NoError(t, err)
	la, lb := s.Link(addrA, addrC), s.Link(addrB, addrC)
	require.NoError(t, la.SetVia(neck))
	require.NoError(t, lb.SetVia(neck))
	assert.Same(t, neck, la.Via())
	captured := 0
	s.SetCapture(addrA, addrC, func(at clock.Time, from, to netip.AddrPort, p []byte) {
		captured++
		assert.Equal(t, addrA, from)
		assert.Equal(t, addrC, to)
	})
	// The depart hook sees every datagram the bottleneck serialised, with
	// its original endpoints and its sojourn.
	var departed, departedA, dropped int
	var sojournSum time.Duration
	var lastDepart clock.Time
	neck.SetQueueHook(func(ev netem.QueueEvent) {
		assert.Equal(t, addrC, ev.To)
		assert.Equal(t, wire, ev.Wire)
		if ev.Dropped {
			dropped++
			return
		}
		departed++
		if ev.From == addrA {
			departedA++
		}
		assert.GreaterOrEqual(t, ev.At, lastDepart)
		lastDepart = ev.At
		sojournSum += ev.Queued
	})
	require.Error(t, s.SetQueueHook(addrA, addrB, nil), "no such link")
	s.RunUntil(clock.Never)

	sa, sb, sn := la.Stats(), lb.Stats(), neck.Stats()
	assert.Equal(t, int(sn.PacketsDelivered), departed)
	assert.Equal(t, int(sn.PacketsDropped), dropped)
	assert.Equal(t, sn.QueueDelaySum, sojournSum)
	requireAllConserved(t, sa)
	requireAllConserved(t, sb)
	requireAllConserved(t, sn)
	assert.Equal(t, sa.PacketsDelivered+sb.PacketsDelivered, sn.PacketsOffered, "the links hand everything to the bottleneck")
	assert.NotZero(t, sn.PacketsDropped, "overloaded 1.5x")
	assert.Equal(t, int(sn.PacketsDelivered), len(c.arrivals))
	// The capture hook of A->C saw A's datagrams at their final delivery.
	fromA := 0
	minDelay := map[netip.AddrPort]time.Duration{addrA: time.Hour, addrB: time.Hour}
	for _, r := range c.arrivals {
		src := a
		if r.from == addrB {
			src = b
		} else {
			fromA++
		}
		d := r.at.Sub(src.sendTime(0, r.seq))
		minDelay[r.from] = min(minDelay[r.from], d)
	}
	assert.Equal(t, fromA, captured)
	assert.Equal(t, fromA, departedA)
	// Delay = access + queue + serialisation + 5 ms: at least access + tx + 5 ms.
	tx := time.Duration(wire * 8 * int64(time.Second) / rate)
	assert.Equal(t, 10*time.Millisecond+tx+5*time.Millisecond, minDelay[addrA])
	assert.GreaterOrEqual(t, minDelay[addrB], 40*time.Millisecond+tx+5*time.Millisecond)
	// Saturated: the bottleneck delivers at its rate.
	first, last := c.arrivals[0].at, c.arrivals[len(c.arrivals)-1].at
	got := float64((len(c.arrivals)-1)*wire*8) / last.Sub(first).Seconds()
	assert.InEpsilon(t, float64(rate), got, 0.01)
	// Both flows got a share.
	assert.Greater(t, fromA, len(c.arrivals)/4)
	assert.Greater(t, len(c.arrivals)-fromA, len(c.arrivals)/4)
	assert.LessOrEqual(t, sn.QueueDelayMax, 100*time.Millisecond+tx)

	// Without the bottleneck again, A's datagrams go straight through.
	require.NoError(t, la.SetVia(nil))
	assert.Nil(t, la.Via())
}

func TestBottleneckErrors(t *testing.T) {
	s1, s2 := netem.New(1), netem.New(1)
	for _, s := range []*netem.Simulator{s1, s2} {
		require.NoError(t, s.AddNode(addrA, &sink{}))
		require.NoError(t, s.AddNode(addrB, &sink{}))
		require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{}, netem.LinkConfig{}))
	}
	b1, err := s1.AddBottleneck(netem.LinkConfig{Rate: 1e6})
	require.NoError(t, err)
	assert.ErrorIs(t, s2.Link(addrA, addrB).SetVia(b1), netem.ErrForeignBottleneck)
	assert.NoError(t, s1.Link(addrA, addrB).SetVia(b1))
	_, err = s1.AddBottleneck(netem.LinkConfig{Loss: -1})
	assert.ErrorIs(t, err, netem.ErrInvalidConfig)
	assert.ErrorIs(t, b1.SetConfig(netem.LinkConfig{Rate: -1}), netem.ErrInvalidConfig)
	require.NoError(t, b1.SetConfig(netem.LinkConfig{Rate: 2e6}))
	assert.Equal(t, int64(2e6), b1.Config().Rate)

	n := netem.NewNetwork(1)
	defer n.Close()
	require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{}))
	assert.ErrorIs(t, n.Link(addrA, addrB).SetVia(b1), netem.ErrForeignBottleneck)
}

func TestBottleneckSchedule(t *testing.T) {
	// A capacity step on the bottleneck through ApplySchedule, and a
	// blackout on it.
	s := netem.New(1)
	a := &source{to: addrB, interval: time.Millisecond, size: 1000, left: 6000}
	k := &sink{}
	require.NoError(t, s.AddNode(addrA, a))
	require.NoError(t, s.AddNode(addrB, k))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{Delay: 5 * time.Millisecond}, netem.LinkConfig{}))
	base := netem.LinkConfig{Rate: 20_000_000}
	neck, err := s.AddBottleneck(base)
	require.NoError(t, err)
	require.NoError(t, s.Link(addrA, addrB).SetVia(neck))
	steps := append(netem.Blackout(base, time.Second, 2*time.Second), netem.ScheduleStep{At: 4 * time.Second, Config: netem.LinkConfig{Rate: 4_000_000}})
	require.NoError(t, s.ApplySchedule(neck, steps))
	s.RunUntil(clock.Never)
	st := neck.Stats()
	requireAllConserved(t, st)
	// Datagrams reach the bottleneck 5 ms after they are sent.
	assert.Equal(t, uint64(1000), st.PacketsBlackout)
	assert.NotZero(t, st.PacketsDropped, "8 Mbit/s offered into 4 after 4 s")
	assert.Equal(t, uint64(6000), s.Link(addrA, addrB).Stats().PacketsDelivered)
}

func TestFeaturesConserved(t *testing.T) {
	// Every feature at once, with changes mid-run: the identity holds at
	// every instant checked and everything drains.
	tr, err := netem.LoadTrace("testdata/traces/lte-like.trace")
	require.NoError(t, err)
	cfg := netem.LinkConfig{
		Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, JitterDist: netem.ParetoNormal,
		GE: netem.GEFromLossBurst(0.05, 2), Duplicate: 0.05, Corrupt: 0.05, ReorderProb: 0.05, ReorderGap: 2,
		Trace: tr, QueueDisc: netem.CoDel, Overhead: 28,
	}
	src := &source{interval: 1500 * time.Microsecond, size: 1200, left: 20_000}
	s, k := oneWay(t, 5, cfg, src)
	k.count = true
	l := s.Link(addrA, addrB)
	check := func(clock.Time) { requireAllConserved(t, l.Stats()) }
	for i := range 30 {
		s.Schedule(ms(float64(i)*1000+0.5), check)
	}
	other := cfg
	other.Trace, other.Rate, other.QueueDisc, other.GE, other.FourState = nil, 3_000_000, netem.DropTail, netem.GilbertElliott{}, netem.FourState{P13: 0.01, P31: 0.5, P32: 0.2, P23: 0.2}
	require.NoError(t, s.ApplySchedule(l, append([]netem.ScheduleStep{{At: 10 * time.Second, Config: other}},
		netem.Blackout(cfg, 15*time.Second, 16*time.Second)...)))
	s.RunUntil(clock.Never)
	st := l.Stats()
	requireAllConserved(t, st)
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.QueueBytes)
	for name, v := range map[string]uint64{
		"lost": st.PacketsLost, "blackout": st.PacketsBlackout, "duplicated": st.PacketsDuplicated,
		"corrupted": st.PacketsCorrupted, "reordered": st.PacketsReordered, "codel": st.PacketsCoDelDropped,
		"dropped": st.PacketsDropped,
	} {
		assert.NotZero(t, v, name)
	}
	assert.Equal(t, int(st.PacketsDelivered), k.n)
}

func TestNetworkFeatures(t *testing.T) {
	// The Network shares the link model: duplication and a trace work there.
	synctest.Test(t, func(t *testing.T) {
		n, a, b := pair(t, 1)
		tr, err := netem.NewTrace([]int64{10}) // one opportunity every 10 ms
		require.NoError(t, err)
		require.NoError(t, n.SetLink(addrA, addrB, netem.LinkConfig{Duplicate: 1, Trace: tr, QueueBytes: 1 << 20}))
		start := time.Now()
		_, err = a.WriteToAddrPort(make([]byte, 1400), addrB)
		require.NoError(t, err)
		buf := make([]byte, 2000)
		for i := range 2 {
			_, _, err := b.ReadFromAddrPort(buf)
			require.NoError(t, err)
			assert.Equal(t, time.Duration(i+1)*10*time.Millisecond, time.Since(start), "copy %d", i)
		}
		st := n.Link(addrA, addrB).Stats()
		assert.Equal(t, uint64(1), st.PacketsDuplicated)
		assert.Equal(t, uint64(2), st.PacketsDelivered)
		requireAllConserved(t, st)
	})
}

// fateHash runs a scenario with every feature, a bottleneck included, and
// hashes every datagram's fate: when and what was delivered of it.
func fateHash(t *testing.T, seed uint64) uint64 {
	t.Helper()
	tr, err := netem.LoadTrace("testdata/traces/lte-like.trace")
	require.NoError(t, err)
	s := netem.New(seed)
	a := &source{to: addrC, interval: 2 * time.Millisecond, size: 800, left: 8000}
	b := &source{to: addrC, interval: 3 * time.Millisecond, size: 300, left: 5000}
	h := fnv.New64a()
	c := &hashSink{h: h}
	require.NoError(t, s.AddNode(addrA, a))
	require.NoError(t, s.AddNode(addrB, b))
	require.NoError(t, s.AddNode(addrC, c))
	require.NoError(t, s.Connect(addrA, addrC, netem.LinkConfig{
		Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: netem.Pareto, Reorder: true,
		GE: netem.GEFromLossBurst(0.05, 3), Duplicate: 0.02, Corrupt: 0.02,
	}, netem.LinkConfig{}))
	require.NoError(t, s.Connect(addrB, addrC, netem.LinkConfig{
		Delay: 30 * time.Millisecond, FourState: netem.FourState{P13: 0.01, P31: 0.5, P32: 0.2, P23: 0.2, P14: 0.01},
		ReorderProb: 0.1,
	}, netem.LinkConfig{}))
	neck, err := s.AddBottleneck(netem.LinkConfig{
		Trace: tr, Overhead: 28, QueueDisc: netem.CoDel, Loss: 0.01, Jitter: 2 * time.Millisecond, JitterDist: netem.Normal,
	})
	require.NoError(t, err)
	require.NoError(t, s.Link(addrA, addrC).SetVia(neck))
	require.NoError(t, s.Link(addrB, addrC).SetVia(neck))
	s.RunUntil(clock.Never)
	st := neck.Stats()
	requireAllConserved(t, st)
	return h.Sum64()
}

type hashSink struct {
	h interface{ Write([]byte) (int, error) }
}

func (k *hashSink) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	var rec [8]byte
	binary.BigEndian.PutUint64(rec[:], uint64(now))
	k.h.Write(rec[:])
	k.h.Write(from.Addr().AsSlice())
	k.h.Write(b)
}
func (k *hashSink) HandleTimeout(clock.Time) {}
func (k *hashSink) PollTransmit(clock.Time, []byte) (int, netip.AddrPort, bool) {
	return 0, netip.AddrPort{}, false
}
func (k *hashSink) NextTimeout() clock.Time { return clock.Never }

func TestDeterminismAllFeatures(t *testing.T) {
	h1, h2, h3 := fateHash(t, 1), fateHash(t, 1), fateHash(t, 2)
	assert.Equal(t, h1, h2, "same seed, same fates")
	assert.NotEqual(t, h1, h3, "different seed, different fates")
}

func TestVersion1StreamsUnchanged(t *testing.T) {
	// runTrace (sim_test.go) uses only version 1 features; these hashes
	// were recorded with version 1 of the engine, before the new models:
	// the same seed still gives the same run, bit for bit.
	for seed, want := range map[uint64]uint64{1: 0x2509cb0c7c868ccb, 2: 0xbdd0b2faa7a30ce0, 3: 0x69625444533d4b09} {
		h, _ := runTrace(t, seed, false)
		assert.Equal(t, want, h, "seed %d", seed)
	}
}

func TestFeatureStreamsIndependent(t *testing.T) {
	// Each feature draws from its own stream: turning one on leaves the
	// others' draws where they were.
	const n = 20_000
	base := netem.LinkConfig{Loss: 0.1, Delay: 50 * time.Millisecond, Jitter: 20 * time.Millisecond, Reorder: true}
	ref, refSink, _ := fates(t, 9, base, n, 100, time.Millisecond)
	refAt := arrivalTimes(refSink)
	for name, mod := range map[string]func(*netem.LinkConfig){
		"corrupt":      func(c *netem.LinkConfig) { c.Corrupt = 0.5 },
		"duplicate":    func(c *netem.LinkConfig) { c.Duplicate = 0.5 },
		"reorder-prob": func(c *netem.LinkConfig) { c.ReorderProb = 0.5 },
		"pareto":       func(c *netem.LinkConfig) { c.JitterDist = netem.Pareto },
		"codel":        func(c *netem.LinkConfig) { c.QueueDisc = netem.CoDel },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			mod(&cfg)
			got, k, _ := fates(t, 9, cfg, n, 100, time.Millisecond)
			if name == "corrupt" {
				// Corruption may hit the numbers: compare the delivery
				// times, which also show that loss and jitter did not move.
				assert.Equal(t, sortedTimes(refSink), sortedTimes(k))
				return
			}
			for i := range ref {
				require.Equal(t, ref[i] == 0, got[i] == 0, "loss of datagram %d", i)
			}
			if name == "codel" { // no queue builds: nothing changes
				assert.Equal(t, refAt, arrivalTimes(k))
			}
		})
	}
}

func arrivalTimes(k *sink) map[uint32]clock.Time {
	out := make(map[uint32]clock.Time, len(k.arrivals))
	for _, a := range k.arrivals {
		out[a.seq] = a.at
	}
	return out
}

func sortedTimes(k *sink) []clock.Time {
	out := make([]clock.Time, len(k.arrivals))
	for i, a := range k.arrivals {
		out[i] = a.at
	}
	slices.Sort(out)
	return out
}
