package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// kv parses a line of space-separated key=value fields, in order.
func kv(t *testing.T, line string) (keys []string, vals map[string]string) {
	t.Helper()
	vals = map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		require.True(t, ok, "field %q of %q is not key=value", f, line)
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return v
}

var (
	pushSummaryRE = regexp.MustCompile(`^frames=\d+ bytes=\d+ dropped=\d+$`)
	playSummaryRE = regexp.MustCompile(`^frames=\d+ on_time=\d\.\d{4} p99_ms=\d+\.\d corrupt=\d+ lost=\d+( [a-z0-9_]+=\S+)*$`)
)

// onlyLine returns the single line of out.
func onlyLine(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 1, "stdout: %q", out)
	return lines[0]
}

func TestPushPlayLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	// The Live profile's 3 s budget keeps a test on a busy machine from
	// losing frames to scheduling stalls: this test is about integrity, and
	// timing belongs to the bench, not to tests.
	live := transport.Config{Profile: transport.Live}

	addrs := make(chan net.Addr, 1)
	var playOut, playErr bytes.Buffer
	playDone := make(chan error, 1)
	go func() {
		playDone <- play(ctx, playOptions{Listen: "127.0.0.1:0", Config: live, onListen: func(a net.Addr) { addrs <- a }}, &playOut, &playErr)
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-playDone:
		t.Fatalf("play ended before listening: %v\n%s", err, playErr.String())
	}

	var pushOut, pushErr bytes.Buffer
	err := push(ctx, pushOptions{To: addr.String(), Duration: 3 * time.Second, Seed: 7, Config: live}, &pushOut, &pushErr)
	require.NoError(t, err, pushErr.String())
	require.NoError(t, <-playDone, playErr.String())
	t.Logf("push stderr:\n%s", pushErr.String())
	t.Logf("play stderr:\n%s", playErr.String())

	pushLine := onlyLine(t, pushOut.String())
	assert.Regexp(t, pushSummaryRE, pushLine)
	_, pv := kv(t, pushLine)
	playLine := onlyLine(t, playOut.String())
	t.Logf("push: %s\nplay: %s", pushLine, playLine)
	assert.Regexp(t, playSummaryRE, playLine)
	keys, v := kv(t, playLine)
	require.GreaterOrEqual(t, len(keys), 5)
	assert.Equal(t, []string{"frames", "on_time", "p99_ms", "corrupt", "lost"}, keys[:5])

	// 3 s of 50 audio + 30 video frames per second, none dropped on
	// loopback, all of them arriving intact.
	frames := atoi(t, pv["frames"])
	assert.InDelta(t, 240, frames, 2)
	assert.Equal(t, "0", pv["dropped"])
	assert.Equal(t, pv["frames"], v["frames"], "every frame arrives")
	assert.Equal(t, pv["bytes"], v["bytes"], "every byte arrives")
	assert.Equal(t, "0", v["lost"])
	assert.Equal(t, "0", v["corrupt"])
	assert.Equal(t, "0", v["misordered"])
	assert.Equal(t, "0", v["skipped"])
	onTime, err := strconv.ParseFloat(v["on_time"], 64)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, onTime, 0.5)
	p99, err := strconv.ParseFloat(v["p99_ms"], 64)
	require.NoError(t, err)
	assert.Positive(t, p99)

	// Progress lines go to stderr, with keys other than the summary's.
	assert.Contains(t, playErr.String(), "t=1s rx=")
	assert.Contains(t, pushErr.String(), "t=1s sent=")
	assert.NotContains(t, playErr.String(), "frames=")
	assert.NotContains(t, pushErr.String(), "frames=")
}

func TestPlayInterruptedBeforeSession(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut bytes.Buffer
	err := play(ctx, playOptions{Listen: "127.0.0.1:0", onListen: func(net.Addr) { cancel() }}, &out, &errOut)
	require.NoError(t, err)
	assert.Equal(t, "frames=0 on_time=0.0000 p99_ms=0.0 corrupt=0 lost=0", strings.Join(strings.Fields(onlyLine(t, out.String()))[:5], " "))
}

func TestPushInterrupted(t *testing.T) {
	// A player that never answers: Dial is interrupted, and push still
	// prints its summary.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	require.NoError(t, push(ctx, pushOptions{To: pc.LocalAddr().String(), Duration: time.Second}, &out, &errOut))
	assert.Equal(t, "frames=0 bytes=0 dropped=0", onlyLine(t, out.String()))
}

func TestPlayFailsToListen(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"play", "-listen", pc.LocalAddr().String()}, &out, &errOut)
	assert.Equal(t, exitFailure, code, errOut.String())
	assert.Empty(t, out.String())
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{payloadMin, payloadMin + 1, 80, 160, 1199, 1200, 1201, 50_000} {
		for _, src := range []bench.Source{bench.SourceAudio, bench.SourceVideo} {
			seq := int64(size)*3 + 1<<40
			b := make([]byte, size)
			encodePayload(b, src, seq)
			h, err := decodePayload(b)
			require.NoError(t, err, "size %d", size)
			assert.Equal(t, payloadHeader{Source: src, Seq: seq, Len: size}, h)
			assert.Equal(t, []byte(payloadMagic), b[:4])
		}
	}
	assert.Equal(t, payloadMin, payloadSize(1), "small frames are padded to a header")
	assert.Equal(t, 500, payloadSize(500))
	_, err := decodePayload(make([]byte, payloadMin-1))
	assert.ErrorIs(t, err, errPayloadShort)
}

func TestPayloadDetectsDamage(t *testing.T) {
	b := make([]byte, 300)
	encodePayload(b, bench.SourceVideo, 42)
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := decodePayload(c)
			assert.ErrorIs(t, err, errPayloadCRC, "byte %d ^ %#x", i, mask)
		}
	}
	_, err := decodePayload(b[:len(b)-1])
	assert.Error(t, err, "truncated")

	// Frames with a valid CRC that still break the format.
	reseal := func(c []byte) []byte {
		encodeCRC(c)
		return c
	}
	c := bytes.Clone(b)
	c[0] = 'X'
	_, err = decodePayload(reseal(c))
	assert.ErrorIs(t, err, errPayloadMagic)
	c = bytes.Clone(b)
	c[16]++
	_, err = decodePayload(reseal(c))
	assert.ErrorIs(t, err, errPayloadLength)
	c = bytes.Clone(b)
	c[4] = 9
	_, err = decodePayload(reseal(c))
	assert.ErrorIs(t, err, errPayloadSource)
	c = bytes.Clone(b)
	c[12]++ // another sequence number: the filler no longer matches
	_, err = decodePayload(reseal(c))
	assert.ErrorIs(t, err, errPayloadFiller)
}

func TestPlayStatsAccounting(t *testing.T) {
	s := &playStats{budget: 300 * time.Millisecond}
	capture := time.Unix(1000, 0)
	frame := func(src bench.Source, seq int64) []byte {
		b := make([]byte, 100)
		encodePayload(b, src, seq)
		return b
	}
	info := func(b []byte, lat time.Duration, lostBefore int64) transport.FrameInfo {
		return transport.FrameInfo{Size: len(b), CaptureTime: capture, CompleteTime: capture.Add(lat), LostBefore: lostBefore}
	}
	a0, a1, a3 := frame(bench.SourceAudio, 0), frame(bench.SourceAudio, 1), frame(bench.SourceAudio, 3)
	s.record(transport.KindAudio, a0, info(a0, 10*time.Millisecond, 0))
	s.record(transport.KindAudio, a1, info(a1, 400*time.Millisecond, 0)) // late
	s.record(transport.KindAudio, a3, info(a3, 20*time.Millisecond, 1))  // seq 2 lost
	v0 := frame(bench.SourceVideo, 0)
	s.record(transport.KindVideo, v0, info(v0, 20*time.Millisecond, 0))
	v1 := frame(bench.SourceVideo, 1)
	v1[50] ^= 1
	s.record(transport.KindVideo, v1, info(v1, 20*time.Millisecond, 0)) // damaged
	v2 := frame(bench.SourceVideo, 2)
	s.record(transport.KindVideo, v2, info(v2, 20*time.Millisecond, 0))
	s.record(transport.KindVideo, v2, info(v2, 20*time.Millisecond, 0)) // repeated
	v3 := frame(bench.SourceVideo, 3)
	s.record(transport.KindVideo, v3, transport.FrameInfo{Size: 99, CaptureTime: capture, CompleteTime: capture}) // size mismatch
	v6 := frame(bench.SourceVideo, 6)
	d := info(v6, 20*time.Millisecond, 1)
	d.DroppedBefore = 1
	s.record(transport.KindVideo, v6, d) // seq 4 lost, seq 5 dropped by the sender

	s.playout = map[*transport.RemoteTrack]transport.PlayoutStats{
		{}:  {FreezeCount: 2, TotalFreezesDuration: 1500 * time.Millisecond, PauseCount: 1},
		nil: {ConcealmentEvents: 3, ConcealedDuration: 60 * time.Millisecond},
	}
	_, v := kv(t, s.summary(5))
	assert.Equal(t, "2", v["freeze_count"])
	assert.Equal(t, "1.500", v["freezes_s"])
	assert.Equal(t, "1", v["pause_count"])
	assert.Equal(t, "3", v["concealment_events"])
	assert.Equal(t, "0.060", v["concealed_s"])
	assert.Equal(t, "9", v["frames"])
	assert.Equal(t, "2", v["corrupt"])
	assert.Equal(t, "2", v["lost"])
	assert.Equal(t, "1", v["dropped"])
	assert.Equal(t, "1", v["late"])
	assert.Equal(t, "2", v["skipped"])
	assert.Equal(t, "1", v["misordered"])
	assert.Equal(t, "5", v["overflow"])
	assert.Equal(t, "900", v["bytes"])
	// On time: a0, a3, v0, v2 and v6, over 9 received + 2 lost + 1 dropped.
	assert.Equal(t, fmt.Sprintf("%.4f", 5.0/12), v["on_time"])
	assert.Equal(t, "400.0", v["p99_ms"])
	assert.Equal(t, "400.0", v["max_ms"])
	assert.Equal(t, "20.0", v["p50_ms"])

	// A frame of the other source on a track is corrupt.
	s = &playStats{budget: 300 * time.Millisecond}
	s.record(transport.KindAudio, v0, info(v0, 20*time.Millisecond, 0))
	_, v = kv(t, s.summary(0))
	assert.Equal(t, "1", v["corrupt"])
	assert.Equal(t, "0", v["lost"])
	assert.Equal(t, "0.0000", v["on_time"])
}

func benchJSON(t *testing.T, args ...string) (stdout string, report map[string]any) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bench.json")
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"bench", "-json", path}, args...), &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &report))
	return out.String(), report
}

// The report's file is made before any scenario runs: a path that cannot
// be written fails at once (it once failed after every run), and a run
// leaves only the report in its directory, readable by others.
func TestBenchJSONPath(t *testing.T) {
	var out, errOut bytes.Buffer
	bad := filepath.Join(t.TempDir(), "no-such-dir", "x.json")
	code := run(t.Context(), []string{"bench", "-json", bad, "-scenario", "^rtc-rtt40-loss0$"}, &out, &errOut)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut.String(), "-json")
	assert.NotContains(t, errOut.String(), "[1/1]", "no scenario ran")

	dir := t.TempDir()
	path := filepath.Join(dir, "bench.json")
	code = run(t.Context(), []string{"bench", "-json", path, "-scenario", "^rtc-rtt40-loss0$"}, &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")
	assert.Equal(t, "bench.json", ents[0].Name())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// -json and -trace naming one file: the report was renamed over the
	// trace, which was lost without a word. Refused before anything runs.
	same := filepath.Join(dir, "same.out")
	for _, other := range []string{same, filepath.Join(dir, ".", "same.out")} {
		errOut.Reset()
		code = run(t.Context(), []string{"bench", "-json", same, "-trace", other, "-scenario", "^rtc-rtt40-loss0$"}, &out, &errOut)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errOut.String(), "-json and -trace name the same file")
		assert.NoFileExists(t, same)
	}

	// Interrupted: no report, and nothing left behind.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	stale := filepath.Join(dir, "stale.json")
	assert.Equal(t, exitFailure, run(ctx, []string{"bench", "-json", stale, "-scenario", "^rtc-rtt40-loss0$"}, &out, &errOut))
	ents, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1)
}

// designFields are the fields DESIGN §9 requires of every row.
var designFields = []string{"scenario", "profile", "rtt_ms", "loss", "latency_budget_ms", "media_s", "frames_sent",
	"on_time_ratio", "latency_ms", "goodput_bps", "wire_overhead", "wire_overhead_ip", "sender_dropped", "streams",
	"media_bytes", "fec_bytes", "rtx_bytes", "feedback_bytes", "media_packets", "lost_packets", "recovered_fec",
	"retransmissions", "rtx_per_loss", "rtx_sent_too_late", "rtx_arrived_late", "residual_loss", "fec_overhead_1s",
	"sim_speed", "wall_s"}

func rows(t *testing.T, report map[string]any) []map[string]any {
	t.Helper()
	raw, ok := report["results"].([]any)
	require.True(t, ok, "results is an array")
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i], ok = r.(map[string]any)
		require.True(t, ok)
	}
	return out
}

func TestBenchJSONDeterministic(t *testing.T) {
	const pattern = "^rtc-rtt40-loss0$"
	table, first := benchJSON(t, "-scenario", pattern, "-seed", "3")
	_, second := benchJSON(t, "-scenario", pattern, "-seed", "3")
	assert.Contains(t, table, "rtc-rtt40-loss0")

	rs := rows(t, first)
	require.Len(t, rs, 1)
	row := rs[0]
	for _, f := range designFields {
		assert.Contains(t, row, f)
	}
	assert.Equal(t, "rtc-rtt40-loss0", row["scenario"])
	for _, f := range []string{"p50", "p95", "p99", "max"} {
		assert.Contains(t, row["latency_ms"], f)
	}
	streams, ok := row["streams"].(map[string]any)
	require.True(t, ok)
	for _, s := range []string{"audio", "video"} {
		st, ok := streams[s].(map[string]any)
		require.True(t, ok, s)
		for _, f := range []string{"frames_sent", "on_time_ratio", "latency_ms"} {
			assert.Contains(t, st, f)
		}
	}

	strip := func(report map[string]any) string {
		for _, r := range rows(t, report) {
			delete(r, "sim_speed")
			delete(r, "wall_s")
		}
		b, err := json.Marshal(report)
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, strip(first), strip(second))
}

// TestBenchDefaultMatrix asserts the foundation's acceptance criterion: the
// default matrix has its 12 rows, and without loss practically every frame
// is on time.
func TestBenchDefaultMatrix(t *testing.T) {
	table, report := benchJSON(t)
	t.Logf("\n%s", table)
	rs := rows(t, report)
	var want, got []string
	for _, rtt := range []int{40, 100, 200} {
		for _, loss := range []int{0, 2, 5, 10} {
			want = append(want, fmt.Sprintf("rtc-rtt%d-loss%d", rtt, loss))
		}
	}
	for _, r := range rs {
		name, _ := r["scenario"].(string)
		got = append(got, name)
		if strings.HasSuffix(name, "-loss0") {
			ratio, _ := r["on_time_ratio"].(float64)
			assert.GreaterOrEqual(t, ratio, 0.999, "%s on_time_ratio", name)
		}
	}
	assert.Equal(t, want, got)
}

func TestBenchList(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run(t.Context(), []string{"bench", "-list"}, &out, &errOut), errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, len(bench.Scenarios())+1, "a header and a line per scenario")
	defaults := 0
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "*" {
			defaults++
		}
	}
	assert.Equal(t, 12, defaults)
	assert.Contains(t, out.String(), "live-rtt300-loss20")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"help", "nope"},
		{"bench", "-nope"},
		{"bench", "-seed", "x"},
		{"bench", "-scenario", "("},
		{"bench", "-scenario", "^no-such-scenario$"},
		{"bench", "extra"},
		{"push"},
		{"push", "-to", "127.0.0.1:1"},
		{"push", "-to", "127.0.0.1:1", "-duration", "0s"},
		{"push", "-duration", "1s"},
		{"push", "-to", "127.0.0.1:1", "-duration", "1s", "-profile", "tv"},
		{"push", "-to", "127.0.0.1:1", "-duration", "1s", "-latency", "-1s"},
		{"push", "-to", "127.0.0.1:1", "-duration", "1s", "-min-bitrate", "2000000", "-max-bitrate", "1000000"},
		{"push", "-to", "127.0.0.1:1", "-duration", "1s", "-pacer-queue", "-1s"},
		{"play", "-listen", "127.0.0.1:0", "-drain-rate", "1.5"},
		{"play", "-listen", "127.0.0.1:0", "-min-playout", "2s", "-max-playout", "1s"},
		{"play", "-listen", "127.0.0.1:0", "-max-playout", "-1s"},
		{"play"},
		{"play", "-listen", "127.0.0.1:0", "-duration", "x"},
		{"play", "-listen", "127.0.0.1:0", "stray"},
		// Addresses: once an exit 1 with the transport's words.
		{"play", "-listen", "bogus"},
		{"push", "-to", "127.0.0.1:99999", "-duration", "1s"},
		{"push", "-to", ":7400", "-duration", "1s"},
		{"push", "-to", "127.0.0.1:0", "-duration", "1s"},
		{"push", "-to", "127.0.0.1:1", "-duration", "1s", "-min-bitrate", "30000000"}, // over the default MaxBitrate
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Equal(t, exitUsage, run(t.Context(), args, &out, &errOut))
			assert.Empty(t, out.String(), "nothing on stdout")
			assert.Contains(t, errOut.String(), "Usage")
		})
	}
}

// The transport flags push and play share fill transport.Config.
func TestTransportFlags(t *testing.T) {
	fs := flag.NewFlagSet("play", flag.ContinueOnError)
	var cfg transport.Config
	transportFlags(fs, &cfg)
	require.NoError(t, fs.Parse([]string{"-profile", "live", "-latency", "2s", "-cc", "gcc-02",
		"-start-bitrate", "400000", "-min-bitrate", "100000", "-max-bitrate", "3000000", "-pacer-queue", "500ms",
		"-min-playout", "1500ms", "-max-playout", "2500ms", "-drain-rate", "0.05", "-catch-up", "-key-allowance-always", "-passthrough"}))
	assert.Equal(t, transport.Config{Profile: transport.Live, Latency: 2 * time.Second, CongestionControl: transport.GCC02,
		StartBitrate: 400_000, MinBitrate: 100_000, MaxBitrate: 3_000_000, PacerQueueLimit: 500 * time.Millisecond,
		MinPlayoutDelay: 1500 * time.Millisecond, MaxPlayoutDelay: 2500 * time.Millisecond, DrainRate: 0.05,
		CatchUp: true, KeyFrameAllowanceAlways: true, PassThrough: true}, cfg)
	require.NoError(t, checkTransportFlags(fs, &cfg))
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"help", "bench"}, {"help", "push"}, {"help", "play"}} {
		var out, errOut bytes.Buffer
		assert.Equal(t, exitOK, run(t.Context(), args, &out, &errOut), args)
		assert.Contains(t, out.String(), "Usage", args)
	}
	var out, errOut bytes.Buffer
	assert.Equal(t, exitOK, run(t.Context(), []string{"push", "-h"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-duration")
}

// TestBenchFileFlag runs the scenario of a file (3 s of media) instead of
// the built-in ones, and checks that a bad file fails naming its field.
func TestBenchFileFlag(t *testing.T) {
	table, report := benchJSON(t, "-file", "testdata/bench-short.yaml")
	assert.Contains(t, table, "file-short")
	rs := rows(t, report)
	require.Len(t, rs, 1)
	assert.Equal(t, "file-short", rs[0]["scenario"])
	assert.EqualValues(t, 3, rs[0]["media_s"])
	for _, f := range designFields {
		assert.Contains(t, rs[0], f)
	}

	// Repeated or comma-separated, filtered by -scenario.
	_, report = benchJSON(t, "-file", "testdata/netem-links.yaml", "-file", "testdata/bench-short.yaml", "-scenario", "^file-short$")
	rs = rows(t, report)
	require.Len(t, rs, 1)
	assert.Equal(t, "file-short", rs[0]["scenario"])
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"bench", "-file", "testdata/bench-short.yaml,testdata/netem-links.yaml", "-scenario", "^file-short$", "-list"}, &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	assert.True(t, strings.HasPrefix(lines[1], "file-short "), lines[1])

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-file", "testdata/bench-invalid.yaml"}, `testdata/bench-invalid.yaml: bench: invalid scenario file: invalid file: forward: unknown field "lost"`},
		{[]string{"-file", "testdata/no-such.yaml"}, "no-such.yaml"},
		{[]string{"-file", "testdata/bench-short.yaml", "-file", "testdata/bench-short.yaml"}, `scenario "file-short" is in both`},
		{[]string{"-file", "testdata/bench-short.yaml", "-scenario", "^rtc-"}, `no scenario of the -file files matches "^rtc-"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append([]string{"bench"}, tc.args...), &out, &errOut)
			assert.NotEqual(t, exitOK, code)
			assert.Contains(t, errOut.String(), tc.want)
			assert.Empty(t, out.String())
		})
	}
}
