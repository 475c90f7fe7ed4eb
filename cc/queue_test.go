package cc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

func TestPacerQueueAccount(t *testing.T) {
	p := NewPacer(8_000_000, 0) // 1 MB/s: 1 byte per microsecond
	p.SetQueueLimit(150 * time.Millisecond)
	p.Add(ClassVideo, 100_000)
	p.Add(ClassAudio, 200)
	p.Add(ClassKey, 20_000)
	assert.Equal(t, int64(120_200), p.Queued())
	tests := []struct {
		class Class
		ahead int64
	}{
		{ClassAudio, 0},
		{ClassRetransmission, 200},
		{ClassKey, 200},
		{ClassVideo, 20_200},
		{ClassData, 120_200},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ahead, p.Ahead(tt.class), "ahead of %v", tt.class)
	}
	assert.Equal(t, 120200*time.Microsecond, p.QueueDelay())
	assert.True(t, p.Fits(29_800), "exactly at the limit")
	assert.False(t, p.Fits(29_801))
	p.Remove(ClassVideo, 100_000)
	assert.Equal(t, int64(20_200), p.Queued())
	assert.Equal(t, 120200*time.Microsecond, p.Stats().QueueDelayMax)
	assert.Panics(t, func() { p.Remove(ClassAudio, 201) }, "the account never goes negative")
	assert.Panics(t, func() { p.Remove(ClassVideo, 1) }, "nor one class's, though the total holds more")
	assert.Panics(t, func() { p.Remove(ClassVideo, -1) })
	assert.Panics(t, func() { p.Add(ClassVideo, -1) })
	assert.Equal(t, int64(20_200), p.Queued(), "a refused call changes no count")
	assert.Equal(t, int64(20_000), p.QueuedClass(ClassKey))
	assert.Zero(t, p.QueuedClass(ClassVideo))
}

func TestPacerStretch(t *testing.T) {
	tests := []struct {
		name      string
		limit     time.Duration
		queued    int64
		add       int
		wantDrain int64
	}{
		{"fits: no stretch", 150 * time.Millisecond, 10_000, 1000, 1_000_000},
		{"no limit: no stretch", 0, 1_000_000, 1_000_000, 1_000_000},
		{"a key frame of 239 ms at 1.6 x", 150 * time.Millisecond, 0, 29_875, 1_593_334},
		{"with a queue", 100 * time.Millisecond, 12_500, 12_500, 2_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(1_000_000, 0)
			p.SetQueueLimit(tt.limit)
			if tt.queued > 0 {
				p.Add(ClassVideo, int(tt.queued))
			}
			p.Stretch(tt.add)
			assert.Equal(t, tt.wantDrain, p.DrainRate())
			assert.True(t, p.Fits(tt.add), "after Stretch the bytes fit")
			assert.Equal(t, int64(1_000_000), p.Rate(), "the pacing rate itself is unchanged")
			p.Add(ClassKey, tt.add)
			p.Remove(ClassKey, tt.add)
			if tt.queued > 0 {
				p.Remove(ClassVideo, int(tt.queued))
			}
			assert.Equal(t, int64(1_000_000), p.DrainRate(), "the stretch ends when the queue empties")
		})
	}
}

func TestPacerStretchDrainsFaster(t *testing.T) {
	// A stretched pacer lets bytes out at the drain rate.
	p := NewPacer(1_000_000, 0)
	p.SetQueueLimit(100 * time.Millisecond)
	p.Stretch(25_000) // 2 Mbit/s
	p.Add(ClassKey, 25_000)
	sent, _ := drive(&p, 0, time.Second, 1000)
	assert.InEpsilon(t, 250_000, float64(sent), 0.02, "2 Mbit/s for a second")
}

func TestPredictArrival(t *testing.T) {
	tests := []struct {
		ahead  time.Duration
		bytes  int
		rate   int64
		oneWay time.Duration
		want   time.Duration
	}{
		{0, 0, 1_000_000, 50 * time.Millisecond, 50 * time.Millisecond},
		{10 * time.Millisecond, 12_500, 1_000_000, 50 * time.Millisecond, 160 * time.Millisecond},
		{0, 125, 0, 0, 1000 * time.Second}, // a zero rate counts as 1 bit/s
	}
	for _, tt := range tests {
		got := PredictArrival(clock.Time(time.Second), tt.ahead, tt.bytes, tt.rate, tt.oneWay)
		assert.Equal(t, clock.Time(time.Second).Add(tt.want), got)
	}
}

func TestScriptedFollowsScheduleLate(t *testing.T) {
	s := &Scripted{Lag: 500 * time.Millisecond, Share: 0.9, Steps: []ScriptStep{
		{At: 0, Rate: 4_000_000}, {At: clock.Time(15 * time.Second), Rate: 500_000}, {At: clock.Time(25 * time.Second), Rate: 4_000_000}}}
	assert.Equal(t, int64(3_600_000), s.Target(), "before any feedback: the first step")
	tests := []struct {
		at   time.Duration
		want int64
	}{
		{10 * time.Second, 3_600_000},
		{15400 * time.Millisecond, 3_600_000},
		{15500 * time.Millisecond, 450_000},
		{25499 * time.Millisecond, 450_000},
		{26 * time.Second, 3_600_000},
	}
	for _, tt := range tests {
		s.OnFeedback(clock.Time(tt.at), nil, RTT{}, false)
		assert.Equal(t, tt.want, s.Target(), "at %v", tt.at)
	}
}

func TestSteadyPacerNoAllocs(t *testing.T) {
	p := NewPacer(10_000_000, 0)
	p.SetQueueLimit(150 * time.Millisecond)
	now := clock.Time(0)
	n := allocs.Mallocs(3, func() { now = pacePackets(&p, now, 10_000) })
	require.Zero(t, n)
}

// pacePackets runs the pacer's per-packet path n times: a packet joins the
// queue, the deadline prediction reads the queue, and the packet leaves
// when the bucket allows.
func pacePackets(p *Pacer, now clock.Time, n int) clock.Time {
	const size = 1200
	for i := 0; i < n; i++ {
		c := Class(i % int(NumClasses))
		if p.Fits(size) {
			p.Add(c, size)
		} else {
			p.Stretch(size)
			p.Add(c, size)
		}
		_ = PredictArrival(now, p.DelayOf(p.Ahead(c)), size, 4_000_000, 50*time.Millisecond)
		for !p.CanSend(now) {
			now = p.NextSend(now)
		}
		p.OnSent(now, size)
		p.Remove(c, size)
	}
	return now
}

func BenchmarkSteadyPacerPacket(b *testing.B) {
	p := NewPacer(10_000_000, 0)
	p.SetQueueLimit(150 * time.Millisecond)
	now := pacePackets(&p, 0, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		now = pacePackets(&p, now, 1)
	}
}

// The budget holds the average rate to the target while bursts still leave
// at the pacing rate.
func TestPacerBudget(t *testing.T) {
	tests := []struct {
		name      string
		pacing    int64
		budget    int64
		wantRate  float64 // bit/s over 10 s of a source that always has bytes
		wantBurst int     // bytes that leave at the pacing rate from a full budget
	}{
		{"no budget: the pacing rate", 2_500_000, 0, 2_500_000, 0},
		// The target, plus the full budget it starts with (250 ms of it)
		// spread over the 10 s.
		{"budget: the target", 2_500_000, 1_000_000, 1_025_000, 1_000_000 / 8 / 4},
		{"budget above the pacing rate: the pacing rate", 1_000_000, 4_000_000, 1_000_000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(tt.pacing, 0)
			p.SetBudget(tt.budget, 0)
			assert.Equal(t, tt.budget, p.BudgetRate())
			sent, _ := drive(&p, 0, 10*time.Second, 1000)
			assert.InEpsilon(t, tt.wantRate, float64(sent)*8/10, 0.02)
			if tt.wantBurst > 0 {
				// A fresh pacer with a full budget: 250 ms of the target
				// leaves at the pacing rate, then the target rate.
				q := NewPacer(tt.pacing, 0)
				q.SetBudget(tt.budget, 0)
				early, _ := drive(&q, 0, 100*time.Millisecond, 1000)
				atPacing := float64(tt.pacing) / 8 * 0.1
				assert.InDelta(t, min(atPacing, float64(tt.wantBurst)+float64(tt.budget)/8*0.1), float64(early), 2500,
					"the first 100 ms: the budget's burst plus what it earns")
			}
		})
	}
}

func TestPacerBudgetDelayOf(t *testing.T) {
	p := NewPacer(2_500_000, 0)
	p.SetBudget(1_000_000, 0) // 31,250 bytes deep
	p.CanSend(0)
	assert.Equal(t, 80*time.Millisecond, p.DelayOf(25_000), "within the budget: at the pacing rate")
	assert.Equal(t, 550*time.Millisecond, p.DelayOf(100_000), "past it: the rest at the target")
}

// Audio may leave while the token bucket is in debt, up to one burst of
// it, and is charged like the rest.
func TestPacerOverdraw(t *testing.T) {
	p := NewPacer(1_000_000, 0) // 5 ms burst: 625 bytes
	now := clock.Time(0)
	require.True(t, p.CanSend(now))
	p.OnSent(now, 1200) // one video packet: the bucket in debt
	assert.False(t, p.CanSend(now))
	assert.True(t, p.CanOverdraw(now), "575 bytes of debt, under one burst")
	p.OnSent(now, 40) // audio overdraws
	assert.True(t, p.CanOverdraw(now), "615 bytes of debt")
	p.OnSent(now, 100)
	assert.False(t, p.CanOverdraw(now), "715 bytes of debt: past one burst")
	at := p.NextOverdrawTime()
	assert.Greater(t, at, now)
	assert.False(t, p.CanOverdraw(at-clock.Time(100*time.Microsecond)))
	assert.True(t, p.CanOverdraw(at))
	assert.Greater(t, p.NextSend(at), at, "ordinary packets still wait for the debt")
}

// A Stretch ends once the bytes it was asked for have left, even if the
// queue never empties.
func TestPacerStretchEndsWithItsBytes(t *testing.T) {
	p := NewPacer(1_000_000, 0)
	p.SetQueueLimit(100 * time.Millisecond)
	p.Add(ClassVideo, 10_000)
	p.Stretch(10_000) // 20,000 bytes in 100 ms: 1.6 Mbit/s
	p.Add(ClassKey, 10_000)
	assert.Equal(t, int64(1_600_000), p.DrainRate())
	p.Add(ClassVideo, 50_000) // more keeps coming
	p.Remove(ClassVideo, 10_000)
	assert.Equal(t, int64(1_600_000), p.DrainRate())
	p.Remove(ClassKey, 10_000)
	assert.Equal(t, int64(1_000_000), p.DrainRate(), "the stretched bytes left: back to the pacing rate")
	assert.Equal(t, int64(50_000), p.Queued())
}

// While a probe cluster goes out the pacer sends at its rate, past the
// budget; after it, back to the pacing rate and budget.
func TestPacerProbe(t *testing.T) {
	p := NewPacer(1_000_000, 0)
	p.SetBudget(400_000, 0)
	p.SetProbe(4_000_000)
	assert.Equal(t, int64(4_000_000), p.DrainRate())
	sent, _ := drive(&p, 0, time.Second, 1000)
	assert.InEpsilon(t, 500_000, float64(sent), 0.02, "4 Mbit/s for a second")
	p.SetProbe(0)
	assert.Equal(t, int64(1_000_000), p.DrainRate())
	sent, _ = drive(&p, clock.Time(time.Second), 10*time.Second, 1000)
	assert.InEpsilon(t, 400_000.0/8*10, float64(sent), 0.05, "the budget again")
}

// A probe below the pacing rate goes at its own rate, not the pacing
// rate's: the estimator reads the cluster's send rate against what the
// path carried.
func TestPacerProbeBelowPacingRate(t *testing.T) {
	p := NewPacer(2_500_000, 0)
	p.SetBudget(1_000_000, 0)
	require.True(t, p.CanSend(0), "a full burst saved up at 2.5 Mbit/s")
	p.SetProbe(1_500_000)
	assert.Equal(t, int64(1_500_000), p.DrainRate())
	// From the cluster's first packet: 60 ms at 1.5 Mbit/s is 11,250
	// bytes; the saved-up burst would add 1,562.
	sent, _ := drive(&p, 0, 60*time.Millisecond, 100)
	assert.InDelta(t, 11_250, sent, 200, "60 ms at 1.5 Mbit/s, no burst at the pacing rate first")
	sent, _ = drive(&p, clock.Time(60*time.Millisecond), time.Second, 1000)
	assert.InEpsilon(t, 1_500_000.0/8, float64(sent), 0.02, "1.5 Mbit/s for a second")
	p.SetProbe(0)
	assert.Equal(t, int64(2_500_000), p.DrainRate())
}
