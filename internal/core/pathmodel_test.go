package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
