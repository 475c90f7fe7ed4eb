package arq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/allocs"
)

func TestReceiveWindow(t *testing.T) {
	tests := []struct {
		name            string
		pns             []int64
		accepted        []bool
		lost, dup, gaps int64
	}{
		{"in order", []int64{0, 1, 2}, []bool{true, true, true}, 0, 0, 0},
		{"gap", []int64{0, 3}, []bool{true, true}, 2, 0, 1},
		{"two gaps", []int64{0, 2, 3, 6, 7}, []bool{true, true, true, true, true}, 3, 0, 2},
		{"late repays loss", []int64{0, 2, 1}, []bool{true, true, true}, 0, 0, 1},
		{"duplicate", []int64{5, 5, 6, 5}, []bool{true, false, true, false}, 0, 2, 0},
		{"start mid-stream", []int64{100, 101}, []bool{true, true}, 0, 0, 0},
		{"reorder before first", []int64{10, 9}, []bool{true, true}, 0, 0, 0},
		{"too old", []int64{0, WindowSize + 5, 1}, []bool{true, true, false}, WindowSize + 4, 1, 1},
		{"old slot cleared on jump", []int64{1, WindowSize + 1, 2*WindowSize + 1}, []bool{true, true, true}, 2*WindowSize - 2, 0, 2},
		{"negative", []int64{-1}, []bool{false}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReceiveWindow
			assert.Equal(t, int64(-1), w.Largest())
			for i, pn := range tt.pns {
				assert.Equal(t, tt.accepted[i], w.Record(pn), "pn %d", pn)
			}
			assert.Equal(t, tt.lost, w.Lost())
			assert.Equal(t, tt.dup, w.Duplicates())
			assert.Equal(t, tt.gaps, w.Gaps())
		})
	}
}

func TestReceiveWindowContains(t *testing.T) {
	var w ReceiveWindow
	assert.False(t, w.Contains(0), "nothing before the first packet")
	for _, pn := range []int64{3, 5, WindowSize + 4} {
		require.True(t, w.Record(pn))
	}
	tests := []struct {
		pn   int64
		want bool
	}{
		{-1, false},
		{3, false}, // recorded, but WindowSize + 1 below the largest now
		{5, true},
		{6, false}, // never came
		{WindowSize + 4, true},
		{WindowSize + 5, false}, // above the largest
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, w.Contains(tt.pn), "pn %d", tt.pn)
	}
}

func TestReceiveWindowSlotReuse(t *testing.T) {
	var w ReceiveWindow
	for pn := int64(0); pn < 3*WindowSize; pn += 2 { // every other packet
		assert.True(t, w.Record(pn))
	}
	// odd numbers inside the window were never received: they are accepted once
	top := w.Largest()
	assert.True(t, w.Record(top-1))
	assert.False(t, w.Record(top-1))
	assert.Equal(t, int64(3*WindowSize/2-2), w.Lost(), "6143 odd numbers missing, one of them repaid")
}

func TestRTT(t *testing.T) {
	var r RTT
	assert.Equal(t, InitialRTT, r.Smoothed())
	assert.Equal(t, InitialRTT, r.Min())
	r.Add(0, 0) // ignored
	assert.Equal(t, 0, r.Samples())
	r.Add(0, 100*time.Millisecond)
	assert.Equal(t, 100*time.Millisecond, r.Smoothed())
	assert.Equal(t, 50*time.Millisecond, r.Variation())
	r.Add(1, 200*time.Millisecond)
	assert.Equal(t, 112500*time.Microsecond, r.Smoothed()) // 7/8*100 + 1/8*200
	assert.Equal(t, 62500*time.Microsecond, r.Variation()) // 3/4*50 + 1/4*100
	assert.Equal(t, 100*time.Millisecond, r.Min())
	assert.Equal(t, 200*time.Millisecond, r.Latest())
	r.Add(2, 50*time.Millisecond)
	assert.Equal(t, 50*time.Millisecond, r.Min())
}

func TestWindowDoesNotAllocate(t *testing.T) {
	var w ReceiveWindow
	var pn int64
	got := allocs.Mallocs(3, func() {
		for end := pn + 10_000; pn < end; pn++ {
			w.Record(pn)
		}
	})
	assert.Zero(t, got)
}

func BenchmarkSteadyReceiveWindow(b *testing.B) {
	var w ReceiveWindow
	pn := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		w.Record(pn)
		pn++
	}
}
