package fec

import (
	"math/bits"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg   EncoderConfig
		field string
	}{
		{EncoderConfig{MaxK: 65}, "MaxK"},
		{EncoderConfig{MaxM: 33}, "MaxM"},
		{EncoderConfig{MaxOverhead: 1.5}, "MaxOverhead"},
		{EncoderConfig{MaxSymbol: -1}, "MaxSymbol"},
		{EncoderConfig{FixedM: 17}, "FixedM"},
		{EncoderConfig{TargetAudio: 2}, "TargetAudio"},
		{EncoderConfig{RepairMargin: -1}, "RepairMargin"},
	} {
		_, err := NewEncoder(tc.cfg)
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.field)
	}
	for _, tc := range []struct {
		cfg   DecoderConfig
		field string
	}{
		{DecoderConfig{MaxK: 65}, "MaxK"},
		{DecoderConfig{MaxM: 40}, "MaxM"},
		{DecoderConfig{MaxBlocks: -1}, "MaxBlocks"},
		{DecoderConfig{Horizon: -1}, "Horizon"},
		{DecoderConfig{History: -5}, "History"}, // once raised to 128 without a word
		{DecoderConfig{History: 1<<20 + 1}, "History"},
	} {
		_, err := NewDecoder(tc.cfg)
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.field)
	}
	e, err := NewEncoder(EncoderConfig{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxK, e.Config().MaxK)
	assert.Equal(t, DefaultMaxOverhead, e.Config().MaxOverhead)
}

// A block closes at k, at the end of a multi-packet frame, or on its time
// bound, and its repairs are due at once: nothing waits for more data.
func TestBlockClosing(t *testing.T) {
	dl := clock.Time(300 * ms)
	t.Run("at k", func(t *testing.T) {
		e := fixedEncoder(t, 4, 2)
		for i := range 3 {
			e.AddMedia(0, int64(i), []byte{1}, ClassDelta, dl, false)
			assert.Zero(t, e.RepairsDue())
		}
		e.AddMedia(0, 3, []byte{1}, ClassDelta, dl, false)
		reps := pollAll(t, e, 0)
		require.Len(t, reps, 2)
		assert.Equal(t, Block{Base: 0, Mask: 0b1111, M: 2, Index: 0}, reps[0].b)
		assert.Equal(t, int64(1), e.Stats().ClosedFull)
	})
	t.Run("end of frame", func(t *testing.T) {
		e := fixedEncoder(t, 10, 2)
		e.AddMedia(0, 5, []byte{1, 2}, ClassDelta, dl, false)
		e.AddMedia(0, 6, []byte{3}, ClassDelta, dl, true)
		reps := pollAll(t, e, 0)
		require.Len(t, reps, 2)
		assert.Equal(t, 2, reps[0].b.K())
		assert.Len(t, reps[0].sym, SymbolOverhead+2)
		assert.Equal(t, int64(1), e.Stats().ClosedEndOfFrame)
	})
	t.Run("single-packet frames group until the time bound", func(t *testing.T) {
		e := fixedEncoder(t, 10, 1)
		e.SetConditions(0, Conditions{OneWay: 100 * ms})
		for i := range 3 {
			now := clock.Time(time.Duration(i) * 20 * ms)
			e.AddMedia(now, int64(i), []byte{byte(i)}, ClassAudio, now.Add(300*ms), true)
			assert.Zero(t, e.RepairsDue(), "an audio frame does not close its block")
		}
		// First deadline 300 ms, less one-way 100 ms, less the 20 ms margin.
		assert.Equal(t, clock.Time(180*ms), e.NextTimeout())
		e.HandleTimeout(clock.Time(179 * ms))
		assert.Zero(t, e.RepairsDue())
		e.HandleTimeout(clock.Time(180 * ms))
		reps := pollAll(t, e, clock.Time(180*ms))
		require.Len(t, reps, 1)
		assert.Equal(t, 3, reps[0].b.K())
		assert.Equal(t, clock.Never, e.NextTimeout())
		assert.Equal(t, int64(1), e.Stats().ClosedTimeBound)
	})
	t.Run("span", func(t *testing.T) {
		e := fixedEncoder(t, 10, 1)
		e.AddMedia(0, 0, []byte{1}, ClassAudio, dl, true)
		e.AddMedia(0, 63, []byte{1}, ClassAudio, dl, true)
		assert.Zero(t, e.RepairsDue())
		e.AddMedia(0, 64, []byte{1}, ClassAudio, dl, true) // would span 65
		reps := pollAll(t, e, 0)
		require.Len(t, reps, 1)
		assert.Equal(t, uint64(1|1<<63), reps[0].b.Mask)
	})
	t.Run("no time left", func(t *testing.T) {
		e := fixedEncoder(t, 10, 1)
		e.SetConditions(0, Conditions{OneWay: 100 * ms})
		// Deadline 110 ms: repairs sent now arrive at 100 ms, inside the
		// 20 ms margin: not protected.
		e.AddMedia(0, 0, []byte{1}, ClassDelta, clock.Time(110*ms), false)
		e.AddMedia(0, 1, []byte{1}, ClassDelta, clock.Time(110*ms), true)
		assert.Zero(t, e.RepairsDue())
		assert.Equal(t, int64(2), e.Stats().MediaUnprotected)
	})
}

// Repairs that can no longer arrive before any member's deadline are
// dropped rather than sent.
func TestLateRepairsDropped(t *testing.T) {
	e := fixedEncoder(t, 2, 2)
	e.SetConditions(0, Conditions{OneWay: 50 * ms})
	e.AddMedia(0, 0, []byte{1}, ClassDelta, clock.Time(200*ms), false)
	e.AddMedia(0, 1, []byte{1}, ClassDelta, clock.Time(200*ms), true)
	require.Equal(t, 2, e.RepairsDue())
	assert.Empty(t, pollAll(t, e, clock.Time(151*ms)))
	assert.Equal(t, int64(2), e.Stats().RepairsDropped)
}

// Reaches is the test AddMedia applies before protecting a packet: a
// block's repairs must be able to leave the one-way delay and RepairMargin
// before its first member's deadline.
func TestReaches(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration // from now (100 ms)
		want     bool
	}{
		{"room to spare", 300 * ms, true},
		{"just in reach", 50*ms + DefaultRepairMargin + 1, true},
		{"at the bound", 50*ms + DefaultRepairMargin, false},
		{"past it", 40 * ms, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := clock.Time(100 * ms)
			dl := now.Add(tc.deadline)
			e := fixedEncoder(t, 1, 1)
			e.SetConditions(0, Conditions{OneWay: 50 * ms})
			assert.Equal(t, tc.want, e.Reaches(now, dl))
			e.AddMedia(now, 0, []byte{1}, ClassDelta, dl, true)
			if tc.want {
				assert.Equal(t, 1, e.RepairsDue(), "a block within reach is protected")
			} else {
				assert.Zero(t, e.RepairsDue(), "none beyond it")
			}
		})
	}
}

// Repairs of blocks closed together go out in turn, one of each block.
func TestRepairsRotate(t *testing.T) {
	e := fixedEncoder(t, 2, 2)
	for i := range 4 {
		e.AddMedia(0, int64(i), []byte{1}, ClassDelta, clock.Time(time.Second), false)
	}
	reps := pollAll(t, e, 0)
	require.Len(t, reps, 4)
	var got [][2]int64
	for _, r := range reps {
		got = append(got, [2]int64{r.b.Base, int64(r.b.Index)})
	}
	assert.Equal(t, [][2]int64{{0, 0}, {2, 0}, {0, 1}, {2, 1}}, got)
}

// The pending queue is bounded: the oldest block's repairs go first.
func TestPendingBounded(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{FixedK: 1, FixedM: 1, MaxPending: 3})
	require.NoError(t, err)
	for i := range 10 {
		e.AddMedia(0, int64(i), []byte{1}, ClassDelta, clock.Time(time.Second), false)
	}
	assert.Equal(t, 3, e.RepairsDue())
	assert.Equal(t, int64(7), e.Stats().RepairsDropped)
	reps := pollAll(t, e, 0)
	assert.Equal(t, int64(7), reps[0].b.Base)
}

// Oversized packets and a clean network send no repairs.
func TestUnprotected(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{MaxSymbol: 100})
	require.NoError(t, err)
	e.SetConditions(0, Conditions{Loss: 0, RTT: 200 * ms, OneWay: 100 * ms})
	for i := range 100 {
		e.AddMedia(0, int64(i), make([]byte, 50), ClassKey, clock.Time(300*ms), i%5 == 4)
	}
	e.Flush(0)
	assert.Zero(t, e.RepairsDue())
	e = fixedEncoder(t, 4, 1)
	e.AddMedia(0, 0, make([]byte, DefaultMaxSymbol+1), ClassKey, clock.Time(300*ms), false)
	assert.Equal(t, int64(1), e.Stats().MediaUnprotected)
}

// The policy-driven encoder: at RTT 200 ms and 5 % loss, 5-packet delta
// frames get 2 repairs each (the 50 % cap), audio blocks of 7 get 3: the
// least overhead meeting audio's 5e-4 target among the blocks that fit in
// the 180 ms before the time bound at 20 ms a packet ((9,3) leaves 7.6e-4,
// (8,3) 5.8e-4). The first audio block, planned before the lane knew its
// packet interval, closes on its time bound at 9 with the policy's 4.
func TestEncoderFollowsPolicy(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{})
	require.NoError(t, err)
	e.SetConditions(0, Conditions{Loss: 0.05, MeanBurst: 1, RTT: 200 * ms, OneWay: 100 * ms, ARQ: true})
	var pn int64
	var now clock.Time
	shapes := map[[3]int]int{} // class, k, m -> blocks
	for f := range 200 {
		now = clock.Time(time.Duration(f) * 20 * ms)
		e.HandleTimeout(now)
		e.AddMedia(now, pn, make([]byte, 120), ClassAudio, now.Add(300*ms), true)
		pn++
		if f%2 == 0 { // video at 25 fps-ish, 5 packets a frame
			for i := range 5 {
				e.AddMedia(now, pn, make([]byte, 1200), ClassDelta, now.Add(300*ms), i == 4)
				pn++
			}
		}
		for _, r := range pollAll(t, e, now) {
			if r.b.Index == 0 {
				cl := ClassDelta
				if bits.OnesCount64(r.b.Mask) != 5 || r.b.Mask != 0b11111 {
					cl = ClassAudio
				}
				shapes[[3]int{int(cl), r.b.K(), r.b.M}]++
			}
		}
	}
	t.Logf("shapes (class, k, m): %v", shapes)
	assert.Greater(t, shapes[[3]int{int(ClassDelta), 5, 2}], 90)
	assert.Greater(t, shapes[[3]int{int(ClassAudio), 7, 3}], 20)
	assert.Equal(t, 1, shapes[[3]int{int(ClassAudio), 9, 4}], "the first audio block")
	assert.Len(t, shapes, 3, "no other shapes")
}

// Bursty loss and frames larger than a block: the lane interleaves blocks,
// members spaced by the depth.
func TestInterleaving(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{MaxK: 32})
	require.NoError(t, err)
	e.SetConditions(0, Conditions{Loss: 0.05, MeanBurst: 3, RTT: 200 * ms, OneWay: 100 * ms})
	var pn int64
	masks := map[uint64]int{}
	for f := range 10 {
		now := clock.Time(time.Duration(f) * 33 * ms)
		for i := range 96 {
			e.AddMedia(now, pn, make([]byte, 1000), ClassKey, now.Add(300*ms), i == 95)
			pn++
		}
		for _, r := range pollAll(t, e, now) {
			if r.b.Index == 0 {
				masks[r.b.Mask]++
			}
		}
	}
	t.Logf("masks: %x", masks)
	// After the first frame has measured the frame size: three blocks
	// filled in turn, members 3 apart (18 + 14 members per slot, three slots, nine frames).
	assert.Equal(t, 27, masks[0x9249249249249])
	assert.Equal(t, 27, masks[0x9249249249])
	assert.Equal(t, 3, masks[0xffffffff], "the first frame: blocks of 32")
}
