package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/bench"
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
	dir := filepath.Join("testdata", "fuzz", "FuzzPayload")
	if !*writePayloadCorpus {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.NotEmpty(t, entries)
		return
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, s := range payloadSeeds() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644))
	}
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
