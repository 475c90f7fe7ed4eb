package main

import (
	"bytes"
	"flag"
	"testing"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/internal/fuzzseed"
)

func payloadSeeds() [][]byte {
	var out [][]byte
	for _, size := range []int{payloadMin, 22, 100, 1200, 5000} {
		for _, src := range []bench.Source{bench.SourceAudio, bench.SourceVideo} {
			b := make([]byte, size)
			encodePayload(b, src, int64(size)*3)
			out = append(out, b)
		}
	}
	return out
}

var writePayloadCorpus = flag.Bool("write-payload-corpus", false, "write FuzzPayload's seed corpus")

// TestPayloadCorpus writes (with -write-payload-corpus) or checks the seed
// corpus of FuzzPayload.
func TestPayloadCorpus(t *testing.T) {
	if *writePayloadCorpus {
		fuzzseed.Write(t, "FuzzPayload", payloadSeeds())
	}
	fuzzseed.Check(t, "FuzzPayload")
}

// FuzzPayload: the player's frame verifier never panics, and whatever it
// accepts is exactly what push would have written for that source,
// sequence and length (a round trip).
func FuzzPayload(f *testing.F) {
	for _, s := range payloadSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodePayload(b)
		if err != nil {
			return
		}
		again := make([]byte, len(b))
		encodePayload(again, h.Source, h.Seq)
		if !bytes.Equal(b, again) {
			t.Fatalf("accepted a payload push would not write: source %v seq %d len %d", h.Source, h.Seq, h.Len)
		}
	})
}
