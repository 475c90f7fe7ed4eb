package fec

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/fuzzseed"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the committed seed corpus of FuzzDecoder")

// The fuzz input is a script of decoder calls, one op after another:
//
//	0 media:   pn delta (int8), length (uint16)        -> OnMedia
//	1 repair:  base delta (int8), mask (uint64), M, Index (uint8),
//	           symbol length (uint16), symbol bytes      -> OnRepair
//	2 expire:  before delta (int8)                       -> Expire
//	3 poll                                               -> PollRecovered
//	4 time:    milliseconds (uint8)
//	5 pending: pn delta (int8)                           -> Pending
//
// Deltas are relative to a cursor that follows the highest packet number
// used; media bytes are a function of the packet number and length.
const (
	opMedia = iota
	opRepair
	opExpire
	opPoll
	opTime
	opPending
	numOps
)

type script struct {
	b   []byte
	cur int64
}

func (s *script) media(pn int64, n int) {
	s.b = append(s.b, opMedia, byte(int8(pn-s.cur)))
	s.b = binary.BigEndian.AppendUint16(s.b, uint16(n))
	s.cur = max(s.cur, pn)
}

func (s *script) repair(b Block, sym []byte) {
	s.b = append(s.b, opRepair, byte(int8(b.Base-s.cur)))
	s.b = binary.BigEndian.AppendUint64(s.b, b.Mask)
	s.b = append(s.b, byte(b.M), byte(b.Index))
	s.b = binary.BigEndian.AppendUint16(s.b, uint16(len(sym)))
	s.b = append(s.b, sym...)
}

func mediaBytes(pn int64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(pn*31 + int64(i)*7)
	}
	return p
}

// decoderSeeds are sessions an encoder produced, with loss, reordering and
// duplicates, plus hostile variations: the committed corpus.
func decoderSeeds(t testing.TB) [][]byte {
	var out [][]byte
	rng := rand.New(rand.NewPCG(11, 12))
	for _, shape := range []struct {
		k, m  int
		loss  float64
		dup   bool
		early bool // repairs before media
	}{
		{4, 2, 0.2, false, false},
		{10, 3, 0.1, true, false},
		{5, 2, 0.3, false, true},
		{1, 1, 0.5, false, false},
		{16, 4, 0.15, true, true},
	} {
		e := fixedEncoder(t, shape.k, shape.m)
		var s script
		pn := int64(0)
		for range 6 {
			var ops []func()
			for i := range shape.k {
				n := 20 + rng.IntN(200)
				p := mediaBytes(pn, n)
				e.AddMedia(0, pn, p, ClassDelta, clock.Time(time.Second), i == shape.k-1)
				if pn := pn; rng.Float64() >= shape.loss {
					ops = append(ops, func() { s.media(pn, n) })
					if shape.dup {
						ops = append(ops, func() { s.media(pn, n) })
					}
				}
				pn++
			}
			var reps []func()
			for _, r := range pollAll(t, e, 0) {
				if rng.Float64() >= shape.loss {
					reps = append(reps, func() { s.repair(r.b, r.sym) })
				}
				pn++ // repair packets take packet numbers too
			}
			if shape.early {
				ops = append(reps, ops...)
			} else {
				ops = append(ops, reps...)
			}
			for _, op := range ops {
				op()
			}
			s.b = append(s.b, opPoll, opPoll, opPoll, opPending, 0, opTime, 20)
		}
		s.b = append(s.b, opExpire, 0x7f)
		out = append(out, s.b)
	}
	// Hostile: inconsistent masks, huge M, a forged symbol, far bases.
	var s script
	s.media(0, 100)
	s.repair(Block{Base: 0, Mask: 0b1011, M: 2, Index: 0}, make([]byte, 102))
	s.repair(Block{Base: 0, Mask: 0b1111, M: 2, Index: 1}, make([]byte, 102))
	s.repair(Block{Base: 0, Mask: 0b1011, M: 200, Index: 199}, make([]byte, 102))
	forged := make([]byte, 102)
	for i := range forged {
		forged[i] = 0xff
	}
	s.repair(Block{Base: 0, Mask: 0b11, M: 1, Index: 0}, forged)
	s.b = append(s.b, opPoll)
	s.repair(Block{Base: 127, Mask: 1 << 63, M: 1}, nil)
	out = append(out, s.b, nil)
	return out
}

func TestFuzzDecoderCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzDecoder", decoderSeeds(t))
	}
	fuzzseed.Check(t, "FuzzDecoder")
	// The honest seeds (the first five) recover packets, and what they
	// recover is what was sent.
	recovered := 0
	for _, seed := range decoderSeeds(t)[:5] {
		d, err := NewDecoder(DecoderConfig{MaxSymbol: 1200, MaxBlocks: 8, MaxRepairs: 16, History: 128})
		require.NoError(t, err)
		for _, r := range runScript(t, d, seed) {
			require.Equal(t, mediaBytes(r.pn, len(r.b)), r.b, "packet %d", r.pn)
			recovered++
		}
	}
	require.Greater(t, recovered, 10)
}

type recoveredPacket struct {
	pn int64
	b  []byte
}

// FuzzDecoder: no script makes the decoder panic, break its accounting or
// hold more than its config allows; recovered packets fit MaxSymbol.
func FuzzDecoder(f *testing.F) {
	for _, s := range decoderSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewDecoder(DecoderConfig{MaxSymbol: 1200, MaxBlocks: 8, MaxRepairs: 16, History: 128})
		require.NoError(t, err)
		runScript(t, d, b)
		st := d.Stats()
		held := int64(0)
		for i := range d.blocks {
			if d.blocks[i].used {
				held += int64(d.blocks[i].nrep)
			}
		}
		require.Equal(t, st.FECPacketsReceived, st.FECPacketsUsed+st.FECPacketsDiscarded+held)
		require.LessOrEqual(t, d.nblocks, 8)
		require.LessOrEqual(t, len(d.reps), 16)
		require.LessOrEqual(t, d.cacheCost, codecCacheBudget+MaxSpan*MaxSpan+64)
		require.Len(t, d.ring, 128*d.stride, "the history never grows")
	})
}

func runScript(t *testing.T, d *Decoder, b []byte) (out []recoveredPacket) {
	var now clock.Time
	var cur int64
	buf := make([]byte, d.cfg.MaxSymbol)
	take := func(n int) []byte {
		if len(b) < n {
			b = b[len(b):]
			return nil
		}
		v := b[:n]
		b = b[n:]
		return v
	}
	for len(b) > 0 {
		op := b[0] % numOps
		b = b[1:]
		switch op {
		case opMedia:
			v := take(3)
			if v == nil {
				return out
			}
			pn := cur + int64(int8(v[0]))
			cur = max(cur, pn)
			d.OnMedia(now, pn, mediaBytes(pn, int(binary.BigEndian.Uint16(v[1:]))%1300))
		case opRepair:
			v := take(13)
			if v == nil {
				return out
			}
			blk := Block{Base: cur + int64(int8(v[0])), Mask: binary.BigEndian.Uint64(v[1:]), M: int(v[9]), Index: int(v[10])}
			n := int(binary.BigEndian.Uint16(v[11:])) % 1500
			sym := make([]byte, n)
			copy(sym, b)
			take(min(n, len(b)))
			d.OnRepair(now, blk, sym)
		case opExpire:
			v := take(1)
			if v == nil {
				return out
			}
			d.Expire(now, cur+int64(int8(v[0])))
		case opPoll:
			if pn, n, ok := d.PollRecovered(buf); ok {
				require.LessOrEqual(t, n, d.cfg.MaxSymbol)
				out = append(out, recoveredPacket{pn, bytes.Clone(buf[:n])})
			}
		case opTime:
			v := take(1)
			if v == nil {
				return out
			}
			now = now.Add(time.Duration(v[0]) * time.Millisecond)
		case opPending:
			v := take(1)
			if v == nil {
				return out
			}
			d.Pending(cur + int64(int8(v[0])))
		}
	}
	return out
}
