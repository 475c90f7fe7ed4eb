package fec

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"

	"github.com/spillway-rt/spillway/clock"
)

// The benchmarks of DESIGN §9: 10+3 blocks of 1,200-byte packets, 3 shards
// missing for recovery. SetBytes counts the 12,000 media bytes of a block,
// so MB/s compare directly with the raw library's (BenchmarkRaw*), run in
// the same `go test -bench . ./fec/`.
const (
	benchK    = 10
	benchM    = 3
	benchSize = 1200
)

func benchPackets() [][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	pkts := make([][]byte, benchK)
	for i := range pkts {
		pkts[i] = randPacket(rng, benchSize, benchSize)
	}
	return pkts
}

func benchEncoder(b *testing.B) *Encoder {
	e, err := NewEncoder(EncoderConfig{MaxK: benchK, MaxM: benchM, FixedK: benchK, FixedM: benchM})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// encodeBlock sends one block through e: k AddMedia, m PollRepair.
func encodeBlock(e *Encoder, now clock.Time, pn int64, pkts [][]byte, dst []byte) int {
	deadline := now.Add(time.Second)
	for i, p := range pkts {
		e.AddMedia(now, pn+int64(i), p, ClassDelta, deadline, i == len(pkts)-1)
	}
	n := 0
	for {
		_, _, _, ok := e.PollRepair(now, dst)
		if !ok {
			return n
		}
		n++
	}
}

func BenchmarkSteadyEncode(b *testing.B) {
	e := benchEncoder(b)
	pkts := benchPackets()
	dst := make([]byte, DefaultMaxSymbol+SymbolOverhead)
	var now clock.Time
	var pn int64
	for range 100 { // warm up: buffers, blocks
		encodeBlock(e, now, pn, pkts, dst)
		pn += benchK
	}
	b.ReportAllocs()
	b.SetBytes(benchK * benchSize)
	for b.Loop() {
		if encodeBlock(e, now, pn, pkts, dst) != benchM {
			b.Fatal("missing repairs")
		}
		pn += benchK
		now += clock.Time(time.Millisecond)
	}
}

// benchRepairs returns the repair symbols of benchPackets as a block at
// base 0 (a symbol does not depend on the base).
func benchRepairs(b testing.TB) []repair {
	e, err := NewEncoder(EncoderConfig{MaxK: benchK, MaxM: benchM, FixedK: benchK, FixedM: benchM})
	if err != nil {
		b.Fatal(err)
	}
	for i, p := range benchPackets() {
		e.AddMedia(0, int64(i), p, ClassDelta, clock.Time(time.Second), i == benchK-1)
	}
	return pollAll(b, e, 0)
}

func BenchmarkSteadyDecode(b *testing.B) {
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	pkts := benchPackets()
	reps := benchRepairs(b)
	var pn int64
	var now clock.Time
	block := func() {
		for i, p := range pkts {
			d.OnMedia(now, pn+int64(i), p)
		}
		for _, r := range reps {
			blk := r.b
			blk.Base = pn
			d.OnRepair(now, blk, r.sym)
		}
		pn += benchK + benchM
		now += clock.Time(time.Millisecond)
	}
	for range 100 {
		block()
	}
	b.ReportAllocs()
	b.SetBytes(benchK * benchSize)
	for b.Loop() {
		block()
	}
	if d.Stats().PacketsRecovered != 0 {
		b.Fatal("recovered without loss")
	}
}

// BenchmarkRecover: each block loses members 0, 4 and 9 and is rebuilt from
// its 3 repairs; the recovered packets are polled out. The library's
// reconstruction allocates (about 5 objects per block in v1.14.2).
func BenchmarkRecover(b *testing.B) {
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	pkts := benchPackets()
	reps := benchRepairs(b)
	out := make([]byte, DefaultMaxSymbol)
	var pn int64
	var now clock.Time
	block := func() {
		for i, p := range pkts {
			if i != 0 && i != 4 && i != 9 {
				d.OnMedia(now, pn+int64(i), p)
			}
		}
		for _, r := range reps {
			blk := r.b
			blk.Base = pn
			d.OnRepair(now, blk, r.sym)
		}
		for range benchM {
			if _, _, ok := d.PollRecovered(out); !ok {
				b.Fatal("not recovered")
			}
		}
		pn += benchK + benchM
		now += clock.Time(time.Millisecond)
	}
	for range 100 {
		block()
	}
	b.ReportAllocs()
	b.SetBytes(benchK * benchSize)
	for b.Loop() {
		block()
	}
}

func rawShards() [][]byte {
	sh := make([][]byte, benchK+benchM)
	for i, p := range benchPackets() {
		sh[i] = bytes.Clone(p)
	}
	for i := benchK; i < len(sh); i++ {
		sh[i] = make([]byte, benchSize)
	}
	return sh
}

// BenchmarkRawEncode is the library alone: Encode of 10+3 x 1,200 B.
func BenchmarkRawEncode(b *testing.B) {
	rs, err := reedsolomon.New(benchK, benchM)
	if err != nil {
		b.Fatal(err)
	}
	sh := rawShards()
	b.ReportAllocs()
	b.SetBytes(benchK * benchSize)
	for b.Loop() {
		if err := rs.Encode(sh); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawReconstruct is the library alone: ReconstructData of 10+3 x
// 1,200 B with data shards 0, 4 and 9 missing.
func BenchmarkRawReconstruct(b *testing.B) {
	rs, err := reedsolomon.New(benchK, benchM)
	if err != nil {
		b.Fatal(err)
	}
	sh := rawShards()
	if err := rs.Encode(sh); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(benchK * benchSize)
	for b.Loop() {
		sh[0], sh[4], sh[9] = sh[0][:0], sh[4][:0], sh[9][:0]
		if err := rs.ReconstructData(sh); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyTable: computing one lane's policy table (every k up to
// 48, m up to 16, bursty loss), which happens when the conditions change
// (every 100 ms to 1 s), once per lane and ARQ-round count in use.
func BenchmarkPolicyTable(b *testing.B) {
	var ev evaluator
	var t table
	md := newModel(0.05, 3)
	pp := policyParams{maxK: DefaultMaxK, maxM: DefaultMaxM, maxOverhead: DefaultMaxOverhead, target: DefaultTargetKey}
	b.ReportAllocs()
	for b.Loop() {
		ev.compute(&t, md, pp, 0, 1, 1)
	}
}
