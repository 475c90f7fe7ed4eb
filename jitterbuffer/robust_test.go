package jitterbuffer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// mappedFrame builds a frame captured at capture (sender's clock = receiver's
// here) completing after transit; Capture is mapped as capture + 40 ms.
func mappedFrame(id int64, capture clock.Time, transit time.Duration) Frame {
	done := capture.Add(transit)
	return Frame{ID: id, Capture: capture.Add(40 * time.Millisecond), Completed: done, Transit: transit}
}

// popper pops a buffer's frames as they fall due, each at its due time
// but never before the last time it was driven to.
type popper struct {
	b    *Buffer
	last clock.Time
	out  []released
}

// until pops everything due by now.
func (p *popper) until(t *testing.T, now clock.Time) {
	for {
		at := p.b.NextTimeout()
		if at > now {
			p.last = now
			return
		}
		at = clock.Max(at, p.last)
		f, ok := p.b.Pop(at)
		require.True(t, ok)
		p.out = append(p.out, released{Frame: f, at: at, offset: at.Sub(f.Capture)})
	}
}

// While a group is stalled its offset grows with real time; playout is
// clamped to Capture+MaxDelay, so on Resume the offset starts from no more
// than that. A 3 s stall with MaxDelay 0.8 s is back within 10 % of the
// pre-stall latency in E/rate + 2 s, E capped by MaxDelay (the jitter
// buffer issue's drain bound). It took until 38 s (30 s after the resume)
// when the offset resumed from the whole stall.
func TestStallResumesWithinMaxDelay(t *testing.T) {
	b := New(Config{MaxDelay: 800 * time.Millisecond, DrainRate: 0.10})
	p := &popper{b: b}
	const step = 20 * time.Millisecond
	stallAt, resumeAt := clock.Time(5*time.Second), clock.Time(8*time.Second)
	stalled := false
	for i := int64(0); i < 3000; i++ {
		c := clock.Time(time.Duration(i) * step)
		f := mappedFrame(i, c, 40*time.Millisecond)
		now := f.Completed
		if !stalled && now >= stallAt && now < resumeAt {
			p.until(t, stallAt)
			b.Group().Stall(stallAt)
			stalled = true
		}
		if stalled && now >= resumeAt {
			b.Group().Resume(resumeAt)
			stalled = false
			p.until(t, resumeAt)
		}
		if !stalled {
			p.until(t, now)
		}
		require.NoError(t, b.Push(now, f))
		if !stalled {
			p.until(t, now)
		}
	}
	var before time.Duration
	for _, r := range p.out {
		if r.at < stallAt {
			before = r.offset
		}
	}
	due := resumeAt.Add(800*time.Millisecond*10 + 2*time.Second) // E/rate + 2 s, E <= MaxDelay
	back := clock.Never
	for _, r := range p.out {
		if r.at > resumeAt && r.offset <= before+before/10 {
			back = r.at
			break
		}
	}
	t.Logf("pre-stall offset %v; back at %v (due by %v)", before, back, due)
	assert.LessOrEqual(t, back, due, "excess after a stall should drain from MaxDelay, not from the unbounded stall offset")
}

// Stats.Rate and Excess are the stream's, within its bounds: with every
// frame clamped to Capture+MinDelay, playout runs at 1 with no excess,
// whatever the group's offset under the floor still drains (an audio
// renderer following Rate would otherwise time-stretch for nothing: Rate
// read 1.03 and Excess 560 ms here).
func TestRateAndExcessWithinBounds(t *testing.T) {
	b := New(Config{MinDelay: time.Second, MaxDelay: 3 * time.Second, DrainRate: 0.03})
	p := &popper{b: b}
	const step = 20 * time.Millisecond
	var now clock.Time
	for i := int64(0); i < 3000; i++ { // 60 s
		c := clock.Time(time.Duration(i) * step)
		transit := 40 * time.Millisecond
		if c >= clock.Time(10*time.Second) && c < clock.Time(12*time.Second) {
			transit = clock.Time(12*time.Second).Sub(c) + 40*time.Millisecond // a 2 s stall
		}
		f := mappedFrame(i, c, transit)
		now = f.Completed
		p.until(t, now)
		require.NoError(t, b.Push(now, f))
		p.until(t, now)
	}
	// The stall lifted the offset to 2 s; it drained at 3 % to the 1 s
	// floor by ~45 s and has been pinned there since.
	for _, r := range p.out[len(p.out)-250:] { // the last 5 s
		require.Equal(t, time.Second, r.offset, "at %v: playout pinned at Capture+MinDelay, running at 1x", r.at)
	}
	st := b.Stats(now)
	t.Logf("at %v: offsets pinned at 1 s for 5 s; Stats.Rate %v, Excess %v", now, st.Rate, st.Excess)
	assert.Equal(t, 1.0, st.Rate, "playout speed is 1 while clamped at MinDelay")
	assert.Zero(t, st.Excess, "no excess above the bounded offset")
}

// JitterBufferTargetDelay is the target with the bounds: W3C's
// jitterBufferTargetDelay includes a minimum delay set from outside, which
// jitterBufferMinimumDelay leaves out. With MinDelay 1 s every frame is
// held about 1 s (it summed the 1 ms target before).
func TestTargetDelayWithBounds(t *testing.T) {
	b := New(Config{MinDelay: time.Second, MaxDelay: 3 * time.Second})
	p := &popper{b: b}
	for i := int64(0); i < 500; i++ {
		f := mappedFrame(i, clock.Time(time.Duration(i)*20*time.Millisecond), 40*time.Millisecond)
		p.until(t, f.Completed)
		require.NoError(t, b.Push(f.Completed, f))
		p.until(t, f.Completed)
	}
	p.until(t, clock.Time(30*time.Second))
	st := b.Stats(clock.Time(20 * time.Second))
	n := time.Duration(st.FramesReleased)
	t.Logf("per frame: delay %v target %v minimum %v", st.JitterBufferDelay/n, st.JitterBufferTargetDelay/n, st.JitterBufferMinimumDelay/n)
	// Frames wait 1 s (capture+40ms+1s - completion at capture+40ms): the
	// target with the bounds is 1 s.
	assert.InDelta(t, float64(time.Second), float64(st.JitterBufferTargetDelay/n), float64(10*time.Millisecond))
	assert.Less(t, st.JitterBufferMinimumDelay/n, 10*time.Millisecond, "the network's need, bounds aside")
}

// Flush releases at now: the frame's time in the buffer ends then, though
// its Playout (and Offset) say when it was due. Discard counts nothing.
func TestFlushReleasesAtNow(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: time.Second, Video: true})
	require.NoError(t, b.Push(0, Frame{ID: 0, Capture: 0, Completed: 0, Key: true}))
	require.NoError(t, b.Push(0, Frame{ID: 1, Capture: 0, Completed: 0}))
	at := clock.Time(200 * time.Millisecond)
	f, ok := b.Flush(at) // the stream ends: out at once
	require.True(t, ok)
	assert.Equal(t, clock.Time(time.Second), f.Playout, "when it was due")
	st := b.Stats(at)
	assert.Equal(t, 200*time.Millisecond, st.JitterBufferDelay, "completed at 0, released at 0.2 s")
	assert.Equal(t, time.Second, st.Offset)
	assert.Equal(t, int64(1), st.FramesReleased)
	assert.Equal(t, int64(1), st.FramesReleasedEarly, "due at 1 s")

	f, ok = b.Discard()
	require.True(t, ok)
	assert.Equal(t, int64(1), f.ID)
	assert.Equal(t, st, b.Stats(at), "nothing counted")
	_, ok = b.Discard()
	assert.False(t, ok)
}

// The group plays at the largest offset its members want, but a member
// whose last frame came memberIdle ago, or that was Reset, no longer
// counts: audio kept video's 200 ms jitter target for good after video
// ended.
func TestEndedStreamLeavesTheGroupOffset(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprint("reset=", reset), func(t *testing.T) {
			g := NewGroup(0.10)
			a, v := New(Config{}), New(Config{})
			g.Join(a)
			g.Join(v)
			jit := uniform(11, 200*time.Millisecond)
			pa, pv := &popper{b: a}, &popper{b: v}
			var lastV clock.Time
			offsetAt := func(at clock.Time) time.Duration {
				var off time.Duration
				for _, r := range pa.out {
					if r.at <= at {
						off = r.offset
					}
				}
				return off
			}
			for i := int64(0); i < 3000; i++ { // 60 s of audio
				c := clock.Time(time.Duration(i) * 20 * time.Millisecond)
				fa := mappedFrame(i, c, 40*time.Millisecond)
				if i < 500 { // 10 s of video, then the stream ends
					fv := mappedFrame(i, c, 40*time.Millisecond+jit(0, c))
					fv.Completed = clock.Max(fv.Completed, lastV)
					fv.Transit = fv.Completed.Sub(c)
					lastV = fv.Completed
					pv.until(t, fv.Completed)
					require.NoError(t, v.Push(fv.Completed, fv))
				}
				if i == 500 && reset {
					for {
						if _, ok := v.Discard(); !ok {
							break
						}
					}
					v.Reset()
				}
				pa.until(t, fa.Completed)
				require.NoError(t, a.Push(fa.Completed, fa))
				pa.until(t, fa.Completed)
			}
			assert.Greater(t, offsetAt(clock.Time(10*time.Second)), 150*time.Millisecond, "video's jitter holds audio back")
			// Audio alone: 40 ms mapped and a 1 ms target, reached at
			// 10 % within 2 s of memberIdle.
			last := pa.out[len(pa.out)-1].offset
			assert.Less(t, last, 45*time.Millisecond, "a stream gone for 50 s no longer holds the group's offset")
		})
	}
}

// A frame after a stall stays out of the jitter quantile while above the
// target; a stall is a gap of 500 ms, or of 4 of the stream's own mean
// intervals if longer. With 500 ms alone, every frame of a 1 fps stream
// (a screen share, slides) came "after a stall", the target never learnt
// the jitter, and 79 % of frames were late.
func TestLowFrameRateLearnsJitter(t *testing.T) {
	b := New(Config{Video: true})
	jit := uniform(21, 200*time.Millisecond)
	p := &popper{b: b}
	var last clock.Time
	for i := int64(0); i < 1200; i++ { // 20 min at 1 fps
		c := clock.Time(time.Duration(i) * time.Second)
		f := mappedFrame(i, c, 40*time.Millisecond+jit(0, c))
		f.Key = i%10 == 0
		f.Completed = clock.Max(f.Completed, last)
		f.Transit = f.Completed.Sub(c)
		last = f.Completed
		p.until(t, f.Completed)
		require.NoError(t, b.Push(f.Completed, f))
		p.until(t, f.Completed)
	}
	late := 0
	for _, r := range p.out[100:] {
		if r.Late {
			late++
		}
	}
	st := b.Stats(last)
	share := float64(late) / float64(len(p.out)-100)
	t.Logf("late share %.3f, target %v, FramesAfterStall %d of %d", share, st.Target, st.FramesAfterStall, len(p.out))
	// With no stall rule the same run is 10 % late (the 2 s Window holds
	// about 2 samples at 1 fps).
	assert.Less(t, share, 0.12, "a 1 fps stream's jitter reaches the quantile")
}

// An undecodable frame is not rendered: the picture stays frozen until
// the next key frame (W3C counts freezes between rendered frames; the
// issue: "an unrecovered frame freezes until a key frame"). A 30 fps
// stream loses frame 10 and nothing decodes until key frame 100: one
// freeze of 3 s (the stats showed none).
func TestUndecodableFramesAreAFreeze(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond, Video: true})
	const iv = 33 * time.Millisecond
	for i := int64(0); i < 150; i++ {
		if i == 10 {
			continue // lost
		}
		c := clock.Time(time.Duration(i) * iv)
		require.NoError(t, b.Push(c, Frame{ID: i, Capture: c, Completed: c, Key: i == 0 || i == 100}))
		for {
			if _, ok := b.Pop(c.Add(100 * time.Millisecond)); !ok {
				break
			}
		}
	}
	st := b.Stats(clock.Time(10 * time.Second))
	t.Logf("FramesUndecodable %d, FreezeCount %d, TotalFreezesDuration %v", st.FramesUndecodable, st.FreezeCount, st.TotalFreezesDuration)
	require.Equal(t, int64(89), st.FramesUndecodable)
	assert.Equal(t, int64(1), st.FreezeCount, "frames 9 -> 100 rendered 91 intervals apart: a freeze")
	assert.Equal(t, 91*iv, st.TotalFreezesDuration)
}

// PassThrough releases in completion order: an id a later frame's
// LostBefore counted may still come. It is released Reordered and taken
// back from FramesSkipped, which then counts only the frames that never
// came (it counted 2 here, with all 3 of the first frames delivered).
func TestPassThroughTakesBackReorderedFrames(t *testing.T) {
	b := New(Config{Mode: PassThrough})
	b.Expect(0)
	var lost []int64
	var reordered []bool
	for _, id := range []int64{2, 1, 0, 5, 3} { // 4 never comes
		require.NoError(t, b.Push(0, Frame{ID: id}))
		f, ok := b.Pop(0)
		require.True(t, ok)
		lost, reordered = append(lost, f.LostBefore), append(reordered, f.Reordered)
	}
	assert.Equal(t, []int64{2, 0, 0, 2, 0}, lost, "provisional: 0 and 1 before 2, then 3 and 4 before 5")
	assert.Equal(t, []bool{false, true, true, false, true}, reordered)
	assert.Equal(t, int64(1), b.Stats(0).FramesSkipped, "only 4 never came")

	// A duplicate is refused, whether released already or still held
	// (it was once released twice); an id older than the memory takes
	// nothing back.
	assert.ErrorIs(t, b.Push(0, Frame{ID: 1}), ErrDuplicate)
	require.NoError(t, b.Push(0, Frame{ID: 6}))
	assert.ErrorIs(t, b.Push(0, Frame{ID: 6}), ErrDuplicate)
	f, _ := b.Pop(0)
	assert.Equal(t, int64(6), f.ID)
	_, ok := b.Pop(0)
	assert.False(t, ok, "released once")
	assert.ErrorIs(t, b.Push(0, Frame{ID: 6}), ErrDuplicate)
	require.NoError(t, b.Push(0, Frame{ID: 1000}))
	_, _ = b.Pop(0)
	require.NoError(t, b.Push(0, Frame{ID: 4})) // 996 ids behind
	f, _ = b.Pop(0)
	assert.False(t, f.Reordered)
	assert.Equal(t, int64(1+993), b.Stats(0).FramesSkipped)
}

// Any int64 is a frame id: order holds after a negative id (next once
// used -1 for "nothing released yet") and after math.MaxInt64 (ID+1
// wrapped).
func TestOrderAtTheEndsOfTheIDRange(t *testing.T) {
	b := New(Config{Mode: Fixed})
	require.NoError(t, b.Push(0, Frame{ID: -5}))
	_, ok := b.Pop(0)
	require.True(t, ok)
	assert.ErrorIs(t, b.Push(0, Frame{ID: -10}), ErrLate, "frame -10 comes before -5, already released")

	// Likewise ID+1 overflows at MaxInt64: next wraps to MinInt64 and is
	// ignored by max, so order is no longer enforced.
	b = New(Config{Mode: Fixed})
	require.NoError(t, b.Push(0, Frame{ID: 3}))
	_, ok = b.Pop(0)
	require.True(t, ok)
	require.NoError(t, b.Push(0, Frame{ID: math.MaxInt64}))
	_, ok = b.Pop(0)
	require.True(t, ok)
	assert.ErrorIs(t, b.Push(0, Frame{ID: 5}), ErrLate, "frame 5 comes before MaxInt64, already released")
}

// The freeze rule's window holds the last 30 intervals between rendered
// frames, whatever was released meanwhile without being counted (SetVideo
// off, as while a stream's kind is unknown). Its ring was indexed by the
// frames released, so a live slot was overwritten without leaving the sum.
func TestFreezeWindowAfterSetVideo(t *testing.T) {
	b := New(Config{Mode: Fixed, Video: true})
	at := clock.Time(0)
	id := int64(0)
	rel := func(gap time.Duration) {
		at = at.Add(gap)
		require.NoError(t, b.Push(at, Frame{ID: id, Capture: at, Completed: at, Key: true}))
		id++
		_, ok := b.Pop(at)
		require.True(t, ok)
	}
	rel(0)
	for range 5 {
		rel(20 * time.Millisecond)
	}
	b.SetVideo(false)
	for range 28 {
		rel(33 * time.Millisecond)
	}
	b.SetVideo(true)
	for range 40 {
		rel(33 * time.Millisecond)
	}
	var ring time.Duration
	for _, d := range b.intervals[:b.nIntervals] {
		ring += d
	}
	assert.Equal(t, freezeWindow, b.nIntervals)
	assert.Equal(t, ring, b.sumInterval, "the sum is the window's")
	assert.Equal(t, 30*33*time.Millisecond, b.sumInterval, "the last 30 intervals were all 33 ms")
	// A 183 ms gap is a freeze (>= max(3 x 33, 33 + 150) ms), 182 not.
	rel(182 * time.Millisecond)
	assert.Zero(t, b.Stats(at).FreezeCount)
	for range 30 {
		rel(33 * time.Millisecond)
	}
	rel(183 * time.Millisecond)
	assert.Equal(t, int64(1), b.Stats(at).FreezeCount)
}

// Reset forgets the frames the old stream noted gone (NoteGone): a gap in
// the new stream at an id the old one noted gone and droppable was taken
// for a known droppable gap, so the frames after a lost reference were
// not marked Undecodable and no key frame was asked for.
func TestResetForgetsGoneFrames(t *testing.T) {
	b := New(Config{Mode: Fixed, Video: true})
	b.Expect(0)
	for id := int64(0); id < 8; id++ {
		if id == 5 {
			b.NoteGone(5, true) // old stream: 5 was droppable, given up
			continue
		}
		require.NoError(t, b.Push(0, Frame{ID: id, Key: id == 0}))
		_, ok := b.Flush(0)
		require.True(t, ok)
	}
	b.Reset() // a new stream on the same id, numbered from 0 again
	b.Expect(0)
	for _, id := range []int64{0, 1, 2, 3, 4, 6} { // new stream: 5 (a reference) lost
		require.NoError(t, b.Push(0, Frame{ID: id, Key: id == 0}))
	}
	var six Frame
	for {
		f, ok := b.Flush(0)
		if !ok {
			break
		}
		six = f
	}
	require.Equal(t, int64(6), six.ID)
	assert.True(t, six.Undecodable, "frame 6 follows an unknown gap in the new stream")
	assert.True(t, six.NeedKey)
}

// An audio underrun is reported as concealment: frames missing (their
// share of the capture gap), and a frame completing after its playout time
// (from then until it plays). Consecutive concealed time is one event.
func TestAudioConcealment(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond})
	const iv = 20 * time.Millisecond
	at := func(id int64) clock.Time { return clock.Time(time.Duration(id) * iv) }
	push := func(id int64, late time.Duration) {
		c := at(id)
		require.NoError(t, b.Push(c, Frame{ID: id, Capture: c, Completed: c.Add(100*time.Millisecond + late)}))
	}
	pop := func(now clock.Time) {
		for {
			if _, ok := b.Pop(now); !ok {
				return
			}
		}
	}
	for id := range int64(10) {
		push(id, 0)
	}
	pop(at(10).Add(100 * time.Millisecond))
	assert.Zero(t, b.Stats(0).ConcealmentEvents, "all on time")

	push(12, 0) // 10 and 11 lost
	pop(at(12).Add(100 * time.Millisecond))
	push(13, 30*time.Millisecond) // completes 30 ms after its playout time
	pop(at(13).Add(130 * time.Millisecond))
	st := b.Stats(0)
	assert.Equal(t, int64(2), st.ConcealmentEvents)
	assert.Equal(t, 2*iv+30*time.Millisecond, st.ConcealedDuration)

	v := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond, Video: true})
	require.NoError(t, v.Push(0, Frame{ID: 0, Key: true, Completed: clock.Time(time.Second)}))
	_, ok := v.Pop(clock.Time(time.Second))
	require.True(t, ok)
	assert.Zero(t, v.Stats(0).ConcealmentEvents, "video freezes instead")
}

// jitterBufferDelay runs from a frame's first packet (W3C: from the first
// packet received to the frame's exit), not from its completion.
func TestJitterBufferDelayFromFirstPacket(t *testing.T) {
	b := New(Config{Mode: Fixed, Delay: 100 * time.Millisecond})
	first, done := clock.Time(10*time.Millisecond), clock.Time(40*time.Millisecond)
	require.NoError(t, b.Push(done, Frame{ID: 0, Capture: 0, FirstArrival: first, Completed: done}))
	require.NoError(t, b.Push(done, Frame{ID: 1, Capture: 0, Completed: done})) // first packet unknown
	for {
		if _, ok := b.Pop(clock.Time(100 * time.Millisecond)); !ok {
			break
		}
	}
	assert.Equal(t, 90*time.Millisecond+60*time.Millisecond, b.Stats(0).JitterBufferDelay)
}

// The W3C totals never fall: a now before the last release (a clock
// stepped back) counts as no time. A Reset starts the render intervals
// again: a new stream on the id does not count the time since the old
// one's last frame as its pause. IsGone holds at the end of the id range.
func TestRenderStatsClockAndReset(t *testing.T) {
	const ms = time.Millisecond
	b := New(Config{Mode: Fixed, Delay: 100 * ms, Video: true})
	for i, at := range []time.Duration{500 * ms, 140 * ms, 170 * ms} {
		require.NoError(t, b.Push(0, Frame{ID: int64(i), Key: true}))
		_, ok := b.Pop(clock.Time(at))
		require.True(t, ok)
	}
	st := b.Stats(0)
	assert.Equal(t, time.Duration(0), st.TotalInterFrameDelay, "500 ms, then 140 and 170: both read as 500")
	assert.Zero(t, st.TotalSquaredInterFrameDelay)
	require.NoError(t, b.Push(0, Frame{ID: 3, Key: true}))
	_, ok := b.Pop(clock.Time(540 * ms))
	require.True(t, ok)
	assert.Equal(t, 40*ms, b.Stats(0).TotalInterFrameDelay)

	b.Reset()
	for i := range 3 {
		require.NoError(t, b.Push(0, Frame{ID: int64(i), Key: true, Capture: clock.Time(60*time.Second - 100*ms)}))
		_, ok := b.Pop(clock.Time(60*time.Second + time.Duration(i)*33*ms))
		require.True(t, ok)
	}
	st = b.Stats(0)
	assert.Zero(t, st.PauseCount, "60 s between two streams is neither's pause")
	assert.Equal(t, 40*ms+66*ms, st.TotalInterFrameDelay)
	assert.Equal(t, int64(7), st.FramesReleased, "counters are kept")

	assert.False(t, b.IsGone(math.MaxInt64))
	b.NoteGone(math.MaxInt64, false)
	assert.True(t, b.IsGone(math.MaxInt64))
	assert.False(t, b.IsGone(math.MinInt64))
}

// Frames known gone are kept as runs: a gap is known when the runs cover
// it, however long (a run of 500 is one of GoneMemory's 32), and known
// droppable only when every run over it is.
func TestGoneRuns(t *testing.T) {
	b := New(Config{Mode: Fixed, Video: true})
	b.NoteGoneRange(10, 509, true)
	b.NoteGone(510, false)
	b.NoteGoneRange(600, 599, true) // empty: ignored
	for _, tc := range []struct {
		from, to         int64
		known, droppable bool
	}{
		{10, 510, true, true},
		{10, 511, true, false},
		{9, 20, false, false},
		{300, 400, true, true},
		{505, 512, false, false},
		{600, 601, false, false},
	} {
		assert.Equal(t, tc.known, b.gapKnown(tc.from, tc.to, false), "%d-%d", tc.from, tc.to)
		assert.Equal(t, tc.droppable, b.gapKnown(tc.from, tc.to, true), "%d-%d droppable", tc.from, tc.to)
	}
	assert.True(t, b.IsGone(10) && b.IsGone(509) && b.IsGone(510))
	assert.False(t, b.IsGone(9) || b.IsGone(511) || b.IsGone(600))
	for i := range int64(GoneMemory) { // the oldest run is forgotten
		b.NoteGone(1000+i, true)
	}
	assert.False(t, b.IsGone(300))
}

// A buffer that leaves its group and plays on keeps the group's offset
// and drains from it at the rate: its new group once took its own target
// at once, and about 300 ms of audio came out together.
func TestLeaveDrainsAtTheRate(t *testing.T) {
	const ms = time.Millisecond
	g := NewGroup(0.10)
	a, v := New(Config{}), New(Config{Video: true})
	g.Join(a)
	g.Join(v)
	pa, pv := &popper{b: a}, &popper{b: v}
	for i := range 500 { // 20 ms frames, 10 s
		capture := clock.Time(time.Duration(i) * 20 * ms)
		done := capture.Add(40 * ms)
		pa.until(t, done)
		pv.until(t, done)
		if i == 250 {
			g.Leave(a)
		}
		require.NoError(t, a.Push(done, Frame{ID: int64(i), Capture: capture, Completed: done, Transit: 40 * ms}))
		if i < 250 { // the video needs 300 ms more, and ends
			v.NoteRecovery(done, 300*ms)
			require.NoError(t, v.Push(done, Frame{ID: int64(i), Capture: capture, Completed: done, Transit: 40 * ms, Key: i == 0}))
		}
		pa.until(t, done)
	}
	pa.until(t, clock.Never-1)
	require.Len(t, pa.out, 500)
	fell := false
	for k := 1; k < len(pa.out); k++ {
		prev, r := pa.out[k-1], pa.out[k]
		drop := prev.offset - r.offset
		allowed := time.Duration(0.10*float64(r.at.Sub(prev.at))) + ms
		assert.LessOrEqual(t, drop, allowed, "frame %d", r.ID)
		fell = fell || drop > 0
	}
	assert.True(t, fell, "the offset the video needed drains after the leave")
}

// pushFrames pushes n frames into b, 33 ms apart from capture 0: frame i,
// captured at c, completes at done (or with the frame before it, if that
// is later), reads transit (0: its completion less c) and is a key frame
// if key says so; Capture is c + 40 ms. Frames are popped as they fall due, and the rest at the end.
// It returns the releases and the last completion.
func pushFrames(t *testing.T, b *Buffer, n int64, frame func(i int64, c clock.Time) (done clock.Time, transit time.Duration, key bool)) ([]released, clock.Time) {
	p := &popper{b: b}
	var now clock.Time
	for i := range n {
		c := clock.Time(time.Duration(i) * 33 * time.Millisecond)
		done, transit, key := frame(i, c)
		now = clock.Max(done, now)
		if transit == 0 {
			transit = now.Sub(c)
		}
		p.until(t, now)
		require.NoError(t, b.Push(now, Frame{ID: i, Capture: c.Add(40 * time.Millisecond), Completed: now, Transit: transit, Key: key}))
		p.until(t, now)
	}
	p.until(t, clock.Never-1)
	return p.out, now
}

// TestKeyAllowanceHostileTimes: key frames whose transits, and so their
// capture times read on the receiver's clock, jump anywhere (as a peer's
// garbage timestamps may make them), between runs of periodic ones, never
// panic, release every frame in order, and release each within MaxDelay
// of its capture. (Before key frames' transits were bounded by the
// quantiles' span, a key frame with a transit of years set a target whose
// playout time overflowed to Never: 57 frames were never released. A frame
// whose capture time saturates to Never read as a stalled group: every
// frame after it was held until Push failed with ErrFull.)
func TestKeyAllowanceHostileTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 1))
	b := New(Config{Video: true, MaxDelay: 800 * time.Millisecond})
	out, _ := pushFrames(t, b, 20000, func(i int64, c clock.Time) (clock.Time, time.Duration, bool) {
		transit := 40*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
		key := i%60 == 0
		if key {
			transit += 100 * time.Millisecond
		}
		if (i/600)%2 == 1 && rng.IntN(10) == 0 {
			// Garbage: hours either way, or the extremes.
			switch rng.IntN(4) {
			case 0:
				transit = time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour
			case 1:
				transit = math.MaxInt64 / 2
			case 2:
				transit = math.MinInt64 / 2
			default:
				transit = math.MinInt64 + 1 // a capture time that saturates
			}
			key = rng.IntN(2) == 0
		}
		return c.Add(40 * time.Millisecond), transit, key
	})
	require.Len(t, out, 20000)
	for i, r := range out {
		require.Equal(t, int64(i), r.ID)
		require.LessOrEqual(t, r.at, r.Capture.Add(800*time.Millisecond), "frame %d released", i)
	}
}

// TestKeyGarbageTransitKeepsJitterLearnt: one key frame whose transit
// reads an hour negative (garbage timestamps) must not leave the frames
// after it out of the jitter quantile: jitter that rises later is still
// learnt. (When its transit set how long frames counted as sent behind a
// key frame, every frame for an hour did: with no key frame after it, the
// target stayed at 10 ms under 0-80 ms of jitter and 233 of the last 880
// frames played late.)
func TestKeyGarbageTransitKeepsJitterLearnt(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 1))
	b := New(Config{Video: true, MaxDelay: 800 * time.Millisecond})
	const n = 3000 // 99 s
	out, now := pushFrames(t, b, n, func(i int64, c clock.Time) (clock.Time, time.Duration, bool) {
		jitter := 10 * time.Millisecond
		if c >= clock.Time(60*time.Second) {
			jitter = 80 * time.Millisecond
		}
		var transit time.Duration // completion less capture
		if i == 900 {
			transit = -time.Hour
		}
		// No key frame after it (as when they come on request).
		return c.Add(40*time.Millisecond + time.Duration(rng.Int64N(int64(jitter)))), transit, i%60 == 0 && i <= 900
	})
	require.Len(t, out, n)
	late, total := 0, 0
	for _, r := range out {
		if r.Capture >= clock.Time(70*time.Second) {
			total++
			if r.Late {
				late++
			}
		}
	}
	assert.Less(t, float64(late)/float64(total), 0.03, "%d of %d late", late, total)
	// The 0.99 quantile of 0-80 ms.
	assert.Greater(t, b.Stats(now).Target, 60*time.Millisecond, "target after the jitter rose")
}
