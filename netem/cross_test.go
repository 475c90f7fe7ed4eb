package netem_test

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

var (
	crossA = netip.MustParseAddrPort("10.9.0.1:4000")
	crossB = netip.MustParseAddrPort("10.9.0.2:5000")
)

// The reference bottleneck: 10 Mbit/s, 40 ms RTT, a drop-tail queue of one
// bandwidth-delay product (50,000 bytes), IPv4/UDP overhead counted.
const (
	crossRate   = 10_000_000
	crossOneWay = 20 * time.Millisecond
	crossBDP    = crossRate / 8 * 2 * int(crossOneWay/time.Millisecond) / 1000
)

func crossFwd() netem.LinkConfig {
	return netem.LinkConfig{Delay: crossOneWay, Rate: crossRate, QueueBytes: crossBDP, Overhead: netem.OverheadIPv4UDP}
}

func crossBack() netem.LinkConfig { return netem.LinkConfig{Delay: crossOneWay} }

// crossPath puts a at crossA and b at crossB, joined by the reference
// bottleneck from A to B and a plain 20 ms link back.
func crossPath(t testing.TB, seed uint64, a, b netem.Node) *netem.Simulator {
	t.Helper()
	sim := netem.New(seed)
	require.NoError(t, sim.AddNode(crossA, a))
	require.NoError(t, sim.AddNode(crossB, b))
	require.NoError(t, sim.Connect(crossA, crossB, crossFwd(), crossBack()))
	return sim
}

func crossFlow(t testing.TB, cfg netem.TCPConfig) (*netem.TCPSender, *netem.TCPReceiver) {
	t.Helper()
	snd, rcv, err := netem.NewTCPFlow(cfg)
	require.NoError(t, err)
	return snd, rcv
}

// crossWireBits is what a link delivered, in bits on the wire (payload and
// Overhead), as SCENARIOS.md counts utilisation.
func crossWireBits(st netem.LinkStats) float64 {
	return 8 * float64(st.BytesDelivered+st.PacketsDelivered*netem.OverheadIPv4UDP)
}

// crossJain is Jain's fairness index (sum x)^2 / (n sum x^2).
func crossJain(x ...float64) float64 {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return 1
	}
	return s * s / (float64(len(x)) * s2)
}

// crossAt is the virtual instant d after 0.
func crossAt(d time.Duration) clock.Time { return clock.Time(d) }

// ---- constant bitrate ----

func TestCBRRateExact(t *testing.T) {
	tests := []struct {
		name     string
		rate     int64
		size     int
		overhead int
	}{
		{"1Mbit 1200B", 1_000_000, 1200, 0},
		{"wire rate", 2_500_000, 1200, netem.OverheadIPv4UDP},
		{"odd interval", 777_777, 333, 7},
		{"small", 64_000, netem.CBRMinSize, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := crossAt(250 * time.Millisecond)
			snd, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Rate: tt.rate, Size: tt.size, Overhead: tt.overhead, Start: start})
			require.NoError(t, err)
			sink := netem.NewCBRSink()
			sim := netem.New(1)
			require.NoError(t, sim.AddNode(crossA, snd))
			require.NoError(t, sim.AddNode(crossB, sink))
			require.NoError(t, sim.Connect(crossA, crossB, netem.LinkConfig{Delay: 10 * time.Millisecond}, netem.LinkConfig{}))

			bits := float64((tt.size + tt.overhead) * 8)
			for _, d := range []time.Duration{time.Second, 7 * time.Second, 60 * time.Second} {
				sim.RunUntil(start.Add(d))
				got := float64(snd.Stats().Packets) * bits
				want := float64(tt.rate) * d.Seconds()
				// Sent at start + floor(k*bits/rate): packets 0..k with k*bits/rate <= d.
				assert.InDelta(t, want, got, bits, "after %v: %v bits, want %v", d, got, want)
				assert.Equal(t, uint64(math.Floor(want/bits))+1, snd.Stats().Packets, "after %v", d)
			}
			sim.RunUntil(sim.Now().Add(time.Second))
			st := sink.Stats()
			assert.Zero(t, st.Lost)
			assert.Zero(t, st.Reordered)
			assert.Equal(t, 10*time.Millisecond, st.DelayMax)
		})
	}
}

func TestCBRSinkMatchesLinkStats(t *testing.T) {
	// 4 Mbit/s offered to a 3 Mbit/s link with 5 % loss: the sink sees
	// exactly what the link delivered, and its loss count what the link
	// lost or dropped.
	snd, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Rate: 4_000_000, Overhead: netem.OverheadIPv4UDP, Stop: crossAt(20 * time.Second)})
	require.NoError(t, err)
	sink := netem.NewCBRSink()
	sim := netem.New(7)
	require.NoError(t, sim.AddNode(crossA, snd))
	require.NoError(t, sim.AddNode(crossB, sink))
	fwd := netem.LinkConfig{Delay: 20 * time.Millisecond, Loss: 0.05, Rate: 3_000_000, QueueDelay: 100 * time.Millisecond, Overhead: netem.OverheadIPv4UDP}
	require.NoError(t, sim.Connect(crossA, crossB, fwd, netem.LinkConfig{}))
	sim.RunUntil(crossAt(25 * time.Second))

	ls := sim.Link(crossA, crossB).Stats()
	ks, ss := sink.Stats(), snd.Stats()
	require.Zero(t, ls.InFlight)
	assert.Equal(t, ls.PacketsDelivered, ks.Packets)
	assert.Equal(t, ls.BytesDelivered, ks.Bytes)
	assert.Equal(t, ls.PacketsOffered, ss.Packets)
	assert.Equal(t, ls.BytesOffered, ss.Bytes)
	missing := ls.PacketsLost + ls.PacketsDropped
	assert.InDelta(t, float64(missing), float64(ks.Lost), 3, "link lost %d, sink counts %d missing", missing, ks.Lost)
	assert.Positive(t, ls.PacketsDropped)
	assert.Positive(t, ls.PacketsLost)
	// What got through is the link's rate, on the wire.
	assert.InEpsilon(t, 3e6*20, crossWireBits(ls), 0.02)
	assert.Zero(t, ks.Reordered)
	t.Logf("sent %d, delivered %d, lost %d, dropped %d; sink %+v", ss.Packets, ls.PacketsDelivered, ls.PacketsLost, ls.PacketsDropped, ks)
}

func TestCBROnOffSchedule(t *testing.T) {
	// 1 s on, 1 s off from 0.5 s, stopped at 5 s: on in [0.5, 1.5),
	// [2.5, 3.5) and [4.5, 5).
	cfg := netem.CBRConfig{
		Peer: crossB, Rate: 960_000, Size: 1200, // 100 datagrams/s
		Start: crossAt(500 * time.Millisecond), Stop: crossAt(5 * time.Second),
		On: time.Second, Off: time.Second,
	}
	snd, err := netem.NewCBR(cfg)
	require.NoError(t, err)
	sim := netem.New(1)
	require.NoError(t, sim.AddNode(crossA, snd))
	require.NoError(t, sim.AddNode(crossB, netem.NewCBRSink()))
	require.NoError(t, sim.Connect(crossA, crossB, netem.LinkConfig{}, netem.LinkConfig{}))
	var sent []clock.Time
	sim.SetCapture(crossA, crossB, func(at clock.Time, _, _ netip.AddrPort, _ []byte) { sent = append(sent, at) })
	sim.RunUntil(crossAt(10 * time.Second))

	require.Len(t, sent, 100+100+50)
	for i, ts := range sent {
		var period clock.Time
		switch {
		case i < 100:
			period = crossAt(500 * time.Millisecond)
		case i < 200:
			period = crossAt(2500 * time.Millisecond)
		default:
			period = crossAt(4500 * time.Millisecond)
		}
		require.Equal(t, period.Add(time.Duration(i%100)*10*time.Millisecond), ts, "datagram %d", i)
	}
	assert.Equal(t, clock.Never, snd.NextTimeout())
}

func TestCBRLateStartDoesNotBurst(t *testing.T) {
	snd, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Rate: 960_000, Size: 1200})
	require.NoError(t, err)
	sim := netem.New(1)
	sim.RunUntil(crossAt(3 * time.Second))
	require.NoError(t, sim.AddNode(crossA, snd))
	require.NoError(t, sim.AddNode(crossB, netem.NewCBRSink()))
	require.NoError(t, sim.Connect(crossA, crossB, netem.LinkConfig{}, netem.LinkConfig{}))
	sim.RunUntil(crossAt(3*time.Second + 995*time.Millisecond))
	assert.Equal(t, uint64(100), snd.Stats().Packets)
}

func TestCBRConfigValidate(t *testing.T) {
	ok := netem.CBRConfig{Peer: crossB, Rate: 1e6}
	require.NoError(t, ok.Validate())
	bad := []func(c *netem.CBRConfig){
		func(c *netem.CBRConfig) { c.Peer = netip.AddrPort{} },
		func(c *netem.CBRConfig) { c.Rate = 0 },
		func(c *netem.CBRConfig) { c.Rate = -1 },
		func(c *netem.CBRConfig) { c.Size = netem.CBRMinSize - 1 },
		func(c *netem.CBRConfig) { c.Size = netem.MaxDatagramSize + 1 },
		func(c *netem.CBRConfig) { c.Overhead = -1 },
		func(c *netem.CBRConfig) { c.Start = -1 },
		func(c *netem.CBRConfig) { c.Start, c.Stop = crossAt(time.Second), crossAt(time.Second) },
		func(c *netem.CBRConfig) { c.On = time.Second },
		func(c *netem.CBRConfig) { c.On, c.Off = -time.Second, time.Second },
	}
	for i, mod := range bad {
		c := ok
		mod(&c)
		err := c.Validate()
		require.ErrorIs(t, err, netem.ErrInvalidConfig, "case %d", i)
		_, err = netem.NewCBR(c)
		require.ErrorIs(t, err, netem.ErrInvalidConfig, "case %d", i)
	}
}

// ---- TCP ----

func TestTCPConfigValidate(t *testing.T) {
	ok := netem.TCPConfig{Peer: crossB}
	require.NoError(t, ok.Validate())
	bad := []func(c *netem.TCPConfig){
		func(c *netem.TCPConfig) { c.Peer = netip.AddrPort{} },
		func(c *netem.TCPConfig) { c.Variant = 9 },
		func(c *netem.TCPConfig) { c.MSS = -1 },
		func(c *netem.TCPConfig) { c.MSS = netem.MaxDatagramSize },
		func(c *netem.TCPConfig) { c.MaxWindow = 1000 },
		func(c *netem.TCPConfig) { c.MSS, c.MaxWindow = 1, 4<<20 },
		func(c *netem.TCPConfig) { c.InitialWindow = -1 },
		func(c *netem.TCPConfig) { c.InitialWindow, c.MaxWindow = 11, 10*netem.DefaultTCPMSS },
		func(c *netem.TCPConfig) { c.Start = -1 },
		func(c *netem.TCPConfig) { c.Start, c.Stop = crossAt(time.Second), crossAt(time.Second) },
		func(c *netem.TCPConfig) { c.FileSize = -1 },
		func(c *netem.TCPConfig) { c.FileSizeMax = 100 },
		func(c *netem.TCPConfig) { c.FileSize, c.FileSizeMax = 200, 100 },
		func(c *netem.TCPConfig) { c.IdleMean = time.Second },
		func(c *netem.TCPConfig) { c.Files = 3 },
		func(c *netem.TCPConfig) { c.FileSize, c.Files = 100, -1 },
		func(c *netem.TCPConfig) { c.AckEvery = 3 },
		func(c *netem.TCPConfig) { c.DelayedACK = time.Second },
		func(c *netem.TCPConfig) { c.MinRTO = -time.Second },
		func(c *netem.TCPConfig) { c.MinRTO, c.MaxRTO = 2*time.Second, time.Second },
	}
	for i, mod := range bad {
		c := ok
		mod(&c)
		require.ErrorIs(t, c.Validate(), netem.ErrInvalidConfig, "case %d", i)
		_, _, err := netem.NewTCPFlow(c)
		require.ErrorIs(t, err, netem.ErrInvalidConfig, "case %d", i)
	}

	var v netem.TCPVariant
	require.NoError(t, v.UnmarshalText([]byte("cubic")))
	assert.Equal(t, netem.TCPCubic, v)
	b, err := netem.TCPReno.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "reno", string(b))
	require.ErrorIs(t, v.UnmarshalText([]byte("vegas")), netem.ErrInvalidConfig)
}

// crossLossEvent is one fast retransmit seen while stepping a simulation.
type crossLossEvent struct {
	at             clock.Time
	cwndBefore     int // cwnd just before the loss was detected
	ssthresh       int // ssthresh it set
	cwndAfterRecov int // cwnd when fast recovery ended
}

// crossSawtooth steps a single bulk flow over the reference bottleneck until
// end, returning the loss events after from and the link's wire bits and
// the sender's stats at from and at end.
func crossSawtooth(t *testing.T, v netem.TCPVariant, from, end clock.Time) (events []crossLossEvent, util float64, st netem.TCPStats) {
	snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, Variant: v})
	sim := crossPath(t, 1, snd, rcv)
	sim.RunUntil(from)
	link := sim.Link(crossA, crossB)
	w0, st0 := crossWireBits(link.Stats()), snd.Stats()

	prev := snd.Stats()
	for sim.NextEvent() <= end && sim.Step() {
		cur := snd.Stats()
		if cur.FastRetransmits != prev.FastRetransmits {
			events = append(events, crossLossEvent{at: sim.Now(), cwndBefore: prev.Cwnd, ssthresh: cur.Ssthresh})
		}
		if prev.InRecovery && !cur.InRecovery && len(events) > 0 {
			events[len(events)-1].cwndAfterRecov = cur.Cwnd
		}
		prev = cur
	}
	sim.RunUntil(end)
	util = (crossWireBits(link.Stats()) - w0) / (crossRate * end.Sub(from).Seconds())
	st = snd.Stats()
	require.Equal(t, st0.Timeouts, st.Timeouts, "no timeout in steady state")
	return events, util, st
}

func TestTCPRenoUtilisationAndSawtooth(t *testing.T) {
	t.Parallel()
	from, end := crossAt(10*time.Second), crossAt(60*time.Second)
	events, util, st := crossSawtooth(t, netem.TCPReno, from, end)
	t.Logf("Reno, 10 Mbit/s, 40 ms, queue 1 BDP: utilisation %.4f over 10-60 s; %d loss events; srtt %v, cwnd %d",
		util, len(events), st.SRTT, st.Cwnd)
	assert.GreaterOrEqual(t, util, 0.95)

	// The sawtooth: a loss every few seconds, each halving the window
	// (RFC 5681 eq. 4 on FlightSize = cwnd), and cwnd growing back
	// linearly by about one segment per RTT in between.
	require.GreaterOrEqual(t, len(events), 10)
	for i, e := range events {
		ratio := float64(e.ssthresh) / float64(e.cwndBefore)
		assert.InDelta(t, 0.5, ratio, 0.03, "event %d at %v: cwnd %d -> ssthresh %d", i, e.at, e.cwndBefore, e.ssthresh)
		assert.InDelta(t, e.ssthresh, e.cwndAfterRecov, 2*netem.DefaultTCPMSS, "event %d: cwnd after recovery", i)
		if i > 0 {
			prev := events[i-1]
			gap := e.at.Sub(prev.at)
			grown := float64(e.cwndBefore-prev.cwndAfterRecov) / netem.DefaultTCPMSS
			// Between losses the RTT climbs from 40 ms to 40 ms + a full
			// queue (80 ms): expect growth of gap/RTT segments.
			assert.InDelta(t, gap.Seconds()/0.060, grown, 0.25*grown, "event %d: +%.1f segments in %v", i, grown, gap)
		}
	}
	first := events[0]
	t.Logf("sawtooth: cwnd %d -> ssthresh %d, back to %d after %v",
		first.cwndBefore, first.ssthresh, events[1].cwndBefore, events[1].at.Sub(first.at))
}

func TestTCPCubicUtilisationAndDecrease(t *testing.T) {
	t.Parallel()
	from, end := crossAt(10*time.Second), crossAt(60*time.Second)
	events, util, st := crossSawtooth(t, netem.TCPCubic, from, end)
	t.Logf("CUBIC, 10 Mbit/s, 40 ms, queue 1 BDP: utilisation %.4f over 10-60 s; %d loss events; srtt %v, cwnd %d",
		util, len(events), st.SRTT, st.Cwnd)
	assert.GreaterOrEqual(t, util, 0.95)
	require.GreaterOrEqual(t, len(events), 10)
	for i, e := range events {
		// RFC 9438 §4.6: ssthresh = flight_size * 0.7.
		ratio := float64(e.ssthresh) / float64(e.cwndBefore)
		assert.InDelta(t, 0.7, ratio, 0.03, "event %d at %v: cwnd %d -> ssthresh %d", i, e.at, e.cwndBefore, e.ssthresh)
	}
}

// crossFairness is what crossMeasureFairness reports.
type crossFairness struct {
	mbit            []float64 // mean goodput per flow, Mbit/s
	all             float64   // Jain over the whole window
	mean1, worst1   float64
	mean5, worst5   float64
	mean20, worst20 float64
	util            float64
	fastRetransmits []uint64
	timeouts        []uint64
}

func (f crossFairness) String() string {
	return fmt.Sprintf("goodput %.2f Mbit/s, utilisation %.4f; Jain whole %.4f; 20 s windows mean %.4f worst %.4f; "+
		"5 s mean %.4f worst %.4f; 1 s mean %.4f worst %.4f; fast retransmits %v, timeouts %v",
		f.mbit, f.util, f.all, f.mean20, f.worst20, f.mean5, f.worst5, f.mean1, f.worst1, f.fastRetransmits, f.timeouts)
}

// crossMeasureFairness runs sim from from to end, sampling each sender's
// goodput every second, and reports Jain's index on 1, 5 and 20 s windows
// (SCENARIOS.md) and over the whole run, with the utilisation of what wire
// counts.
func crossMeasureFairness(sim *netem.Simulator, snds []*netem.TCPSender, wire func() float64, from, end time.Duration) crossFairness {
	sim.RunUntil(crossAt(from))
	w0 := wire()
	n := len(snds)
	var per [][]float64 // goodput bytes per second, per flow
	last := make([]uint64, n)
	for i, s := range snds {
		last[i] = s.Stats().BytesAcked
	}
	for d := from + time.Second; d <= end; d += time.Second {
		sim.RunUntil(crossAt(d))
		x := make([]float64, n)
		for i, s := range snds {
			b := s.Stats().BytesAcked
			x[i], last[i] = float64(b-last[i]), b
		}
		per = append(per, x)
	}
	jains := func(w int) (mean, worst float64) {
		worst = 1
		k := 0
		for i := 0; i+w <= len(per); i += w {
			x := make([]float64, n)
			for _, p := range per[i : i+w] {
				for j := range x {
					x[j] += p[j]
				}
			}
			j := crossJain(x...)
			mean += j
			worst = min(worst, j)
			k++
		}
		return mean / float64(k), worst
	}
	var f crossFairness
	f.mean1, f.worst1 = jains(1)
	f.mean5, f.worst5 = jains(5)
	f.mean20, f.worst20 = jains(20)
	f.all, _ = jains(len(per))
	f.util = (wire() - w0) / (crossRate * (end - from).Seconds())
	for j, s := range snds {
		var sum float64
		for _, p := range per {
			sum += p[j]
		}
		f.mbit = append(f.mbit, sum*8/float64(len(per))/1e6)
		f.fastRetransmits = append(f.fastRetransmits, s.Stats().FastRetransmits)
		f.timeouts = append(f.timeouts, s.Stats().Timeouts)
	}
	return f
}

func TestTCPFairnessTwoRenoFlowsAtBottleneck(t *testing.T) {
	t.Parallel()
	// Two Reno flows between distinct hosts, each over its own access link,
	// meeting at a shared 10 Mbit/s bottleneck (10 ms further on, a queue of
	// one BDP at 40 ms); ACKs come back over plain 20 ms links. The second
	// flow starts 2 s after the first.
	tests := []struct {
		name   string
		access [2]time.Duration
		bound  float64 // on the whole-run index
	}{
		{"same RTT 40 ms", [2]time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, 0.95},
		// Reno's share goes as 1/RTT: RTTs of 30 and 50 ms plus the shared
		// queueing delay.
		{"RTT 30 and 50 ms", [2]time.Duration{0, 20 * time.Millisecond}, 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := netem.New(1)
			neck, err := sim.AddBottleneck(netem.LinkConfig{
				Delay: 10 * time.Millisecond, Rate: crossRate, QueueBytes: crossBDP, Overhead: netem.OverheadIPv4UDP,
			})
			require.NoError(t, err)
			var snds []*netem.TCPSender
			var access []*netem.Link
			for i := range 2 {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 1, byte(i + 1)}), 4000)
				dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 2, byte(i + 1)}), 5000)
				snd, rcv := crossFlow(t, netem.TCPConfig{Peer: dst, Start: crossAt(time.Duration(i) * 2 * time.Second)})
				require.NoError(t, sim.AddNode(src, snd))
				require.NoError(t, sim.AddNode(dst, rcv))
				require.NoError(t, sim.Connect(src, dst, netem.LinkConfig{Delay: tt.access[i]}, crossBack()))
				l := sim.Link(src, dst)
				require.NoError(t, l.SetVia(neck))
				snds, access = append(snds, snd), append(access, l)
			}
			f := crossMeasureFairness(sim, snds, func() float64 { return crossWireBits(neck.Stats()) }, 20*time.Second, 80*time.Second)
			t.Logf("two Reno flows at a shared bottleneck, %s, 20-80 s: %v", tt.name, f)
			assert.GreaterOrEqual(t, f.all, tt.bound)
			assert.GreaterOrEqual(t, f.worst20, 0.9)
			assert.GreaterOrEqual(t, f.util, 0.95)
			// The losses were the shared queue's, not the access links'.
			ns := neck.Stats()
			assert.Positive(t, ns.PacketsDropped)
			for _, l := range access {
				assert.Zero(t, l.Stats().PacketsDropped)
			}
		})
	}
}

func TestTCPFairnessTwoRenoFlowsSharingALink(t *testing.T) {
	t.Parallel()
	// Two Reno flows behind one address pair (FlowMux), so both cross the
	// one bottleneck queue; the second starts 2 s after the first.
	ma, mb := netem.NewFlowMux(), netem.NewFlowMux()
	var snds []*netem.TCPSender
	for i := range 2 {
		flow := uint32(i + 1)
		snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, Flow: flow, Start: crossAt(time.Duration(i) * 2 * time.Second)})
		require.NoError(t, ma.Add(flow, snd))
		require.NoError(t, mb.Add(flow, rcv))
		snds = append(snds, snd)
	}
	sim := crossPath(t, 1, ma, mb)
	link := sim.Link(crossA, crossB)
	f := crossMeasureFairness(sim, snds, func() float64 { return crossWireBits(link.Stats()) }, 20*time.Second, 80*time.Second)
	t.Logf("two Reno flows multiplexed over one link, 20-80 s: %v", f)
	assert.GreaterOrEqual(t, f.all, 0.95)
	assert.GreaterOrEqual(t, f.worst20, 0.9)
	assert.GreaterOrEqual(t, f.util, 0.95)
}

func TestTCPShortFlowsComplete(t *testing.T) {
	t.Parallel()
	// Four on/off flows in the manner of RFC 8867 §5.7 (files of 30-50 KB,
	// exponential idle times, here 1 s on average), sharing the bottleneck
	// with a 2 Mbit/s CBR flow.
	ma, mb := netem.NewFlowMux(), netem.NewFlowMux()
	var files []netem.TCPFile
	var snds []*netem.TCPSender
	for i := range 4 {
		flow := uint32(i + 1)
		snd, rcv := crossFlow(t, netem.TCPConfig{
			Peer: crossB, Flow: flow, Variant: netem.TCPVariant(i % 2),
			FileSize: 30_000, FileSizeMax: 50_000, IdleMean: time.Second, Files: 8, Seed: uint64(i),
			Start:  crossAt(time.Duration(i) * 300 * time.Millisecond),
			OnFile: func(f netem.TCPFile) { files = append(files, f) },
		})
		require.NoError(t, ma.Add(flow, snd))
		require.NoError(t, mb.Add(flow, rcv))
		snds = append(snds, snd)
	}
	cbr, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Flow: 9, Rate: 2_000_000, Overhead: netem.OverheadIPv4UDP})
	require.NoError(t, err)
	sink := netem.NewCBRSink()
	require.NoError(t, ma.Add(9, cbr))
	require.NoError(t, mb.Add(9, sink))
	sim := crossPath(t, 1, ma, mb)
	sim.RunUntil(crossAt(60 * time.Second))

	require.Len(t, files, 4*8)
	var sum, worst time.Duration
	for _, f := range files {
		require.GreaterOrEqual(t, f.Size, 30_000)
		require.LessOrEqual(t, f.Size, 50_000)
		// The floor: one RTT plus the file at the whole link rate.
		floor := 40*time.Millisecond + time.Duration(float64(f.Size)*8/crossRate*float64(time.Second))
		require.Greater(t, f.Duration(), floor, "file %+v", f)
		require.Less(t, f.Duration(), 2*time.Second, "file %+v", f)
		sum += f.Duration()
		worst = max(worst, f.Duration())
	}
	for _, s := range snds {
		st := s.Stats()
		assert.Equal(t, uint64(8), st.FilesDone)
		assert.Equal(t, clock.Never, s.NextTimeout())
		assert.Equal(t, st.FCTMax, max(st.FCTMax, st.LastFile.Duration()))
	}
	assert.Equal(t, netem.FlowMuxStats{}, mb.Stats())
	assert.Zero(t, sink.Stats().Foreign)
	t.Logf("32 files of 30-50 KB: completion time mean %v, max %v; CBR sink %d packets, %d lost",
		(sum / time.Duration(len(files))).Round(time.Millisecond), worst.Round(time.Millisecond), sink.Stats().Packets, sink.Stats().Lost)
}

func TestTCPRecoversFromBlackout(t *testing.T) {
	t.Parallel()
	// The forward link loses everything from 5 s to 7 s: the sender times
	// out with exponential backoff (RFC 6298 §5.5), then slow-starts back to
	// the link rate.
	snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB})
	sim := crossPath(t, 1, snd, rcv)
	link := sim.Link(crossA, crossB)
	sim.RunUntil(crossAt(5 * time.Second))
	before := snd.Stats()
	cfg := crossFwd()
	cfg.Loss = 1
	require.NoError(t, link.SetConfig(cfg))
	var rtos []time.Duration
	prev := before.Timeouts
	for sim.NextEvent() < crossAt(7*time.Second) && sim.Step() {
		if st := snd.Stats(); st.Timeouts != prev {
			rtos = append(rtos, st.RTO)
			prev = st.Timeouts
		}
	}
	require.NoError(t, link.SetConfig(crossFwd()))
	during := snd.Stats()
	t.Logf("blackout 5-7 s: %d timeouts, RTO after each %v", during.Timeouts-before.Timeouts, rtos)
	require.GreaterOrEqual(t, len(rtos), 3)
	for i := 1; i < len(rtos); i++ {
		assert.Equal(t, 2*rtos[i-1], rtos[i], "backoff doubles")
	}

	// Back at the link rate once it has slow-started again.
	sim.RunUntil(crossAt(20 * time.Second))
	assert.Greater(t, snd.Stats().BytesAcked, during.BytesAcked)
	w0 := crossWireBits(link.Stats())
	sim.RunUntil(crossAt(30 * time.Second))
	util := (crossWireBits(link.Stats()) - w0) / (crossRate * 10)
	t.Logf("utilisation 20-30 s: %.4f", util)
	assert.GreaterOrEqual(t, util, 0.95)
}

func TestTCPRandomLossDeliversEverything(t *testing.T) {
	t.Parallel()
	for _, v := range []netem.TCPVariant{netem.TCPReno, netem.TCPCubic} {
		t.Run(v.String(), func(t *testing.T) {
			const size = 2_000_000
			snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, Variant: v, FileSize: size, Files: 1, AckEvery: 1})
			sim := netem.New(3)
			require.NoError(t, sim.AddNode(crossA, snd))
			require.NoError(t, sim.AddNode(crossB, rcv))
			fwd := crossFwd()
			fwd.Loss = 0.02
			back := crossBack()
			back.Loss = 0.02
			require.NoError(t, sim.Connect(crossA, crossB, fwd, back))
			sim.RunUntil(crossAt(120 * time.Second))

			st, rs := snd.Stats(), rcv.Stats()
			require.Equal(t, uint64(1), st.FilesDone, "%+v", st)
			assert.Equal(t, uint64(size), st.BytesAcked)
			assert.Equal(t, uint64(size), rs.Bytes)
			ls := sim.Link(crossA, crossB).Stats()
			assert.GreaterOrEqual(t, st.Retransmissions, ls.PacketsLost+ls.PacketsDropped)
			assert.Positive(t, st.FastRetransmits)
			t.Logf("%v, 2 %% loss both ways: 2 MB in %v, %d retransmissions for %d lost, %d fast retransmits, %d timeouts",
				v, st.LastFile.Duration().Round(time.Millisecond), st.Retransmissions, ls.PacketsLost+ls.PacketsDropped,
				st.FastRetransmits, st.Timeouts)
		})
	}
}

// crossCorrupter hands every n-th datagram to node with one bit flipped.
type crossCorrupter struct {
	netem.Node
	n, i int
	buf  [netem.MaxDatagramSize]byte
}

func (c *crossCorrupter) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	c.i++
	if c.i%c.n == 0 {
		m := copy(c.buf[:], b)
		c.buf[c.i%m] ^= 1 << (c.i % 8)
		b = c.buf[:m]
	}
	c.Node.HandleDatagram(now, from, b)
}

func TestCrossCorruptedDatagramsDiscarded(t *testing.T) {
	const size = 500_000
	snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, FileSize: size, Files: 1})
	sim := crossPath(t, 1, &crossCorrupter{Node: snd, n: 37}, &crossCorrupter{Node: rcv, n: 41})
	sim.RunUntil(crossAt(30 * time.Second))
	st, rs := snd.Stats(), rcv.Stats()
	require.Equal(t, uint64(1), st.FilesDone)
	assert.Equal(t, uint64(size), rs.Bytes)
	assert.Positive(t, rs.Corrupted)
	assert.Positive(t, st.AcksCorrupted)
	assert.Equal(t, rs.Segments+rs.Corrupted, sim.Link(crossA, crossB).Stats().PacketsDelivered)
}

func TestCrossFlowMux(t *testing.T) {
	m := netem.NewFlowMux()
	k1, k2 := netem.NewCBRSink(), netem.NewCBRSink()
	require.NoError(t, m.Add(1, k1))
	require.NoError(t, m.Add(2, k2))
	require.ErrorIs(t, m.Add(1, k2), netem.ErrInvalidConfig)
	require.ErrorIs(t, m.Add(3, nil), netem.ErrInvalidConfig)

	// Two CBR flows from one address to another: each sink gets its own.
	src := netem.NewFlowMux()
	for _, f := range []uint32{1, 2, 7} {
		s, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Flow: f, Rate: 96_000 * int64(f), Size: 1200, Stop: crossAt(10 * time.Second)})
		require.NoError(t, err)
		require.NoError(t, src.Add(f, s))
	}
	sim := netem.New(1)
	require.NoError(t, sim.AddNode(crossA, src))
	require.NoError(t, sim.AddNode(crossB, m))
	require.NoError(t, sim.Connect(crossA, crossB, netem.LinkConfig{Delay: time.Millisecond}, netem.LinkConfig{}))
	sim.RunUntil(crossAt(11 * time.Second))
	assert.Equal(t, uint64(100), k1.Stats().Packets)
	assert.Equal(t, uint64(200), k2.Stats().Packets)
	assert.Equal(t, netem.FlowMuxStats{Unknown: 700}, m.Stats())
}

func TestTCPDeterministic(t *testing.T) {
	run := func() (netem.TCPStats, netem.TCPReceiverStats, netem.LinkStats) {
		snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, Variant: netem.TCPCubic})
		sim := netem.New(11)
		require.NoError(t, sim.AddNode(crossA, snd))
		require.NoError(t, sim.AddNode(crossB, rcv))
		fwd := crossFwd()
		fwd.Loss, fwd.Jitter = 0.01, 5*time.Millisecond
		require.NoError(t, sim.Connect(crossA, crossB, fwd, crossBack()))
		sim.RunUntil(crossAt(20 * time.Second))
		return snd.Stats(), rcv.Stats(), sim.Link(crossA, crossB).Stats()
	}
	s1, r1, l1 := run()
	s2, r2, l2 := run()
	assert.Equal(t, s1, s2)
	assert.Equal(t, r1, r2)
	assert.Equal(t, l1, l2)
}

func TestTCPStopAndStart(t *testing.T) {
	snd, rcv := crossFlow(t, netem.TCPConfig{Peer: crossB, Start: crossAt(time.Second), Stop: crossAt(3 * time.Second)})
	sim := crossPath(t, 1, snd, rcv)
	sim.RunUntil(crossAt(999 * time.Millisecond))
	assert.Zero(t, snd.Stats().SegmentsSent)
	sim.RunUntil(crossAt(3 * time.Second))
	sent := snd.Stats().SegmentsSent
	assert.Positive(t, sent)
	assert.Equal(t, crossAt(time.Second), snd.Stats().FirstSent)
	sim.RunUntil(crossAt(10 * time.Second))
	assert.Equal(t, sent, snd.Stats().SegmentsSent)
	assert.Equal(t, clock.Never, snd.NextTimeout())
	assert.Equal(t, clock.Never, rcv.NextTimeout())
}

// ---- benchmarks ----

// BenchmarkSteadyTCPFlow runs a bulk Reno flow over the reference bottleneck
// in steady state; one op is one data segment delivered (with the ACK
// traffic, queueing and losses that come with it).
func BenchmarkSteadyTCPFlow(b *testing.B) {
	for _, v := range []netem.TCPVariant{netem.TCPReno, netem.TCPCubic} {
		b.Run(v.String(), func(b *testing.B) {
			snd, rcv := crossFlow(b, netem.TCPConfig{Peer: crossB, Variant: v})
			sim := crossPath(b, 1, snd, rcv)
			sim.RunUntil(crossAt(20 * time.Second)) // past slow start, pools grown
			ev0 := sim.Stats().Events
			b.ReportAllocs()
			for b.Loop() {
				n := rcv.Stats().Segments
				for rcv.Stats().Segments == n {
					sim.Step()
				}
			}
			b.ReportMetric(float64(sim.Stats().Events-ev0)/float64(b.N), "events/op")
		})
	}
}

// BenchmarkSteadyCBR: one op is one CBR datagram sent and delivered.
func BenchmarkSteadyCBR(b *testing.B) {
	snd, err := netem.NewCBR(netem.CBRConfig{Peer: crossB, Rate: 8_000_000, Overhead: netem.OverheadIPv4UDP})
	require.NoError(b, err)
	sink := netem.NewCBRSink()
	sim := crossPath(b, 1, snd, sink)
	sim.RunUntil(crossAt(time.Second))
	b.ReportAllocs()
	for b.Loop() {
		n := sink.Stats().Packets
		for sink.Stats().Packets == n {
			sim.Step()
		}
	}
}

// ---- examples ----

// A bulk NewReno flow over a 10 Mbit/s bottleneck with a 40 ms RTT and a
// queue of one bandwidth-delay product.
func ExampleNewTCPFlow() {
	sender := netip.MustParseAddrPort("192.0.2.1:5000")
	receiver := netip.MustParseAddrPort("192.0.2.2:6000")

	snd, rcv, err := netem.NewTCPFlow(netem.TCPConfig{Peer: receiver, Variant: netem.TCPReno})
	if err != nil {
		panic(err)
	}
	sim := netem.New(1)
	if err := sim.AddNode(sender, snd); err != nil {
		panic(err)
	}
	if err := sim.AddNode(receiver, rcv); err != nil {
		panic(err)
	}
	fwd := netem.LinkConfig{Delay: 20 * time.Millisecond, Rate: 10_000_000, QueueBytes: 50_000, Overhead: netem.OverheadIPv4UDP}
	back := netem.LinkConfig{Delay: 20 * time.Millisecond}
	if err := sim.Connect(sender, receiver, fwd, back); err != nil {
		panic(err)
	}

	sim.RunUntil(clock.Time(30 * time.Second))

	st := snd.Stats()
	fmt.Printf("goodput %.2f Mbit/s\n", snd.Goodput(sim.Now())/1e6)
	fmt.Printf("%d fast retransmits, %d timeouts, %d segments retransmitted\n", st.FastRetransmits, st.Timeouts, st.Retransmissions)
	fmt.Printf("min RTT %v, smoothed RTT %v\n", st.MinRTT.Round(time.Millisecond), st.SRTT.Round(time.Millisecond))
	// Output:
	// goodput 9.35 Mbit/s
	// 15 fast retransmits, 2 timeouts, 169 segments retransmitted
	// min RTT 41ms, smoothed RTT 65ms
}

// A 1 Mbit/s constant-bitrate flow, on for 1 s and off for 1 s.
func ExampleNewCBR() {
	src := netip.MustParseAddrPort("192.0.2.1:5000")
	dst := netip.MustParseAddrPort("192.0.2.2:6000")

	cbr, err := netem.NewCBR(netem.CBRConfig{
		Peer: dst, Rate: 1_000_000, Size: 1222, Overhead: netem.OverheadIPv4UDP, // 100 datagrams/s
		On: time.Second, Off: time.Second,
	})
	if err != nil {
		panic(err)
	}
	sink := netem.NewCBRSink()
	sim := netem.New(1)
	if err := sim.AddNode(src, cbr); err != nil {
		panic(err)
	}
	if err := sim.AddNode(dst, sink); err != nil {
		panic(err)
	}
	if err := sim.Connect(src, dst, netem.LinkConfig{Delay: 10 * time.Millisecond}, netem.LinkConfig{}); err != nil {
		panic(err)
	}
	sim.RunUntil(clock.Time(10 * time.Second))

	st := sink.Stats()
	fmt.Printf("%d datagrams, %d bytes, first at %v, last at %v\n", st.Packets, st.Bytes, st.First, st.Last)
	// Output:
	// 500 datagrams, 611000 bytes, first at 10ms, last at 9s
}
