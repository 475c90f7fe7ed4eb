package arq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
)

// rxLoop is the receiver's per-packet path in steady state: a packet every
// 0.5 ms, one in 20 lost (one in 7 of them reordered by 3 ms instead of
// lost), PollNACK after each, and the retransmission of each NACKed packet
// 100 ms later (under its own fresh packet number).
type rxLoop struct {
	r       *Receiver
	now     clock.Time
	pn      int64
	dst     []int64
	late    int64 // a reordered packet to deliver next, or -1
	pending [256]struct {
		at clock.Time
		pn int64
	}
	head, n int
}

func newRxLoop(tb testing.TB) *rxLoop {
	r, err := NewReceiver(ReceiverConfig{})
	require.NoError(tb, err)
	r.SetRTT(testRTT())
	l := &rxLoop{r: r, dst: make([]int64, 0, 64), late: -1}
	for range 20_000 { // warm up: fill and wrap the ring
		l.step()
	}
	return l
}

func (l *rxLoop) step() {
	l.now = l.now.Add(500 * time.Microsecond)
	d := l.now.Add(300 * time.Millisecond)
	switch {
	case l.pn%20 == 7 && l.pn%140 == 7:
		l.late = l.pn // reordered: comes with the next packet
	case l.pn%20 == 7:
		// lost
	default:
		l.r.OnPacket(l.now, l.pn, d)
		if l.late >= 0 {
			l.r.OnPacket(l.now, l.late, d)
			l.late = -1
		}
	}
	l.pn++
	for l.n > 0 && l.pending[l.head].at <= l.now {
		l.r.OnRetransmission(l.now, l.pn, l.pending[l.head].pn, d)
		l.pn++
		l.head = (l.head + 1) % len(l.pending)
		l.n--
	}
	if l.now >= l.r.NextTimeout() {
		l.dst, _ = l.r.PollNACK(l.now, l.dst[:0])
		for _, pn := range l.dst {
			if l.n < len(l.pending) {
				l.pending[(l.head+l.n)%len(l.pending)] = struct {
					at clock.Time
					pn int64
				}{l.now.Add(100 * time.Millisecond), pn}
				l.n++
			}
		}
	}
}

// txLoop is the sender's per-packet path: Put a 1200-byte packet every
// 0.5 ms with a 300 ms deadline, feedback acknowledging the packet sent
// 100 ms ago, one in 20 NACKed instead and retransmitted.
type txLoop struct {
	h   *History
	now clock.Time
	pn  int64
	pkt []byte
	dst []byte
}

func newTxLoop(tb testing.TB) *txLoop {
	h, err := NewHistory(HistoryConfig{})
	require.NoError(tb, err)
	h.SetRTT(testRTT())
	l := &txLoop{h: h, pkt: make([]byte, 1200), dst: make([]byte, 1500)}
	for range 20_000 {
		l.step()
	}
	return l
}

func (l *txLoop) step() {
	l.now = l.now.Add(500 * time.Microsecond)
	l.h.Put(l.now, l.pn, l.pkt, l.now.Add(300*time.Millisecond), uint8(l.pn%2))
	if old := l.pn - 200; old >= 0 {
		if old%20 == 3 {
			l.h.OnNACK(l.now, old)
			l.h.OnNACK(l.now, old) // a repeat
			if _, _, _, ok := l.h.PollRetransmit(l.now, 50*time.Millisecond, l.dst); !ok {
				panic("no retransmission")
			}
		} else {
			l.h.Acked(old)
		}
	}
	l.pn++
}

func BenchmarkSteadyReceiver(b *testing.B) {
	l := newRxLoop(b)
	b.ReportAllocs()
	for b.Loop() {
		l.step()
	}
}

func BenchmarkSteadyHistory(b *testing.B) {
	l := newTxLoop(b)
	b.ReportAllocs()
	b.SetBytes(1200)
	for b.Loop() {
		l.step()
	}
}

// BenchmarkSteadyHistoryRetransmit is one NACK and its retransmission.
func BenchmarkSteadyHistoryRetransmit(b *testing.B) {
	h, err := NewHistory(HistoryConfig{MinRetransmitInterval: time.Nanosecond})
	require.NoError(b, err)
	pkt, dst := make([]byte, 1200), make([]byte, 1500)
	for pn := range int64(500) {
		h.Put(0, pn, pkt, clock.Never-1, 0)
	}
	now := clock.Time(0)
	pn := int64(0)
	b.ReportAllocs()
	b.SetBytes(1200)
	for b.Loop() {
		now++
		h.OnNACK(now, pn)
		if _, _, _, ok := h.PollRetransmit(now, time.Millisecond, dst); !ok {
			b.Fatal("no retransmission")
		}
		pn = (pn + 1) % 500
	}
}

func TestSteadyDoesNotAllocate(t *testing.T) {
	rx := newRxLoop(t)
	tx := newTxLoop(t)
	got := allocs.Mallocs(3, func() {
		for range 10_000 {
			rx.step()
			tx.step()
		}
	})
	assert.Zero(t, got, "allocations over 10,000 steady packets each side")
	// The loops did their work.
	assert.Positive(t, rx.r.Stats().RecoveredByRTX)
	assert.Positive(t, rx.r.Stats().Reordered)
	assert.Positive(t, tx.h.Stats().RetransmittedPacketsSent)
}
