package jitterbuffer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

const ms = clock.Time(time.Millisecond)

func TestReleaseAtPlayoutInOrder(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond})
	// pushed out of order, with a gap at id 2
	require.NoError(t, b.Push(0, Frame{ID: 1, Capture: 10 * ms}))
	require.NoError(t, b.Push(0, Frame{ID: 3, Capture: 30 * ms}))
	require.NoError(t, b.Push(0, Frame{ID: 0, Capture: 0}))
	assert.ErrorIs(t, b.Push(0, Frame{ID: 3, Capture: 30 * ms}), ErrDuplicate)
	assert.Equal(t, 100*ms, b.NextTimeout())

	_, ok := b.Pop(99 * ms)
	assert.False(t, ok, "nothing before its playout time")

	var got []int64
	var lost []int64
	for now := clock.Time(0); now <= 200*ms; now += ms {
		for {
			f, ok := b.Pop(now)
			if !ok {
				break
			}
			assert.Equal(t, f.Capture.Add(100*time.Millisecond), now, "released exactly at playout")
			got = append(got, f.ID)
			lost = append(lost, f.LostBefore)
		}
	}
	assert.Equal(t, []int64{0, 1, 3}, got)
	assert.Equal(t, []int64{0, 0, 1}, lost)
	assert.ErrorIs(t, b.Push(0, Frame{ID: 2}), ErrLate)
	assert.Equal(t, Stats{FramesReleased: 3, FramesSkipped: 1, FramesLate: 1, FramesDropped: 1, // 2 missed its display
		ConcealmentEvents: 1, ConcealedDuration: 10 * time.Millisecond, // 2's 10 ms
		// completed at 0, released at 100, 110 and 130 ms
		JitterBufferDelay:        340 * time.Millisecond,
		JitterBufferTargetDelay:  300 * time.Millisecond,
		JitterBufferMinimumDelay: 300 * time.Millisecond,
		Offset:                   100 * time.Millisecond, Rate: 1}, b.Stats(0))
	assert.Equal(t, clock.Never, b.NextTimeout())
}

func TestBounded(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: time.Second, MaxFrames: 2})
	require.NoError(t, b.Push(0, Frame{ID: 0}))
	require.NoError(t, b.Push(0, Frame{ID: 1}))
	assert.ErrorIs(t, b.Push(0, Frame{ID: 2}), ErrFull)
	assert.Equal(t, 2, b.Len())
	f, ok := b.Flush(0)
	require.True(t, ok)
	assert.Equal(t, int64(0), f.ID)
	f, ok = b.Flush(0)
	require.True(t, ok)
	assert.Equal(t, int64(1), f.ID)
	_, ok = b.Flush(0)
	assert.False(t, ok)
	assert.Equal(t, DefaultMaxFrames, cap(New(Config{Mode: Fixed}).frames))
}

func TestFirstFrameReportsNoLoss(t *testing.T) {
	b := New(Config{Mode: Fixed})
	require.NoError(t, b.Push(0, Frame{ID: 500}))
	f, ok := b.Pop(0)
	require.True(t, ok)
	assert.Zero(t, f.LostBefore, "joining mid-stream is not loss")
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: 50 * time.Millisecond})
	data := make([]byte, 100)
	var i int64
	got := allocs.Mallocs(3, func() {
		for end := i + 10_000; i < end; i++ {
			now := clock.Time(i) * 20 * ms
			_ = b.Push(now, Frame{ID: i, Capture: now, Data: data})
			for {
				if _, ok := b.Pop(now); !ok {
					break
				}
			}
		}
	})
	assert.Zero(t, got, "allocations over 10,000 frames")
}

func BenchmarkSteadyPushPop(b *testing.B) {
	buf := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond})
	data := make([]byte, 100)
	i := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		now := clock.Time(i) * 20 * ms
		_ = buf.Push(now, Frame{ID: i, Capture: now, Data: data})
		for {
			if _, ok := buf.Pop(now); !ok {
				break
			}
		}
		i++
	}
}

func TestReset(t *testing.T) {
	b := New(Config{Mode: Fixed})
	require.NoError(t, b.Push(0, Frame{ID: 5}))
	_, ok := b.Pop(0)
	require.True(t, ok)
	assert.ErrorIs(t, b.Push(0, Frame{ID: 0}), ErrLate)
	b.Reset()
	require.NoError(t, b.Push(0, Frame{ID: 0}), "a reset stream starts again at any id")
	f, ok := b.Pop(0)
	require.True(t, ok)
	assert.Zero(t, f.LostBefore)
}

func TestExpect(t *testing.T) {
	b := New(Config{Mode: Fixed})
	b.Expect(0)
	require.NoError(t, b.Push(0, Frame{ID: 3}))
	f, ok := b.Pop(0)
	require.True(t, ok)
	assert.Equal(t, int64(3), f.LostBefore, "frames 0-2 of a stream known to start at 0 were lost")
	assert.ErrorIs(t, b.Push(0, Frame{ID: 1}), ErrLate)
}

// Validate refuses a Quantile closer to 1 than MaxQuantile; at
// MaxQuantile the memories it derives stay at most an hour (a hair under 1
// overflowed them: a negative RecoveryWindow), and the target follows the
// jitter.
func TestQuantileNearOne(t *testing.T) {
	for _, q := range []float64{0.999999999999, 0.9999999999999999, 1} {
		assert.Error(t, Config{Quantile: q}.Validate(), "q=%v", q)
	}
	cfg := Config{Quantile: MaxQuantile}
	require.NoError(t, cfg.Validate())
	b := New(cfg)
	got := b.Config()
	assert.Equal(t, time.Hour, got.RecoveryWindow)
	assert.Positive(t, got.Window)
	assert.LessOrEqual(t, got.Window, time.Hour)
	require.NoError(t, got.Validate())
	// 50-56 ms of transit, a frame every 20 ms: the target follows it.
	for i := range 3000 {
		capture := clock.Time(i) * 20 * ms
		transit := 50*time.Millisecond + time.Duration(i%7)*time.Millisecond
		done := capture.Add(transit)
		require.NoError(t, b.Push(done, Frame{ID: int64(i), Capture: capture, Completed: done, Transit: transit}))
		for {
			if _, ok := b.Pop(done); !ok {
				break
			}
		}
	}
	assert.Less(t, b.Stats(clock.Time(3000)*20*ms).JitterBufferTargetDelay/3000, 100*time.Millisecond)
}
