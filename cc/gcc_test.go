package cc

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

// gccPath is a one-flow path for the controller's tests: the sender paces
// 1200-byte packets at the target, a bottleneck of capacity(t) with a FIFO
// queue (drop-tail at maxQueue), a fixed one-way delay, random loss; a
// report every 50 ms. It returns the target and the queue delay seen,
// every report.
type gccPath struct {
	capacity func(t time.Duration) float64
	oneWay   time.Duration
	loss     float64
	maxQueue time.Duration
	probe    bool    // send the clusters PollProbe asks for
	skewPPM  float64 // the receiver's clock runs this much fast (arrival times)
	// Another flow's rate into the same FIFO (bit/s; nil: none), its
	// bytes queued as they come, between ours.
	cross func(t time.Duration) float64
	// silent says when the sender sends its audio alone (its video frames
	// dropped): a 150-byte packet every 20 ms.
	silent func(t time.Duration) bool
}

type gccSample struct {
	at      time.Duration
	target  int64
	queue   time.Duration
	queueMS float64 // GCC's queue estimate
}

func (p gccPath) run(g Estimator, d time.Duration, seed uint64) []gccSample {
	rng := rand.New(rand.NewPCG(seed, 1))
	const size = 1200
	var out []gccSample
	var fb Feedback
	busyUntil := clock.Time(0) // when the bottleneck is free
	next := clock.Time(0)      // next send
	report := clock.Time(50 * time.Millisecond)
	pn := int64(0)
	var queue time.Duration
	var probe ProbeCluster
	probeLeft, probePkts := 0, 0
	lastCross := clock.Time(0)
	for now := clock.Time(0); now < clock.Time(d); {
		if next <= report {
			now = next
			if p.cross != nil {
				// The other flow's bytes since our last packet, queued
				// ahead of it.
				if bits := p.cross(now.Sub(0)) * now.Sub(lastCross).Seconds(); bits > 0 {
					busyUntil = clock.Max(now, busyUntil).Add(time.Duration(bits / p.capacity(now.Sub(0)) * float64(time.Second)))
				}
				lastCross = now
			}
			if probeLeft <= 0 && probePkts <= 0 && p.probe {
				if c, ok := g.(Prober).PollProbe(now); ok {
					probe, probeLeft, probePkts = c, c.Bytes, c.MinPackets
				} else {
					probe = ProbeCluster{}
				}
			}
			sz, audioOnly := size, p.silent != nil && p.silent(now.Sub(0))
			if audioOnly {
				sz = 150
			}
			c := p.capacity(now.Sub(0))
			start := clock.Max(now, busyUntil)
			queue = start.Sub(now)
			res := PacketResult{PacketNumber: pn, Size: sz, SendTime: now, ProbeID: probe.ID}
			pn++
			if queue <= p.maxQueue && rng.Float64() >= p.loss {
				busyUntil = start.Add(time.Duration(float64(sz*8) / c * float64(time.Second)))
				res.Received = true
				res.ArrivalTime = busyUntil.Add(p.oneWay)
				res.ArrivalTime += clock.Time(float64(res.ArrivalTime) * p.skewPPM / 1e6)
			}
			fb.Packets = append(fb.Packets, res)
			rate := float64(g.Target())
			if probe.ID > 0 {
				rate = float64(probe.Rate)
				probeLeft -= sz
				probePkts--
				if probeLeft <= 0 && probePkts <= 0 {
					probe = ProbeCluster{}
				}
			}
			next = now.Add(time.Duration(float64(sz*8) / rate * float64(time.Second)))
			if audioOnly {
				next = now.Add(20 * time.Millisecond)
			}
			continue
		}
		now = report
		// Only packets that have arrived by now - one way are reported.
		k := 0
		for k < len(fb.Packets) && (!fb.Packets[k].Received || fb.Packets[k].ArrivalTime <= now.Add(-p.oneWay)) {
			k++
		}
		rep := Feedback{ReceivedAt: now, Packets: fb.Packets[:k]}
		g.OnFeedback(now, &rep, RTT{Min: 2 * p.oneWay, Smoothed: 2*p.oneWay + queue}, false)
		fb.Packets = append(fb.Packets[:0], fb.Packets[k:]...)
		smp := gccSample{at: now.Sub(0), target: g.Target(), queue: queue}
		if gc, ok := g.(*GCC); ok {
			smp.queueMS = gc.queueMS
		}
		out = append(out, smp)
		report = report.Add(50 * time.Millisecond)
	}
	return out
}

func meanTarget(s []gccSample, from, to time.Duration) float64 {
	var sum float64
	n := 0
	for _, x := range s {
		if x.at >= from && x.at < to {
			sum += float64(x.target)
			n++
		}
	}
	return sum / float64(n)
}

func TestGCCFindsAndHoldsCapacity(t *testing.T) {
	path := gccPath{capacity: func(time.Duration) float64 { return 2_000_000 }, oneWay: 50 * time.Millisecond, maxQueue: 300 * time.Millisecond}
	g := NewGCC(GCCConfig{StartRate: 300_000})
	s := path.run(g, 60*time.Second, 1)
	mean := meanTarget(s, 30*time.Second, 60*time.Second)
	assert.Greater(t, mean, 0.7*2_000_000, "uses the path")
	assert.Less(t, mean, 1.1*2_000_000)
	var maxQ time.Duration
	for _, x := range s[len(s)/2:] {
		maxQ = max(maxQ, x.queue)
	}
	assert.Less(t, maxQ, 150*time.Millisecond, "without a standing queue")
	assert.Positive(t, g.Stats().Decreases)
}

// dropPath is 2 Mbit/s, then 0.5 Mbit/s from drop on; 50 ms one way, a
// 300 ms queue.
func dropPath(drop time.Duration) gccPath {
	return gccPath{capacity: func(at time.Duration) float64 {
		if at >= drop {
			return 500_000
		}
		return 2_000_000
	}, oneWay: 50 * time.Millisecond, maxQueue: 300 * time.Millisecond}
}

func TestGCCFollowsACapacityDrop(t *testing.T) {
	path := dropPath(30 * time.Second)
	g := NewGCC(GCCConfig{StartRate: 1_000_000})
	s := path.run(g, 40*time.Second, 1)
	var at time.Duration = -1
	for _, x := range s {
		if x.at >= 30*time.Second && x.target <= 500_000 {
			at = x.at - 30*time.Second
			break
		}
	}
	require.GreaterOrEqual(t, at, time.Duration(0), "the target fell to the new capacity")
	assert.LessOrEqual(t, at, time.Second)
	mean := meanTarget(s, 33*time.Second, 40*time.Second)
	assert.Greater(t, mean, 0.6*500_000)
	assert.Less(t, mean, 1.1*500_000)
}

// Loss without a delay rise is not congestion: with random loss the
// target stays near the lossless run's (loss counts only around an
// overuse, when the controller is at the path's capacity anyway).
func TestGCCIgnoresRandomLoss(t *testing.T) {
	run := func(loss float64) (float64, GCCStats) {
		path := gccPath{capacity: func(time.Duration) float64 { return 4_000_000 }, oneWay: 50 * time.Millisecond,
			maxQueue: 300 * time.Millisecond, loss: loss}
		g := NewGCC(GCCConfig{StartRate: 1_000_000})
		s := path.run(g, 30*time.Second, 2)
		return meanTarget(s, 20*time.Second, 30*time.Second), g.Stats()
	}
	lossless, _ := run(0)
	for _, loss := range []float64{0.05, 0.2} {
		mean, st := run(loss)
		assert.Greater(t, mean, 0.85*lossless, "loss %v", loss)
		if loss < lossHigh {
			assert.Zero(t, st.LossCuts, "loss %v: under gcc-02's 10 %%", loss)
		}
	}
}

func TestGCCBounds(t *testing.T) {
	g := NewGCC(GCCConfig{StartRate: 10, MinRate: 100_000, MaxRate: 1_000_000})
	assert.Equal(t, int64(100_000), g.Target(), "start within the bounds")
	path := gccPath{capacity: func(time.Duration) float64 { return 10_000_000 }, oneWay: 10 * time.Millisecond, maxQueue: time.Second}
	path.run(g, 60*time.Second, 3)
	assert.Equal(t, int64(1_000_000), g.Target(), "at most MaxRate")
	var fb Feedback
	g.OnFeedback(0, &fb, RTT{}, false) // an empty report changes nothing
	assert.Equal(t, int64(1_000_000), g.Target())
}

// gccReport is a 50-packet report of a steady 2 Mbit/s flow, shifted by
// base, for the benchmarks.
func gccReport(fb *Feedback, base clock.Time, pn int64) {
	fb.Packets = fb.Packets[:0]
	for i := range 50 {
		send := base.Add(time.Duration(i) * 4800 * time.Microsecond)
		fb.Packets = append(fb.Packets, PacketResult{PacketNumber: pn + int64(i), Size: 1200, SendTime: send,
			Received: i%17 != 0, ArrivalTime: send.Add(50*time.Millisecond + time.Duration(i%3)*time.Millisecond)})
	}
	fb.ReceivedAt = base.Add(300 * time.Millisecond)
}

func TestSteadyGCCNoAllocs(t *testing.T) {
	g := NewGCC(GCCConfig{})
	fb := Feedback{Packets: make([]PacketResult, 0, 50)}
	base := clock.Time(0)
	pn := int64(0)
	step := func() {
		gccReport(&fb, base, pn)
		g.OnFeedback(fb.ReceivedAt, &fb, RTT{Smoothed: 100 * time.Millisecond}, false)
		base = base.Add(240 * time.Millisecond)
		pn += 50
	}
	for range 100 {
		step()
	}
	require.Zero(t, allocs.Mallocs(3, func() {
		for range 1000 {
			step()
		}
	}))
}

// BenchmarkSteadyGCCPacket: the controller's cost per reported packet
// (each op is one 50-packet report; ns/op / 50 is per packet).
func BenchmarkSteadyGCCPacket(b *testing.B) { benchReports(b, NewGCC(GCCConfig{})) }

func BenchmarkSteadyGCC02Packet(b *testing.B) { benchReports(b, NewGCC02(GCCConfig{})) }

// benchReports feeds an estimator reports of 50 packets (1 in 17 lost)
// and reports the cost per packet.
func benchReports(b *testing.B, g Estimator) {
	fb := Feedback{Packets: make([]PacketResult, 0, 50)}
	base := clock.Time(0)
	pn := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		gccReport(&fb, base, pn)
		g.OnFeedback(fb.ReceivedAt, &fb, RTT{Smoothed: 100 * time.Millisecond}, false)
		base = base.Add(240 * time.Millisecond)
		pn += 50
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/packet")
}

// No feedback for max(2 RTT, 500 ms): the target halves once per RTT, down
// to MinRate, and climbs again once reports resume.
func TestGCCHalvesWithoutFeedback(t *testing.T) {
	g := NewGCC(GCCConfig{StartRate: 2_000_000, MinRate: 100_000})
	rtt := RTT{Smoothed: 100 * time.Millisecond}
	g.OnTime(clock.Time(time.Second), rtt)
	assert.Equal(t, int64(2_000_000), g.Target(), "no feedback yet: nothing to miss")
	var fb Feedback
	gccReport(&fb, 0, 0)
	g.OnFeedback(clock.Time(300*time.Millisecond), &fb, rtt, false)
	before := g.Target()
	tests := []struct {
		at   time.Duration
		want int64
	}{
		{700 * time.Millisecond, before},     // 400 ms of silence: under 500 ms
		{800 * time.Millisecond, before / 2}, // 500 ms
		{850 * time.Millisecond, before / 2}, // within an RTT of the last halving
		{900 * time.Millisecond, before / 4},
		{10 * time.Second, before / 8},
	}
	for _, tt := range tests {
		g.OnTime(clock.Time(tt.at), rtt)
		assert.InDelta(t, tt.want, g.Target(), 1, "at %v", tt.at)
	}
	for i := range 10 {
		g.OnTime(clock.Time(11*time.Second+time.Duration(i)*time.Second), rtt)
	}
	assert.Equal(t, int64(100_000), g.Target(), "down to MinRate")
	assert.Equal(t, int64(5), g.Stats().Silences, "3, then 250 -> 125 -> 100 kbit/s")
}

// With probes, the controller finds a 4 Mbit/s path from 300 kbit/s within
// 2 s, and after a collapse to 0.5 Mbit/s it is back above 3.6 Mbit/s
// within 5 s of the capacity returning (at gcc-02's 8 %/s it would take
// 25 s).
func TestGCCProbes(t *testing.T) {
	path := gccPath{capacity: func(at time.Duration) float64 {
		if at >= 20*time.Second && at < 30*time.Second {
			return 500_000
		}
		return 4_000_000
	}, oneWay: 50 * time.Millisecond, maxQueue: 300 * time.Millisecond, probe: true}
	g := NewGCC(GCCConfig{StartRate: 300_000})
	s := path.run(g, 45*time.Second, 1)
	first := func(from time.Duration, ok func(int64) bool) time.Duration {
		for _, x := range s {
			if x.at >= from && ok(x.target) {
				return x.at - from
			}
		}
		return -1
	}
	start := first(0, func(r int64) bool { return r >= 3_600_000 })
	t.Logf("cold start to 0.9 x capacity: %v; probes %d, raised the target %d times", start, g.Stats().Probes, g.Stats().ProbeHits)
	assert.GreaterOrEqual(t, start, time.Duration(0))
	assert.LessOrEqual(t, start, 2*time.Second, "cold start")
	down := first(20*time.Second, func(r int64) bool { return r <= 500_000 })
	assert.GreaterOrEqual(t, down, time.Duration(0))
	assert.LessOrEqual(t, down, 700*time.Millisecond, "collapse")
	up := first(30*time.Second, func(r int64) bool { return r >= 3_600_000 })
	t.Logf("collapse: down in %v, back up in %v", down, up)
	assert.GreaterOrEqual(t, up, time.Duration(0))
	assert.LessOrEqual(t, up, 5*time.Second, "recovery")
	// The probe at the remembered capacity waits for probes that the
	// collapsed path carried to come within a factor of it: 60 ms at 8 x
	// the capacity would queue 480 ms and overflow the 300 ms queue.
	var worst time.Duration
	for _, x := range s {
		if x.at >= 21*time.Second && x.at < 30*time.Second { // after the cut
			worst = max(worst, x.queue)
		}
	}
	t.Logf("largest queue during the collapse, after the cut: %v", worst)
	assert.Less(t, worst, 200*time.Millisecond, "no probe overflows the collapsed path")
	assert.Positive(t, g.Stats().ProbeHits)
}

// The application-limited region: entered after sending under 65 % of
// the target for a while, left once the sender uses it again.
func TestALR(t *testing.T) {
	var a ALR
	const target = 1_000_000 // 125 kB/s
	at := func(ms int) clock.Time { return clock.Time(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name    string
		share   float64 // of the target sent
		ms      int     // for this long
		limited bool
	}{
		{"at the target", 1, 2000, false},
		{"at 80 %", 0.8, 2000, false},
		{"at 30 %", 0.3, 2000, true},
		{"back at 90 %", 0.9, 2000, false},
		{"idle", 0, 1000, true},
	}
	now := 0
	a.Update(at(now), target)
	for _, tt := range tests {
		for range tt.ms / 20 {
			now += 20
			a.OnSent(int(tt.share * target / 8 * 0.02))
			a.Update(at(now), target)
		}
		assert.Equal(t, tt.limited, a.Limited(), tt.name)
	}
	// It takes a while: 100 ms idle after sending at the target is not
	// the region yet.
	var b ALR
	b.Update(at(0), target)
	for i := 1; i <= 50; i++ {
		b.OnSent(target / 8 / 50)
		b.Update(at(i*20), target)
	}
	assert.False(t, b.Update(at(1100), target), "100 ms idle")
	assert.True(t, b.Update(at(2000), target), "1 s idle")
}

// synth feeds a GCC reports every 50 ms of packets sent at rate (1200
// bytes each), arriving after owd(t) and lost when lose(i) says so, until
// end; it returns the next packet number.
type synth struct {
	g    *GCC
	now  clock.Time
	next clock.Time // the next send
	pn   int64
	rate float64 // 0: follow the target
	rtt  func(t clock.Time) RTT
	alr  bool // the sender says it is application limited
}

func (s *synth) run(end time.Duration, owd func(t clock.Time) time.Duration, lose func(pn int64) bool) {
	var fb Feedback
	for s.now < clock.Time(end) {
		rate := s.rate
		if rate == 0 {
			rate = float64(s.g.Target())
		}
		fb.Packets = fb.Packets[:0]
		gap := time.Duration(1200 * 8 / rate * float64(time.Second))
		s.next = clock.Max(s.next, s.now)
		for ; s.next < s.now.Add(50*time.Millisecond); s.next = s.next.Add(gap) {
			p := PacketResult{PacketNumber: s.pn, Size: 1200, SendTime: s.next}
			if !lose(s.pn) {
				p.Received, p.ArrivalTime = true, s.next.Add(owd(s.next))
			}
			fb.Packets = append(fb.Packets, p)
			s.pn++
		}
		s.now = s.now.Add(50 * time.Millisecond)
		s.g.OnFeedback(s.now.Add(50*time.Millisecond), &fb, s.rtt(s.now), s.alr)
	}
}

func never(int64) bool { return false }

// Loss is congestion's when a queue stands (its delay no longer rising),
// not when the delay sits at the path's least: 15 % loss at a flat delay
// cuts nothing; with a standing queue it cuts, and the queue is cut too.
func TestGCCStandingQueue(t *testing.T) {
	rtt := func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }
	for _, tc := range []struct {
		name  string
		queue time.Duration // from 2 s on
	}{{"flat delay", 0}, {"standing queue", 80 * time.Millisecond}} {
		g := NewGCC(GCCConfig{StartRate: 1_000_000})
		s := &synth{g: g, rtt: rtt}
		s.run(2*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
		before := g.Target()
		owd := func(at clock.Time) time.Duration {
			// Jump at once, as into a full queue: no trend to see.
			return 50*time.Millisecond + tc.queue + time.Duration(at%3)*time.Millisecond
		}
		s.run(4*time.Second, owd, func(pn int64) bool { return pn%7 == 0 })
		st := g.Stats()
		if tc.queue == 0 {
			assert.Zero(t, st.LossCuts, tc.name)
			assert.Zero(t, st.StandingCuts, tc.name)
			assert.GreaterOrEqual(t, g.Target(), before, tc.name)
			continue
		}
		assert.Positive(t, st.LossCuts, tc.name)
		assert.Positive(t, st.StandingCuts, tc.name)
		assert.Less(t, g.Target(), before*7/10, tc.name)
	}
}

// A standing queue that ignores three cuts in a row is another flow's:
// the competitive mode stops cutting for it (loss alone steers the
// target), and ends once the queue is gone.
func TestGCCCompetitiveMode(t *testing.T) {
	g := NewGCC(GCCConfig{StartRate: 1_000_000})
	s := &synth{g: g, rtt: func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }}
	base := func(clock.Time) time.Duration { return 50 * time.Millisecond }
	s.run(3*time.Second, base, never)
	// A queue of 200 ms that stays whatever we send.
	held := func(clock.Time) time.Duration { return 250 * time.Millisecond }
	s.run(8*time.Second, held, never)
	st := g.Stats()
	assert.True(t, st.Competitive)
	assert.Equal(t, int64(1), st.CompetitiveEntries)
	assert.Equal(t, int64(competitiveAfter+1), st.StandingCuts, "cut until the queue showed it was not ours")
	low := g.Target()
	s.run(12*time.Second, held, never)
	assert.Greater(t, g.Target(), low, "in the competitive mode, no loss: it climbs")
	// The other flow leaves: the queue drains, and once it has been gone
	// for competitiveCalm (longer than a loss-based flow's trough) the
	// mode ends.
	s.run(13*time.Second, base, never)
	assert.True(t, g.Stats().Competitive, "1 s without the queue: a trough, perhaps")
	s.run(15*time.Second, base, never)
	assert.False(t, g.Stats().Competitive)

	// Our own queue drains when we cut: no competitive mode.
	g2 := NewGCC(GCCConfig{StartRate: 1_000_000})
	s2 := &synth{g: g2, rtt: s.rtt}
	s2.run(3*time.Second, base, never)
	q := 200 * time.Millisecond
	own := func(clock.Time) time.Duration { return 50*time.Millisecond + q }
	for range 40 {
		before := g2.Target()
		s2.run(time.Duration(s2.now)+100*time.Millisecond, own, never)
		if g2.Target() < before {
			q = max(0, q-150*time.Millisecond) // the cut drains it
		}
	}
	assert.Zero(t, g2.Stats().CompetitiveEntries)
}

// After a lull of our own (frames dropped, the window full: arrivals thin
// for a while, then back) a cut takes its share of the last 200 ms'
// receive rate, up to the target (cutBasis): the 500 ms window still
// counts the lull, and a cut on it took half the rate (RFC 8867's
// jitter-30, seed 5: 1.6 -> 0.73 Mbit/s, after a delta dropped 3 ms late
// and the key frames after it). TestGCCCutBasis has the other cases.
func TestGCCCutBasisAfterALull(t *testing.T) {
	type span struct {
		d    time.Duration
		rate float64 // bit/s of 1200-byte packets; 0: none arrive
	}
	for _, tc := range []struct {
		name    string
		spans   []span
		target  float64
		want    float64
		dropped bool
	}{
		{"steady", []span{{time.Second, 2e6}}, 2.2e6, 2e6, false},
		{"capacity drop", []span{{time.Second, 2e6}, {300 * time.Millisecond, 0.5e6}}, 2.2e6, 0.5e6, true},
		{"after a lull", []span{{time.Second, 2e6}, {300 * time.Millisecond, 0.2e6}, {200 * time.Millisecond, 2e6}}, 1.6e6, 1.6e6, false},
		{"after a lull, under the target", []span{{time.Second, 2e6}, {300 * time.Millisecond, 0.2e6}, {200 * time.Millisecond, 2e6}}, 2.5e6, 2e6, false},
	} {
		g := NewGCC(GCCConfig{})
		g.target = tc.target
		at := clock.Time(0)
		for _, sp := range tc.spans {
			end := at.Add(sp.d)
			gap := time.Duration(1200 * 8 / sp.rate * float64(time.Second))
			for ; at < end; at = at.Add(gap) {
				g.ack.add(at, 1200)
			}
			at = end
		}
		g.ack.update()
		got, dropped := g.cutBasis()
		assert.InEpsilon(t, tc.want, got, 0.06, tc.name)
		assert.Equal(t, tc.dropped, dropped, tc.name)
	}
}

// The receive rate counts arrivals on the receiver's clock: a report
// that brings 500 ms of arrivals at once does not read as a burst.
func TestGCCAckRateByArrival(t *testing.T) {
	g := NewGCC(GCCConfig{})
	var fb Feedback
	for i := range 100 { // 2 Mbit/s: 1200 B every 4.8 ms
		at := clock.Time(time.Duration(i) * 4800 * time.Microsecond)
		fb.Packets = append(fb.Packets, PacketResult{PacketNumber: int64(i), Size: 1200, SendTime: at, Received: true, ArrivalTime: at.Add(30 * time.Millisecond)})
	}
	g.OnFeedback(clock.Time(time.Second), &fb, RTT{Smoothed: 60 * time.Millisecond}, false)
	assert.InEpsilon(t, 2_000_000, float64(g.Stats().AckedRate), 0.02)
	// The recent rate a cut takes beta of follows a drop at once.
	fb.Packets = fb.Packets[:0]
	for i := range 40 { // 0.5 Mbit/s from 480 ms on
		at := clock.Time(480*time.Millisecond + time.Duration(i)*19200*time.Microsecond)
		fb.Packets = append(fb.Packets, PacketResult{PacketNumber: int64(100 + i), Size: 1200, SendTime: at, Received: true, ArrivalTime: at.Add(30 * time.Millisecond)})
	}
	g.OnFeedback(clock.Time(2*time.Second), &fb, RTT{Smoothed: 60 * time.Millisecond}, false)
	basis, _ := g.cutBasis()
	assert.InEpsilon(t, 500_000, basis, 0.05)
}

// Only a cluster the path carried raises the target: one whose packets
// arrived slower than they left says the path is saturated.
func TestGCCProbeResultMustBeCarried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    probeKind
		asked   float64       // the cluster's rate; it is sent at 4 Mbit/s
		recvGap time.Duration // between arrivals; sent every 2.4 ms (4 Mbit/s)
		atLeast int64
		below   int64
		// held: jitter after the bottleneck, on the first five packets.
		held time.Duration
	}{
		{"start, carried", probeStart, 4e6, 2400 * time.Microsecond, 3_800_000, 4_100_000, 0},
		// At the start a saturated cluster counts, at 0.95 of what it got.
		{"start, queued behind others", probeStart, 4e6, 4800 * time.Microsecond, 1_800_000, 2_000_000, 0},
		// Later, only a carried one: the up-probe takes 0.85 of it.
		{"up-probe, carried", probeUp, 4e6, 2400 * time.Microsecond, 3_200_000, 3_500_000, 0},
		{"up-probe, queued behind others", probeUp, 4e6, 4800 * time.Microsecond, 1_000_000, 1_200_000, 0},
		// Sent faster than asked (3.6 Mbit/s), 3.49 Mbit/s arrived: 0.87
		// of what was sent, 0.97 of what was asked. An up-probe is not
		// carried; the probe at the remembered capacity is, at 0.95.
		{"up-probe, sent fast", probeUp, 3.6e6, 2750 * time.Microsecond, 1_000_000, 1_200_000, 0},
		{"collapse probe, sent fast", probeCollapse, 3.6e6, 2750 * time.Microsecond, 3_250_000, 3_400_000, 0},
		// Jitter held the first five packets back 10 ms: the arrivals
		// bunch. Through 3.2 Mbit/s (0.8 of the cluster) they still
		// read 0.97 of the send rate, but the queue grew by 0.2 of the
		// send time: not carried.
		{"up-probe, saturated, bunched by jitter", probeUp, 4e6, 3 * time.Millisecond, 1_000_000, 1_200_000, 10 * time.Millisecond},
		// Carried, and bunched the same way: the delay fell, carried.
		{"up-probe, carried, bunched by jitter", probeUp, 4e6, 2400 * time.Microsecond, 3_200_000, 3_500_000, 10 * time.Millisecond},
	} {
		g := NewGCC(GCCConfig{StartRate: 1_000_000})
		g.startProbed = true
		g.queueProbe(0, tc.asked, tc.kind)
		c, ok := g.PollProbe(0)
		require.True(t, ok, tc.name)
		var fb Feedback
		for i := range 20 {
			at := clock.Time(time.Duration(i) * 2400 * time.Microsecond)
			arrival := clock.Time(30*time.Millisecond + time.Duration(i)*tc.recvGap)
			if i < 5 {
				arrival = arrival.Add(tc.held)
			}
			fb.Packets = append(fb.Packets, PacketResult{PacketNumber: int64(i), Size: 1200, SendTime: at, Received: true,
				ArrivalTime: arrival, ProbeID: c.ID})
		}
		g.OnFeedback(clock.Time(200*time.Millisecond), &fb, RTT{Smoothed: 60 * time.Millisecond}, false)
		fb.Packets = fb.Packets[:0] // the cluster's packets stopped: its result is in
		g.OnFeedback(clock.Time(250*time.Millisecond), &fb, RTT{Smoothed: 60 * time.Millisecond}, false)
		assert.GreaterOrEqual(t, g.Target(), tc.atLeast, tc.name)
		assert.Less(t, g.Target(), tc.below, tc.name)
	}
}

// gcc-02 as written (the bench's reference) finds and holds a path,
// follows a capacity drop (more slowly, without the additions) and does
// not probe.
func TestGCC02(t *testing.T) {
	path := dropPath(40 * time.Second)
	g := NewGCC02(GCCConfig{StartRate: 300_000})
	var _ Estimator = g
	_, probes := any(g).(Prober)
	assert.False(t, probes, "gcc-02 does not probe")
	samples := path.run(g, 60*time.Second, 1)
	mean := meanTarget(samples, 25*time.Second, 40*time.Second)
	assert.Greater(t, mean, 0.6*2_000_000, "uses the path")
	assert.Less(t, mean, 1.2*2_000_000)
	after := meanTarget(samples, 50*time.Second, 60*time.Second)
	assert.Less(t, after, 1.2*500_000, "followed the drop")
	assert.Greater(t, after, 0.3*500_000)
}

// Application limited: the target falls back to twice what is sent (over
// 500 ms, not one report's burst), and no up-probe goes out.
func TestGCCAppLimited(t *testing.T) {
	g := NewGCC(GCCConfig{})
	g.target = 3_000_000 // an unused target from earlier
	g.startProbed = true // no start-up probes
	s := &synth{g: g, rate: 400_000, alr: true, rtt: func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }}
	s.run(5*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
	assert.InEpsilon(t, alrHeadroom*400_000, float64(g.Target()), 0.03, "1.8 x the 400 kbit/s sent")
	assert.LessOrEqual(t, g.Target(), int64(800_000), "within twice what it sends")
	_, ok := g.PollProbe(s.now)
	assert.False(t, ok, "no up-probe while application limited")
}

// With the target already at the least rate there is nothing left to cut:
// a queue standing there all the same is not ours, and the competitive
// mode comes without the cuts that could not happen.
func TestGCCCompetitiveAtTheFloor(t *testing.T) {
	g := NewGCC(GCCConfig{StartRate: 50_000, MaxRate: 60_000})
	// The sender sends more than the target (audio, say): 0.85 x the
	// receive rate is above the target, so no cut could lower it.
	s := &synth{g: g, rate: 100_000, rtt: func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }}
	s.run(3*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
	require.LessOrEqual(t, float64(g.Target()), floorShare*float64(g.cfg.MinRate))
	// At 5 packets a second the queue estimate (the least delay of the
	// last 32 packets) takes about 6 s to see the queue.
	s.run(16*time.Second, func(clock.Time) time.Duration { return 250 * time.Millisecond }, never)
	st := g.Stats()
	assert.True(t, st.Competitive)
	assert.Equal(t, int64(1), st.CompetitiveEntries)
}

// At the floor, a standing queue counts as not ours even when it stands
// lower than at the last cut noted: another flow's loss emptied it in
// between, and it grows back with that flow, under the old mark (RFC 8867
// 5.6, NewReno behind a 1000 ms queue: 26 s held at the least rate, the
// queue at 120-300 ms after a 420 ms mark). Above the floor the mark
// stands: a queue that fell after our cut may be ours, draining.
func TestGCCCompetitiveAtTheFloorAfterAFall(t *testing.T) {
	for _, tc := range []struct {
		name            string
		start, max      int64
		wantCompetitive bool
	}{
		{"at the floor", 50_000, 60_000, true},
		{"above it", 1_000_000, 1_000_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGCC(GCCConfig{StartRate: tc.start, MaxRate: tc.max})
			queue := func(now clock.Time) time.Duration {
				switch at := now.Sub(0); {
				case at < 3*time.Second:
					return 0
				case at < 5*time.Second:
					return 600 * time.Millisecond // the other flow's crest
				default: // its loss: down to 120 ms, then 10 ms more a second
					return 120*time.Millisecond + (at-5*time.Second)/100
				}
			}
			rtt := func(now clock.Time) RTT {
				d := 100*time.Millisecond + queue(now)
				return RTT{Min: 100 * time.Millisecond, Smoothed: d, Latest: d}
			}
			s := &synth{g: g, rate: 100_000, rtt: rtt}
			s.run(20*time.Second, func(now clock.Time) time.Duration { return 50*time.Millisecond + queue(now) }, never)
			assert.Equal(t, tc.wantCompetitive, g.Stats().Competitive)
		})
	}
}

// In the competitive mode a loss event cuts by competitiveBeta, once per
// round trip; loss cuts the queue heeds twice in a row (it was ours)
// end the mode before any calm.
func TestGCCCompetitiveLossCuts(t *testing.T) {
	rtt := func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }
	g := NewGCC(GCCConfig{StartRate: 1_000_000})
	s := &synth{g: g, rtt: rtt}
	s.run(3*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
	q := 250 * time.Millisecond
	queue := func(clock.Time) time.Duration { return 50*time.Millisecond + q }
	s.run(8*time.Second, queue, never)
	require.True(t, g.Stats().Competitive)
	s.run(12*time.Second, queue, never) // climbing, no loss

	// One packet lost: one cut of exactly competitiveBeta (the target
	// is under the receive rate's 1.5x bound while it climbs).
	before, cuts := g.Target(), g.Stats().LossCuts
	lostPN := s.pn + 3
	s.run(time.Duration(s.now)+50*time.Millisecond, queue, func(pn int64) bool { return pn == lostPN })
	assert.Equal(t, cuts+1, g.Stats().LossCuts)
	assert.LessOrEqual(t, float64(g.Target()), competitiveBeta*float64(before)+1)
	// Another loss within the round trip: no second cut.
	lostPN = s.pn + 1
	s.run(time.Duration(s.now)+50*time.Millisecond, queue, func(pn int64) bool { return pn == lostPN })
	assert.Equal(t, cuts+1, g.Stats().LossCuts, "once per round trip")

	// The queue falls after each loss cut: it was ours.
	for i := 0; i < 6 && g.Stats().Competitive; i++ {
		s.run(time.Duration(s.now)+500*time.Millisecond, queue, never)
		q /= 2
		lostPN = s.pn + 1
		s.run(time.Duration(s.now)+50*time.Millisecond, queue, func(pn int64) bool { return pn == lostPN })
	}
	s.run(time.Duration(s.now)+500*time.Millisecond, queue, never)
	assert.False(t, g.Stats().Competitive, "two heeded cuts end it")
	assert.Greater(t, q, 20*time.Millisecond, "before the queue was gone")
}

// The competitive mode's loss cut takes competitiveBeta of the target,
// or of the receive rate when that is lower, but of no less than dropShare
// of the target: behind a full drop-tail queue the reports come in clumps,
// and a 500 ms window of them read 46 kbit/s of a 560 kbit/s flow, which
// cut it to the floor (RFC 8867 5.6, 1000 ms queue, seed 3).
func TestGCCCompetitiveCutBasis(t *testing.T) {
	rtt := func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }
	for _, tc := range []struct {
		name    string
		ackRate float64 // the receive rate the cut sees, as a share of the target
		want    float64 // the target after the cut, as a share of before
	}{
		{"receive rate above the target", 1.2, competitiveBeta},
		{"receive rate 80 % of the target", 0.8, competitiveBeta * 0.8},
		{"receive rate a clump's 8 %", 0.08, competitiveBeta * dropShare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGCC(GCCConfig{StartRate: 1_000_000})
			s := &synth{g: g, rtt: rtt}
			s.run(3*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
			queue := func(clock.Time) time.Duration { return 300 * time.Millisecond }
			s.run(8*time.Second, queue, never)
			require.True(t, g.Stats().Competitive)
			now := s.now.Add(time.Second)
			before := g.target
			g.ack.rate = tc.ackRate * before
			g.lastLossCut = 0
			g.control(now, rtt(now), false, 1)
			require.True(t, g.competitive)
			assert.InDelta(t, tc.want*before, g.target, 1)
		})
	}
}

// The round trip comes from pings a second apart: after a standing cut
// drained the queue (the one-way estimate, every report, says so), a round
// trip still showing the old queue does not cut again.
func TestGCCStaleRTTDoesNotCutADrainedQueue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drained bool // the queue drains after the first cut
		wantMin int64
	}{
		{"drained", true, 1},
		{"still standing", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			staleRTT := false
			rtt := func(clock.Time) RTT {
				if staleRTT {
					return RTT{Min: 100 * time.Millisecond, Smoothed: 180 * time.Millisecond, Latest: 250 * time.Millisecond}
				}
				return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond, Latest: 100 * time.Millisecond}
			}
			g := NewGCC(GCCConfig{StartRate: 1_000_000})
			s := &synth{g: g, rtt: rtt}
			s.run(3*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
			// A queue appears at once (no trend to see) and stands.
			q := 150 * time.Millisecond
			owd := func(clock.Time) time.Duration { return 50*time.Millisecond + q }
			staleRTT = true
			for s.now < clock.Time(8*time.Second) {
				s.run(time.Duration(s.now)+50*time.Millisecond, owd, never)
				if tc.drained && g.Stats().StandingCuts > 0 {
					q = 0
				}
			}
			st := g.Stats()
			assert.Positive(t, st.StandingCuts)
			if tc.drained {
				assert.Equal(t, int64(1), st.StandingCuts, "the stale round trip cut nothing more")
			} else {
				assert.GreaterOrEqual(t, st.StandingCuts, tc.wantMin)
			}
		})
	}
}

// A cut takes its share (cutShare) of the receive rate over the last 500
// ms, or 0.8 of that over the last 200 ms after a drop (under half of it);
// a smaller dip over 200 ms is that window's noise, and taking it cut
// small flows deeper than large ones on a shared bottleneck.
func TestGCCCutBasis(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recent  float64 // bit/s over the last 300 ms, after 500 ms at 2 Mbit/s
		want    float64
		dropped bool
	}{
		{"a drop", 500_000, 500_000, true},
		{"a dip", 1_600_000, (200*2_000_000 + 300*1_600_000) / 500, false},
		{"a deeper dip", 900_000, (200*2_000_000 + 300*900_000) / 500, false},
		{"steady", 2_000_000, 2_000_000, false},
	} {
		g := NewGCC(GCCConfig{})
		var fb Feedback
		at := clock.Time(0)
		for pn := int64(0); at < clock.Time(800*time.Millisecond); pn++ {
			fb.Packets = append(fb.Packets, PacketResult{PacketNumber: pn, Size: 1200, SendTime: at, Received: true, ArrivalTime: at.Add(30 * time.Millisecond)})
			rate := 2_000_000.0
			if at >= clock.Time(500*time.Millisecond) {
				rate = tc.recent
			}
			at = at.Add(time.Duration(1200 * 8 / rate * float64(time.Second)))
		}
		g.OnFeedback(clock.Time(time.Second), &fb, RTT{Smoothed: 60 * time.Millisecond}, false)
		basis, dropped := g.cutBasis()
		assert.InEpsilon(t, tc.want, basis, 0.05, tc.name)
		assert.Equal(t, tc.dropped, dropped, tc.name)
		// A cut after a drop is the deepest; otherwise it drains what
		// the one-way estimate shows.
		// (25 ms drains in 500 ms at 5 % under the rate, 50 ms at 10 %,
		// 250 ms would need half: 20 % at most.)
		for _, c := range []struct{ queue, share float64 }{{0, 0.95}, {25, 0.95}, {50, 0.9}, {75, 0.85}, {250, 0.8}} {
			g.queueMS = c.queue
			share := c.share
			if tc.dropped {
				share = 0.8
			}
			cut, cutDropped := g.cutTo()
			assert.InEpsilon(t, share*basis, cut, 1e-9, "%s, queue %v ms", tc.name, c.queue)
			assert.Equal(t, tc.dropped, cutDropped, tc.name)
		}
	}
}

// A queue on the reverse path (our feedback behind another flow's media,
// RFC 8867 5.3) lifts the round trip whatever we send; the forward queue
// is ours and drains when we cut. That is no other flow's standing
// queue: no competitive mode.
func TestGCCReverseQueueIsNotCompetition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reverse time.Duration
		halveAt time.Duration // the forward capacity halves then (0: never)
	}{
		{"no reverse queue", 0, 0},
		{"reverse queue", 200 * time.Millisecond, 0},
		// After the drop a queue of ours stands for a while: each cut
		// drains it a little, which the one-way estimate sees.
		{"reverse queue, capacity halved", 200 * time.Millisecond, 20 * time.Second},
	} {
		g := NewGCC(GCCConfig{StartRate: 500_000})
		rtt := func(clock.Time) RTT {
			return RTT{Min: 100 * time.Millisecond, Smoothed: 100*time.Millisecond + tc.reverse, Latest: 100*time.Millisecond + tc.reverse}
		}
		s := &synth{g: g, rtt: rtt}
		// The forward bottleneck: 700 kbit/s (1.4 Mbit/s before
		// halveAt), a fluid queue fed at the target.
		var q time.Duration
		last := clock.Time(0)
		owd := func(at clock.Time) time.Duration {
			if at > last {
				capacity := 700_000.0
				if tc.halveAt > 0 && at < clock.Time(tc.halveAt) {
					capacity = 1_400_000
				}
				grow := (float64(g.Target())/capacity - 1) * float64(at.Sub(last))
				q = min(max(q+time.Duration(grow), 0), 300*time.Millisecond)
				last = at
			}
			return 50*time.Millisecond + q
		}
		s.run(60*time.Second, owd, never)
		st := g.Stats()
		assert.Zero(t, st.CompetitiveEntries, tc.name)
		assert.Positive(t, st.Decreases+st.StandingCuts, tc.name)
		assert.Less(t, g.Target(), int64(900_000), tc.name)
	}
}

// Another flow's burst holds our packets back as a capacity drop does,
// and the receive rate falls under half: the cut on it is taken back
// once packets sent after it cross with no queue. After a capacity drop
// the queue stands, or drains only because the sender fell silent, and
// the cut stays.
func TestGCCUndoesACutForABurst(t *testing.T) {
	const c = 2_000_000
	at := 20 * time.Second
	steady := func(time.Duration) float64 { return c }
	drop := func(t time.Duration) float64 {
		if t >= at {
			return c / 4
		}
		return c
	}
	burst := func(t time.Duration) float64 {
		if t >= at && t < at+200*time.Millisecond {
			return 2 * c
		}
		return 0
	}
	for _, tc := range []struct {
		name   string
		path   gccPath
		undos  int64
		lo, hi float64 // the target's mean 2-3 s after
	}{
		{"another flow's burst", gccPath{capacity: steady, cross: burst}, 1, 0.75 * c, 1.1 * c},
		{"a capacity drop", gccPath{capacity: drop}, 0, 0, 1.1 * c / 4},
		{"a capacity drop, the video dropped", gccPath{capacity: drop, silent: func(t time.Duration) bool {
			return t >= at+300*time.Millisecond && t < at+1500*time.Millisecond
		}}, 0, 0, 1.1 * c / 4},
	} {
		tc.path.oneWay, tc.path.maxQueue = 50*time.Millisecond, 300*time.Millisecond
		g := NewGCC(GCCConfig{StartRate: 1_000_000})
		s := tc.path.run(g, at+3*time.Second, 1)
		minT := int64(math.MaxInt64)
		for _, x := range s {
			if x.at > at {
				minT = min(minT, x.target)
			}
		}
		assert.Less(t, float64(minT), 0.5*c, "%s: the cut on the dropped rate", tc.name)
		assert.Equal(t, tc.undos, g.Stats().Undos, tc.name)

		mean := meanTarget(s, at+2*time.Second, at+3*time.Second)
		assert.Greater(t, mean, tc.lo, tc.name)
		assert.Less(t, mean, tc.hi, tc.name)
	}
}

// Far from the last congestion point the increase is 8 %/s, unless the
// target is under half of what a probe lately measured: then at least
// the additive one packet per response time (RTT 100 ms: 48 kbit/s).
// Not in the competitive mode, whose own additive part (two packets per
// round trip, 192 kbit/s) is on top of the 8 %.
func TestGCCSmallTargetGrowsAdditively(t *testing.T) {
	rtt := RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond}
	now := clock.Time(10 * time.Second)
	for _, tc := range []struct {
		name           string
		target, probed float64
		competitive    bool
		want           float64 // after 1 s
	}{
		{"no probe", 400_000, 0, false, 432_000},
		{"small against the probe", 400_000, 2_000_000, false, 448_000},
		{"half the probe or more", 1_000_000, 2_000_000, false, 1_080_000},
		{"large: 8 % is more", 800_000, 2_000_000, false, 864_000},
		{"competitive mode", 400_000, 2_000_000, true, 624_000},
	} {
		g := NewGCC(GCCConfig{StartRate: 300_000})
		g.target, g.ack.rate, g.competitive = tc.target, 2*tc.target, tc.competitive // 2x: under the 1.5 x receive rate limit
		if tc.probed > 0 {
			g.noteProbeRate(now.Add(-time.Second), tc.probed)
		}
		g.increase(now, 1, rtt, false)
		assert.InDelta(t, tc.want, g.target, 1, tc.name)
	}
}

// A MinRate above MaxRate counts as MaxRate: the least the controller
// falls to is never above the most it may send.
func TestGCCMinRateAboveMaxRate(t *testing.T) {
	g := NewGCC(GCCConfig{MinRate: 2_000_000, MaxRate: 1_000_000})
	assert.Equal(t, int64(1_000_000), g.cfg.MinRate)
	assert.Equal(t, int64(1_000_000), g.Target())
	g02 := NewGCC02(GCCConfig{MinRate: 2_000_000, MaxRate: 1_000_000})
	assert.LessOrEqual(t, g02.Target(), int64(1_000_000))
}

// The up-probe counters: at a steady capacity the gentle up-probes come
// back short and the cuts that follow them are counted; once the capacity
// rises, an up-probe is carried; a target held at MaxRate sends none.
func TestGCCUpProbeCounters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity func(time.Duration) float64
		maxRate  int64
		check    func(t *testing.T, st GCCStats)
	}{
		{"at capacity", func(time.Duration) float64 { return 2_000_000 }, 0, func(t *testing.T, st GCCStats) {
			assert.Positive(t, st.UpProbeMisses)
			assert.Positive(t, st.CutsAfterUpProbe)
			assert.Greater(t, 2*st.UpProbeMisses, st.UpProbes, "most come back short")
		}},
		{"capacity rises", func(at time.Duration) float64 {
			if at >= 20*time.Second {
				return 4_000_000
			}
			return 1_000_000
		}, 0, func(t *testing.T, st GCCStats) {
			assert.Greater(t, st.UpProbes, st.UpProbeMisses, "one was carried")
		}},
		{"held at MaxRate", func(time.Duration) float64 { return 20_000_000 }, 1_000_000, func(t *testing.T, st GCCStats) {
			assert.Zero(t, st.UpProbes)
			assert.Zero(t, st.CutsAfterUpProbe)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := gccPath{capacity: tc.capacity, oneWay: 50 * time.Millisecond, maxQueue: 300 * time.Millisecond, probe: true}
			g := NewGCC(GCCConfig{StartRate: 300_000, MaxRate: tc.maxRate})
			path.run(g, 40*time.Second, 1)
			st := g.Stats()
			t.Logf("probes %d (up %d, missed %d), hits %d; cuts: overuse %d, standing %d, after an up-probe %d",
				st.Probes, st.UpProbes, st.UpProbeMisses, st.ProbeHits, st.Decreases, st.StandingCuts, st.CutsAfterUpProbe)
			require.LessOrEqual(t, st.UpProbes, st.Probes)
			require.LessOrEqual(t, st.UpProbeMisses, st.UpProbes)
			require.LessOrEqual(t, st.CutsAfterUpProbe, st.Decreases+st.StandingCuts)
			tc.check(t, st)
		})
	}
}

// A drop-tail queue that overflowed when the capacity fell was answered by
// the cut the delay called for: the loss of packets sent before that cut
// cuts nothing more (TCP's recovery point), and the target stays at the
// cut's 0.8 of the new capacity instead of falling by half the loss rate
// on top (two loss cuts before, 421 kbit/s of 600 over the next 5 s with
// the 300 ms queue). With a shallow queue the loss is reported before the
// cut: the cut leaves the loss rate at most lossHigh (it once kept
// 0.11-0.17 from before the cut and cut again). Loss of packets sent after
// a cut still cuts (TestGCCStandingQueue).
func TestGCCLossAnsweredByACut(t *testing.T) {
	for _, maxQueue := range []time.Duration{300 * time.Millisecond, 60 * time.Millisecond, 40 * time.Millisecond, 20 * time.Millisecond} {
		path := gccPath{capacity: func(at time.Duration) float64 {
			if at >= 30*time.Second {
				return 600_000
			}
			return 2_500_000
		}, oneWay: 50 * time.Millisecond, maxQueue: maxQueue}
		g := NewGCC(GCCConfig{StartRate: 300_000, MaxRate: 4_000_000})
		s := path.run(g, 36*time.Second, 1)
		require.Greater(t, meanTarget(s, 25*time.Second, 30*time.Second), 0.8*2_500_000, "queue %v: at the capacity before the drop", maxQueue)
		assert.Zero(t, g.Stats().LossCuts, "queue %v: the overflow is the cut's", maxQueue)
		assert.GreaterOrEqual(t, meanTarget(s, 31*time.Second, 36*time.Second), 0.75*600_000, "queue %v", maxQueue)
		assert.LessOrEqual(t, meanTarget(s, 31*time.Second, 36*time.Second), 600_000.0, "queue %v", maxQueue)
	}
}

// drainRestore: a cut made with a queue of congestedQueueMS or more
// measures our receive rate while the queue stands (congestedQueueMS or
// more); once it has drained (under holdQueueMS), the target comes back to
// drainUse of the mean measured, never above the target before the cut. A
// queue between the two neither measures nor restores; a cut with less
// queue, too few measurements, or a queue that does not drain within
// drainMeasureIn restore nothing. Through control (OnFeedback's), with the
// queue estimate set for each report.
func TestGCCDrainRestore(t *testing.T) {
	const rate = 600_000.0 // the receive rate while the queue stands
	for _, tc := range []struct {
		name     string
		before   float64   // the target before the cut
		atCut    float64   // the queue estimate at the cut, ms
		dropped  bool      // a cut on a dropped receive rate
		queues   []float64 // the queue estimate at each report after the cut, 50 ms apart
		want     float64   // the target after
		restores int64
		active   bool // still measuring at the end
	}{
		{"restored to 0.9 of the rate the path carried", 2_400_000, 150, false, []float64{150, 120, 90, 60, 30, 3}, 0.9 * rate, 1, false},
		{"never above the target before the cut", 500_000, 150, false, []float64{150, 120, 90, 60, 30, 3}, 500_000, 1, false},
		{"a queue between the two waits", 2_400_000, 150, false, []float64{150, 120, 90, 60, 15, 15}, 480_000, 0, true},
		{"too few measurements", 2_400_000, 150, false, []float64{150, 60, 3}, 480_000, 0, false},
		{"a dropped rate without a queue measures nothing", 2_400_000, 3, true, []float64{3, 90, 120, 150, 60, 3}, 480_000, 0, false},
		{"a small queue at the cut measures nothing", 2_400_000, 20, false, []float64{60, 90, 60, 3}, 480_000, 0, false},
		{"the queue did not drain in time", 2_400_000, 150, false, append(slices.Repeat([]float64{150}, 41), 3), 480_000, 0, false},
	} {
		g := NewGCC(GCCConfig{StartRate: 300_000, MaxRate: 4_000_000})
		now := clock.Time(10 * time.Second)
		gap := time.Duration(1200 * 8 / rate * float64(time.Second))
		arr := now.Add(-time.Second)
		feed := func(until clock.Time) {
			for ; arr <= until; arr = arr.Add(gap) {
				g.ack.add(arr, 1200)
			}
			g.ack.update()
		}
		feed(now)
		g.target, g.queueMS = tc.before, tc.atCut
		g.applyCut(now, 0.8*rate, tc.dropped, RTT{Smoothed: 100 * time.Millisecond}, tc.atCut)
		for _, q := range tc.queues {
			now = now.Add(50 * time.Millisecond)
			feed(now)
			g.queueMS = q
			g.control(now, RTT{Smoothed: 100 * time.Millisecond}, false, 0)
		}
		assert.InDelta(t, tc.want, g.target, 0.02*tc.want, tc.name)
		assert.Equal(t, tc.restores, g.Stats().DrainRestores, tc.name)
		assert.Equal(t, tc.active, g.drain.active, tc.name)
	}
}
