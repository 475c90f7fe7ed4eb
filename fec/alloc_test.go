package fec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

// The steady state allocates nothing: 10,000 AddMedia with their
// PollRepair calls (policy-driven, conditions changing every 100 packets,
// and fixed), and 10,000 OnMedia with the OnRepair calls of a loss-free
// link.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	policy, err := NewEncoder(EncoderConfig{})
	require.NoError(t, err)
	fixed := fixedEncoder(t, 10, 3)
	d := newDecoder(t)
	pkts := benchPackets()
	audio := make([]byte, 120)
	dst := make([]byte, DefaultMaxSymbol+SymbolOverhead)
	var pn int64
	var now clock.Time
	repairs := 0
	run := func(n int) {
		for i := range n {
			now += clock.Time(2 * time.Millisecond)
			if i%100 == 0 {
				loss := 0.02 + 0.01*float64(i/100%5)
				policy.SetConditions(now, Conditions{Loss: loss, MeanBurst: 1 + float64(i/100%3), RTT: 200 * time.Millisecond, OneWay: 100 * time.Millisecond, ARQ: true})
			}
			policy.HandleTimeout(now)
			if i%10 == 0 {
				policy.AddMedia(now, pn, audio, ClassAudio, now.Add(300*time.Millisecond), true)
			} else {
				policy.AddMedia(now, pn, pkts[i%10], ClassDelta, now.Add(300*time.Millisecond), i%5 == 4)
			}
			d.OnMedia(now, pn, pkts[i%10])
			pn++
			for {
				b, _, n, ok := policy.PollRepair(now, dst)
				if !ok {
					break
				}
				d.OnRepair(now, b, dst[:n])
				repairs++
			}
			fixed.AddMedia(now, pn, pkts[i%10], ClassKey, now.Add(time.Second), false)
			d.OnMedia(now, pn, pkts[i%10])
			pn++
			for {
				b, _, n, ok := fixed.PollRepair(now, dst)
				if !ok {
					break
				}
				d.OnRepair(now, b, dst[:n])
				repairs++
			}
			if i%1000 == 0 {
				d.Expire(now, pn-200)
			}
		}
	}
	run(20_000) // warm up: buffers, block entries, policy tables
	repairs = 0
	// Up to three rounds of 10,000; runtime noise does not hit all three.
	assert.Zero(t, allocs.Mallocs(3, func() { run(10_000) }), "allocations in 10,000 steady steps")
	assert.Greater(t, repairs, 3000, "repairs were made")
	assert.Zero(t, d.Stats().PacketsRecovered)
}
