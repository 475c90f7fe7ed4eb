package arq

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/fuzzseed"
)

var writeCorpus = flag.Bool("write-corpus", false, "write the arq fuzz targets' seed corpora under testdata/fuzz")

// opReader decodes fuzz input: each read past the end gives 0.
type opReader struct{ b []byte }

func (o *opReader) byte() byte {
	if len(o.b) == 0 {
		return 0
	}
	c := o.b[0]
	o.b = o.b[1:]
	return c
}

func (o *opReader) u16() int64 { return int64(o.byte())<<8 | int64(o.byte()) }

// Receiver operations, one opcode byte each (low 4 bits) and arguments.
const (
	opPacket    = iota // pn delta (signed byte) from the highest, deadline offset
	opNonMedia         // pn delta
	opRtx              // fresh pn delta, original pn back-offset, deadline offset
	opRecovered        // back-offset
	opForget           // back-offset, length
	opTail             // missing
	opPoll             // -
	opTime             // advance u16 x 100 µs
	opRTT              // sample u16 x 100 µs
	opHold             // hold until now + byte x ms, or off for 0
	opJump             // pn += u16 << 16 (a huge jump)
	opCount
)

// receiverSeeds are the fuzz targets' seed inputs: a stream with losses,
// reordering, retransmissions, FEC, a tail loss, an overflow.
func receiverSeeds() [][]byte {
	var steady []byte
	for i := range 60 {
		steady = append(steady, opTime, 0, 10)
		switch {
		case i%7 == 3:
			steady = append(steady, opPacket, 2, 30) // skip one
		case i%11 == 5:
			steady = append(steady, opNonMedia, 1)
		default:
			steady = append(steady, opPacket, 1, 30)
		}
		steady = append(steady, opPoll)
		if i%9 == 8 {
			steady = append(steady, opRtx, 1, 4, 30)
		}
	}
	return [][]byte{
		steady,
		{opRTT, 3, 232, opPacket, 1, 30, opPacket, 5, 30, opTime, 0, 60, opPoll, opTime, 3, 232, opPoll, opRtx, 1, 3, 30, opPoll},
		{opPacket, 1, 30, opHold, 40, opPacket, 3, 30, opTime, 1, 0, opPoll, opRecovered, 1, opTime, 4, 0, opPoll},
		{opPacket, 1, 200, opTail, 5, opTime, 0, 200, opPoll, opPacket, 9, 200, opPoll},
		{opPacket, 1, 30, opJump, 1, 0, opPoll, opPacket, 0x80, 30, opForget, 10, 20, opPoll},
		{opPacket, 1, 30, opPacket, 0x7f, 30, opPacket, 0x7f, 30, opPacket, 0x7f, 30, opPacket, 0x7f, 30, opPoll, opPoll},
	}
}

func TestFuzzCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzReceiver", receiverSeeds())
		fuzzseed.Write(t, "FuzzHistory", historySeeds())
	}
	fuzzseed.Check(t, "FuzzReceiver")
	fuzzseed.Check(t, "FuzzHistory")
}

// checkReceiver asserts the receiver's invariants: the list is in
// packet-number order below the next expected number, its count is right
// and within the bound, its memory did not grow. (Plain comparisons: it
// runs after every fuzz step.)
func checkReceiver(t *testing.T, r *Receiver, ringLen int) {
	if len(r.list) != ringLen || r.tail-r.head > int64(len(r.list)) || r.head > r.prov || r.prov > r.tail {
		t.Fatalf("ring: len %d (was %d), head %d prov %d tail %d", len(r.list), ringLen, r.head, r.prov, r.tail)
	}
	live := 0
	last := int64(-1)
	for p := r.head; p < r.tail; p++ {
		e := &r.list[p&r.mask]
		if e.pn <= last || e.pn >= r.next {
			t.Fatalf("list out of order at %d: pn %d after %d, next %d", p, e.pn, last, r.next)
		}
		last = e.pn
		if !e.dead {
			live++
		}
	}
	if live != r.live || live > r.cfg.MaxMissing {
		t.Fatalf("live %d, counted %d, bound %d", live, r.live, r.cfg.MaxMissing)
	}
}

// FuzzReceiver runs arbitrary sequences of receiver operations: no panic,
// bounded memory, the list's invariants hold, PollNACK's batches are
// ascending, unique and bounded, and after a poll nothing is overdue.
func FuzzReceiver(f *testing.F) {
	for _, s := range receiverSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReceiver(ReceiverConfig{MaxMissing: 64})
		require.NoError(t, err)
		ringLen := len(r.list)
		o := &opReader{b: b}
		now := clock.Time(0)
		top := int64(0)
		var rtt RTT
		var holdUntil clock.Time
		hold := func(pn int64) clock.Time { return holdUntil }
		var dst []int64
		for steps := 0; len(o.b) > 0 && steps < 4096; steps++ {
			switch o.byte() % opCount {
			case opPacket:
				top += int64(int8(o.byte()))
				r.OnPacket(now, top, now.Add(time.Duration(o.byte())*10*time.Millisecond))
			case opNonMedia:
				top += int64(int8(o.byte()))
				r.OnPacket(now, top, clock.Never)
			case opRtx:
				top += int64(int8(o.byte()))
				r.OnRetransmission(now, top, top-int64(o.byte()), now.Add(time.Duration(o.byte())*10*time.Millisecond))
			case opRecovered:
				r.Recovered(now, top-int64(o.byte()))
			case opForget:
				from := top - int64(o.byte())
				r.Forget(now, from, from+int64(o.byte())-4)
			case opTail:
				r.ExpectTail(now, top, int(o.byte())-8, now.Add(time.Second))
			case opPoll:
				dst, _ = r.PollNACK(now, dst[:0])
				for i := 1; i < len(dst); i++ {
					if dst[i] <= dst[i-1] {
						t.Fatalf("batch not ascending and unique: %v", dst)
					}
				}
				if len(dst) > 64 {
					t.Fatalf("batch of %d, bound 64", len(dst))
				}
				if next := r.NextTimeout(); next <= now {
					t.Fatalf("next timeout %v not after the poll at %v", next, now)
				}
			case opTime:
				now = now.Add(time.Duration(o.u16()) * 100 * time.Microsecond)
			case opRTT:
				rtt.Add(now, time.Duration(o.u16())*100*time.Microsecond)
				r.SetRTT(&rtt)
			case opHold:
				if d := o.byte(); d == 0 {
					r.SetHoldFunc(nil)
				} else {
					holdUntil = now.Add(time.Duration(d) * time.Millisecond)
					r.SetHoldFunc(hold)
				}
			case opJump:
				top += o.u16() << 16
			}
			checkReceiver(t, r, ringLen)
		}
	})
}

// historySeeds: puts, NACKs, acks, polls, expiry, a huge packet.
func historySeeds() [][]byte {
	var s []byte
	for i := range 40 {
		s = append(s, 0, byte(i*37), 1, 20) // put
		if i%5 == 4 {
			s = append(s, 1, 3, 2, 5, 3, 0) // nack, ack, poll
		}
	}
	return [][]byte{s, {0, 255, 0, 1, 0, 255, 0, 1, 1, 1, 3, 0, 4, 200}, {0, 10, 0, 0, 1, 0, 1, 0, 3, 255}}
}

// FuzzHistory runs arbitrary sequences of history operations: the memory
// bound holds, what comes back is what was stored, and nothing leaves that
// the caller's one-way delay says is late.
func FuzzHistory(f *testing.F) {
	for _, s := range historySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxBytes = 4096
		h, err := NewHistory(HistoryConfig{MaxBytes: maxBytes, MaxPackets: 16})
		require.NoError(t, err)
		o := &opReader{b: b}
		now := clock.Time(0)
		pn := int64(0)
		deadlines := map[int64]clock.Time{}
		sizes := map[int64]int{}
		dst := make([]byte, maxBytes)
		for steps := 0; len(o.b) > 0 && steps < 4096; steps++ {
			switch o.byte() % 5 {
			case 0: // put: size x 20 bytes, deadline in ms
				n := int(o.byte()) * 20
				d := now.Add(time.Duration(o.byte()) * time.Millisecond)
				pn += 1 + int64(o.byte()%3)
				h.Put(now, pn, bytes.Repeat([]byte{byte(pn)}, n), d, o.byte())
				deadlines[pn], sizes[pn] = d, n
			case 1:
				h.OnNACK(now, pn-int64(o.byte()))
			case 2:
				h.Acked(pn - int64(o.byte()))
			case 3:
				oneWay := time.Duration(o.byte()) * time.Millisecond
				if orig, n, d, ok := h.PollRetransmit(now, oneWay, dst); ok {
					if now.Add(oneWay) >= d || deadlines[orig] != d || n != sizes[orig] || bytes.Count(dst[:n], []byte{byte(orig)}) != n {
						t.Fatalf("retransmission of %d: %d bytes, deadline %v (put %v, %d bytes), now %v + %v", orig, n, d, deadlines[orig], sizes[orig], now, oneWay)
					}
				}
			case 4:
				now = now.Add(time.Duration(o.byte()) * time.Millisecond)
				if o.byte()%2 == 0 {
					h.Expire(now)
				}
			}
			if s := h.Stats(); s.Bytes > maxBytes || s.Packets > 16 {
				t.Fatalf("holds %d bytes in %d packets", s.Bytes, s.Packets)
			}
		}
	})
}
