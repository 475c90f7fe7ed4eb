package cc

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
)

// shifted passes reports to a GCC with every arrival time moved by off(now):
// what the peer's clock (and the TWCC reference time's wrap) does.
type shifted struct {
	*GCC
	off func(now clock.Time) time.Duration
	buf []PacketResult
}

func (s *shifted) OnFeedback(now clock.Time, fb *Feedback, rtt RTT, al bool) {
	s.buf = append(s.buf[:0], fb.Packets...)
	for i := range s.buf {
		if s.buf[i].Received {
			s.buf[i].ArrivalTime = s.buf[i].ArrivalTime.Add(s.off(now))
		}
	}
	s.GCC.OnFeedback(now, &Feedback{ReceivedAt: now, Packets: s.buf}, rtt, al)
}

// The TWCC reference time is 24 signed bits of 64 ms (internal/core sends
// it wrapped and reads it back unwrapped): the receiver's clock, as the
// sender sees it, jumps back 2^24 x 64 ms (12.4 days) once the receiver's
// clock passes 6.2 days, and a hostile peer can step it at will. After
// such a step, the controller should still follow the path.
func TestGCCArrivalClockJumpsBack(t *testing.T) {
	const wrap = (1 << 24) * 64 * time.Millisecond
	path := dropPath(40 * time.Second) // 2 Mbit/s, 0.5 from 40 s; 300 ms queue
	run := func(jump bool) (float64, time.Duration, *GCC) {
		g := &shifted{GCC: NewGCC(GCCConfig{StartRate: 1_000_000}), off: func(now clock.Time) time.Duration {
			if jump && now >= clock.Time(30*time.Second) {
				return -wrap
			}
			return 0
		}}
		s := path.run(g, 90*time.Second, 1)
		var q time.Duration
		for _, x := range s[len(s)*2/3:] {
			q += x.queue
		}
		return meanTarget(s, 60*time.Second, 90*time.Second), q / time.Duration(len(s)-len(s)*2/3), g.GCC
	}
	ref, refQ, gr := run(false)
	got, gotQ, gj := run(true)
	t.Logf("60-90 s: no jump: target %.0f, queue %v, ack rate %.0f; jump: target %.0f, queue %v, ack rate %.0f",
		ref, refQ, gr.ack.rate, got, gotQ, gj.ack.rate)
	assert.LessOrEqual(t, got, 1.2*500_000, "after the arrival clock jumped back: target over a 500 kbit/s path")
	assert.LessOrEqual(t, gotQ, 2*refQ+50*time.Millisecond, "after the arrival clock jumped back: mean queue (%v without the jump)", refQ)
}

// A report whose now is earlier than the last one's by more than ~355 s
// (exp overflows in the loss weight) leaves lossFrac NaN for good: the
// loss bound never cuts again.
func TestGCCNowBackwardsPoisonsLoss(t *testing.T) {
	for _, back := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "back"}[back], func(t *testing.T) { nowBackwards(t, back) })
	}
}

func nowBackwards(t *testing.T, back bool) {
	g := NewGCC(GCCConfig{StartRate: 1_000_000})
	s := &synth{g: g, rate: 1_000_000, rtt: func(clock.Time) RTT { return RTT{Min: 100 * time.Millisecond, Smoothed: 100 * time.Millisecond} }}
	s.run(20*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, never)
	if back {
		g.OnFeedback(s.now.Add(-10*time.Minute), &Feedback{Packets: []PacketResult{{Size: 1200, SendTime: s.now}}}, RTT{Smoothed: 100 * time.Millisecond}, false)
	}
	t.Logf("lossFrac after now went back: %v", g.lossFrac)
	// Then: half the packets lost behind a standing queue (RTT 200 ms over
	// its least), which cuts a fresh controller.
	s.rtt = func(clock.Time) RTT {
		return RTT{Min: 100 * time.Millisecond, Smoothed: 300 * time.Millisecond, Latest: 300 * time.Millisecond}
	}
	s.rate = 0
	s.run(40*time.Second, func(clock.Time) time.Duration { return 50 * time.Millisecond }, func(pn int64) bool { return pn%2 == 0 })
	assert.False(t, math.IsNaN(g.lossFrac), "lossFrac")
	assert.Positive(t, g.Stats().LossCuts, "loss cuts after 20 s of 50 %% loss behind a standing queue; target %d", g.Target())
}

// ackWindowRate (GCC's and GCC02's receive rate) after the arrival clock
// steps back by more than its window: 1 Mbit/s before and after.
func TestAckWindowRateClockStepsBack(t *testing.T) {
	var a ackWindowRate
	at := clock.Time(0)
	for range 200 { // 1200 bytes every 9.6 ms: 1 Mbit/s
		a.add(at, 1200)
		at = at.Add(9600 * time.Microsecond)
	}
	a.update()
	t.Logf("before: %.0f bit/s", a.rate)
	at = at.Add(-time.Hour)
	for range 5000 {
		a.add(at, 1200)
		at = at.Add(9600 * time.Microsecond)
		a.update()
	}
	assert.InDelta(t, 1e6, a.rate, 0.2e6, "48 s of 1 Mbit/s after the step (%d entries)", a.n)
}
