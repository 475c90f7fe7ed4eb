package netem_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/fuzzseed"
	"github.com/spillway-rt/spillway/netem"
)

var updateTraces = flag.Bool("netem.update-traces", false, "rewrite testdata/traces from their generators")

// Trace generators for testdata/traces (see its README). Integer arithmetic
// only, so every platform generates the same bytes.

// rateTrace appends to ms the opportunities of rate (bit/s) during
// [from, to) ms: an opportunity whenever 1,500 bytes have accumulated.
// acc carries the fraction over between calls.
func rateTrace(ms []int64, acc *int64, rate, from, to int64) []int64 {
	const opp = netem.TraceOpportunityBytes * 8 * 1000 // bit*ms/s
	for t := from + 1; t <= to; t++ {
		*acc += rate // bits accumulated during the millisecond ending at t, times 1000
		for *acc >= opp {
			*acc -= opp
			ms = append(ms, t)
		}
	}
	return ms
}

// genConst12 is 12 Mbit/s: one opportunity every millisecond, for 1 s.
func genConst12() []int64 {
	var acc int64
	return rateTrace(nil, &acc, 12_000_000, 0, 1000)
}

// genStep is 8 Mbit/s for 12 s, then 2 Mbit/s for 12 s (both whole numbers
// of opportunities, so the period ends on the last one: 24 s).
func genStep() []int64 {
	var acc int64
	ms := rateTrace(nil, &acc, 8_000_000, 0, 12_000)
	return rateTrace(ms, &acc, 2_000_000, 12_000, 24_000)
}

// genLTE is 30 s of a cellular-like link: every 100 ms the rate is
// multiplied by a random factor in [0.75, 1.25], nudged by 0.08 towards
// 6-15 Mbit/s and kept within 0.5-40 Mbit/s, with three outages of 300-800
// ms without any opportunity; the randomness is a PCG with a fixed seed.
func genLTE() []int64 {
	rng := rand.New(rand.NewPCG(2026, 4))
	rate := int64(10_000_000)
	outages := [][2]int64{{6_000, 6_300}, {14_200, 15_000}, {23_500, 24_000}}
	var ms []int64
	var acc int64
	for t := int64(0); t < 30_000; t += 100 {
		f := 750 + rng.Int64N(501)
		switch {
		case rate < 6_000_000:
			f += 80
		case rate > 15_000_000:
			f -= 80
		}
		rate = rate * f / 1000
		rate = min(max(rate, 500_000), 40_000_000)
		r := rate
		for _, o := range outages {
			if t >= o[0] && t < o[1] {
				r = 0
			}
		}
		ms = rateTrace(ms, &acc, r, t, t+100)
	}
	if ms[len(ms)-1] != 30_000 { // the period is the last time: make it 30 s
		ms = append(ms, 30_000)
	}
	return ms
}

var traceGenerators = map[string]func() []int64{
	"const-12mbps.trace": genConst12,
	"step-8-2mbps.trace": genStep,
	"lte-like.trace":     genLTE,
}

func TestTraceFilesUpToDate(t *testing.T) {
	for name, gen := range traceGenerators {
		t.Run(name, func(t *testing.T) {
			tr, err := netem.NewTrace(gen())
			require.NoError(t, err)
			var buf bytes.Buffer
			_, err = tr.WriteTo(&buf)
			require.NoError(t, err)
			path := filepath.Join("testdata", "traces", name)
			if *updateTraces {
				require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(buf.Bytes(), got), "%s is not what its generator makes: run go test -run TestTraceFilesUpToDate -netem.update-traces ./netem/", path)
		})
	}
	lte, err := netem.LoadTrace("testdata/traces/lte-like.trace")
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, lte.Period())
	step, err := netem.LoadTrace("testdata/traces/step-8-2mbps.trace")
	require.NoError(t, err)
	assert.Equal(t, int64(5_000_000), step.MeanRate())
	c, err := netem.LoadTrace("testdata/traces/const-12mbps.trace")
	require.NoError(t, err)
	assert.Equal(t, int64(12_000_000), c.MeanRate())
	assert.Equal(t, 1000, c.Len())
	assert.Equal(t, time.Second, c.Period())
}

func TestParseTraceErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no delivery opportunity"},
		{"blank lines only", "\n\n  \n", "no delivery opportunity"},
		{"not a number", "1\n2\nabc\n", "line 3"},
		{"fraction", "1\n2.5\n", "line 2"},
		{"negative", "1\n-4\n", "line 2"},
		{"goes back", "1\n5\n5\n4\n", "line 4: 4 ms goes back before 5 ms"},
		{"too late", "1\n100000000000\n", "line 2"},
		{"zero period", "0\n0\n", "period would be empty"},
		{"blank line counted", "1\n\n\nx\n", "line 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := netem.ParseTrace(strings.NewReader(tt.in))
			require.ErrorIs(t, err, netem.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := netem.LoadTrace("testdata/traces/no-such.trace")
	assert.Error(t, err)
	_, err = netem.NewTrace([]int64{3, 2})
	assert.ErrorIs(t, err, netem.ErrInvalidConfig)
}

func TestTraceRoundTrip(t *testing.T) {
	tr, err := netem.ParseTrace(strings.NewReader(" 0\n1\r\n1\n\n3\n"))
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1, 1, 3}, tr.Millis())
	assert.Equal(t, 3*time.Millisecond, tr.Period())
	assert.Equal(t, int64(4*1500*8*1000/3), tr.MeanRate())
	var buf bytes.Buffer
	_, err = tr.WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, "0\n1\n1\n3\n", buf.String())

	// A config with a trace survives JSON.
	cfg := netem.LinkConfig{Trace: tr, Overhead: 28}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"trace":[0,1,1,3]`)
	var back netem.LinkConfig
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, tr.Millis(), back.Trace.Millis())
	require.NoError(t, back.Validate())
	assert.Error(t, json.Unmarshal([]byte(`{"trace":[2,1]}`), &back))
	assert.Error(t, json.Unmarshal([]byte(`{"trace":"x"}`), &back))
}

// traceSeeds are FuzzParseTrace's seeds, committed under
// testdata/fuzz/FuzzParseTrace by TestTraceSeedCorpus -write-trace-corpus.
var traceSeeds = []string{"1\n2\n3\n", "0\n0\n5\n", " 7 \r\n\n7\n", "x", "3\n2\n", "0\n", "86400000\n", ""}

var writeTraceCorpus = flag.Bool("write-trace-corpus", false, "write FuzzParseTrace's seed corpus under testdata/fuzz")

func TestTraceSeedCorpus(t *testing.T) {
	if *writeTraceCorpus {
		seeds := make([][]byte, len(traceSeeds))
		for i, s := range traceSeeds {
			seeds[i] = []byte(s)
		}
		fuzzseed.Write(t, "FuzzParseTrace", seeds)
	}
	fuzzseed.Check(t, "FuzzParseTrace")
}

func FuzzParseTrace(f *testing.F) {
	for _, seed := range traceSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := netem.ParseTrace(bytes.NewReader(b))
		if err != nil {
			require.ErrorIs(t, err, netem.ErrInvalidConfig)
			return
		}
		require.Positive(t, tr.Period())
		require.GreaterOrEqual(t, tr.MeanRate(), int64(0))
		// Round trip: what WriteTo writes parses to the same trace.
		var buf bytes.Buffer
		_, err = tr.WriteTo(&buf)
		require.NoError(t, err)
		back, err := netem.ParseTrace(&buf)
		require.NoError(t, err)
		require.Equal(t, tr.Millis(), back.Millis())
		require.NoError(t, (&netem.LinkConfig{Trace: tr}).Validate())
	})
}

// A datagram reaching an idle trace link exactly at a period's end leaves
// at the opportunity there (the period's last, at its end): it waited for
// the next period's first.
func TestTraceOpportunityAtPeriodEnd(t *testing.T) {
	tests := []struct {
		name string
		ms   []int64
		want time.Duration // when the datagram sent at 2 s leaves
	}{
		{"every ms from 1", []int64{1, 2, 3, 1000}, 2 * time.Second},
		{"two at the end", []int64{5, 1000, 1000}, 2 * time.Second},
		{"from 0", []int64{0, 500, 1000}, 2 * time.Second},
		{"not on a boundary", []int64{300, 600}, 2*time.Second + 100*time.Millisecond}, // period 600 ms: 2 s is 200 ms into it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := netem.NewTrace(tt.ms)
			require.NoError(t, err)
			src := &source{interval: 2 * time.Second, size: 100, left: 2} // at 0 s and 2 s
			s, k := oneWay(t, 1, netem.LinkConfig{Trace: tr}, src)
			s.RunUntil(clock.Never)
			require.Len(t, k.arrivals, 2)
			assert.Equal(t, clock.Time(tt.want), k.arrivals[1].at)
		})
	}
}
