package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
)

func TestPathModel(t *testing.T) {
	var m pathModel
	assert.Zero(t, m.queueDelay(0), "no rate measured: no queue predicted")

	// A report of 11 packets of 1000 bytes arriving 2 ms apart: 4 Mbit/s.
	pkts := make([]cc.PacketResult, 11)
	for i := range pkts {
		pkts[i] = cc.PacketResult{Size: 1000, Received: true, ArrivalTime: clock.Time(i) * clock.Time(2*time.Millisecond)}
	}
	pkts[5].Received = false // a loss in the middle changes nothing
	now := clock.Time(time.Second)
	m.onFeedback(now, pkts)
	assert.InDelta(t, 4e6*9/10, m.rate(now), 1, "9 packets' bytes over 20 ms")

	// 36 KB sent at once: 80 ms at 3.6 Mbit/s, plus the 25 % margin.
	for range 36 {
		m.onSent(now, 1000)
	}
	assert.InDelta(t, 100*time.Millisecond, m.queueDelay(now), float64(time.Millisecond))
	// It drains at the measured rate: 30 ms left, plus 25 %.
	assert.InDelta(t, 37500*time.Microsecond, m.queueDelay(now.Add(50*time.Millisecond)), float64(time.Millisecond))
	// Empty: only the minimum margin.
	assert.Equal(t, pathMinMargin, m.queueDelay(now.Add(time.Second)))

	// Too few packets, or too short a span: no sample.
	var m2 pathModel
	m2.onFeedback(now, pkts[:3])
	assert.Zero(t, m2.rate(now))
	for i := range pkts {
		pkts[i].ArrivalTime = 0
	}
	m2.onFeedback(now, pkts)
	assert.Zero(t, m2.rate(now))

	// The maximum is forgotten after the window.
	assert.Zero(t, m.rate(now.Add(11*time.Second)))

	// Times before 0 (only differences mean anything) work the same.
	var neg pathModel
	back := clock.Time(-100 * time.Second)
	for i := range pkts {
		pkts[i].ArrivalTime = back + clock.Time(i)*clock.Time(2*time.Millisecond)
	}
	neg.onFeedback(back, pkts)
	assert.InDelta(t, 4e6*9/10, neg.rate(back), 1)
}

// TestPathModelKeepsBytesSentBeforeARate: what was sent before the first
// rate sample still queues once a rate is known, drained from when it was
// sent (a start-up key frame's queue).
func TestPathModelKeepsBytesSentBeforeARate(t *testing.T) {
	var m pathModel
	start := clock.Time(time.Second)
	for range 50 { // 50 KB at once, rate unknown
		m.onSent(start, 1000)
	}
	assert.Zero(t, m.queueDelay(start.Add(20*time.Millisecond)), "no rate measured: no queue predicted")

	// 40 ms later a report measures 4 Mbit/s (11 packets of 1000 bytes
	// 2 ms apart: 10 packets' bytes over 20 ms).
	pkts := make([]cc.PacketResult, 11)
	for i := range pkts {
		pkts[i] = cc.PacketResult{Size: 1000, Received: true, ArrivalTime: start.Add(time.Duration(i) * 2 * time.Millisecond)}
	}
	now := start.Add(40 * time.Millisecond)
	m.onFeedback(now, pkts)
	require.InDelta(t, 4e6, m.rate(now), 1)
	// 100 ms of bytes at 4 Mbit/s, 40 ms of it drained: 60 ms, plus 25 %.
	assert.InDelta(t, 75*time.Millisecond, m.queueDelay(now), float64(time.Millisecond))

	// An empty model waiting for a rate starts its clock at its first
	// bytes, not at time 0.
	var m2 pathModel
	m2.onSent(start, 1000) // wall-clock-like time far from 0
	m2.onFeedback(now, pkts)
	assert.InDelta(t, pathMinMargin, m2.queueDelay(now), float64(time.Millisecond), "1000 B sent 40 ms ago at 4 Mbit/s: drained")
	m3 := pathModel{}
	for range 20 {
		m3.onSent(now, 1000)
	}
	m3.onFeedback(now, pkts)
	assert.InDelta(t, 50*time.Millisecond, m3.queueDelay(now), float64(time.Millisecond), "20 KB just sent: 40 ms, plus 25 %")
}

// After a capacity drop the windowed maximum still remembers the rate
// before; reports whose every packet met a growing queue measure the rate
// the path drains our bytes at, and the queue for frames drains at that. A
// report that jitter lifted only in part, one too short, or a queue that
// stands without growing does not count.
func TestPathModelBusyRate(t *testing.T) {
	var m pathModel
	var mSent sends
	m.sent = &mSent
	// 4 Mbit/s, no queue: 1000-byte packets every 2 ms, 50 ms one way.
	var pkts []cc.PacketResult
	send := clock.Time(0)
	for range 11 {
		pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: send, ArrivalTime: send.Add(50 * time.Millisecond)})
		send = send.Add(2 * time.Millisecond)
	}
	now := clock.Time(100 * time.Millisecond)
	m.onFeedback(now, pkts)
	require.InDelta(t, 4e6, m.rate(now), 1e5)
	require.Zero(t, m.busyRate)

	// The path now carries 0.5 Mbit/s (16 ms a packet) while we send
	// every 2 ms: each packet meets 14 ms more queue than the one before.
	arr := send.Add(50 * time.Millisecond)
	// We keep sending every 2 ms (the send log counts it: the queue is
	// ours); the reports carry what arrived.
	sent := send
	report := func(n int) {
		pkts = pkts[:0]
		for range n {
			pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: send, ArrivalTime: arr})
			send = send.Add(2 * time.Millisecond)
			arr = arr.Add(16 * time.Millisecond)
		}
		now = arr.Add(-16 * time.Millisecond)
		for ; sent < now; sent = sent.Add(2 * time.Millisecond) {
			mSent.add(sent, 1000)
		}
		m.onFeedback(now, pkts)
	}
	report(2) // the queue is still under pathBusyQueue for the first
	assert.Zero(t, m.busyRate)
	report(3) // busy, but arrivals over 32 ms, then 72: too short to tell
	assert.Zero(t, m.busyRate)
	report(3)
	assert.Zero(t, m.busyRate)
	report(3)
	assert.InEpsilon(t, 0.5e6, m.busyRate, 0.05, "the busy path's rate")
	r := m.rate(now)
	assert.InEpsilon(t, 0.5e6, m.fitRate(r), 0.05)
	assert.InDelta(t, 4e6, r, 1e5, "retransmissions keep the windowed maximum")

	// The queue the measured packet met, less what drained since it was
	// sent, plus 10 kB sent after it: 160 ms at the busy rate (20 ms at
	// the windowed maximum).
	m.anchor(now, 10_000)
	want := m.measQ - now.Sub(m.measAt) + 160*time.Millisecond
	assert.InDelta(t, want, m.fitQueueDelay(now), float64(2*time.Millisecond))

	// A queue that grows while we send little more than gets through is
	// another flow's (a loss-based TCP's burst): not counted. We send
	// every 16 ms, and each packet meets 12 ms more queue than the last.
	var shared pathModel
	var sharedSent sends
	shared.sent = &sharedSent
	pkts = pkts[:0]
	s0 := clock.Time(0)
	for range 11 {
		pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: s0, ArrivalTime: s0.Add(50 * time.Millisecond)})
		s0 = s0.Add(2 * time.Millisecond)
	}
	shared.onFeedback(clock.Time(100*time.Millisecond), pkts)
	q := time.Duration(0)
	for range 6 {
		pkts = pkts[:0]
		for range 4 {
			q += 12 * time.Millisecond
			pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: s0, ArrivalTime: s0.Add(50*time.Millisecond + q)})
			sharedSent.add(s0, 1000)
			s0 = s0.Add(16 * time.Millisecond)
		}
		shared.onFeedback(s0.Add(50*time.Millisecond+q), pkts)
		assert.Zero(t, shared.busyRate, "another flow's queue")
	}
	assert.Positive(t, shared.busy.span, "the queue did grow")

	// A queue that stands, not growing (another flow's), is not counted.
	report(3)
	require.Positive(t, m.busyRate)
	pkts = pkts[:0]
	for range 4 {
		pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: send, ArrivalTime: send.Add(50*time.Millisecond + m.leastQ)})
		send = send.Add(16 * time.Millisecond)
	}
	m.onFeedback(send.Add(80*time.Millisecond), pkts)
	assert.Zero(t, m.busyRate, "standing queue")

	// A report whose first packet met no queue (jitter lifted the rest)
	// says the path was not busy.
	pkts = pkts[:0]
	for i := range 5 {
		d := 50*time.Millisecond + time.Duration(i)*25*time.Millisecond/4
		pkts = append(pkts, cc.PacketResult{Size: 1000, Received: true, SendTime: send, ArrivalTime: send.Add(d)})
		send = send.Add(16 * time.Millisecond)
	}
	now = send.Add(80 * time.Millisecond)
	m.onFeedback(now, pkts)
	assert.Zero(t, m.busyRate)
	assert.Equal(t, r, m.fitRate(r))
}

// A collapsed path reports two or three packets of one burst at a time
// (a paced sender's video frame leaves at once): their send times tell
// nothing of how fast we send, our send log does. The bench's collapse-av
// at the collapse: frames of 6 packets every 33 ms (1.5 Mbit/s) into a
// path that now carries 0.5 Mbit/s, reports every 50 ms.
func TestPathModelBusyRateBurstySender(t *testing.T) {
	for _, tc := range []struct {
		name string
		jump time.Duration // added to the receiver's arrival times from the collapse on
	}{
		{"one clock", 0},
		// The receiver's reference time restarted (or wrapped, every 12
		// days): arrivals read an hour earlier than the last ones.
		{"arrivals jump back", -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) { busyRateBurstySender(t, tc.jump) })
	}
}

func busyRateBurstySender(t *testing.T, jump time.Duration) {
	var m pathModel
	var mSent sends
	m.sent = &mSent
	const size = 1000
	const perFrame = 6
	frame := 33 * time.Millisecond
	capacity := 16 * time.Millisecond // per 1000-byte packet: 0.5 Mbit/s
	// Before the collapse: a 4 Mbit/s path, no queue.
	var pkts []cc.PacketResult
	send := clock.Time(0)
	for range 4 {
		for range perFrame {
			pkts = append(pkts, cc.PacketResult{Size: size, Received: true, SendTime: send, ArrivalTime: send.Add(50 * time.Millisecond)})
			mSent.add(send, size)
		}
		send = send.Add(frame)
	}
	m.onFeedback(send.Add(60*time.Millisecond), pkts)
	require.Zero(t, m.busyRate)
	// The collapse: the bottleneck serves one packet per 16 ms, in order.
	var queue []cc.PacketResult
	free := send.Add(50 * time.Millisecond) // when the bottleneck is next free (arrival clock)
	now := send.Add(60 * time.Millisecond)
	for range 30 { // 1.5 s of reports, 50 ms apart
		next := now.Add(50 * time.Millisecond)
		for send.Add(50*time.Millisecond) < next { // frames sent meanwhile reach the bottleneck
			for range perFrame {
				queue = append(queue, cc.PacketResult{Size: size, Received: true, SendTime: send})
				mSent.add(send, size)
			}
			send = send.Add(frame)
		}
		now = next
		pkts = pkts[:0]
		for len(queue) > 0 {
			p := queue[0]
			at := clock.Max(free, p.SendTime.Add(50*time.Millisecond)).Add(capacity)
			if at > now {
				break
			}
			free = at
			p.ArrivalTime = at.Add(jump)
			pkts = append(pkts, p)
			queue = queue[1:]
		}
		m.onFeedback(now, pkts)
	}
	assert.InEpsilon(t, 0.5e6, m.busyRate, 0.05, "the collapsed path's rate")
}

// TestPathModelRetransmissionQueue: the queue retransmissions are judged by
// drains at what left the path, so a sender above its transport target on
// a path with room, or one losing packets at random, is not read as
// building a queue; a queue that does build is still counted in full.
func TestPathModelRetransmissionQueue(t *testing.T) {
	const (
		size     = 1250                      // bytes a packet
		interval = 20 * time.Millisecond / 3 // 1.5 Mbit/s sent
		owd      = 50 * time.Millisecond
		every    = 50 * time.Millisecond // a report, owd after the arrivals it lists
		run      = 10 * time.Second
	)
	tests := []struct {
		name     string
		ceiling  float64 // the transport target, bit/s
		capacity float64 // bit/s; 0: the path has room
		lossEach int     // every lossEach-th packet is lost (0: none)
		lossP    float64 // the lasting loss rate the sender measured
		min, max time.Duration
	}{
		// Without the delivery rate, 0.5 Mbit/s above the 1 Mbit/s
		// ceiling piled up as 5 s of queue.
		{name: "above the target, path with room", ceiling: 1e6, min: 0, max: 10 * time.Millisecond},
		// Without the loss added back, 5 % of what was sent stayed
		// queued: 0.5 s after 10 s.
		{name: "random loss", ceiling: 1.2e6, lossEach: 20, lossP: 0.05, min: 0, max: 10 * time.Millisecond},
		// 0.5 Mbit/s above a 1 Mbit/s bottleneck for 10 s: 5 s of queue.
		{name: "a queue building", ceiling: 1e6, capacity: 1e6, min: 5 * time.Second, max: 7 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m pathModel
			m.ceiling, m.lossP = tc.ceiling, tc.lossP
			type pkt struct {
				sent, arr clock.Time
				lost      bool
			}
			var sent []pkt
			var lastArr clock.Time
			reported := 0
			var rep []cc.PacketResult
			nextSend, nextReport := clock.Time(0), clock.Time(every)
			for now := clock.Time(0); now < clock.Time(run); now = min(nextSend, nextReport) {
				if now == nextSend {
					p := pkt{sent: now, arr: now.Add(owd)}
					if tc.capacity > 0 {
						p.arr = clock.Max(p.arr, lastArr.Add(time.Duration(size*8/tc.capacity*float64(time.Second))))
					}
					p.lost = tc.lossEach > 0 && len(sent)%tc.lossEach == tc.lossEach-1
					if !p.lost {
						lastArr = p.arr
					}
					sent = append(sent, p)
					m.onSent(now, size)
					nextSend = now.Add(interval)
				}
				if now == nextReport {
					// Every packet that arrived by a feedback delay ago, and
					// those lost before the last of them.
					rep = rep[:0]
					last := reported
					for i := reported; i < len(sent); i++ {
						if !sent[i].lost && sent[i].arr.Add(owd) <= now {
							last = i + 1
						}
					}
					for i := reported; i < last; i++ {
						rep = append(rep, cc.PacketResult{PacketNumber: int64(i), Size: size, SendTime: sent[i].sent,
							Received: !sent[i].lost, ArrivalTime: sent[i].arr})
					}
					reported = last
					if len(rep) > 0 {
						m.onFeedback(now, rep)
						var after int64
						for i := range sent {
							if sent[i].sent > m.measAt {
								after += size
							}
						}
						m.anchor(now, after)
					}
					nextReport = now.Add(every)
				}
			}
			d, ok := m.delayOf(clock.Time(run), false)
			require.True(t, ok)
			assert.GreaterOrEqual(t, d, tc.min)
			assert.LessOrEqual(t, d, tc.max)
		})
	}
}

// TestPathModelDeliveryRestarts: the delivery rate's spans tile from the
// latest arrival counted; an arrival clock that jumps back (the receiver's
// reference time wrapping, every 12 days) starts them over instead of
// leaving the rate frozen at what it read before.
func TestPathModelDeliveryRestarts(t *testing.T) {
	report := func(start clock.Time, n int, gap time.Duration) []cc.PacketResult {
		pkts := make([]cc.PacketResult, n)
		for i := range pkts {
			pkts[i] = cc.PacketResult{Size: 1000, Received: true, ArrivalTime: start.Add(time.Duration(i+1) * gap)}
		}
		return pkts
	}
	var m pathModel
	// 1000-byte packets 4 ms apart: 2 Mbit/s, report after report.
	at := clock.Time(time.Hour)
	for range 10 {
		m.noteDelivery(report(at, 10, 4*time.Millisecond))
		at = at.Add(40 * time.Millisecond)
	}
	require.InDelta(t, 2e6, m.deliv.rate(), 1e3)

	// The arrival clock jumps back 12 days; packets now 8 ms apart.
	at = at.Add(-12 * 24 * time.Hour)
	for range 10 {
		m.noteDelivery(report(at, 10, 8*time.Millisecond))
		at = at.Add(80 * time.Millisecond)
	}
	assert.InEpsilon(t, 1e6, m.deliv.rate(), 0.02, "the rate follows the new arrivals (the old one fades by a third a report)")

	// A report reordered a little (its arrivals before the latest
	// counted) waits for the next span rather than restarting.
	latest := m.delivArr
	m.noteDelivery(report(latest.Add(-50*time.Millisecond), 2, 4*time.Millisecond))
	assert.Equal(t, latest, m.delivArr)
	assert.Equal(t, int64(2000), m.delivPend)
}

// sends is a sender's record of what it sent, for the path model's test
// that a queue is ours (sentLog).
type sends []struct {
	at   clock.Time
	size int
}

func (l *sends) add(at clock.Time, size int) {
	*l = append(*l, struct {
		at   clock.Time
		size int
	}{at, size})
}

func (l *sends) sentAfter(at clock.Time) int64 {
	var n int64
	for _, s := range *l {
		if s.at > at {
			n += int64(s.size)
		}
	}
	return n
}
