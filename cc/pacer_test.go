package cc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

// drive sends size-byte packets as fast as the pacer allows for d and
// returns the bytes sent and the largest burst (bytes leaving at one instant).
func drive(p *Pacer, start clock.Time, d time.Duration, size int) (sent int, maxBurst int) {
	now := start
	end := start.Add(d)
	burst := 0
	for now < end {
		if p.CanSend(now) {
			p.OnSent(now, size)
			sent += size
			burst += size
			if burst > maxBurst {
				maxBurst = burst
			}
			continue
		}
		next := p.NextSend(now)
		if next <= now {
			panic("pacer says wait but gives no later time")
		}
		now = next
		burst = 0
	}
	return sent, maxBurst
}

func TestPacerRateAndBurst(t *testing.T) {
	tests := []struct {
		rate int64
		size int
	}{
		{1_000_000, 1200},
		{3_900_000, 1219},
		{64_000, 100},
		{100_000_000, 1400},
	}
	for _, tt := range tests {
		p := NewPacer(tt.rate, 0)
		sent, burst := drive(&p, 0, 10*time.Second, tt.size)
		want := float64(tt.rate) / 8 * 10
		assert.InEpsilon(t, want, float64(sent), 0.01, "rate %d", tt.rate)
		maxBurst := float64(tt.rate)/8*DefaultBurst.Seconds() + float64(tt.size)
		assert.LessOrEqual(t, float64(burst), maxBurst, "rate %d: burst bounded by 5 ms at the rate plus one packet", tt.rate)
	}
}

func TestPacerIdleDoesNotBank(t *testing.T) {
	p := NewPacer(1_000_000, 0)
	require.True(t, p.CanSend(0))
	p.OnSent(0, 10_000) // deep in debt
	assert.False(t, p.CanSend(0))
	// After a long idle the bucket holds at most one burst.
	sent, _ := drive(&p, clock.Time(time.Hour), time.Millisecond, 100)
	assert.LessOrEqual(t, sent, 1_000_000/8*5/1000+100+1_000_000/8/1000)
}

func TestPacerSetRate(t *testing.T) {
	p := NewPacer(8_000_000, 0)
	p.SetRate(0)
	assert.Equal(t, int64(1), p.Rate(), "rate never below 1 bit/s")
	p.SetRate(8_000)
	p.OnSent(0, 1000)
	next := p.NextSend(0)
	assert.Greater(t, next, clock.Time(0))
	assert.LessOrEqual(t, next.Sub(0), 1100*time.Millisecond)
	var f Estimator = &Fixed{Rate: 42}
	f.OnFeedback(0, &Feedback{}, RTT{}, false)
	assert.Equal(t, int64(42), f.Target())
}

func TestPacerDoesNotAllocate(t *testing.T) {
	p := NewPacer(4_000_000, 0)
	now := clock.Time(0)
	n := allocs.Mallocs(3, func() {
		for i := 0; i < 10_000; i++ {
			if p.CanSend(now) {
				p.OnSent(now, 1200)
			} else {
				now = p.NextSend(now)
			}
		}
	})
	assert.Zero(t, n)
}

func BenchmarkSteadyPacer(b *testing.B) {
	p := NewPacer(4_000_000, 0)
	now := clock.Time(0)
	b.ReportAllocs()
	for b.Loop() {
		if p.CanSend(now) {
			p.OnSent(now, 1200)
		} else {
			now = p.NextSend(now)
		}
	}
}

// A class past the last counts as ClassData, as fec's AddMedia takes it,
// rather than indexing past the queue's accounts.
func TestPacerClassOutOfRange(t *testing.T) {
	p := NewPacer(1_000_000, 0)
	require.NotPanics(t, func() { p.Add(NumClasses, 100) })
	assert.Equal(t, int64(100), p.QueuedClass(ClassData))
	assert.Equal(t, int64(100), p.QueuedClass(NumClasses+3))
	require.NotPanics(t, func() { p.Remove(NumClasses+1, 100) })
	assert.Zero(t, p.Queued())
}
