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
