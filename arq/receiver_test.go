package arq

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

const ms = time.Millisecond

func at(d time.Duration) clock.Time { return clock.Time(d) }

// testRTT is one 100 ms sample: smoothed 100 ms, variation 50 ms, minimum
// 100 ms. So with the default config: repeats every 100/6 ms, re-NACKs
// 155 ms after a round began (100 + min(200, 50) + the 5 ms allowance),
// give-up when now + 100 ms passes the deadline, FEC holds end 150 ms
// before it.
func testRTT() *RTT {
	var r RTT
	r.Add(0, 100*ms)
	return &r
}

func newRx(t *testing.T, cfg ReceiverConfig) *Receiver {
	t.Helper()
	r, err := NewReceiver(cfg)
	require.NoError(t, err)
	r.SetRTT(testRTT())
	return r
}

// pollAt polls at each millisecond from..to and returns when each packet
// number was requested.
func pollRange(r *Receiver, from, to time.Duration) map[int64][]time.Duration {
	out := map[int64][]time.Duration{}
	var dst []int64
	for d := from; d <= to; d += ms {
		dst, _ = r.PollNACK(at(d), dst[:0])
		for _, pn := range dst {
			out[pn] = append(out[pn], d)
		}
	}
	return out
}

func TestReceiverConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReceiverConfig
		ok   bool
	}{
		{"zero", ReceiverConfig{}, true},
		{"no repeats", ReceiverConfig{Repeats: -1}, true},
		{"negative max missing", ReceiverConfig{MaxMissing: -1}, false},
		{"huge max missing", ReceiverConfig{MaxMissing: 1 << 20}, false},
		{"min above max", ReceiverConfig{MinReorder: 50 * ms, MaxReorder: 10 * ms}, false},
		{"initial out of bounds", ReceiverConfig{InitialReorder: time.Second}, false},
		{"repeats", ReceiverConfig{Repeats: 9}, false},
		{"max nacks", ReceiverConfig{MaxNACKs: 256}, false},
		{"min only: the rest follows", ReceiverConfig{MinReorder: 200 * ms}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReceiver(tt.cfg)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.True(t, errors.Is(err, ErrInvalidConfig), "%v", err)
			}
		})
	}
}

func TestReceiverGapDetection(t *testing.T) {
	never := clock.Never
	dl := at(time.Second)
	tests := []struct {
		name    string
		arrive  []int64 // one per millisecond from t=0
		nonRtx  []bool  // optional: which are not media
		want    []int64 // NACKed by t = 100 ms (first rounds only)
		missing int
	}{
		{"in order", []int64{0, 1, 2, 3}, nil, nil, 0},
		{"one gap", []int64{0, 1, 3}, nil, []int64{2}, 1},
		{"two gaps", []int64{0, 2, 5}, nil, []int64{1, 3, 4}, 3},
		{"reordered within the allowance", []int64{0, 2, 1, 3}, nil, nil, 0},
		{"starts mid-stream", []int64{100, 101, 103}, nil, []int64{102}, 1},
		{"before the first: not a gap", []int64{100, 99, 101}, nil, nil, 0},
		{"duplicates", []int64{0, 0, 2, 2}, nil, []int64{1}, 1},
		{"non-media fills the gap", []int64{0, 2, 1}, []bool{false, false, true}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, ReceiverConfig{Repeats: -1})
			for i, pn := range tt.arrive {
				d := dl
				if tt.nonRtx != nil && tt.nonRtx[i] {
					d = never
				}
				r.OnPacket(at(time.Duration(i)*ms), pn, d)
			}
			got := pollRange(r, 0, 100*ms)
			var pns []int64
			for pn := int64(0); pn < 200; pn++ {
				if len(got[pn]) > 0 {
					pns = append(pns, pn)
					assert.Len(t, got[pn], 1, "one round by 100 ms for %d", pn)
				}
			}
			assert.Equal(t, tt.want, pns)
			assert.Equal(t, tt.missing, r.Stats().Missing)
		})
	}
}

// TestReceiverExpect: with the first packet number known, a loss before
// the first arrival is a gap like any other.
func TestReceiverExpect(t *testing.T) {
	dl := at(time.Second)
	tests := []struct {
		name   string
		expect int64 // -1: Expect not called
		late   bool  // Expect called after the first packet: no effect
		arrive []int64
		want   []int64
	}{
		{"unknown start", -1, false, []int64{2, 3}, nil},
		{"start at 0", 0, false, []int64{2, 3}, []int64{0, 1}},
		{"start at 0, nothing lost", 0, false, []int64{0, 1, 2}, nil},
		{"start elsewhere", 10, false, []int64{12}, []int64{10, 11}},
		{"after the first packet: ignored", 0, true, []int64{2, 3}, nil},
		{"invalid start: ignored", -5, false, []int64{2, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, ReceiverConfig{Repeats: -1})
			if tt.expect != -1 && !tt.late {
				r.Expect(0, tt.expect)
			}
			for i, pn := range tt.arrive {
				r.OnPacket(at(time.Duration(i)*ms), pn, dl)
				if i == 0 && tt.late {
					r.Expect(at(time.Duration(i)*ms), tt.expect)
				}
			}
			got := pollRange(r, 0, 100*ms)
			var pns []int64
			for pn := int64(0); pn < 100; pn++ {
				if len(got[pn]) > 0 {
					pns = append(pns, pn)
				}
			}
			assert.Equal(t, tt.want, pns)
			assert.Equal(t, len(tt.want), r.Stats().Missing)
		})
	}
}

func TestReceiverTiming(t *testing.T) {
	// pn 2 goes missing when 3 arrives at t=2 ms; deadline as given.
	tests := []struct {
		name     string
		deadline time.Duration
		cfg      ReceiverConfig
		want     []time.Duration // when 2 was requested, polling every ms to 1 s
		gaveUp   int64
		retries  int64
	}{
		// The last round comes early, at the last moment a retransmission
		// can still arrive: deadline - min RTT (100 ms) - the variation or
		// the allowance - lastChanceMargin (10 ms).
		{"first after the allowance, then re-NACK once per RTT and margins", time.Second, ReceiverConfig{Repeats: -1},
			[]time.Duration{7 * ms, 162 * ms, 317 * ms, 472 * ms, 627 * ms, 782 * ms, 887 * ms}, 1, 0},
		{"repeats 5 ms apart", 400 * ms, ReceiverConfig{},
			[]time.Duration{7 * ms, 12 * ms, 17 * ms, 162 * ms, 167 * ms, 172 * ms, 267 * ms, 272 * ms, 277 * ms}, 1, 0},
		{"re-NACK early so the last round still fits", 300 * ms, ReceiverConfig{Repeats: -1},
			[]time.Duration{7 * ms, 140 * ms}, 1, 0},
		{"hopeless at once", 50 * ms, ReceiverConfig{Repeats: -1}, nil, 1, 0},
		{"waiting would leave no time: sooner", 152 * ms, ReceiverConfig{Repeats: -1, InitialReorder: 20 * ms},
			[]time.Duration{2 * ms}, 1, 0},
		{"max rounds", 10 * time.Second, ReceiverConfig{Repeats: -1, MaxNACKs: 2},
			[]time.Duration{7 * ms, 162 * ms}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, tt.cfg)
			d := at(tt.deadline)
			r.OnPacket(0, 0, d)
			r.OnPacket(at(ms), 1, d)
			r.OnPacket(at(2*ms), 3, d)
			got := pollRange(r, 0, time.Second)
			assert.Equal(t, tt.want, got[2])
			s := r.Stats()
			assert.Equal(t, tt.gaveUp, s.GaveUp, "gave up")
			assert.Equal(t, tt.retries, s.GaveUpRetries, "gave up after max rounds")
			assert.Equal(t, 0, s.Missing)
		})
	}
}

// TestReceiverReNACKInterval: with a steady RTT the re-NACK waits the
// smoothed RTT + 4 x its variation + the allowance, RFC 6298's margin, so
// a retransmission held up in a queue is not requested twice.
func TestReceiverReNACKInterval(t *testing.T) {
	var rtt RTT
	for i := range 6 { // variation 50 ms x (3/4)^5 = 11.865234375 ms
		rtt.Add(clock.Time(i), 100*ms)
	}
	require.Equal(t, 11865234*time.Nanosecond, rtt.Variation())
	r, err := NewReceiver(ReceiverConfig{Repeats: -1})
	require.NoError(t, err)
	r.SetRTT(&rtt)
	d := at(time.Second)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 1, d)
	r.OnPacket(at(2*ms), 3, d)
	got := pollRange(r, 0, 400*ms)
	// First NACK at 7 ms (gap at 2 ms + 5 ms allowance); re-NACKs every
	// 100 + 4 x 11.87 + 5 = 152.5 ms after, polled at 160 and 313 ms
	// (2 x would have re-NACKed at 131 ms).
	require.NotEmpty(t, got[2])
	assert.Equal(t, []time.Duration{7 * ms, 160 * ms, 313 * ms}, got[2])
}

func TestReceiverNextTimeout(t *testing.T) {
	r := newRx(t, ReceiverConfig{})
	assert.Equal(t, clock.Never, r.NextTimeout())
	r.OnPacket(0, 0, at(time.Second))
	r.OnPacket(at(2*ms), 3, at(time.Second))
	assert.Equal(t, at(7*ms), r.NextTimeout(), "after the allowance")
	pns, kf := r.PollNACK(at(7*ms), nil)
	assert.Equal(t, []int64{1, 2}, pns)
	assert.False(t, kf)
	assert.Equal(t, at(12*ms), r.NextTimeout(), "first repeat, 5 ms on")
	// Driving by NextTimeout alone gives the same requests as polling every ms.
	var times []clock.Time
	for now := r.NextTimeout(); now < at(time.Second); now = r.NextTimeout() {
		pns, _ = r.PollNACK(now, pns[:0])
		if len(pns) > 0 {
			times = append(times, now)
		}
	}
	// Rounds at 7, 162, ..., 782 ms, each repeated twice 5 ms apart; the
	// next at 937 ms would leave a retransmission no time, so the last
	// comes early, at 887 ms (deadline - min RTT - variation), repeated at
	// 892 and 897 ms (still before deadline - min RTT).
	assert.Len(t, times, 20)
	st := r.Stats()
	assert.Equal(t, int64(2), st.PacketsNACKed)
	assert.Equal(t, int64(21), st.NACKCount)
	assert.Equal(t, int64(42), st.NACKRequests)
	assert.Equal(t, int64(28), st.Repeats)
	assert.Equal(t, int64(12), st.ReNACKs)
	assert.Equal(t, int64(2), st.GaveUp)
	assert.Equal(t, clock.Never, r.NextTimeout())
}

func TestReceiverForgetAndRecovered(t *testing.T) {
	r := newRx(t, ReceiverConfig{Repeats: -1})
	d := at(time.Second)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 10, d) // 1..9 missing
	r.Forget(at(ms), 2, 4)
	r.Recovered(at(ms), 6)
	r.Forget(at(ms), 11, 15) // not seen yet, from the next expected: never listed
	r.Forget(at(ms), 20, 25) // wholly ahead: not remembered
	r.Forget(at(ms), 5, 3)   // empty range
	r.OnPacket(at(2*ms), 30, d)
	pns, _ := r.PollNACK(at(20*ms), nil)
	assert.Equal(t, []int64{1, 5, 7, 8, 9, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29}, pns)
	s := r.Stats()
	assert.Equal(t, int64(3), s.Forgotten)
	assert.Equal(t, int64(1), s.RecoveredByFEC)
	// A late original of a forgotten packet is not a reordering sample.
	r.OnPacket(at(30*ms), 3, d)
	assert.Equal(t, int64(1), r.Stats().LateArrivals)
	assert.Equal(t, DefaultInitialReorder, r.ReorderAllowance())
}

func TestReceiverFECHold(t *testing.T) {
	tests := []struct {
		name     string
		until    time.Duration // what the hold function says for pn 2; 0: no hold
		recover  time.Duration // when FEC rebuilds it; 0: never
		deadline time.Duration
		want     []time.Duration
		held     int64
	}{
		{"no hold", 0, 0, time.Second, []time.Duration{7 * ms}, 0},
		{"hold until the block can complete", 40 * ms, 0, time.Second, []time.Duration{40 * ms}, 1},
		{"hold ending before the allowance", 4 * ms, 0, time.Second, []time.Duration{7 * ms}, 0},
		{"bounded by the deadline", 10 * time.Second, 0, 400 * ms, []time.Duration{250 * ms}, 1},
		{"recovered while held: never NACKed", 40 * ms, 30 * ms, time.Second, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, ReceiverConfig{Repeats: -1, MaxNACKs: 1})
			calls := 0
			if tt.until > 0 {
				r.SetHoldFunc(func(pn int64) clock.Time {
					calls++
					require.Equal(t, int64(2), pn)
					return at(tt.until)
				})
			}
			d := at(tt.deadline)
			r.OnPacket(0, 0, d)
			r.OnPacket(at(ms), 1, d)
			r.OnPacket(at(2*ms), 3, d)
			var got []time.Duration
			var dst []int64
			for now := 0 * ms; now < time.Second; now += ms {
				if tt.recover > 0 && now == tt.recover {
					r.Recovered(at(now), 2)
				}
				dst, _ = r.PollNACK(at(now), dst[:0])
				if len(dst) > 0 {
					got = append(got, now)
				}
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.held, r.Stats().HeldForFEC)
			assert.LessOrEqual(t, calls, 2, "asked at the first due time and when the hold ends")
		})
	}
}

func TestReceiverTailLoss(t *testing.T) {
	d := at(time.Second)
	t.Run("last fragments lost, nothing follows", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		for i := range int64(5) {
			r.OnPacket(at(time.Duration(i)*ms), i, d) // interarrival ~1 ms
		}
		r.ExpectTail(at(4*ms), 4, 3, d) // fragments at 5, 6, 7 never come
		due := r.NextTimeout()
		assert.Greater(t, due, at(4*ms+DefaultInitialReorder))
		assert.Less(t, due, at(4*ms+DefaultInitialReorder+2*ms))
		pns, _ := r.PollNACK(due-1, nil)
		assert.Empty(t, pns)
		pns, _ = r.PollNACK(due, pns)
		assert.Equal(t, []int64{5, 6, 7}, pns)
		s := r.Stats()
		assert.Equal(t, int64(1), s.TailLosses)
		assert.Equal(t, int64(3), s.TailPackets)
		// The next frame's first packet is 8: no gap.
		r.OnPacket(at(40*ms), 8, d)
		assert.Equal(t, 3, r.Stats().Missing)
		// A late fragment is not a reordering sample: it teaches the tail
		// timer instead.
		r.OnPacket(at(41*ms), 5, d)
		assert.Equal(t, DefaultInitialReorder, r.ReorderAllowance())
		s = r.Stats()
		assert.Equal(t, int64(1), s.SpuriousNACKs)
		assert.Equal(t, int64(1), s.TailLate)
		late := at(41 * ms).Sub(due)
		assert.Equal(t, late+late/4, s.TailWait)
	})
	t.Run("fragments that came after it fired lengthen it, for a while", func(t *testing.T) {
		// Frames of five fragments 1 ms apart, one frame every 100 ms; the
		// last three of each are held back (another flow's burst on a
		// shared bottleneck) by hold.
		const hold = 30 * ms
		r := newRx(t, ReceiverConfig{Repeats: -1})
		var pn int64
		frame := func(start time.Duration, held bool) (due clock.Time, nacked []int64) {
			for i := range 2 {
				r.OnPacket(at(start+time.Duration(i)*ms), pn, d)
				pn++
			}
			r.ExpectTail(at(start+ms), pn-1, 3, d)
			due = r.NextTimeout()
			arrive := start + 2*ms
			if held {
				arrive += hold
			}
			for now := start + 2*ms; now < arrive; now += ms {
				nacked, _ = r.PollNACK(at(now), nacked)
			}
			for i := range 3 {
				r.OnPacket(at(arrive+time.Duration(i)*ms), pn, d)
				pn++
			}
			r.ExpectTail(at(arrive+2*ms), pn-1, 0, d)
			return due, nacked
		}
		due, nacked := frame(0, true)
		assert.Equal(t, []int64{2, 3, 4}, nacked, "the first hold reads as a tail loss")
		wait := r.Stats().TailWait
		assert.Greater(t, wait, hold-due.Sub(at(ms)), "it learned the fragments' lateness")
		assert.LessOrEqual(t, wait, DefaultMaxReorder)
		for k := range 3 {
			due, nacked = frame(time.Duration(k+1)*100*ms, true)
			assert.Empty(t, nacked, "frame %d: the same hold is waited out", k+1)
			assert.Greater(t, due, at(time.Duration(k+1)*100*ms+ms+hold), "frame %d", k+1)
		}
		st := r.Stats()
		assert.Equal(t, int64(1), st.TailLosses)
		assert.Equal(t, int64(3), st.SpuriousNACKs)
		// The extra halves every ReorderHalfLife.
		frame(DefaultReorderHalfLife+500*ms, false)
		assert.Equal(t, wait/2, r.Stats().TailWait)
		frame(2*DefaultReorderHalfLife+500*ms, false)
		assert.Equal(t, wait/4, r.Stats().TailWait)
	})
	t.Run("a tail that never comes teaches nothing", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		r.OnPacket(0, 0, d)
		r.OnPacket(at(ms), 1, d)
		r.ExpectTail(at(ms), 1, 2, d)
		pns, _ := r.PollNACK(at(100*ms), nil)
		assert.Equal(t, []int64{2, 3}, pns)
		r.OnRetransmission(at(150*ms), 10, 2, d)
		r.OnRetransmission(at(150*ms), 11, 3, d)
		s := r.Stats()
		assert.Equal(t, int64(0), s.TailLate)
		assert.Equal(t, time.Duration(0), s.TailWait)
	})
	t.Run("the path's jitter delays it", func(t *testing.T) {
		for _, j := range []time.Duration{0, 10 * ms} {
			r := newRx(t, ReceiverConfig{Repeats: -1})
			for i := range int64(5) {
				r.OnPacket(at(time.Duration(i)*ms), i, d)
			}
			r.SetJitter(j)
			r.ExpectTail(at(4*ms), 4, 3, d)
			due := r.NextTimeout()
			assert.Greater(t, due, at(4*ms+DefaultInitialReorder+3*j), "jitter %v", j)
			assert.Less(t, due, at(4*ms+DefaultInitialReorder+3*j+2*ms), "jitter %v", j)
			pns, _ := r.PollNACK(due-1, nil)
			assert.Empty(t, pns, "jitter %v", j)
		}
	})
	t.Run("frame completes: disarmed", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{})
		r.OnPacket(0, 0, d)
		r.ExpectTail(0, 0, 1, d)
		r.OnPacket(at(ms), 1, d)
		r.ExpectTail(at(ms), 1, 0, d)
		assert.Equal(t, clock.Never, r.NextTimeout())
	})
	t.Run("another stream's packet moves it on", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		r.OnPacket(0, 0, d)
		r.ExpectTail(0, 0, 3, d)
		r.OnPacket(at(ms), 1, d)   // audio: fragments come after it
		r.OnPacket(at(2*ms), 3, d) // audio, with one fragment (2) in the gap
		pns, _ := r.PollNACK(at(100*ms), nil)
		assert.Equal(t, []int64{2, 4, 5}, pns)
	})
	t.Run("a gap swallows it", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		r.OnPacket(0, 0, d)
		r.ExpectTail(0, 0, 2, d)
		r.OnPacket(at(ms), 5, d)
		pns, _ := r.PollNACK(at(100*ms), nil)
		assert.Equal(t, []int64{1, 2, 3, 4}, pns)
		assert.Equal(t, int64(0), r.Stats().TailLosses)
	})
	t.Run("stale call ignored", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{})
		r.OnPacket(0, 0, d)
		r.OnPacket(0, 1, d)
		r.ExpectTail(0, 0, 2, d)
		assert.Equal(t, clock.Never, r.NextTimeout())
	})
}

func TestReceiverOverflow(t *testing.T) {
	r := newRx(t, ReceiverConfig{MaxMissing: 10, Repeats: -1})
	d := at(time.Second)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 6, d)  // 5 missing
	r.OnPacket(at(ms), 12, d) // 5 more: 10, at the bound
	assert.Equal(t, 10, r.Stats().Missing)
	r.OnPacket(at(2*ms), 14, d) // one more: overflow
	s := r.Stats()
	assert.Equal(t, 0, s.Missing)
	assert.Equal(t, int64(1), s.Overflows)
	assert.Equal(t, at(2*ms), r.NextTimeout(), "the key-frame request is due at once")
	pns, kf := r.PollNACK(at(2*ms), nil)
	assert.Empty(t, pns)
	assert.True(t, kf)
	pns, kf = r.PollNACK(at(3*ms), pns)
	assert.Empty(t, pns)
	assert.False(t, kf, "once")
	// Tracking goes on after the overflow.
	r.OnPacket(at(4*ms), 16, d)
	pns, _ = r.PollNACK(at(20*ms), pns)
	assert.Equal(t, []int64{15}, pns)
	// Late originals of the cleared gap are not reordering.
	r.OnPacket(at(21*ms), 3, d)
	assert.Equal(t, int64(1), r.Stats().LateArrivals)
	assert.Equal(t, int64(1), r.Stats().KeyFrameRequests)
}

func TestReceiverReorderLearning(t *testing.T) {
	r := newRx(t, ReceiverConfig{Repeats: -1})
	d := at(time.Hour)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 2, d)
	r.OnPacket(at(21*ms), 1, d) // 20 ms late: raise to 25 ms
	assert.Equal(t, 25*ms, r.ReorderAllowance())
	assert.Equal(t, int64(1), r.Stats().Reordered)
	assert.Equal(t, int64(0), r.Stats().SpuriousNACKs)
	// The next gap waits the new allowance.
	r.OnPacket(at(30*ms), 4, d)
	assert.Equal(t, at(55*ms), r.NextTimeout())
	// A smaller sample does not lower it.
	r.OnPacket(at(32*ms), 3, d)
	assert.Equal(t, 25*ms, r.ReorderAllowance())
	// A packet NACKed, then arriving: a spurious NACK, and a raise.
	r.OnPacket(at(40*ms), 6, d)
	pns, _ := r.PollNACK(at(65*ms), nil)
	assert.Equal(t, []int64{5}, pns)
	r.OnPacket(at(80*ms), 5, d) // 40 ms after the gap: 50 ms
	assert.Equal(t, 50*ms, r.ReorderAllowance())
	assert.Equal(t, int64(1), r.Stats().SpuriousNACKs)
	// Decay: held for a half-life from the last raise, then the excess halves.
	r.PollNACK(at(80*ms+DefaultReorderHalfLife-ms), nil)
	assert.Equal(t, 50*ms, r.ReorderAllowance())
	r.PollNACK(at(80*ms+DefaultReorderHalfLife), nil)
	assert.Equal(t, 1*ms+49*ms/2, r.ReorderAllowance())
	r.PollNACK(at(80*ms+2*DefaultReorderHalfLife), nil)
	assert.Equal(t, 1*ms+49*ms/4, r.ReorderAllowance())
	r.PollNACK(at(time.Hour), nil)
	assert.Equal(t, DefaultMinReorder, r.ReorderAllowance())
	// Bounded above.
	r.OnPacket(at(time.Hour), 8, d)
	r.OnPacket(at(time.Hour+time.Second), 7, d)
	assert.Equal(t, DefaultMaxReorder, r.ReorderAllowance())
}

func TestReceiverRetransmissions(t *testing.T) {
	r := newRx(t, ReceiverConfig{Repeats: -1})
	d := at(300 * ms)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 3, d) // 1, 2 missing
	pns, _ := r.PollNACK(at(10*ms), nil)
	require.Equal(t, []int64{1, 2}, pns)
	r.OnRetransmission(at(110*ms), 20, 1, d)  // 4..19 were the sender's other packets
	r.OnRetransmission(at(310*ms), 21, 2, d)  // too late
	r.OnRetransmission(at(311*ms), 22, 1, d)  // a second copy: spurious
	r.OnRetransmission(at(312*ms), 23, 0, d)  // a packet that was never missing: spurious
	r.OnRetransmission(at(313*ms), 23, 30, d) // nonsense: original after itself
	s := r.Stats()
	assert.Equal(t, int64(4), s.RetransmissionsReceived)
	assert.Equal(t, int64(1), s.RecoveredByRTX)
	assert.Equal(t, int64(3), s.RtxArrivedLate)
	assert.Equal(t, int64(2), s.DuplicateRetransmissions)
	assert.Equal(t, int64(1), s.Invalid)
	assert.Equal(t, 16, s.Missing, "4..19")
}

func TestReceiverDeadlineEstimate(t *testing.T) {
	// The gap's deadline is the latest media deadline up to its later media
	// neighbour, here 500 ms (the feedback packet in between says nothing).
	r := newRx(t, ReceiverConfig{Repeats: -1, MaxNACKs: 255})
	r.OnPacket(0, 0, at(300*ms))
	r.OnPacket(at(ms), 2, clock.Never) // not media: 1 missing, deadline provisional
	r.OnPacket(at(2*ms), 3, at(500*ms))
	r.OnPacket(at(3*ms), 4, at(200*ms)) // an older frame's: the estimate keeps the maximum
	got := pollRange(r, 0, time.Second)
	// Rounds at 6, 161, 316: at 471 ms, 471 + 100 passes 500 ms.
	assert.Equal(t, []time.Duration{6 * ms, 161 * ms, 316 * ms}, got[1])
	// A NACKed non-media packet that turns up is counted.
	r.OnPacket(at(2*time.Second), 6, at(3*time.Second))
	pns, _ := r.PollNACK(at(2*time.Second+10*ms), nil)
	require.Equal(t, []int64{5}, pns)
	r.OnPacket(at(2*time.Second+20*ms), 5, clock.Never)
	assert.Equal(t, int64(1), r.Stats().NonMediaNACKed)
}

func TestReceiverHostile(t *testing.T) {
	r := newRx(t, ReceiverConfig{MaxMissing: 100})
	d := at(time.Second)
	r.OnPacket(0, -1, d)
	r.OnPacket(0, MaxPacketNumber+1, d)
	r.Recovered(0, -5)
	r.OnRetransmission(0, -1, -2, d)
	assert.Equal(t, int64(4), r.Stats().Invalid)
	r.OnPacket(0, 10, d)
	r.OnPacket(0, 10, d)
	assert.Equal(t, int64(1), r.Stats().Duplicates)
	r.OnPacket(at(ms), 1<<40, d) // a huge jump: overflow, not a billion entries
	assert.Equal(t, 0, r.Stats().Missing)
	r.OnPacket(at(ms), MaxPacketNumber, d)
	r.ExpectTail(at(ms), MaxPacketNumber, 1<<30, d)
	r.Forget(at(ms), 0, 1<<62)
	r.Forget(at(ms), -100, -1)
	pns, _ := r.PollNACK(at(time.Second), nil)
	assert.Empty(t, pns)
	assert.LessOrEqual(t, r.Stats().Missing, 100)
	// Time going backwards does no harm.
	r.OnPacket(at(-time.Hour), 5, d)
	r.PollNACK(at(-time.Hour), nil)
}

func TestReceiverRingReuse(t *testing.T) {
	// A long run with every third packet lost, the retransmission arriving
	// an RTT later: the ring wraps and compacts many times; the list stays
	// small and every loss is requested once.
	r := newRx(t, ReceiverConfig{MaxMissing: 64, Repeats: -1})
	type rtx struct {
		at clock.Time
		pn int64
	}
	var dst []int64
	var pending []rtx
	nacked := 0
	pn := int64(0)
	for i := range 30_000 {
		now := at(time.Duration(i) * ms)
		if i%3 != 1 {
			r.OnPacket(now, pn, now.Add(300*ms))
		}
		pn++
		for len(pending) > 0 && pending[0].at <= now {
			r.OnRetransmission(now, pn, pending[0].pn, now.Add(300*ms))
			pending = pending[1:]
			pn++
		}
		dst, _ = r.PollNACK(now, dst[:0])
		nacked += len(dst)
		for _, p := range dst {
			pending = append(pending, rtx{now.Add(100 * ms), p})
		}
		require.LessOrEqual(t, r.Stats().Missing, 64)
	}
	s := r.Stats()
	assert.Zero(t, s.Overflows)
	assert.Equal(t, int64(nacked), s.NACKRequests)
	assert.Equal(t, s.PacketsNACKed, s.NACKRequests, "one request each: the retransmissions came in time")
	assert.Greater(t, s.RecoveredByRTX, int64(9000))
}

func TestReceiverMemory(t *testing.T) {
	assert.Equal(t, uintptr(48), unsafe.Sizeof(missing{}), "2048 slots for the default 1000: 96 KiB")
	assert.Equal(t, uintptr(88), unsafe.Sizeof(histEntry{})+2*4+NumClasses*8, "per History slot")
}

func TestReceiverSentDetectsLostRetransmission(t *testing.T) {
	// RTT 100 ms (the initial figure): pn 2 is NACKed at 7 ms; its
	// retransmission leaves the sender at about 57 ms. A packet sent after
	// 57 ms + rackMargin + the 5 ms allowance arriving without it ends the
	// round: pn 2 is NACKed again at once, not at 162 ms.
	tests := []struct {
		name   string
		sentAt time.Duration // send time of the packet that arrives at 80 ms
		want   []time.Duration
	}{
		{"sent before the retransmission: nothing proven", 60 * ms, []time.Duration{7 * ms, 162 * ms}},
		{"sent after it: lost, re-NACK now", 70 * ms, []time.Duration{7 * ms, 80 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, ReceiverConfig{Repeats: -1})
			d := at(time.Second)
			r.OnPacket(0, 0, d)
			r.OnPacket(at(ms), 1, d)
			r.OnPacket(at(2*ms), 3, d)
			var got []time.Duration
			for now := time.Duration(0); now <= 170*ms; now += ms {
				if now == 80*ms {
					r.OnPacket(at(now), 4, d)
					r.Sent(at(now), at(tt.sentAt))
				}
				pns, _ := r.PollNACK(at(now), nil)
				for _, pn := range pns {
					if pn == 2 {
						got = append(got, now)
					}
				}
			}
			assert.Equal(t, tt.want, got)
			if len(tt.want) == 2 && tt.want[1] == 80*ms {
				assert.Equal(t, int64(1), r.Stats().RtxLostDetected)
			} else {
				assert.Zero(t, r.Stats().RtxLostDetected)
			}
		})
	}
}

// TestReceiverHopelessUntil: HopelessUntil follows the latest deadline of
// a gap given up as hopeless; packets only the tail-loss timer guessed
// missing (perhaps still on their way) leave it alone.
func TestReceiverHopelessUntil(t *testing.T) {
	tests := []struct {
		name string
		tail bool
		want clock.Time
	}{
		{"gap", false, at(time.Second)},
		{"tail guess", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRx(t, ReceiverConfig{Repeats: -1})
			assert.Zero(t, r.HopelessUntil())
			d := at(time.Second)
			r.OnPacket(0, 0, d)
			if tt.tail {
				r.ExpectTail(0, 0, 1, d) // packet 1 never comes, nothing after it
			} else {
				r.OnPacket(at(ms), 2, d) // packet 1 lost
			}
			for now := r.NextTimeout(); now < at(2*time.Second); now = r.NextTimeout() {
				_, _ = r.PollNACK(now, nil)
			}
			assert.Equal(t, int64(1), r.Stats().GaveUp, "given up either way")
			assert.Equal(t, tt.want, r.HopelessUntil())
		})
	}
}

// The gap credit: a packet number far ahead lists only as many numbers as
// the packets that came have earned (8 each, from 64, at most MaxMissing),
// the newest of the gap; the rest are lost unasked. Honest loss, even
// heavy, never meets the bound.
func TestReceiverGapCredit(t *testing.T) {
	d := at(time.Second)
	t.Run("a jump far ahead", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		r.OnPacket(0, 0, d)         // credit 64 + 8
		r.OnPacket(at(ms), 1000, d) // + 8: 80 of the 999 missing
		s := r.Stats()
		assert.Equal(t, initialCredit+2*creditPerPacket, s.Missing)
		assert.Equal(t, int64(999-80), s.Unlisted)
		assert.Equal(t, d, r.HopelessUntil(), "the older numbers are lost: a frame lacking one may ask for a key frame")
		pns := pollRange(r, 0, 50*time.Millisecond)
		assert.Len(t, pns, 80)
		for pn := range pns {
			assert.GreaterOrEqual(t, pn, int64(920), "the newest of the gap")
		}
		// Each jump after that buys 8 (one past the list's room clears it).
		r.OnPacket(at(60*ms), 1900, d)
		assert.Equal(t, int64(999-80+899-8), r.Stats().Unlisted)
		assert.Equal(t, 80+8, r.Stats().Missing)
		assert.Zero(t, r.Stats().Overflows)
	})
	t.Run("a tail beyond the credit", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		r.OnPacket(0, 0, d)
		r.ExpectTail(0, 0, 500, d) // a fragment claiming 500 more to come
		pns := pollRange(r, 0, 100*time.Millisecond)
		assert.Len(t, pns, initialCredit+creditPerPacket)
		assert.Equal(t, int64(500-72), r.Stats().Unlisted)
		for pn := range pns {
			assert.LessOrEqual(t, pn, int64(72), "the first of the tail")
		}
	})
	t.Run("honest loss", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			lossEvery int // of every lossEvery packets,
			burst     int // the first burst are lost
		}{
			{"50 % loss", 2, 1},
			{"80 % loss", 5, 4},
			{"bursts of 30 in 40", 40, 30},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newRx(t, ReceiverConfig{MaxMissing: 1000, Repeats: -1})
				var dst []int64
				now := time.Duration(0)
				for pn := int64(0); pn < 20_000; pn++ {
					now += ms
					if int(pn%int64(tc.lossEvery)) < tc.burst && pn > 0 {
						continue
					}
					r.OnPacket(at(now), pn, at(now+time.Second))
					dst, _ = r.PollNACK(at(now), dst[:0])
				}
				assert.Zero(t, r.Stats().Unlisted)
				assert.Zero(t, r.Stats().Overflows)
			})
		}
	})
	t.Run("after a warm-up, a burst of 900", func(t *testing.T) {
		r := newRx(t, ReceiverConfig{Repeats: -1})
		for pn := range int64(200) {
			r.OnPacket(at(time.Duration(pn)*ms), pn, d)
		}
		r.OnPacket(at(200*ms), 1100, d)
		assert.Zero(t, r.Stats().Unlisted)
		assert.Equal(t, 900, r.Stats().Missing)
	})
}
