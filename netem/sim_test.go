package netem_test

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
	"github.com/spillway-rt/spillway/netem"
)

// oneWay builds A (a source) -> B (a sink) with cfg on A->B.
func oneWay(t testing.TB, seed uint64, cfg netem.LinkConfig, src *source) (*netem.Simulator, *sink) {
	t.Helper()
	s := netem.New(seed)
	k := &sink{}
	src.to = addrB
	require.NoError(t, s.AddNode(addrA, src))
	require.NoError(t, s.AddNode(addrB, k))
	require.NoError(t, s.Connect(addrA, addrB, cfg, netem.LinkConfig{}))
	return s, k
}

// requireConserved checks that every datagram offered is accounted for.
func requireConserved(t *testing.T, st netem.LinkStats) {
	t.Helper()
	require.Equal(t, st.PacketsOffered,
		st.PacketsDelivered+st.PacketsLost+st.PacketsDropped+st.PacketsOverflow+uint64(st.InFlight), "%+v", st)
}

func TestDeliveryTimeIsDelay(t *testing.T) {
	tests := []struct {
		name string
		cfg  netem.LinkConfig
		size int
		want time.Duration
	}{
		{"ideal", netem.LinkConfig{}, 1200, 0},
		{"delay", netem.LinkConfig{Delay: 25 * time.Millisecond}, 1200, 25 * time.Millisecond},
		{"zero-length", netem.LinkConfig{Delay: 7 * time.Millisecond}, 0, 7 * time.Millisecond},
		{
			"delay+serialisation",
			netem.LinkConfig{Delay: 25 * time.Millisecond, Rate: 1_000_000, Overhead: netem.OverheadIPv4UDP},
			1000, 25*time.Millisecond + 8224*time.Microsecond, // 1028 B * 8 / 1 Mbit/s
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &source{interval: 100 * time.Millisecond, size: tt.size, left: 20}
			s, k := oneWay(t, 1, tt.cfg, src)
			s.RunUntil(ms(3000))
			require.Len(t, k.arrivals, 20)
			for i, a := range k.arrivals {
				sent := src.sendTime(0, uint32(i))
				assert.Equal(t, tt.want, a.at.Sub(sent), "datagram %d", i)
				assert.Equal(t, addrA, a.from)
				assert.Equal(t, tt.size, a.n)
			}
			st := s.Link(addrA, addrB).Stats()
			assert.Equal(t, uint64(20), st.PacketsDelivered)
			assert.Equal(t, uint64(20*tt.size), st.BytesDelivered)
			assert.Zero(t, st.QueueDelayMax)
			requireConserved(t, st)
			assert.Equal(t, ms(3000), s.Now())
		})
	}
}

func TestCalibrationRate(t *testing.T) {
	const (
		rate = 2_000_000
		size = 1200
		wire = size + netem.OverheadIPv4UDP
	)
	tx := time.Duration(wire * 8 * int64(time.Second) / rate) // 4.912 ms
	tests := []struct {
		name      string
		queue     netem.LinkConfig
		interval  time.Duration
		wantDrops bool
		maxQueue  time.Duration // bound on the waiting time in the queue
	}{
		{"underloaded", netem.LinkConfig{}, tx * 11 / 10, false, 0},
		{"overloaded/default-300ms", netem.LinkConfig{}, tx / 2, true, netem.DefaultQueueDelay},
		{"overloaded/queue-delay-100ms", netem.LinkConfig{QueueDelay: 100 * time.Millisecond}, tx / 2, true, 100 * time.Millisecond},
		{"overloaded/queue-bytes-32KiB", netem.LinkConfig{QueueBytes: 32 << 10}, tx / 2, true, time.Duration(32 << 10 * 8 * int64(time.Second) / rate)},
		{"overloaded/both-smaller-wins", netem.LinkConfig{QueueBytes: 1 << 20, QueueDelay: 50 * time.Millisecond}, tx / 3, true, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.queue
			cfg.Rate, cfg.Overhead, cfg.Delay = rate, netem.OverheadIPv4UDP, 10*time.Millisecond
			src := &source{interval: tt.interval, size: size, left: int(20 * time.Second / tt.interval)}
			s, k := oneWay(t, 7, cfg, src)
			s.RunUntil(ms(30_000))

			st := s.Link(addrA, addrB).Stats()
			requireConserved(t, st)
			require.Zero(t, st.InFlight)
			require.Zero(t, st.QueueBytes)
			require.Greater(t, len(k.arrivals), 1000)
			if !tt.wantDrops {
				assert.Zero(t, st.PacketsDropped)
				assert.Zero(t, st.QueueDelayMax)
				return
			}
			assert.NotZero(t, st.PacketsDropped)
			assert.Equal(t, uint64(size)*st.PacketsDropped, st.BytesDropped)
			// Saturated: the delivered wire bits over the time they took.
			first, last := k.arrivals[0].at, k.arrivals[len(k.arrivals)-1].at
			bits := float64((len(k.arrivals) - 1) * wire * 8)
			got := bits / last.Sub(first).Seconds()
			assert.InEpsilon(t, float64(rate), got, 0.01, "throughput %.0f bit/s", got)
			// The queue stays within its bound (a datagram waits at most for
			// the bytes ahead of it, the one in service included).
			assert.LessOrEqual(t, st.QueueDelayMax, tt.maxQueue+tx)
			assert.Greater(t, st.QueueDelayMax, tt.maxQueue/2)
			// Offered twice (or three times) the rate: the rest is dropped.
			wantDelivered := 20 * time.Second.Seconds() * rate / (wire * 8)
			assert.InEpsilon(t, wantDelivered, float64(st.PacketsDelivered), 0.03)
		})
	}
}

// binomialOK reports whether k successes in n trials of probability p fall
// in the two-sided 99 % interval (normal approximation).
func binomialOK(k, n int, p float64) (bool, float64, float64) {
	mean := float64(n) * p
	half := 2.576 * math.Sqrt(float64(n)*p*(1-p))
	return math.Abs(float64(k)-mean) <= half, mean - half, mean + half
}

func TestCalibrationLossBernoulli(t *testing.T) {
	const n = 100_000
	for _, p := range []float64{0, 0.01, 0.1, 0.3, 1} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			src := &source{interval: time.Millisecond, size: 100, left: n}
			s, k := oneWay(t, 42, netem.LinkConfig{Loss: p, Delay: 5 * time.Millisecond}, src)
			k.count = true
			s.RunUntil(ms(n + 100))
			st := s.Link(addrA, addrB).Stats()
			requireConserved(t, st)
			require.Equal(t, uint64(n), st.PacketsOffered)
			assert.Equal(t, uint64(k.n), st.PacketsDelivered)
			ok, lo, hi := binomialOK(int(st.PacketsLost), n, p)
			assert.True(t, ok, "lost %d of %d, want in [%.0f, %.0f]", st.PacketsLost, n, lo, hi)
		})
	}
}

// delays returns each delivered datagram's one-way delay.
func delays(src *source, k *sink) []float64 {
	d := make([]float64, len(k.arrivals))
	for i, a := range k.arrivals {
		d[i] = float64(a.at.Sub(src.sendTime(0, a.seq)))
	}
	return d
}

func meanStd(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)-1))
}

func TestCalibrationJitterUniform(t *testing.T) {
	const (
		n      = 20_000
		delay  = 10 * time.Millisecond
		jitter = 20 * time.Millisecond
	)
	src := &source{interval: time.Millisecond, size: 100, left: n}
	cfg := netem.LinkConfig{Delay: delay, Jitter: jitter, JitterDist: netem.Uniform, Reorder: true}
	s, k := oneWay(t, 3, cfg, src)
	s.RunUntil(ms(n + 1000))
	require.Len(t, k.arrivals, n)

	d := delays(src, k)
	mean, std := meanStd(d)
	wantMean, wantStd := float64(delay+jitter/2), float64(jitter)/math.Sqrt(12)
	assert.InDelta(t, wantMean, mean, 2.576*wantStd/math.Sqrt(n), "mean delay")
	assert.InEpsilon(t, wantStd, std, 0.03, "delay stddev")
	for i, v := range d {
		require.GreaterOrEqual(t, v, float64(delay), "datagram %d", i)
		require.LessOrEqual(t, v, float64(delay+jitter), "datagram %d", i)
	}
}

func TestCalibrationJitterNormal(t *testing.T) {
	const (
		n      = 20_000
		delay  = 100 * time.Millisecond
		jitter = 10 * time.Millisecond
	)
	src := &source{interval: time.Millisecond, size: 100, left: n}
	cfg := netem.LinkConfig{Delay: delay, Jitter: jitter, JitterDist: netem.Normal, Reorder: true}
	s, k := oneWay(t, 4, cfg, src)
	s.RunUntil(ms(n + 1000))
	require.Len(t, k.arrivals, n)

	mean, std := meanStd(delays(src, k))
	assert.InDelta(t, float64(delay), mean, 2.576*float64(jitter)/math.Sqrt(n), "mean delay")
	assert.InEpsilon(t, float64(jitter), std, 0.03, "delay stddev")
}

func TestJitterNormalTruncatedAtZero(t *testing.T) {
	src := &source{interval: time.Millisecond, size: 100, left: 2000}
	cfg := netem.LinkConfig{Jitter: 10 * time.Millisecond, JitterDist: netem.Normal, Reorder: true}
	s, k := oneWay(t, 5, cfg, src)
	s.RunUntil(ms(3000))
	require.Len(t, k.arrivals, 2000)
	zero := 0
	for _, v := range delays(src, k) {
		require.GreaterOrEqual(t, v, 0.0)
		if v == 0 {
			zero++
		}
	}
	assert.InDelta(t, 1000, zero, 100, "about half the samples are negative and truncated")
}

func TestReorder(t *testing.T) {
	tests := []struct {
		reorder bool
		dist    netem.JitterDist
		rate    int64
	}{
		{false, netem.Uniform, 0},
		{false, netem.Normal, 0},
		{false, netem.Uniform, 10_000_000},
		{true, netem.Uniform, 0},
		{true, netem.Normal, 10_000_000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("reorder=%v/%v/rate=%d", tt.reorder, tt.dist, tt.rate), func(t *testing.T) {
			src := &source{interval: time.Millisecond, size: 500, left: 2000}
			cfg := netem.LinkConfig{
				Delay: 20 * time.Millisecond, Jitter: 30 * time.Millisecond, JitterDist: tt.dist,
				Reorder: tt.reorder, Rate: tt.rate,
			}
			s, k := oneWay(t, 9, cfg, src)
			s.RunUntil(ms(5000))
			require.Len(t, k.arrivals, 2000)
			inversions := 0
			for i := 1; i < len(k.arrivals); i++ {
				require.GreaterOrEqual(t, k.arrivals[i].at, k.arrivals[i-1].at)
				if k.arrivals[i].seq < k.arrivals[i-1].seq {
					inversions++
				}
			}
			if tt.reorder {
				assert.Greater(t, inversions, 100)
			} else {
				assert.Zero(t, inversions, "delivery order must be send order")
			}
		})
	}
}

// runTrace runs a lossy, jittery, rate-limited scenario in both directions
// and returns a hash of every delivery (time, from, to, bytes).
func runTrace(t *testing.T, seed uint64, withC bool) (uint64, netem.SimStats) {
	t.Helper()
	s := netem.New(seed)
	a := &source{to: addrB, interval: 3 * time.Millisecond, size: 1000, left: 3000}
	b := &source{to: addrA, interval: 5 * time.Millisecond, size: 300, left: 2000}
	require.NoError(t, s.AddNode(addrA, a))
	require.NoError(t, s.AddNode(addrB, b))
	cfg := netem.LinkConfig{
		Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05,
		Rate: 2_000_000, QueueDelay: 50 * time.Millisecond, Overhead: 28,
	}
	back := cfg
	back.JitterDist, back.Reorder = netem.Normal, true
	require.NoError(t, s.Connect(addrA, addrB, cfg, back))
	if withC {
		c := &source{to: addrA, interval: time.Millisecond, size: 200, left: 5000}
		require.NoError(t, s.AddNode(addrC, c))
		require.NoError(t, s.Connect(addrC, addrA, cfg, cfg))
	}
	h := fnv.New64a()
	var rec [8]byte
	capture := func(at clock.Time, from, to netip.AddrPort, p []byte) {
		binary.BigEndian.PutUint64(rec[:], uint64(at))
		h.Write(rec[:])
		h.Write([]byte(from.String() + to.String()))
		h.Write(p)
	}
	s.SetCapture(addrA, addrB, capture)
	s.SetCapture(addrB, addrA, capture)
	s.RunUntil(ms(12_000))
	return h.Sum64(), s.Stats()
}

func TestDeterminism(t *testing.T) {
	h1, st1 := runTrace(t, 1, false)
	h2, st2 := runTrace(t, 1, false)
	assert.Equal(t, h1, h2, "same seed, same trace")
	assert.Equal(t, st1, st2)
	h3, _ := runTrace(t, 2, false)
	assert.NotEqual(t, h1, h3, "different seeds, different traces")
	// A third node and its links change no draw on the A<->B links (C's
	// traffic is delivered to A, which does not change what A sends).
	h4, st4 := runTrace(t, 1, true)
	assert.Equal(t, h1, h4, "adding a link perturbed another link")
	assert.Greater(t, st4.PacketEvents, st1.PacketEvents)
}

func TestUnroutableAndOversize(t *testing.T) {
	s := netem.New(1)
	n := &scripted{out: []out{
		{to: addrB, size: 0},
		{to: addrB, size: 1},
		{to: addrB, size: netem.MaxDatagramSize},
		{to: addrB, size: netem.MaxDatagramSize + 1},
		{to: addrC, size: 10}, // no link
		{to: addrA, size: 10}, // itself: no link
		{to: netip.AddrPort{}, size: 10},
	}}
	k := &sink{}
	require.NoError(t, s.AddNode(addrA, n))
	require.NoError(t, s.AddNode(addrB, k))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{Delay: time.Millisecond}, netem.LinkConfig{}))
	s.RunUntil(ms(10))
	st := s.Stats()
	assert.Equal(t, uint64(3), st.Unroutable)
	assert.Equal(t, uint64(1), st.Oversize)
	require.Len(t, k.arrivals, 3)
	for i, want := range []int{0, 1, netem.MaxDatagramSize} {
		assert.Equal(t, want, k.arrivals[i].n)
		assert.Equal(t, ms(1), k.arrivals[i].at)
	}
}

type out struct {
	to   netip.AddrPort
	size int
}

// scripted sends its datagrams at the first poll.
type scripted struct{ out []out }

func (n *scripted) HandleDatagram(clock.Time, netip.AddrPort, []byte) {}
func (n *scripted) HandleTimeout(clock.Time)                          {}
func (n *scripted) PollTransmit(_ clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if len(n.out) == 0 {
		return 0, netip.AddrPort{}, false
	}
	o := n.out[0]
	n.out = n.out[1:]
	for i := range min(o.size, len(dst)) {
		dst[i] = byte(i)
	}
	return o.size, o.to, true
}
func (n *scripted) NextTimeout() clock.Time { return clock.Never }

// timerNode records HandleTimeout calls; tests move its deadline.
type timerNode struct {
	deadline clock.Time
	fired    []clock.Time
	// stuck keeps the deadline after it fired: a buggy node whose
	// NextTimeout never moves past now.
	stuck bool
}

func (n *timerNode) HandleDatagram(clock.Time, netip.AddrPort, []byte) {}
func (n *timerNode) HandleTimeout(now clock.Time) {
	n.fired = append(n.fired, now)
	if now >= n.deadline && !n.stuck {
		n.deadline = clock.Never
	}
}
func (n *timerNode) PollTransmit(clock.Time, []byte) (int, netip.AddrPort, bool) {
	return 0, netip.AddrPort{}, false
}
func (n *timerNode) NextTimeout() clock.Time { return n.deadline }

func TestNextTimeoutMoves(t *testing.T) {
	s := netem.New(1)
	n := &timerNode{deadline: ms(100)}
	require.NoError(t, s.AddNode(addrA, n))
	s.Schedule(ms(50), func(clock.Time) { n.deadline = ms(200) }) // later
	s.Schedule(ms(60), func(clock.Time) { n.deadline = ms(70) })  // earlier
	s.Schedule(ms(80), func(clock.Time) { n.deadline = ms(150) })
	s.Schedule(ms(90), func(clock.Time) { n.deadline = ms(150) })  // unchanged
	s.Schedule(ms(300), func(clock.Time) { n.deadline = ms(250) }) // in the past
	s.Schedule(ms(400), func(clock.Time) { n.deadline = ms(500) })
	s.Schedule(ms(450), func(clock.Time) { n.deadline = clock.Never }) // cancelled
	s.RunUntil(ms(1000))
	assert.Equal(t, []clock.Time{ms(70), ms(150), ms(300)}, n.fired)
	assert.Equal(t, clock.Never, s.NextEvent())
}

func TestNextTimeoutInThePast(t *testing.T) {
	s := netem.New(1)
	n := &timerNode{deadline: ms(-5)} // overdue before the start
	require.NoError(t, s.AddNode(addrA, n))
	s.RunUntil(ms(10))
	assert.Equal(t, []clock.Time{0}, n.fired, "woken at now, once")
}

func TestNextTimeoutStuckPanics(t *testing.T) {
	s := netem.New(1)
	n := &timerNode{deadline: ms(1), stuck: true}
	require.NoError(t, s.AddNode(addrA, n))
	var msg any
	func() {
		defer func() { msg = recover() }()
		s.RunUntil(ms(10))
	}()
	require.NotNil(t, msg, "a node that never moves its timer must not hang the simulator")
	assert.Contains(t, msg, addrA.String())
	assert.Contains(t, msg, "NextTimeout")
}

func TestScheduleAndSetConfig(t *testing.T) {
	src := &source{interval: time.Millisecond, size: 100, left: 2000}
	s, k := oneWay(t, 1, netem.LinkConfig{Delay: 10 * time.Millisecond}, src)
	l := s.Link(addrA, addrB)
	var at clock.Time
	s.Schedule(ms(999.5), func(now clock.Time) {
		at = now
		require.NoError(t, l.SetConfig(netem.LinkConfig{Delay: 10 * time.Millisecond, Loss: 1}))
		require.Error(t, l.SetConfig(netem.LinkConfig{Loss: 2}))
	})
	s.RunUntil(ms(3000))
	assert.Equal(t, ms(999.5), at)
	assert.Equal(t, 1.0, l.Config().Loss)
	// Datagrams sent at 0..999 ms were on the link before the change.
	require.Len(t, k.arrivals, 1000)
	assert.Equal(t, uint32(999), k.arrivals[999].seq)
	assert.Equal(t, uint64(1000), l.Stats().PacketsLost)
}

func TestRunUntilAndStep(t *testing.T) {
	s := netem.New(1)
	assert.False(t, s.Step(), "nothing to do")
	var got []clock.Time
	s.Schedule(ms(5), func(now clock.Time) { got = append(got, now) })
	s.Schedule(ms(5), func(now clock.Time) { got = append(got, -now) }) // ties run in order
	s.Schedule(ms(1), func(now clock.Time) {
		got = append(got, now)
		s.Schedule(ms(0), func(now clock.Time) { got = append(got, now) }) // past: runs now
	})
	s.RunUntil(ms(2))
	assert.Equal(t, ms(2), s.Now())
	assert.Equal(t, []clock.Time{ms(1), ms(1)}, got)
	s.RunUntil(ms(1)) // time does not go back
	assert.Equal(t, ms(2), s.Now())
	require.True(t, s.Step())
	assert.Equal(t, ms(5), s.Now())
	require.True(t, s.Step())
	assert.False(t, s.Step())
	assert.Equal(t, []clock.Time{ms(1), ms(1), ms(5), -ms(5)}, got)

	s.Schedule(ms(6), func(clock.Time) { s.RunUntil(ms(7)) })
	assert.Panics(t, func() { s.RunUntil(ms(10)) }, "RunUntil inside the simulation")
}

func TestPingPong(t *testing.T) {
	s := netem.New(1)
	a, b := &echo{peer: addrB, start: true}, &echo{peer: addrA}
	require.NoError(t, s.AddNode(addrA, a))
	require.NoError(t, s.AddNode(addrB, b))
	require.NoError(t, s.Connect(addrA, addrB,
		netem.LinkConfig{Delay: 10 * time.Millisecond}, netem.LinkConfig{Delay: 15 * time.Millisecond}))
	s.RunUntil(ms(100))
	// A round trip takes 25 ms: A hears back at 25, 50, 75 and 100 ms.
	assert.Equal(t, []clock.Time{ms(25), ms(50), ms(75), ms(100)}, a.heard)
	assert.Equal(t, []clock.Time{ms(10), ms(35), ms(60), ms(85)}, b.heard)
}

// echo sends one datagram at its first poll if start is set, and answers
// every datagram it receives.
type echo struct {
	peer    netip.AddrPort
	start   bool
	pending int
	heard   []clock.Time
}

func (e *echo) HandleDatagram(now clock.Time, _ netip.AddrPort, _ []byte) {
	e.heard = append(e.heard, now)
	e.pending++
}
func (e *echo) HandleTimeout(clock.Time) {}
func (e *echo) PollTransmit(_ clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if e.start {
		e.start = false
		e.pending++
	}
	if e.pending == 0 {
		return 0, netip.AddrPort{}, false
	}
	e.pending--
	return copy(dst, "ping"), e.peer, true
}
func (e *echo) NextTimeout() clock.Time { return clock.Never }

func TestCapture(t *testing.T) {
	src := &source{interval: time.Millisecond, size: 64, left: 500}
	s := netem.New(1)
	var got int
	var last clock.Time
	// Set before Connect: it is attached when the link is made.
	s.SetCapture(addrA, addrB, func(at clock.Time, from, to netip.AddrPort, b []byte) {
		got++
		last = at
		assert.Equal(t, addrA, from)
		assert.Equal(t, addrB, to)
		assert.Len(t, b, 64)
	})
	k := &sink{}
	src.to = addrB
	require.NoError(t, s.AddNode(addrA, src))
	require.NoError(t, s.AddNode(addrB, k))
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{Loss: 0.2, Delay: time.Millisecond}, netem.LinkConfig{}))
	s.RunUntil(ms(300))
	assert.Equal(t, len(k.arrivals), got)
	assert.Equal(t, k.arrivals[len(k.arrivals)-1].at, last)
	s.SetCapture(addrA, addrB, nil)
	s.RunUntil(ms(1000))
	assert.Equal(t, len(k.arrivals), int(s.Link(addrA, addrB).Stats().PacketsDelivered))
	assert.Less(t, got, len(k.arrivals))
}

func TestSetupErrors(t *testing.T) {
	s := netem.New(1)
	require.NoError(t, s.AddNode(addrA, &sink{}))
	require.NoError(t, s.AddNode(addrB, &sink{}))

	assert.ErrorIs(t, s.AddNode(addrA, &sink{}), netem.ErrAddrInUse)
	assert.ErrorIs(t, s.AddNode(netip.AddrPort{}, &sink{}), netem.ErrInvalidAddr)
	assert.Error(t, s.AddNode(addrC, nil))
	assert.ErrorIs(t, s.Connect(addrA, addrC, netem.LinkConfig{}, netem.LinkConfig{}), netem.ErrUnknownNode)
	assert.ErrorIs(t, s.Connect(addrA, addrA, netem.LinkConfig{}, netem.LinkConfig{}), netem.ErrInvalidAddr)
	err := s.Connect(addrA, addrB, netem.LinkConfig{}, netem.LinkConfig{Loss: -1})
	require.ErrorIs(t, err, netem.ErrInvalidConfig)
	assert.Contains(t, err.Error(), addrB.String()+"->"+addrA.String())
	assert.Contains(t, err.Error(), "Loss")
	assert.Nil(t, s.Link(addrA, addrB), "a failed Connect makes no link")
	require.NoError(t, s.Connect(addrA, addrB, netem.LinkConfig{}, netem.LinkConfig{}))
	assert.ErrorIs(t, s.Connect(addrB, addrA, netem.LinkConfig{}, netem.LinkConfig{}), netem.ErrLinkExists)
	assert.Equal(t, addrA, s.Link(addrA, addrB).From())
	assert.Equal(t, addrB, s.Link(addrA, addrB).To())
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   netem.LinkConfig
		field string // "" for valid
	}{
		{"zero", netem.LinkConfig{}, ""},
		{"full", netem.LinkConfig{
			Delay: time.Second, Jitter: time.Second, JitterDist: netem.Normal, Reorder: true, Loss: 1,
			Rate: netem.MaxRate, QueueBytes: 1, QueueDelay: time.Second, Overhead: 65535,
		}, ""},
		{"negative delay", netem.LinkConfig{Delay: -1}, "Delay"},
		{"huge delay", netem.LinkConfig{Delay: netem.MaxLinkDelay + 1}, "Delay"},
		{"negative jitter", netem.LinkConfig{Jitter: -time.Millisecond}, "Jitter"},
		{"unknown dist", netem.LinkConfig{JitterDist: 7}, "JitterDist"},
		{"negative loss", netem.LinkConfig{Loss: -0.1}, "Loss"},
		{"loss above 1", netem.LinkConfig{Loss: 1.5}, "Loss"},
		{"NaN loss", netem.LinkConfig{Loss: math.NaN()}, "Loss"},
		{"negative rate", netem.LinkConfig{Rate: -1}, "Rate"},
		{"huge rate", netem.LinkConfig{Rate: netem.MaxRate + 1}, "Rate"},
		{"negative queue bytes", netem.LinkConfig{QueueBytes: -1}, "QueueBytes"},
		{"negative queue delay", netem.LinkConfig{QueueDelay: -1}, "QueueDelay"},
		{"negative overhead", netem.LinkConfig{Overhead: -28}, "Overhead"},
		{"huge overhead", netem.LinkConfig{Overhead: 70000}, "Overhead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, netem.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.field+" ")
		})
	}
}

func TestJitterDistText(t *testing.T) {
	for _, d := range []netem.JitterDist{netem.Uniform, netem.Normal} {
		b, err := d.MarshalText()
		require.NoError(t, err)
		var got netem.JitterDist
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, d, got)
		assert.Equal(t, d.String(), string(b))
	}
	var d netem.JitterDist
	assert.ErrorIs(t, d.UnmarshalText([]byte("weibull")), netem.ErrInvalidConfig)
	_, err := netem.JitterDist(9).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "JitterDist(9)", netem.JitterDist(9).String())
}

func TestInFlightCap(t *testing.T) {
	// A slow link with an enormous queue: the in-flight cap bounds it.
	src := &source{size: 1000, left: netem.MaxInFlightPackets + 500} // all at t=0
	s, k := oneWay(t, 1, netem.LinkConfig{Rate: 1000, QueueBytes: math.MaxInt32}, src)
	k.count = true
	s.RunUntil(0)
	st := s.Link(addrA, addrB).Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(500), st.PacketsOverflow)
	assert.Equal(t, netem.MaxInFlightPackets, st.InFlight)

	big := &source{size: 60000, left: 2000}
	s, _ = oneWay(t, 1, netem.LinkConfig{Delay: time.Second}, big)
	s.RunUntil(0)
	st = s.Link(addrA, addrB).Stats()
	assert.Equal(t, netem.MaxInFlightBytes/60000, st.InFlight)
	assert.Equal(t, uint64(2000-st.InFlight), st.PacketsOverflow)
}

func TestDropTailAcceptsIntoEmptyQueue(t *testing.T) {
	// A queue smaller than one datagram still passes one at a time.
	src := &source{interval: 100 * time.Millisecond, size: 1200, left: 10}
	s, k := oneWay(t, 1, netem.LinkConfig{Rate: 1_000_000, QueueBytes: 100}, src)
	s.RunUntil(ms(2000))
	assert.Len(t, k.arrivals, 10)
}

// steady builds the benchmark's scenario: a source sending 1,200 B datagrams
// every millisecond (9.6 Mbit/s) through a 10 Mbit/s link with 20 ms delay,
// 5 ms of jitter and 1 % loss, to a sink; it is warmed up for a second.
func steady(tb testing.TB) *netem.Simulator {
	tb.Helper()
	src := &source{interval: time.Millisecond, size: 1200, left: math.MaxInt}
	s, k := oneWay(tb, 1, netem.LinkConfig{
		Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.01,
		Rate: 10_000_000, Overhead: netem.OverheadIPv4UDP,
	}, src)
	k.count = true
	s.RunUntil(ms(1000))
	return s
}

func TestSteadyForwardNoAllocs(t *testing.T) {
	s := steady(t)
	before := s.Link(addrA, addrB).Stats()
	runs := uint64(0)
	got := allocs.Mallocs(3, func() {
		s.RunUntil(s.Now().Add(10_000 * time.Millisecond)) // 10,000 datagrams
		runs++
	})
	after := s.Link(addrA, addrB).Stats()
	require.Equal(t, 10_000*runs, after.PacketsOffered-before.PacketsOffered)
	require.Greater(t, after.PacketsDelivered-before.PacketsDelivered, 9800*runs)
	assert.Zero(t, got, "allocations while forwarding 10,000 datagrams")
}

func BenchmarkSteadyForward(b *testing.B) {
	s := steady(b)
	ev0 := s.Stats().PacketEvents
	b.ReportAllocs()
	b.SetBytes(1200)
	for b.Loop() { // one datagram forwarded per op
		s.RunUntil(s.Now().Add(time.Millisecond))
	}
	events := s.Stats().PacketEvents - ev0
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if st := s.Link(addrA, addrB).Stats(); st.PacketsDropped != 0 || st.PacketsDelivered == 0 {
		b.Fatalf("unexpected link state: %+v", st)
	}
}

func TestRunUntilNever(t *testing.T) {
	src := &source{interval: time.Millisecond, size: 10, left: 100}
	s, k := oneWay(t, 1, netem.LinkConfig{Delay: 50 * time.Millisecond}, src)
	s.RunUntil(clock.Never)
	assert.Len(t, k.arrivals, 100)
	assert.Equal(t, ms(149), s.Now(), "the last delivery")
	assert.Equal(t, clock.Never, s.NextEvent())
}
