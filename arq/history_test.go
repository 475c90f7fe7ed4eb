package arq

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

func newHistory(t testing.TB, cfg HistoryConfig) *History {
	t.Helper()
	h, err := NewHistory(cfg)
	require.NoError(t, err)
	h.SetRTT(testRTT()) // MinRetransmitInterval 50 ms
	return h
}

// pkt returns n bytes that name pn, so a test can check what comes back.
func pkt(pn int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(pn*31 + int64(i))
	}
	return b
}

func TestHistoryConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  HistoryConfig
		ok   bool
	}{
		{"zero", HistoryConfig{}, true},
		{"negative bytes", HistoryConfig{MaxBytes: -1}, false},
		{"huge packets", HistoryConfig{MaxPackets: 1 << 21}, false},
		{"negative interval", HistoryConfig{MinRetransmitInterval: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHistory(tt.cfg)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.True(t, errors.Is(err, ErrInvalidConfig), "%v", err)
			}
		})
	}
}

func TestHistoryNACK(t *testing.T) {
	type op struct {
		at     time.Duration
		kind   string // put, nack, ack, drop, poll
		pn     int64
		oneWay time.Duration
		want   int64 // poll: original pn, or -1 for none; nack: 1 if queued
	}
	dl := 300 * ms // every packet's deadline
	tests := []struct {
		name  string
		ops   []op
		check func(t *testing.T, s SenderStats)
	}{
		{"retransmit", []op{{0, "put", 1, 0, 0}, {10 * ms, "nack", 1, 0, 1}, {10 * ms, "poll", 0, 50 * ms, 1}, {10 * ms, "poll", 0, 50 * ms, -1}},
			func(t *testing.T, s SenderStats) {
				assert.Equal(t, int64(1), s.RetransmittedPacketsSent)
				assert.Equal(t, int64(100), s.RetransmittedBytesSent)
			}},
		{"unknown", []op{{0, "put", 1, 0, 0}, {10 * ms, "nack", 2, 0, 0}, {10 * ms, "nack", -2, 0, 0}},
			func(t *testing.T, s SenderStats) { assert.Equal(t, int64(2), s.NACKsUnknown) }},
		{"late at the NACK", []op{{0, "put", 1, 0, 0}, {300 * ms, "nack", 1, 0, 0}},
			func(t *testing.T, s SenderStats) { assert.Equal(t, int64(1), s.NACKsLate) }},
		{"late when it would leave: never sent", []op{{0, "put", 1, 0, 0}, {200 * ms, "nack", 1, 0, 1}, {250 * ms, "poll", 0, 50 * ms, -1}},
			func(t *testing.T, s SenderStats) {
				assert.Equal(t, int64(1), s.RtxSkippedLate)
				assert.Zero(t, s.RetransmittedPacketsSent)
			}},
		{"just in time", []op{{0, "put", 1, 0, 0}, {200 * ms, "nack", 1, 0, 1}, {250 * ms, "poll", 0, 50*ms - 1, 1}}, nil},
		{"duplicates: queued, then within the interval", []op{{0, "put", 1, 0, 0}, {10 * ms, "nack", 1, 0, 1}, {11 * ms, "nack", 1, 0, 0},
			{12 * ms, "poll", 0, 0, 1}, {40 * ms, "nack", 1, 0, 0}, {62 * ms, "nack", 1, 0, 1}, {62 * ms, "poll", 0, 0, 1}},
			func(t *testing.T, s SenderStats) {
				assert.Equal(t, int64(2), s.NACKsDuplicate)
				assert.Equal(t, int64(2), s.RetransmittedPacketsSent)
			}},
		{"acked: no retransmission", []op{{0, "put", 1, 0, 0}, {5 * ms, "ack", 1, 0, 0}, {10 * ms, "nack", 1, 0, 0}},
			func(t *testing.T, s SenderStats) { assert.Equal(t, int64(1), s.NACKsAcked) }},
		{"acked while queued: cancelled", []op{{0, "put", 1, 0, 0}, {10 * ms, "nack", 1, 0, 1}, {11 * ms, "ack", 1, 0, 0}, {12 * ms, "poll", 0, 0, -1}},
			func(t *testing.T, s SenderStats) { assert.Equal(t, int64(1), s.RtxCancelled) }},
		{"dropped frame", []op{{0, "put", 1, 0, 0}, {5 * ms, "drop", 1, 0, 0}, {10 * ms, "nack", 1, 0, 0}}, nil},
		{"spurious: the original arrived after all", []op{{0, "put", 1, 0, 0}, {10 * ms, "nack", 1, 0, 1}, {10 * ms, "poll", 0, 0, 1},
			{60 * ms, "ack", 1, 0, 0}, {61 * ms, "ack", 1, 0, 0}, {62 * ms, "ack", 99, 0, 0}},
			func(t *testing.T, s SenderStats) { assert.Equal(t, int64(1), s.SpuriousRetransmissions) }},
		{"priority classes", []op{{0, "put", 1, 0, 0}, {0, "put", 2, 0, 0}, {0, "put", 3, 0, 0},
			{10 * ms, "nack", 1, 0, 1}, {10 * ms, "nack", 2, 0, 1}, {10 * ms, "nack", 3, 0, 1},
			{10 * ms, "poll", 0, 0, 2}, {10 * ms, "poll", 0, 0, 1}, {10 * ms, "poll", 0, 0, 3}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, HistoryConfig{})
			dst := make([]byte, 2000)
			for i, o := range tt.ops {
				now := at(o.at)
				switch o.kind {
				case "put":
					prio := uint8(1)
					if o.pn == 2 {
						prio = 0 // audio
					}
					if o.pn == 3 {
						prio = 200 // clamped to the last class
					}
					h.Put(now, o.pn, pkt(o.pn, 100), at(dl), prio)
				case "nack":
					assert.Equal(t, o.want == 1, h.OnNACK(now, o.pn), "op %d", i)
				case "ack":
					h.Acked(o.pn)
				case "drop":
					h.Drop(o.pn)
				case "poll":
					if o.want >= 0 {
						assert.True(t, h.HasRetransmit(now), "op %d", i)
					}
					pn, n, d, ok := h.PollRetransmit(now, o.oneWay, dst)
					if o.want < 0 {
						assert.False(t, ok, "op %d", i)
						continue
					}
					require.True(t, ok, "op %d", i)
					assert.Equal(t, o.want, pn, "op %d", i)
					assert.Equal(t, pkt(pn, 100), dst[:n])
					assert.Equal(t, at(dl), d)
				}
			}
			if tt.check != nil {
				tt.check(t, h.Stats())
			}
		})
	}
}

// TestHistoryLastChance: a packet marked by MarkLastChance (or in a class
// DuplicateLastChance names) has its last useful retransmission sent
// twice. With testRTT (minimum 100 ms, variation 50 ms) and a 300 ms
// deadline, a retransmission arriving at 140 ms or later is the last: the
// next could come no sooner than 100 + 50 + 10 ms after it.
func TestHistoryLastChance(t *testing.T) {
	tests := []struct {
		name      string
		mark      bool
		classBit  bool
		setBit    bool          // the class bit set after construction (SetDuplicateLastChance)
		nackAt    time.Duration // the poll is at the same time, one-way 50 ms
		secondOW  time.Duration // the copy's poll one-way delay
		wantSends int
	}{
		{"unmarked: one copy", false, false, false, 100 * ms, 50 * ms, 1},
		{"marked, last chance: two copies", true, false, false, 100 * ms, 50 * ms, 2},
		{"marked, rounds left: one copy", true, false, false, 80 * ms, 50 * ms, 1},
		{"class bit, last chance: two copies", false, true, false, 100 * ms, 50 * ms, 2},
		{"class bit set later, last chance: two copies", false, false, true, 100 * ms, 50 * ms, 2},
		{"class bit set, then cleared: one copy", false, true, true, 100 * ms, 50 * ms, 1},
		{"marked, the copy would be late: checked again", true, false, false, 100 * ms, 200 * ms, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := HistoryConfig{}
			if tt.classBit {
				cfg.DuplicateLastChance = 1 << 2
			}
			h := newHistory(t, cfg)
			if tt.setBit {
				// Flips what the config said: set if it was clear, clear if set.
				h.SetDuplicateLastChance(cfg.DuplicateLastChance ^ 1<<2)
			}
			dst := make([]byte, 2000)
			h.Put(0, 7, pkt(7, 100), at(300*ms), 2)
			if tt.mark {
				require.True(t, h.MarkLastChance(7))
			}
			require.True(t, h.OnNACK(at(tt.nackAt), 7))
			sends := 0
			for i := range 3 {
				ow := 50 * ms
				if i > 0 {
					ow = tt.secondOW
				}
				pn, n, _, ok := h.PollRetransmit(at(tt.nackAt), ow, dst)
				if !ok {
					break
				}
				assert.Equal(t, int64(7), pn)
				assert.Equal(t, pkt(7, 100), dst[:n])
				sends++
			}
			assert.Equal(t, tt.wantSends, sends)
			st := h.Stats()
			assert.Equal(t, int64(sends), st.RetransmittedPacketsSent)
			if tt.wantSends == 2 || tt.secondOW > 50*ms {
				assert.Equal(t, int64(1), st.LastChanceDuplicates)
			} else {
				assert.Zero(t, st.LastChanceDuplicates)
			}
		})
	}
	h := newHistory(t, HistoryConfig{})
	assert.False(t, h.MarkLastChance(3), "not held")
	assert.False(t, h.MarkLastChance(-1))
}

// pollRound polls every retransmission due at now (at most 4), checks
// that each is packet pn (pkt(pn, 100)), and returns how many there were.
func pollRound(t *testing.T, h *History, now clock.Time, pn int64, dst []byte) int {
	t.Helper()
	sends := 0
	for range 4 {
		got, n, _, ok := h.PollRetransmit(now, 50*ms, dst)
		if !ok {
			break
		}
		assert.Equal(t, pn, got)
		assert.Equal(t, pkt(pn, 100), dst[:n])
		sends++
	}
	return sends
}

// TestHistoryDuplicateFirst: in a class DuplicateFirst names, a packet's
// first retransmission goes twice and later rounds once; a packet gets one
// copy in all, so a first round doubled leaves its last chance single.
func TestHistoryDuplicateFirst(t *testing.T) {
	tests := []struct {
		name     string
		cfgBits  uint8 // HistoryConfig.DuplicateFirst
		setBits  int   // SetDuplicateFirst after construction; -1: not called
		lastBits uint8 // HistoryConfig.DuplicateLastChance
		deadline time.Duration
		want     [2]int // sends in the first and the second round
		first    int64  // FirstDuplicates
		last     int64  // LastChanceDuplicates
	}{
		{"class named: first round twice, second once", 1 << 2, -1, 0, time.Second, [2]int{2, 1}, 1, 0},
		{"other class: once each", 1 << 0, -1, 0, time.Second, [2]int{1, 1}, 0, 0},
		{"none: once each", 0, -1, 0, time.Second, [2]int{1, 1}, 0, 0},
		{"set later", 0, 1 << 2, 0, time.Second, [2]int{2, 1}, 1, 0},
		{"cleared later", 1 << 2, 0, 0, time.Second, [2]int{1, 1}, 0, 0},
		// Deadline 600 ms: the second round (NACK at 400 ms, one-way 50 ms)
		// is the last chance; the first round's copy was the packet's one.
		{"first doubled, last chance not again", 1 << 2, -1, 1 << 2, 600 * ms, [2]int{2, 1}, 1, 0},
		{"last chance alone", 0, -1, 1 << 2, 600 * ms, [2]int{1, 2}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, HistoryConfig{DuplicateFirst: tt.cfgBits, DuplicateLastChance: tt.lastBits})
			if tt.setBits >= 0 {
				h.SetDuplicateFirst(uint8(tt.setBits))
			}
			dst := make([]byte, 2000)
			h.Put(0, 7, pkt(7, 100), at(tt.deadline), 2)
			for round, nackAt := range []time.Duration{100 * ms, 400 * ms} {
				require.True(t, h.OnNACK(at(nackAt), 7), "round %d", round+1)
				sends := pollRound(t, h, at(nackAt), 7, dst)
				assert.Equal(t, tt.want[round], sends, "round %d", round+1)
			}
			st := h.Stats()
			assert.Equal(t, int64(tt.want[0]+tt.want[1]), st.RetransmittedPacketsSent)
			assert.Equal(t, tt.first, st.FirstDuplicates)
			assert.Equal(t, tt.last, st.LastChanceDuplicates)
		})
	}
}

// TestHistoryDuplicateAfter: with DuplicateAfter n, a packet's first n
// rounds go once and every later round twice, in any class, with or
// without the once-per-packet copies (DuplicateFirst, last chances), and
// a copy does not count as a round.
func TestHistoryDuplicateAfter(t *testing.T) {
	tests := []struct {
		name  string
		cfg   HistoryConfig
		set   int // SetDuplicateAfter after construction; -1: not called
		prio  uint8
		want  [5]int // sends in rounds 1-5
		late  int64  // LateRoundDuplicates
		first int64  // FirstDuplicates
	}{
		{"off", HistoryConfig{}, -1, 2, [5]int{1, 1, 1, 1, 1}, 0, 0},
		{"after 2", HistoryConfig{DuplicateAfter: 2}, -1, 2, [5]int{1, 1, 2, 2, 2}, 3, 0},
		{"after 2, key frame class", HistoryConfig{DuplicateAfter: 2}, -1, 1, [5]int{1, 1, 2, 2, 2}, 3, 0},
		{"after 1", HistoryConfig{DuplicateAfter: 1}, -1, 0, [5]int{1, 2, 2, 2, 2}, 4, 0},
		// The first round's copy is not a round: round 2 still goes once.
		{"after 2 with the first doubled", HistoryConfig{DuplicateAfter: 2, DuplicateFirst: 1 << 2}, -1, 2, [5]int{2, 1, 2, 2, 2}, 3, 1},
		{"set later", HistoryConfig{}, 3, 2, [5]int{1, 1, 1, 2, 2}, 2, 0},
		{"cleared later", HistoryConfig{DuplicateAfter: 2}, 0, 2, [5]int{1, 1, 1, 1, 1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, tt.cfg)
			if tt.set >= 0 {
				h.SetDuplicateAfter(tt.set)
			}
			dst := make([]byte, 2000)
			h.Put(0, 7, pkt(7, 100), at(10*time.Second), tt.prio)
			total := 0
			for round := range 5 {
				nackAt := time.Duration(round+1) * 400 * ms
				require.True(t, h.OnNACK(at(nackAt), 7), "round %d", round+1)
				sends := pollRound(t, h, at(nackAt), 7, dst)
				assert.Equal(t, tt.want[round], sends, "round %d", round+1)
				total += sends
			}
			st := h.Stats()
			assert.Equal(t, int64(total), st.RetransmittedPacketsSent)
			assert.Equal(t, tt.late, st.LateRoundDuplicates)
			assert.Equal(t, tt.first, st.FirstDuplicates)
		})
	}
	for _, n := range []int{-1, 256} {
		_, err := NewHistory(HistoryConfig{DuplicateAfter: n})
		assert.ErrorIs(t, err, ErrInvalidConfig, "%d", n)
	}
	h := newHistory(t, HistoryConfig{})
	h.SetDuplicateAfter(300)
	assert.Equal(t, 255, h.cfg.DuplicateAfter, "clamped")
	h.SetDuplicateAfter(-1)
	assert.Zero(t, h.cfg.DuplicateAfter)
}

// TestHistoryCopySpacing: with CopySpacing a second copy waits in its own
// queue until due, then goes ahead of queued retransmissions, and is
// checked against its deadline when it leaves.
func TestHistoryCopySpacing(t *testing.T) {
	const sp = 20 * ms
	tests := []struct {
		name     string
		deadline time.Duration
		oneWay   time.Duration // at the copy's poll
		sent     bool          // the copy goes
	}{
		{"due: goes ahead of the queue", time.Second, 50 * ms, true},
		{"would arrive late: skipped", 200 * ms, 150 * ms, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, HistoryConfig{DuplicateFirst: 1 << 2, CopySpacing: sp})
			dst := make([]byte, 2000)
			h.Put(0, 7, pkt(7, 100), at(tt.deadline), 2)
			h.Put(0, 8, pkt(8, 100), at(time.Second), 2)
			assert.Equal(t, clock.Never, h.NextCopy())
			require.True(t, h.OnNACK(at(50*ms), 7))
			pn, _, _, ok := h.PollRetransmit(at(50*ms), 50*ms, dst)
			require.True(t, ok)
			assert.Equal(t, int64(7), pn)
			assert.Equal(t, at(50*ms+sp), h.NextCopy())
			assert.False(t, h.HasRetransmit(at(50*ms)), "the copy is not due yet")
			_, _, _, ok = h.PollRetransmit(at(60*ms), 50*ms, dst)
			assert.False(t, ok, "not before it is due")
			require.False(t, h.OnNACK(at(60*ms), 7), "queued: a NACK meanwhile adds nothing")

			require.True(t, h.OnNACK(at(60*ms), 8)) // first retransmission of 8: its copy goes behind 7's
			assert.True(t, h.HasRetransmit(at(60*ms)))
			pn, _, _, ok = h.PollRetransmit(at(60*ms), 50*ms, dst)
			require.True(t, ok)
			assert.Equal(t, int64(8), pn)

			assert.True(t, h.HasRetransmit(at(50*ms+sp)))
			pn, n, _, ok := h.PollRetransmit(at(50*ms+sp), tt.oneWay, dst)
			st := h.Stats()
			if tt.sent {
				require.True(t, ok)
				assert.Equal(t, int64(7), pn)
				assert.Equal(t, pkt(7, 100), dst[:n])
				assert.Zero(t, st.RtxSkippedLate)
			} else {
				assert.False(t, ok, "7's copy is late and 8's not due")
				assert.Equal(t, int64(1), st.RtxSkippedLate)
			}
			assert.Equal(t, int64(2), st.FirstDuplicates)
			assert.Equal(t, int64(2), st.SpacedCopies)
			assert.Equal(t, at(60*ms+sp), h.NextCopy(), "8's copy next")
		})
	}
	for _, d := range []time.Duration{-time.Millisecond, 2 * time.Second} {
		_, err := NewHistory(HistoryConfig{CopySpacing: d})
		assert.ErrorIs(t, err, ErrInvalidConfig, "%v", d)
	}
	h := newHistory(t, HistoryConfig{})
	h.SetCopySpacing(5 * time.Second)
	assert.Equal(t, time.Second, h.cfg.CopySpacing, "clamped")
}

func TestHistoryPutRejects(t *testing.T) {
	h := newHistory(t, HistoryConfig{MaxBytes: 1000})
	h.Put(0, 5, pkt(5, 10), at(time.Second), 0)
	h.Put(0, 5, pkt(5, 10), at(time.Second), 0) // repeated
	h.Put(0, 4, pkt(4, 10), at(time.Second), 0) // decreasing
	h.Put(0, -1, pkt(4, 10), at(time.Second), 0)
	h.Put(0, 6, nil, at(time.Second), 0)
	h.Put(0, 7, pkt(7, 1001), at(time.Second), 0)
	s := h.Stats()
	assert.Equal(t, int64(4), s.Rejected)
	assert.Equal(t, int64(1), s.TooLarge)
	assert.Equal(t, 1, s.Packets)
	assert.True(t, h.OnNACK(0, 5))
	assert.False(t, h.OnNACK(0, 7))
	_, _, _, ok := h.PollRetransmit(0, 0, make([]byte, 5))
	assert.False(t, ok)
	assert.Equal(t, int64(1), h.Stats().RtxDstTooSmall)
}

func TestHistoryExpiry(t *testing.T) {
	h := newHistory(t, HistoryConfig{})
	for pn := range int64(10) {
		h.Put(at(time.Duration(pn)*ms), pn, pkt(pn, 100), at(time.Duration(100+pn)*ms), 0)
	}
	assert.Equal(t, 10, h.Stats().Packets)
	h.Expire(at(104 * ms)) // 0..4 reached their deadline
	s := h.Stats()
	assert.Equal(t, 5, s.Packets)
	assert.Equal(t, 500, s.Bytes)
	assert.Equal(t, int64(5), s.Expired)
	assert.False(t, h.OnNACK(at(104*ms), 4))
	assert.Equal(t, int64(1), h.Stats().NACKsUnknown)
	// Acknowledged packets at the head go too; one still needed stops it.
	h.Acked(5)
	h.Acked(7)
	h.Expire(at(104 * ms))
	assert.Equal(t, 4, h.Stats().Packets)
	h.Expire(at(time.Second))
	assert.Equal(t, 0, h.Stats().Packets)
	assert.Equal(t, 0, h.Stats().Bytes)
	assert.Equal(t, int64(8), h.Stats().Expired, "acknowledged ones are not counted as expired")
}

// TestHistoryMemoryBound: random packet sizes up to the whole arena; the
// arena never holds more than MaxBytes, every packet still held comes back
// intact, and the oldest go first.
func TestHistoryMemoryBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const maxBytes = 10_000
	h := newHistory(t, HistoryConfig{MaxBytes: maxBytes, MaxPackets: 64, MinRetransmitInterval: time.Nanosecond})
	dst := make([]byte, maxBytes)
	sizes := map[int64]int{}
	oldest := int64(0)
	for pn := range int64(20_000) {
		var n int
		switch rng.IntN(10) {
		case 0:
			n = maxBytes - rng.IntN(100) // huge: takes (almost) everything
		case 1, 2:
			n = 1 + rng.IntN(3000)
		default:
			n = 1 + rng.IntN(1200)
		}
		now := at(time.Duration(pn) * ms)
		h.Put(now, pn, pkt(pn, n), now.Add(time.Hour), uint8(rng.IntN(4)))
		sizes[pn] = n
		s := h.Stats()
		require.LessOrEqual(t, s.Bytes, maxBytes)
		require.LessOrEqual(t, s.Packets, 64)
		// The packets held are exactly the newest s.Packets.
		for oldest < pn-int64(s.Packets)+1 {
			assert.False(t, h.OnNACK(now, oldest), "pn %d evicted", oldest)
			oldest++
		}
		probe := pn - int64(rng.IntN(s.Packets))
		require.True(t, h.OnNACK(now, probe), "pn %d held", probe)
		got, m, _, ok := h.PollRetransmit(now, 0, dst)
		require.True(t, ok)
		require.Equal(t, probe, got)
		require.Equal(t, pkt(probe, sizes[probe]), dst[:m])
	}
	s := h.Stats()
	assert.Greater(t, s.EvictedEarly, int64(15_000))
	assert.Zero(t, s.Expired)
}

// TestHistoryNeverLate is the "zero retransmissions sent too late"
// property: across many seeded random scenarios (deadlines, NACK times,
// one-way delays, acks, evictions), every retransmission PollRetransmit
// returns satisfies now + oneWay < deadline, and the late ones are counted
// instead.
func TestHistoryNeverLate(t *testing.T) {
	var sent, skipped int64
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := newHistory(t, HistoryConfig{MaxBytes: 20_000 + rng.IntN(100_000), MaxPackets: 16 << rng.IntN(6)})
		deadline := map[int64]clock.Time{}
		dst := make([]byte, 1500)
		now := clock.Time(0)
		pn := int64(0)
		for range 2000 {
			now = now.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)
			switch rng.IntN(4) {
			case 0, 1:
				pn += 1 + int64(rng.IntN(3))
				d := now.Add(time.Duration(50+rng.IntN(3000)) * ms)
				deadline[pn] = d
				h.Put(now, pn, pkt(pn, 1+rng.IntN(1400)), d, uint8(rng.IntN(5)))
			case 2:
				h.OnNACK(now, pn-int64(rng.IntN(200)))
				if rng.IntN(4) == 0 {
					h.Acked(pn - int64(rng.IntN(200)))
				}
			case 3:
				oneWay := time.Duration(rng.IntN(400)) * ms
				for {
					orig, _, d, ok := h.PollRetransmit(now, oneWay, dst)
					if !ok {
						break
					}
					require.Equal(t, deadline[orig], d)
					require.Less(t, now.Add(oneWay), d, "seed %d: pn %d would arrive late", seed, orig)
					sent++
				}
			}
			if rng.IntN(50) == 0 {
				h.Expire(now)
			}
		}
		skipped += h.Stats().RtxSkippedLate
	}
	t.Logf("retransmissions sent %d, discarded as too late %d, sent too late 0", sent, skipped)
	assert.Greater(t, sent, int64(1000))
	assert.Greater(t, skipped, int64(1000), "the check was exercised")
}

func TestRTTWindowedMin(t *testing.T) {
	var r RTT
	assert.Equal(t, InitialRTT, r.WindowedMin())
	r.Add(0, 50*ms)
	r.Add(at(time.Second), 80*ms)
	assert.Equal(t, 50*ms, r.WindowedMin())
	assert.Equal(t, 50*ms, r.Min())
	// The path's delay grows: after the window, the old minimum is gone.
	for s := 2; s <= 25; s++ {
		r.Add(at(time.Duration(s)*time.Second), time.Duration(100+s)*ms)
	}
	assert.Equal(t, 50*ms, r.Min())
	// The filter keeps three samples, so it answers a sample of the
	// window, not always its best: 115 ms is the true minimum of the last
	// 10 s.
	assert.GreaterOrEqual(t, r.WindowedMin(), 115*ms, "nothing older than the window")
	assert.LessOrEqual(t, r.WindowedMin(), 120*ms)
	// A new minimum takes over at once.
	r.Add(at(26*time.Second), 90*ms)
	assert.Equal(t, 90*ms, r.WindowedMin())
}

func TestHistoryPadding(t *testing.T) {
	h, err := NewHistory(HistoryConfig{MaxPackets: 16, MaxBytes: 1 << 16})
	require.NoError(t, err)
	dst := make([]byte, 64)
	_, _, ok := h.PollPadding(0, 0, dst)
	assert.False(t, ok, "nothing stored")
	for pn := int64(0); pn < 4; pn++ {
		h.Put(0, pn, []byte{byte(pn), 1, 2}, clock.Time(time.Second), 0)
	}
	h.Acked(2)
	var got []int64
	for range 6 {
		pn, n, ok := h.PollPadding(0, 0, dst)
		require.True(t, ok)
		assert.Equal(t, 3, n)
		assert.Equal(t, byte(pn), dst[0])
		got = append(got, pn)
	}
	assert.Equal(t, []int64{3, 1, 0, 3, 1, 0}, got, "newest first, round, skipping the acknowledged")
	// None could arrive before its deadline: any stored packet still pads.
	pn, _, ok := h.PollPadding(0, 2*time.Second, dst)
	assert.True(t, ok)
	assert.Equal(t, byte(pn), dst[0])
	assert.Equal(t, int64(7), h.Stats().PaddingSent)
	assert.Zero(t, h.Stats().RetransmittedPacketsSent, "padding is not a retransmission")
}

// Packet returns what Put stored while the packet is held and needed.
func TestHistoryPacket(t *testing.T) {
	h := newHistory(t, HistoryConfig{MaxPackets: 4})
	now := clock.Time(0)
	deadline := now.Add(time.Second)
	for pn := range int64(6) { // 0 and 1 are evicted: 4 packets held
		h.Put(now, pn, pkt(pn, 100), deadline, 0)
	}
	tests := []struct {
		name string
		pn   int64
		want bool
	}{
		{"evicted", 1, false},
		{"held", 2, true},
		{"newest", 5, true},
		{"never put", 9, false},
		{"invalid", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := h.Packet(tt.pn)
			require.Equal(t, tt.want, ok)
			if ok {
				assert.Equal(t, pkt(tt.pn, 100), b)
			}
		})
	}
	h.Drop(3)
	h.Acked(4)
	_, ok := h.Packet(3)
	assert.False(t, ok, "dropped")
	_, ok = h.Packet(4)
	assert.False(t, ok, "acknowledged")
}
