package strictcfg

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/fuzzseed"
)

var writeCorpus = flag.Bool("write-corpus", false, "write FuzzDecode's seed corpus under testdata/fuzz")

func seeds() [][]byte {
	return [][]byte{
		[]byte(`{"name":"x","forward":{"delay":"50ms","loss":0.05,"rate":"4mbit","mode":"b"},"steps":[{"rate":1500}]}`),
		[]byte("name: y\nforward:\n  delay: 1.5s\n  rate: 64k\nreverse:\n  loss: 0.1\n"),
		[]byte(`{"forward":{"delay":50}}`),
		[]byte("steps: [{on: true}, {mode: a}]\n"),
	}
}

func TestWriteSeedCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzDecode", seeds())
	}
	fuzzseed.Check(t, "FuzzDecode")
}

// FuzzDecode feeds arbitrary bytes to both syntaxes: Decode returns an error
// or a value, never panics; a JSON document that decodes also decodes
// into the same value a second time (no state leaks between calls).
func FuzzDecode(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var y file
		_ = Decode(b, YAML, &y)
		var a, c file
		if Decode(b, JSON, &a) != nil {
			return
		}
		require.NoError(t, Decode(b, JSON, &c))
		require.Equal(t, a, c)
	})
}
