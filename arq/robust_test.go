package arq

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Media packet numbers are sparse (the packet-number space is shared with
// FEC repair, feedback, ping, padding and retransmissions, PROTOCOL §2.1).
// The index has 2 x MaxPackets slots keyed by pn & imask, so two held
// packets whose numbers differ by a multiple of 2 x MaxPackets share a
// slot: the newer overwrote the older's, and the older, still held and
// before its deadline, became unknown (its NACK counted NACKsUnknown and
// never retransmitted; Packet and Acked missed it). A miss now searches the
// entries, which are in packet-number order.
func TestHistorySparsePacketNumbers(t *testing.T) {
	t.Run("minimal", func(t *testing.T) {
		h := newHistory(t, HistoryConfig{MaxPackets: 4}) // 8 index slots
		h.Put(0, 0, pkt(0, 100), at(time.Second), 0)
		h.Put(at(ms), 8, pkt(8, 100), at(time.Second), 0) // 7 non-media packets in between
		require.Equal(t, 2, h.Len(), "both held")
		b, ok := h.Packet(0)
		assert.True(t, ok, "pn 0 is held and before its deadline")
		assert.Equal(t, pkt(0, 100), b)
		assert.True(t, h.OnNACK(at(10*ms), 0), "a NACK for a held packet must queue its retransmission")
		assert.Zero(t, h.Stats().NACKsUnknown)
	})
	t.Run("defaults, one media packet in 1-4 numbers", func(t *testing.T) {
		h := newHistory(t, HistoryConfig{})
		rng := rand.New(rand.NewPCG(1, 2))
		pn := int64(0)
		for i := range DefaultHistoryPackets {
			h.Put(at(time.Duration(i)*time.Microsecond), pn, pkt(pn, 100), at(10*time.Second), 0)
			pn += 1 + int64(rng.IntN(4))
		}
		require.Equal(t, DefaultHistoryPackets, h.Len())
		lost := 0
		for j := range h.ecount {
			e := &h.ents[(h.ehead+int64(j))&h.emask]
			if _, ok := h.Packet(e.pn); !ok {
				lost++
			}
		}
		assert.Zero(t, lost, "held packets the history cannot find by number")
	})
}

// The spaced copies' ring is served from its head, in due order.
// SetCopySpacing (which the session core calls with a value that follows
// the burst length and frame rate) can shrink the spacing: a copy queued
// later with a short spacing is then due before one queued earlier with a
// long spacing. It waited behind it (NextCopy reported the later time,
// HasRetransmit nothing due); it is now queued ahead.
func TestHistoryCopySpacingShrink(t *testing.T) {
	h := newHistory(t, HistoryConfig{DuplicateFirst: 1, CopySpacing: 500 * ms})
	dst := make([]byte, 2000)
	h.Put(0, 1, pkt(1, 100), at(2*time.Second), 0)
	h.Put(0, 2, pkt(2, 100), at(2*time.Second), 0)
	require.True(t, h.OnNACK(0, 1))
	pn, _, _, ok := h.PollRetransmit(0, 20*ms, dst)
	require.True(t, ok)
	require.Equal(t, int64(1), pn) // 1's copy due at 500 ms

	h.SetCopySpacing(10 * ms) // from now on: copies 10 ms behind
	require.True(t, h.OnNACK(at(10*ms), 2))
	pn, _, _, ok = h.PollRetransmit(at(10*ms), 20*ms, dst)
	require.True(t, ok)
	require.Equal(t, int64(2), pn) // 2's copy due at 20 ms

	assert.Equal(t, at(20*ms), h.NextCopy(), "2's copy is the next due")
	assert.True(t, h.HasRetransmit(at(30*ms)), "2's copy is due at 30 ms")
	pn, _, _, ok = h.PollRetransmit(at(30*ms), 20*ms, dst)
	assert.True(t, ok, "2's copy goes when due")
	assert.Equal(t, int64(2), pn)
}

// Sent ends a round at once when a packet sent after the round's
// retransmission arrives first. It skipped entries whose next event (a
// repeat) was already due: if the proof came before the caller's PollNACK
// for that repeat, PollNACK sent a plain repeat, the round did not end,
// and no later Sent looked at the entry again, so the re-NACK waited for
// the full re-NACK interval (351 ms instead of 31 ms here).
func TestReceiverSentDuringDueRepeat(t *testing.T) {
	r := newRx(t, ReceiverConfig{Repeats: 8})
	// A queue on the path: smoothed RTT 300 ms, minimum 10 ms.
	r.srtt, r.rttvar, r.minRTT = 300*ms, 10*ms, 10*ms
	d := at(10 * time.Second)
	r.OnPacket(0, 0, d)
	r.OnPacket(at(ms), 2, d) // pn 1 lost: NACKed at 6 ms, repeats every 5 ms
	var rounds []time.Duration
	proofAt := 31 * ms // a repeat is due then; rackAt = 6 + 5 + 5 + 5 = 21 ms
	for now := time.Duration(0); now <= 400*ms; now += ms {
		if now == proofAt {
			// The packet arrives before the loop polls for the due repeat.
			r.OnPacket(at(now), 3, d)
			r.Sent(at(now), at(25*ms)) // sent after rackAt: the round's retransmission was lost
		}
		before := r.Stats().ReNACKs
		pns, _ := r.PollNACK(at(now), nil)
		if len(pns) > 0 && r.Stats().ReNACKs > before {
			rounds = append(rounds, now)
		}
	}
	require.NotEmpty(t, rounds, "re-NACKed at all")
	assert.Equal(t, proofAt, rounds[0], "the round proven lost is re-NACKed at once")
	assert.Equal(t, int64(1), r.Stats().RtxLostDetected)
}

// Queued counts the retransmissions waiting to leave and their bytes, as
// a send backlog: up on a NACK and a queued copy, down when one leaves,
// is cancelled by an acknowledgement or a Drop, or is evicted.
func TestHistoryQueued(t *testing.T) {
	dst := make([]byte, 2000)
	for _, tc := range []struct {
		name  string
		act   func(h *History)
		wantN int
		wantB int64
	}{
		{"two NACKed", func(h *History) {}, 2, 300},
		{"one acknowledged", func(h *History) { h.Acked(1) }, 1, 100},
		{"one dropped", func(h *History) { h.Drop(2) }, 1, 200},
		{"a NACK repeated", func(h *History) { h.OnNACK(at(11*ms), 1) }, 2, 300},
		{"one sent", func(h *History) {
			_, _, _, ok := h.PollRetransmit(at(12*ms), 10*ms, dst)
			require.True(t, ok)
		}, 1, 100},
		{"both sent", func(h *History) {
			for range 2 {
				_, _, _, ok := h.PollRetransmit(at(12*ms), 10*ms, dst)
				require.True(t, ok)
			}
		}, 0, 0},
		{"both evicted past their deadline", func(h *History) {
			h.Put(at(2*time.Second), 3, pkt(3, 50), at(3*time.Second), 0)
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t, HistoryConfig{})
			h.Put(0, 1, pkt(1, 200), at(time.Second), 0)
			h.Put(at(ms), 2, pkt(2, 100), at(time.Second), 0)
			require.True(t, h.OnNACK(at(10*ms), 1))
			require.True(t, h.OnNACK(at(10*ms), 2))
			tc.act(h)
			n, b := h.Queued()
			assert.Equal(t, tc.wantN, n)
			assert.Equal(t, tc.wantB, b)
		})
	}
	t.Run("a first copy queued", func(t *testing.T) {
		h := newHistory(t, HistoryConfig{DuplicateFirst: 1, CopySpacing: 5 * ms})
		h.Put(0, 1, pkt(1, 200), at(time.Second), 0)
		require.True(t, h.OnNACK(at(10*ms), 1))
		_, _, _, ok := h.PollRetransmit(at(10*ms), 10*ms, dst)
		require.True(t, ok)
		n, b := h.Queued()
		assert.Equal(t, 1, n, "the copy waits")
		assert.Equal(t, int64(200), b)
		_, _, _, ok = h.PollRetransmit(at(15*ms), 10*ms, dst)
		require.True(t, ok)
		n, b = h.Queued()
		assert.Zero(t, n)
		assert.Zero(t, b)
	})
}
