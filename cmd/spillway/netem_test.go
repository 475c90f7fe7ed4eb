package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
	"github.com/spillway-rt/spillway/wire"
)

// No test here asserts on wall-clock timing.

func TestNetemFlagErrorsNameTheFlag(t *testing.T) {
	// -duration keeps a case whose error went unnoticed from running forever.
	base := []string{"netem", "-listen", "127.0.0.1:0", "-forward", "127.0.0.1:9", "-duration", "1ms", "-wake-early", "-1ns"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-jitter-dist", "bogus"}, `invalid value "bogus" for flag -jitter-dist`},
		{[]string{"-rev-jitter-dist", "x"}, "-rev-jitter-dist"},
		{[]string{"-delay", "-5ms"}, "-delay -5ms: must not be negative"},
		{[]string{"-rev-delay", "-1s"}, "-rev-delay -1s: must not be negative"},
		{[]string{"-jitter", "2h"}, "-jitter 2h0m0s: at most 1h0m0s"},
		{[]string{"-loss", "1.5"}, "-loss 1.5: must be in [0, 1]"},
		{[]string{"-rev-loss", "-0.1"}, "-rev-loss -0.1: must be in [0, 1]"},
		{[]string{"-rate", "fast"}, "-rate"},
		{[]string{"-rate", "-4M"}, "-rate -4000000: must be in"},
		{[]string{"-rate", "0.5"}, `"0.5" is under 1 bit/s`},
		{[]string{"-queue-bytes", "-1"}, "-queue-bytes -1: must not be negative"},
		{[]string{"-queue-delay", "-1ms"}, "-queue-delay -1ms: must not be negative"},
		{[]string{"-overhead", "70000"}, "-overhead 70000: must be in [0, 65535]"},
		{[]string{"-stats-interval", "-1s"}, "-stats-interval"},
		{[]string{"-duration", "-1s"}, "-duration"},
		{[]string{"-forward", "nohost"}, "-forward"},
		{[]string{"-forward", ":7000"}, "-forward"},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append(append([]string{}, base...), tc.args...), &out, &errOut)
			assert.Equal(t, exitUsage, code, "stderr: %s", errOut.String())
			assert.Contains(t, errOut.String(), tc.want)
			assert.Contains(t, errOut.String(), "Usage: spillway netem")
			assert.Empty(t, out.String())
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"netem", "-forward", "127.0.0.1:9"}, "-listen is required"},
		{[]string{"netem", "-listen", ":0"}, "-forward is required"},
		{[]string{"netem", "-measure", "-listen", ":0"}, "-measure makes its own"},
		// Forwarding to itself: one datagram looped for ever.
		{[]string{"netem", "-listen", "127.0.0.1:21141", "-forward", "127.0.0.1:21141", "-duration", "1ms"}, "every datagram would come back"},
		{[]string{"netem", "-listen", ":21141", "-forward", "127.0.0.1:21141", "-duration", "1ms"}, "every datagram would come back"},
		// -measure keeps every datagram's delay error: 100000 h ran out of memory.
		{[]string{"netem", "-measure", "-duration", "100000h"}, "-measure -duration 100000h0m0s: at most 1h0m0s"},
	} {
		var out, errOut bytes.Buffer
		assert.Equal(t, exitUsage, run(t.Context(), tc.args, &out, &errOut))
		assert.Contains(t, errOut.String(), tc.want)
	}
}

func TestNetemRevFlagsOverrideOneField(t *testing.T) {
	o, _, err := parseNetemFlags([]string{"-listen", ":0", "-forward", "127.0.0.1:9",
		"-delay", "50ms", "-jitter", "5ms", "-jitter-dist", "normal", "-loss", "0.1", "-rate", "4M",
		"-queue-delay", "100ms", "-overhead", "28", "-reorder",
		"-rev-loss", "0", "-rev-delay", "20ms", "-rev-reorder=false"}, &bytes.Buffer{})
	require.NoError(t, err)
	fwd := netem.LinkConfig{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond, JitterDist: netem.Normal,
		Loss: 0.1, Rate: 4_000_000, QueueDelay: 100 * time.Millisecond, Overhead: 28, Reorder: true}
	rev := fwd
	rev.Loss, rev.Delay, rev.Reorder = 0, 20*time.Millisecond, false
	assert.Equal(t, fwd, o.Fwd)
	assert.Equal(t, rev, o.Rev)

	o, _, err = parseNetemFlags([]string{"-measure"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, o.Measure)
	assert.False(t, o.delaySt)
}

func TestBitRateFlag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4000000": 4_000_000, "4M": 4_000_000, "2.5Mbit": 2_500_000,
		"500k": 500_000, "1G": 1_000_000_000, "64kbps": 64_000} {
		var r bitRate
		require.NoError(t, r.Set(in), in)
		assert.EqualValues(t, want, r, in)
	}
	for _, in := range []string{"", "M", "fast", "1T", "NaN", "1e30"} {
		var r bitRate
		assert.Error(t, r.Set(in), in)
	}
}

func TestNetemForwardsAndWritesCaptures(t *testing.T) {
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer server.Close()
	go func() { // echo
		buf := make([]byte, 2048)
		for {
			n, from, err := server.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = server.WriteToUDPAddrPort(buf[:n], from)
		}
	}()

	dir := filepath.Join(t.TempDir(), "caps")
	o, fs, err := parseNetemFlags([]string{"-listen", "127.0.0.1:0", "-forward", server.LocalAddr().String(),
		"-delay", "2ms", "-pcap", dir, "-wake-early", "200us", "-stats-interval", "10ms"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.NotNil(t, fs)
	addrs := make(chan netip.AddrPort, 1)
	o.onListen = func(a netip.AddrPort) { addrs <- a }
	listen, err := resolveUDP(o.Listen, true)
	require.NoError(t, err)
	target, err := resolveUDP(o.Forward, false)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runNetem(ctx, o, listen, target, &out, &errOut) }()
	var proxy netip.AddrPort
	select {
	case proxy = <-addrs:
	case err := <-done:
		t.Fatalf("netem ended before listening: %v\n%s", err, errOut.String())
	}

	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer client.Close()
	const n = 30
	buf := make([]byte, 64)
	for i := range n {
		ping, err := (&wire.Ping{DstConnID: 9, PacketNumber: uint32(i), Echo: 1}).Append(nil)
		require.NoError(t, err)
		_, err = client.WriteToUDPAddrPort(ping, proxy)
		require.NoError(t, err)
		require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, _, err = client.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "echo %d", i)
	}
	cancel()
	require.NoError(t, <-done)

	keys, v := kv(t, onlyLine(t, out.String()))
	assert.Equal(t, "fwd_offered", keys[0])
	for _, k := range []string{"fwd_offered", "fwd_delivered", "rev_offered", "rev_delivered"} {
		assert.Equal(t, "30", v[k], k)
	}
	assert.Equal(t, "0", v["fwd_lost"])
	assert.Contains(t, errOut.String(), "listening on "+proxy.String())

	for _, f := range []string{"netem-fwd.pcap", "netem-rev.pcap"} {
		recs, err := pcap.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err, f)
		require.Len(t, recs, n, f)
		for i, r := range recs {
			require.NoError(t, r.Err)
			assert.EqualValues(t, i, r.Spillway.PacketNumber)
			assert.Equal(t, wire.TypePing, r.Spillway.Type)
		}
	}
}

func TestNetemMeasureRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"netem", "-measure", "-duration", "300ms", "-delay", "5ms"}, &out, &errOut)
	require.Equal(t, exitOK, code, "stderr: %s", errOut.String())
	s := out.String()
	// The figures are printed, never judged: timing is not asserted here.
	assert.Contains(t, s, "timer_lateness_us p50=")
	assert.Contains(t, s, "delay_error_us p50=")
	assert.Contains(t, s, "allocs_per_datagram=")
	assert.Contains(t, s, "with delay 5ms")

	// No loss model, a queue that overflows: nothing is lost, what does
	// not arrive was dropped by the queue (or still in it). sent - received
	// once read as lost.
	out.Reset()
	errOut.Reset()
	code = run(t.Context(), []string{"netem", "-measure", "-duration", "300ms", "-delay", "5ms", "-rate", "2M", "-queue-delay", "20ms"}, &out, &errOut)
	require.Equal(t, exitOK, code, "stderr: %s", errOut.String())
	var sent, received, lost, dropped, queued int
	line := out.String()[strings.Index(out.String(), "sent="):]
	_, err := fmt.Sscanf(line, "sent=%d received=%d lost=%d dropped=%d queued=%d", &sent, &received, &lost, &dropped, &queued)
	require.NoError(t, err, line)
	assert.Zero(t, lost)
	assert.Positive(t, dropped)
	assert.Equal(t, sent, received+dropped+queued)
}

// TestBenchPcapFlag runs the row DESIGN §9 names for -pcap and decodes its
// captures.
func TestBenchPcapFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 20 s scenario")
	}
	dir := filepath.Join(t.TempDir(), "pcaps")
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"bench", "-scenario", "^netem-determinism$", "-pcap", dir}, &out, &errOut)
	require.Equal(t, exitOK, code, "stderr: %s", errOut.String())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"netem-determinism-fwd.pcap", "netem-determinism-rev.pcap"}, names)
	for _, f := range names {
		recs, err := pcap.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		for i := 1; i < len(recs); i++ {
			require.False(t, recs[i].Time.Before(recs[i-1].Time), "%s: virtual times in order", f)
		}
		assert.True(t, recs[len(recs)-1].Time.Before(pcap.VirtualEpoch.Add(time.Minute)), "virtual, not wall-clock, times")
	}
}

// netemArgs is a valid command line the tests add flags to; -duration
// keeps a case whose error went unnoticed from running forever.
var netemArgs = []string{"-listen", "127.0.0.1:0", "-forward", "127.0.0.1:9", "-duration", "1ms", "-wake-early", "-1ns"}

func parseNetem(t *testing.T, args ...string) (*netemOptions, string, error) {
	t.Helper()
	var errOut bytes.Buffer
	o, _, err := parseNetemFlags(append(slices.Clone(netemArgs), args...), &errOut)
	return o, errOut.String(), err
}

func loadTestTrace(t *testing.T) *netem.Trace {
	t.Helper()
	tr, err := netem.LoadTrace("testdata/short.trace")
	require.NoError(t, err)
	return tr
}

func TestNetemLinkFlags(t *testing.T) {
	tr := loadTestTrace(t)
	ge := netem.GilbertElliott{P: 0.05, R: 0.5, H: 0.1, K1: 0.01}
	four := netem.FourState{P13: 0.01, P31: 0.3, P32: 0.2, P23: 0.1, P14: 0.005}
	for _, tc := range []struct {
		args     []string
		fwd, rev netem.LinkConfig
	}{
		{args: []string{"-duplicate", "0.01", "-corrupt", "0.001", "-reorder-prob", "0.05", "-reorder-gap", "3", "-down"},
			fwd: netem.LinkConfig{Duplicate: 0.01, Corrupt: 0.001, ReorderProb: 0.05, ReorderGap: 3, Down: true}},
		{args: []string{"-rate", "4M", "-queue-disc", "codel", "-codel-target", "10ms", "-codel-interval", "200ms"},
			fwd: netem.LinkConfig{Rate: 4_000_000, QueueDisc: netem.CoDel, CoDelTarget: 10 * time.Millisecond, CoDelInterval: 200 * time.Millisecond}},
		{args: []string{"-ge-p", "0.05", "-ge-r", "0.5", "-ge-h", "0.1", "-ge-k1", "0.01"},
			fwd: netem.LinkConfig{GE: ge}},
		{args: []string{"-ge-loss", "0.1", "-ge-burst", "3"},
			fwd: netem.LinkConfig{GE: netem.GEFromLossBurst(0.1, 3)}},
		{args: []string{"-ge-loss", "0.1", "-ge-burst", "3", "-rev-ge-burst", "2"},
			fwd: netem.LinkConfig{GE: netem.GEFromLossBurst(0.1, 3)}, rev: netem.LinkConfig{GE: netem.GEFromLossBurst(0.1, 2)}},
		{args: []string{"-four-state", "0.01, 0.3,0.2,0.1,0.005"},
			fwd: netem.LinkConfig{FourState: four}},
		{args: []string{"-trace", "testdata/short.trace", "-queue-delay", "100ms", "-overhead", "28"},
			fwd: netem.LinkConfig{Trace: tr, QueueDelay: 100 * time.Millisecond, Overhead: 28}},
		// A -rev- flag of another loss model or capacity source replaces
		// the both-ways one.
		{args: []string{"-loss", "0.1", "-rev-ge-p", "0.05", "-rev-ge-r", "0.5"},
			fwd: netem.LinkConfig{Loss: 0.1}, rev: netem.LinkConfig{GE: netem.GilbertElliott{P: 0.05, R: 0.5}}},
		{args: []string{"-ge-loss", "0.1", "-ge-burst", "2", "-rev-four-state", "0.01,0.3,0.2,0.1,0.005"},
			fwd: netem.LinkConfig{GE: netem.GEFromLossBurst(0.1, 2)}, rev: netem.LinkConfig{FourState: four}},
		{args: []string{"-trace", "testdata/short.trace", "-rev-rate", "1M"},
			fwd: netem.LinkConfig{Trace: tr}, rev: netem.LinkConfig{Rate: 1_000_000}},
		{args: []string{"-rev-down", "-rev-queue-disc", "codel", "-rev-rate", "2M"},
			rev: netem.LinkConfig{Down: true, QueueDisc: netem.CoDel, Rate: 2_000_000}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, errOut, err := parseNetem(t, tc.args...)
			require.NoError(t, err, errOut)
			if tc.rev == (netem.LinkConfig{}) && !slices.ContainsFunc(tc.args, func(a string) bool { return strings.HasPrefix(a, "-rev-") }) {
				tc.rev = tc.fwd
			}
			assert.Equal(t, tc.fwd, o.Fwd)
			assert.Equal(t, tc.rev, o.Rev)
			assert.Empty(t, o.Schedule)
		})
	}
}

func TestNetemLinkFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-ge-loss", "0.1", "-ge-burst", "3", "-ge-p", "0.1"}, "-ge-p and -ge-loss: give the Gilbert-Elliott chain as"},
		{[]string{"-rev-ge-r", "0.5", "-rev-ge-burst", "3", "-rev-ge-loss", "0.1"}, "-rev-ge-r and -rev-ge-loss"},
		{[]string{"-ge-loss", "0.1"}, "-ge-loss needs -ge-burst"},
		{[]string{"-rev-ge-burst", "2"}, "-rev-ge-burst needs -rev-ge-loss"},
		{[]string{"-ge-loss", "0.9", "-ge-burst", "2"}, "-ge-loss 0.9 -ge-burst 2: no Gilbert-Elliott chain"},
		{[]string{"-ge-loss", "1", "-ge-burst", "2"}, "-ge-loss 1: must be in [0, 1)"},
		{[]string{"-ge-loss", "0.1", "-ge-burst", "0.5"}, "-ge-burst 0.5: must be at least 1"},
		{[]string{"-ge-p", "1.5"}, "-ge-p 1.5: must be in [0, 1]"},
		{[]string{"-ge-p", "0.1"}, "-ge-p: "},
		{[]string{"-loss", "0.1", "-ge-p", "0.1", "-ge-r", "0.5"}, "-loss and -ge-p: choose one loss model"},
		{[]string{"-loss", "0.1", "-four-state", "0.1,0.5,0,0,0"}, "-loss and -four-state: choose one loss model"},
		{[]string{"-four-state", "0.1,0.2"}, `invalid value "0.1,0.2" for flag -four-state: want 5`},
		{[]string{"-four-state", "0.1,0.2,x,0,0"}, `for flag -four-state: p32 "x" is not a probability`},
		{[]string{"-rev-four-state", "0.1,2,0,0,0"}, "for flag -rev-four-state: p31"},
		{[]string{"-four-state", "0.9,0,0,0,0.5"}, "-four-state 0.9,0,0,0,0.5: "},
		{[]string{"-queue-disc", "bogus"}, `invalid value "bogus" for flag -queue-disc`},
		{[]string{"-codel-target", "10ms"}, "-codel-target 10ms needs -queue-disc codel"},
		{[]string{"-rev-codel-interval", "1s"}, "-rev-codel-interval 1s needs -queue-disc codel"},
		{[]string{"-queue-disc", "codel", "-codel-target", "200ms"}, "-codel-target: the CoDel target 200ms must be below the CoDel interval 100ms"},
		{[]string{"-codel-interval", "-1s"}, "-codel-interval -1s: must not be negative"},
		{[]string{"-trace", "testdata/no-such.trace"}, `invalid value "testdata/no-such.trace" for flag -trace`},
		{[]string{"-rev-trace", "testdata/bench-short.yaml"}, "for flag -rev-trace: testdata/bench-short.yaml: netem: invalid link config: trace line"},
		{[]string{"-rate", "1M", "-trace", "testdata/short.trace"}, "-rate and -trace: a link's capacity is a rate or a trace"},
		{[]string{"-reorder-gap", "3"}, "-reorder-gap 3 needs -reorder-prob"},
		{[]string{"-reorder-prob", "0.1", "-rev-reorder-prob", "0", "-rev-reorder-gap", "2"}, "-rev-reorder-gap 2 needs -rev-reorder-prob"},
		{[]string{"-reorder-gap", "-1"}, "-reorder-gap -1: must be in [0, "},
		{[]string{"-reorder-prob", "2"}, "-reorder-prob 2: must be in [0, 1]"},
		{[]string{"-duplicate", "-0.1"}, "-duplicate -0.1: must be in [0, 1]"},
		{[]string{"-rev-corrupt", "1.5"}, "-rev-corrupt 1.5: must be in [0, 1]"},
		{[]string{"-down=maybe"}, "-down"},
		{[]string{"-scenario", "steps"}, "-scenario picks a scenario of the -config file"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append(append([]string{"netem"}, netemArgs...), tc.args...), &out, &errOut)
			assert.Equal(t, exitUsage, code, "stderr: %s", errOut.String())
			assert.Contains(t, errOut.String(), tc.want)
			assert.Contains(t, errOut.String(), "Usage: spillway netem")
			assert.Empty(t, out.String())
		})
	}
	var out, errOut bytes.Buffer
	assert.Equal(t, exitUsage, run(t.Context(), []string{"netem", "-measure", "-config", "testdata/netem-links.yaml"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-measure takes the impairment flags, not -config")
}

func TestNetemConfigFileErrors(t *testing.T) {
	stepFile := filepath.Join(t.TempDir(), "step.yaml")
	require.NoError(t, os.WriteFile(stepFile, []byte(`
name: gap-later
media: 10s
forward: {delay: 5ms}
schedule:
  - at: 5s
    forward: {reorder_prob: 0.1, reorder_gap: 3}
`), 0o644))
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-config", "testdata/no-such.yaml"}, exitFailure, []string{"-config: ", "no-such.yaml", "no such file"}},
		{[]string{"-config", "testdata/bench-invalid.yaml"}, exitFailure, []string{"-config: testdata/bench-invalid.yaml", `forward: unknown field "lost"`}},
		{[]string{"-config", "testdata/netem-links.yaml"}, exitUsage, []string{"has 2 scenarios: pick one with -scenario (steps, codel)"}},
		{[]string{"-config", "testdata/netem-links.yaml", "-scenario", "nope"}, exitUsage, []string{`-scenario "nope"`, "(it has steps, codel)"}},
		// A flag that makes the file's config invalid is named, and so is
		// the file's field.
		{[]string{"-config", "testdata/netem-links.yaml", "-scenario", "codel", "-reorder-prob", "0"}, exitUsage,
			[]string{"-reorder-prob 0: the -config file's reorder_gap 5 needs a reorder probability"}},
		{[]string{"-config", "testdata/netem-links.yaml", "-scenario", "codel", "-rev-queue-disc", "droptail"}, exitUsage,
			[]string{"-rev-queue-disc droptail: the -config file's codel_target needs codel"}},
		{[]string{"-config", "testdata/netem-links.yaml", "-scenario", "steps", "-ge-p", "0.1", "-ge-r", "0"}, exitUsage,
			[]string{"-ge-p: ", "GE.R is 0"}},
		// Valid with the file's first links, invalid in a schedule step.
		{[]string{"-config", stepFile, "-reorder-prob", "0"}, exitUsage,
			[]string{"schedule step at 5s, forward link: -reorder-prob 0: the -config file's reorder_gap 3 needs a reorder probability"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append(append([]string{"netem"}, netemArgs...), tc.args...), &out, &errOut)
			assert.Equal(t, tc.code, code, "stderr: %s", errOut.String())
			for _, w := range tc.want {
				assert.Contains(t, errOut.String(), w)
			}
			assert.Empty(t, out.String())
		})
	}
}

func TestNetemConfigFile(t *testing.T) {
	// The file's links, as bench.LoadScenarioFile reads them.
	fileFwd := netem.LinkConfig{Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 4_000_000,
		QueueDelay: 200 * time.Millisecond, Overhead: 28, GE: netem.GilbertElliott{P: 0.05, R: 0.5}}
	fileRev := netem.LinkConfig{Delay: 40 * time.Millisecond}
	with := func(c netem.LinkConfig, f func(c *netem.LinkConfig)) *netem.LinkConfig {
		f(&c)
		return &c
	}

	t.Run("file as it is", func(t *testing.T) {
		o, errOut, err := parseNetem(t, "-config", "testdata/netem-links.yaml", "-scenario", "steps")
		require.NoError(t, err, errOut)
		assert.Equal(t, fileFwd, o.Fwd)
		assert.Equal(t, fileRev, o.Rev)
		fwd1M := with(fileFwd, func(c *netem.LinkConfig) { c.Rate = 1_000_000 })
		assert.Equal(t, []bench.LinkStep{
			{At: 10 * time.Second, Forward: fwd1M},
			// loss_stop: the loss model off, in the config of the time;
			// the reverse link has no loss to turn off.
			{At: 20 * time.Second, Forward: with(*fwd1M, func(c *netem.LinkConfig) { c.GE = netem.GilbertElliott{} })},
			{At: 20 * time.Second, Reverse: with(fileRev, func(c *netem.LinkConfig) { c.Down = true })},
			{At: 30 * time.Second, Forward: &fileFwd, Reverse: &fileRev},
		}, o.Schedule)
	})

	t.Run("flags override", func(t *testing.T) {
		// -delay pins both directions' delay, -rev-loss the reverse loss
		// model (so loss_stop leaves it alone), -trace replaces the rate in
		// every step.
		o, errOut, err := parseNetem(t, "-config", "testdata/netem-links.yaml", "-scenario", "steps",
			"-delay", "20ms", "-rev-loss", "0.01", "-trace", "testdata/short.trace")
		require.NoError(t, err, errOut)
		tr := loadTestTrace(t)
		pin := func(c netem.LinkConfig, rev bool) *netem.LinkConfig {
			c.Delay, c.Rate, c.Trace = 20*time.Millisecond, 0, tr
			if rev {
				c.Loss = 0.01
			}
			return &c
		}
		assert.Equal(t, *pin(fileFwd, false), o.Fwd)
		assert.Equal(t, *pin(fileRev, true), o.Rev)
		noGE := fileFwd
		noGE.GE = netem.GilbertElliott{}
		assert.Equal(t, []bench.LinkStep{
			{At: 10 * time.Second, Forward: pin(fileFwd, false)},
			{At: 20 * time.Second, Forward: pin(noGE, false)},
			{At: 20 * time.Second, Reverse: pin(*with(fileRev, func(c *netem.LinkConfig) { c.Down = true }), true)},
			{At: 30 * time.Second, Forward: pin(fileFwd, false), Reverse: pin(fileRev, true)},
		}, o.Schedule)
	})

	t.Run("a loss flag replaces the file's loss model", func(t *testing.T) {
		o, errOut, err := parseNetem(t, "-config", "testdata/netem-links.yaml", "-scenario", "steps", "-rev-ge-loss", "0.05", "-rev-ge-burst", "2", "-loss", "0")
		require.NoError(t, err, errOut)
		assert.Zero(t, o.Fwd.GE)
		assert.Zero(t, o.Fwd.Loss)
		assert.Equal(t, netem.GEFromLossBurst(0.05, 2), o.Rev.GE)
		// Both directions' loss models are pinned: loss_stop has nothing
		// to do.
		require.Len(t, o.Schedule, 3)
		for _, st := range o.Schedule {
			if st.Forward != nil {
				assert.Zero(t, st.Forward.GE, "at %v", st.At)
			}
			if st.Reverse != nil {
				assert.Equal(t, netem.GEFromLossBurst(0.05, 2), st.Reverse.GE, "at %v", st.At)
			}
		}
	})

	t.Run("scenario without reverse", func(t *testing.T) {
		o, errOut, err := parseNetem(t, "-config", "testdata/netem-links.yaml", "-scenario", "codel", "-rev-codel-target", "20ms", "-rev-codel-interval", "1s")
		require.NoError(t, err, errOut)
		want := netem.LinkConfig{Delay: 10 * time.Millisecond, Rate: 10_000_000, QueueDisc: netem.CoDel,
			CoDelTarget: 10 * time.Millisecond, ReorderProb: 0.01, ReorderGap: 5}
		assert.Equal(t, want, o.Fwd)
		want.CoDelTarget, want.CoDelInterval = 20*time.Millisecond, time.Second
		assert.Equal(t, want, o.Rev, "the reverse link defaults to the forward one")
		assert.Empty(t, o.Schedule)
	})

	t.Run("a single-scenario file needs no -scenario", func(t *testing.T) {
		o, errOut, err := parseNetem(t, "-config", "testdata/bench-short.yaml")
		require.NoError(t, err, errOut)
		assert.Equal(t, int64(4_000_000), o.Fwd.Rate)
		require.Len(t, o.Schedule, 1)
		assert.Equal(t, int64(2_000_000), o.Schedule[0].Forward.Rate)
	})
}

// TestNetemScheduleApplies runs a schedule on a proxy: a step due at once
// is applied, one due in an hour is not, and stopping ends the goroutine
// (TestMain's goleak checks).
func TestNetemScheduleApplies(t *testing.T) {
	p, err := netem.NewProxy(netem.ProxyConfig{Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Target: netip.MustParseAddrPort("127.0.0.1:9"), WakeEarly: -1})
	require.NoError(t, err)
	defer p.Close()
	first := netem.LinkConfig{Delay: 7 * time.Millisecond}
	later := netem.LinkConfig{Delay: time.Second}
	applied := make(chan int, 2)
	stop := startSchedule(p, []bench.LinkStep{
		{At: 0, Forward: &first, Reverse: &first},
		{At: time.Hour, Forward: &later},
	}, func(i int, err error) {
		assert.NoError(t, err)
		applied <- i
	})
	require.Equal(t, 0, <-applied)
	assert.Equal(t, first, p.Forward().Config())
	assert.Equal(t, first, p.Reverse().Config())
	stop()
	stop() // idempotent
	assert.Empty(t, applied, "the step an hour away never ran")
	assert.Equal(t, first, p.Forward().Config())
}

// TestNetemRunsConfigSchedule runs the command with a -config file whose
// first step is due at once.
func TestNetemRunsConfigSchedule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "links.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
name: now-and-later
media: 2h
forward: {delay: 1ms}
schedule:
  - at: 0s
    forward: {delay: 2ms}
  - at: 1h
    reverse: {down: true}
`), 0o644))
	o, errOut, err := parseNetem(t, "-config", path, "-duration", "0")
	require.NoError(t, err, errOut)
	steps := make(chan int, 2)
	o.onStep = func(i int) { steps <- i }
	listen, err := resolveUDP(o.Listen, true)
	require.NoError(t, err)
	target, err := resolveUDP(o.Forward, false)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runNetem(ctx, o, listen, target, &out, &stderr) }()
	select {
	case i := <-steps:
		assert.Equal(t, 0, i)
	case err := <-done:
		t.Fatalf("netem ended before its first step: %v", err)
	}
	cancel()
	require.NoError(t, <-done)
	assert.Empty(t, steps)
	assert.Contains(t, stderr.String(), "links from "+path+" (2 schedule steps)")
	assert.Contains(t, stderr.String(), "schedule step 1/2 (at 0s) applied")
	assert.NotContains(t, stderr.String(), "schedule step 2/2")
	keys, _ := kv(t, onlyLine(t, out.String()))
	assert.Equal(t, "fwd_offered", keys[0])
}

// The stats line accounts for every datagram: CoDel's drops, what a link
// down lost and the duplicates were left out, and the counts did not add
// up (a review: 247 of 1501 missing under CoDel, all 1000 under -down).
func TestProxyStatsLineAccountsForEveryDatagram(t *testing.T) {
	var st netem.ProxyStats
	st.Forward = netem.LinkStats{PacketsOffered: 100, PacketsDuplicated: 5, PacketsDelivered: 60, PacketsLost: 10,
		PacketsBlackout: 15, PacketsDropped: 7, PacketsCoDelDropped: 8, PacketsOverflow: 5}
	line := proxyStatsLine(st)
	fields := map[string]int{}
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, kv)
		if n, err := strconv.Atoi(v); err == nil {
			fields[k] = n
		}
	}
	out := 0
	for _, k := range []string{"fwd_delivered", "fwd_lost", "fwd_blackout", "fwd_dropped", "fwd_codel_dropped", "fwd_overflow"} {
		require.Contains(t, fields, k)
		out += fields[k]
	}
	assert.Equal(t, fields["fwd_offered"]+fields["fwd_duplicated"], out, line)
}
