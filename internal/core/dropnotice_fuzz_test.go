package core

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/spillway-rt/spillway/internal/fuzzseed"
	"github.com/spillway-rt/spillway/wire"
)

// The fuzz input is a script of operations on an established connection's
// receiving side (and its sender's acknowledgement handling), one after
// another: an op byte, then its operands.
const (
	dnOpNotices  = iota // n (1 byte), then n x 12 bytes of notices (truncated input: fewer bytes)
	dnOpAck             // 12 bytes (or fewer) of acknowledgement
	dnOpFragment        // stream, frame id (2), fragment index, fragment count: one fragment arrives
	dnOpTime            // advance ms (1 byte) and run the timers
	dnOpCount
)

func dropNoticeSeeds() [][]byte {
	notice := func(seq uint16, stream byte, flags byte, first, frames uint16, run uint32) []byte {
		b := make([]byte, dropNoticeLen)
		binary.BigEndian.PutUint16(b[0:], seq)
		b[2], b[3] = stream, flags
		binary.BigEndian.PutUint16(b[4:], first)
		binary.BigEndian.PutUint16(b[6:], frames)
		binary.BigEndian.PutUint32(b[8:], run)
		return b
	}
	frag := func(stream byte, id uint16, idx, count byte) []byte {
		return []byte{dnOpFragment, stream, byte(id >> 8), byte(id), idx, count}
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	ops := func(op byte, n byte, notices ...[]byte) []byte {
		return cat(append([][]byte{{op, n}}, notices...)...)
	}
	return [][]byte{
		// A frame being assembled, then declared dropped; a later frame.
		cat(frag(1, 0, 0, 3), frag(1, 1, 0, 3), ops(dnOpNotices, 1, notice(0, 1, 0, 1, 1, 0)), frag(1, 1, 1, 3),
			frag(1, 2, 0, 1), []byte{dnOpTime, 250}, []byte{dnOpTime, 250}),
		// A run of packet numbers and a range of frames; repeated (a
		// duplicate), then one far ahead.
		cat(ops(dnOpNotices, 2, notice(5, 2, dropFlagPackets, 7, 1, 10<<8|3), notice(6, 2, 0, 8, 40, 0)),
			ops(dnOpNotices, 1, notice(5, 2, dropFlagPackets, 7, 1, 10<<8|3)),
			ops(dnOpNotices, 1, notice(0x8000, 2, 0, 0xfff, 0xfff, 0))),
		// Malformed notices: bad stream, flags, zero run, frames past the
		// id space.
		ops(dnOpNotices, 4, notice(1, 16, 0, 0, 1, 0), notice(2, 0, 2, 0, 1, 0), notice(3, 0, 1, 0, 0, 0x100),
			notice(4, 0, 0, 0, 0x1000, 0)),
		// Acknowledgements: short, exact, far.
		cat([]byte{dnOpAck, 1, 2, 3}, []byte{dnOpAck, 0, 9, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		// Many ranges on one stream: more than it remembers.
		func() []byte {
			var out []byte
			for i := range 40 {
				out = append(out, ops(dnOpNotices, 1, notice(uint16(i), 3, 0, uint16(i*3), 1, 0))...)
			}
			return out
		}(),
	}
}

func TestFuzzDropNoticesCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzDropNotices", dropNoticeSeeds())
	}
	fuzzseed.Check(t, "FuzzDropNotices")
}

// FuzzDropNotices: no script of drop notices, acknowledgements and
// fragments makes the receiver panic or lets its memory grow past its
// bounds; a frame declared dropped is never completed afterwards.
func FuzzDropNotices(f *testing.F) {
	for _, s := range dropNoticeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newPair(t, pairOpts{})
		sc := p.connected()
		r := &sc.rcv
		r.peerFragSize = 100
		now := p.sim.Now()
		for steps := 0; len(b) > 0 && steps < 512; steps++ {
			op := b[0] % dnOpCount
			b = b[1:]
			switch op {
			case dnOpNotices:
				if len(b) < 1 {
					return
				}
				n := int(b[0])
				b = b[1:]
				k := min(n*dropNoticeLen, len(b))
				r.handleDropNotices(now, b[:k])
				b = b[k:]
			case dnOpAck:
				k := min(dropAckLen, len(b))
				sc.snd.handleDropAck(b[:k])
				b = b[k:]
			case dnOpFragment:
				if len(b) < 5 {
					return
				}
				stream := b[0] % wire.MaxStreams
				id := (uint16(b[1])<<8 | uint16(b[2])) & wire.FrameIDMask
				count := max(uint16(b[4]), 1)
				idx := uint16(b[3]) % count
				b = b[5:]
				h := wire.DataHeader{Stream: stream, FrameID: id, FragIndex: idx, FragCount: count}
				size := 100
				if idx == count-1 {
					size = 50
				}
				payload := make([]byte, size)
				r.assemble(now, &h, payload, 0, false, false)
			case dnOpTime:
				if len(b) < 1 {
					return
				}
				now = now.Add(time.Duration(b[0]) * time.Millisecond)
				b = b[1:]
				r.handleTimeout(now)
			}
			for _, st := range r.streams {
				if st == nil {
					continue
				}
				if st.drops.n > recvDropRanges || len(st.active) > len(st.slots) {
					t.Fatalf("stream %d: %d drop ranges, %d active slots", st.id, st.drops.n, len(st.active))
				}
				for _, a := range st.active {
					if st.drops.has(st.slots[a].id) {
						t.Fatalf("stream %d: frame %d declared dropped but still assembling", st.id, st.slots[a].id)
					}
				}
			}
			if sc.snd.notices.n > maxDropNotices {
				t.Fatalf("%d notices", sc.snd.notices.n)
			}
		}
	})
}
