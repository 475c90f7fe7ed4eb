package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spillway-rt/spillway/bench"
)

// benchOptions are the bench subcommand's flags.
type benchOptions struct {
	JSON     string // write the JSON report here ("" = none)
	Seed     uint64
	Scenario string // a regular expression over scenario names ("" = the default matrix)
	List     bool
	Pcap     string   // write each row's captures into this directory ("" = none)
	Trace    string   // write each row's sender events and late frames to this file ("" = none)
	Files    fileList // -file: run these files' scenarios instead of the built-in ones
}

// fileList is a repeatable flag of comma-separated file names.
type fileList []string

func (l *fileList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *fileList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func benchFlags(o *benchOptions) *flag.FlagSet {
	fs := newFlagSet("bench", "[-json FILE] [-seed N] [-scenario REGEX] [-file FILE] [-list] [-pcap DIR] [-trace FILE]", `
Bench runs scenarios in the simulator (virtual time, deterministic for a
seed) and prints one table row per scenario. Without -scenario it runs the
default matrix, rtc-rtt{40,100,200}-loss{0,2,5,10}. -file FILE (repeatable,
or comma-separated) runs the scenarios of JSON or YAML scenario files
instead of the built-in ones: all of them, or those -scenario matches.
Progress lines go to stderr. -pcap DIR writes what each row's links deliver to
DIR/<scenario>-fwd.pcap (sender to receiver) and DIR/<scenario>-rev.pcap,
with virtual times (the Unix epoch + simulated time). -trace FILE writes a line
per sender event (frames dropped and why, key-frame requests, target rates)
and per frame late or never complete, in seconds of media.`)
	fs.StringVar(&o.JSON, "json", "", "write the results as JSON ({\"results\": [...]}) to `FILE`")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulation `seed`; the same seed gives the same results")
	fs.StringVar(&o.Scenario, "scenario", "", "run the scenarios whose names match `REGEX` (default: the default matrix)")
	fs.Var(&o.Files, "file", "run the scenarios of the JSON or YAML scenario `FILE` instead of the built-in ones (repeatable, or comma-separated)")
	fs.BoolVar(&o.List, "list", false, "list the scenarios (* marks the default matrix) and exit")
	fs.StringVar(&o.Pcap, "pcap", "", "write each row's captures, <scenario>-fwd.pcap and <scenario>-rev.pcap, into `DIR` (created if missing)")
	fs.StringVar(&o.Trace, "trace", "", "write each row's sender events and late frames to `FILE` (one section per row)")
	return fs
}

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOptions
	fs := benchFlags(&o)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if _, err := regexp.Compile(o.Scenario); err != nil {
		return usageErr(fs, "-scenario: %v", err)
	}
	if o.JSON != "" && o.Trace != "" && samePath(o.JSON, o.Trace) {
		// The report is renamed over the file at the end: the trace
		// written there was lost without a word.
		return usageErr(fs, "-json and -trace name the same file %q", o.JSON)
	}
	if len(o.Files) > 0 {
		scs, err := loadScenarioFiles(o.Files)
		if err != nil {
			return fmt.Errorf("-file: %w", err)
		}
		if o.List {
			return listScenarios(o.Scenario, scs, stdout)
		}
		if scs, err = selectScenarios(scs, o.Scenario); err != nil {
			return usageErr(fs, "%v", err)
		}
		return runBench(ctx, o, scs, stdout, stderr)
	}
	if o.List {
		return listScenarios(o.Scenario, bench.Scenarios(), stdout)
	}
	scs, err := bench.Select(o.Scenario)
	if err != nil {
		return usageErr(fs, "%v", err)
	}
	return runBench(ctx, o, scs, stdout, stderr)
}

// samePath reports whether two paths name one file: the same absolute
// path, or, for files that exist, the same file (links).
func samePath(a, b string) bool {
	if aa, err := filepath.Abs(a); err == nil {
		if bb, err := filepath.Abs(b); err == nil && aa == bb {
			return true
		}
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// loadScenarioFiles reads the scenarios of the files, in order. A name
// must not be used twice, within a file or across them.
func loadScenarioFiles(paths []string) ([]bench.Scenario, error) {
	var out []bench.Scenario
	from := map[string]string{}
	for _, p := range paths {
		scs, err := bench.LoadScenarioFile(p)
		if err != nil {
			return nil, err
		}
		for _, sc := range scs {
			if prev, ok := from[sc.Name]; ok {
				return nil, fmt.Errorf("scenario %q is in both %s and %s", sc.Name, prev, p)
			}
			from[sc.Name] = p
		}
		out = append(out, scs...)
	}
	return out, nil
}

// selectScenarios returns the scenarios of scs whose names match pattern
// ("" = all).
func selectScenarios(scs []bench.Scenario, pattern string) ([]bench.Scenario, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("-scenario: %w", err)
	}
	var out []bench.Scenario
	for _, sc := range scs {
		if re.MatchString(sc.Name) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario of the -file files matches %q", pattern)
	}
	return out, nil
}

// runBench runs scs in order, prints the table to stdout and writes the
// JSON report. Interrupted (ctx done) between scenarios, it prints the rows
// done and fails.
func runBench(ctx context.Context, o benchOptions, scs []bench.Scenario, stdout, stderr io.Writer) error {
	results := make([]bench.Result, 0, len(scs))
	// The report's file is made before any scenario runs (a temporary one
	// beside it, renamed at the end): a path that cannot be written fails
	// at once, not after an hour of runs, and an interrupted run leaves no
	// half-written report.
	var report *os.File
	if o.JSON != "" {
		f, err := os.CreateTemp(filepath.Dir(o.JSON), "."+filepath.Base(o.JSON)+".*")
		if err != nil {
			return fmt.Errorf("-json: %w", err)
		}
		report = f
		defer func() {
			if report != nil {
				_ = report.Close()
				_ = os.Remove(report.Name())
			}
		}()
	}
	if o.Pcap != "" {
		if err := os.MkdirAll(o.Pcap, 0o755); err != nil {
			return fmt.Errorf("-pcap: %w", err)
		}
	}
	var trace *bufio.Writer
	if o.Trace != "" {
		f, err := os.Create(o.Trace)
		if err != nil {
			return fmt.Errorf("-trace: %w", err)
		}
		trace = bufio.NewWriter(f)
		defer func() {
			if err := trace.Flush(); err != nil {
				fmt.Fprintf(stderr, "-trace: %v\n", err)
			}
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "-trace: %v\n", err)
			}
		}()
	}
	for i, sc := range scs {
		if err := ctx.Err(); err != nil {
			if len(results) > 0 {
				_ = bench.WriteTable(stdout, results)
			}
			return fmt.Errorf("interrupted after %d of %d scenarios: %w", i, len(scs), err)
		}
		start := time.Now()
		var res bench.Result
		var err error
		opts := bench.RunOptions{PcapDir: o.Pcap, Context: ctx}
		if trace != nil {
			fmt.Fprintf(trace, "# %s seed %d\n", sc.Name, o.Seed)
			opts.Trace = trace
		}
		res, err = bench.RunWith(sc, o.Seed, opts)
		if err != nil {
			if ctx.Err() != nil {
				if len(results) > 0 {
					_ = bench.WriteTable(stdout, results)
				}
				return fmt.Errorf("interrupted during scenario %d of %d (%s): %w", i+1, len(scs), sc.Name, ctx.Err())
			}
			return err
		}
		results = append(results, res)
		fmt.Fprintf(stderr, "[%d/%d] %s: on_time=%.4f p99_ms=%s lost_pkts=%d (%.2fs)\n", i+1, len(scs), sc.Name,
			res.OnTimeRatio, fmtOptMS(res.LatencyMS.P99), res.LostPackets, time.Since(start).Seconds())
	}
	if err := bench.WriteTable(stdout, results); err != nil {
		return err
	}
	if report != nil {
		f := report
		report = nil // written: the deferred clean-up leaves it
		if err := writeReport(f, o.JSON, results); err != nil {
			_ = os.Remove(f.Name())
			return err
		}
	}
	return nil
}

// writeReport writes bench.Report as indented JSON into f, a temporary
// file, and renames it to path: byte-identical for a seed but for the
// wall-clock fields sim_speed and wall_s.
func writeReport(f *os.File, path string, results []bench.Result) error {
	b, err := json.MarshalIndent(bench.Report{Results: results}, "", "  ")
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func fmtOptMS(v *float64) string {
	if v == nil {
		return "inf"
	}
	return fmt.Sprintf("%.1f", *v)
}

// listScenarios prints the scenarios of scs matching pattern ("" = all)
// with their main parameters; * marks the default matrix.
func listScenarios(pattern string, scs []bench.Scenario, w io.Writer) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tdefault\tprofile\trtt_ms\tloss\tjitter_ms\trate_kbps\tmedia_s\tvideo_kbps\taudio_fps\tloss_stop_s")
	for _, sc := range scs {
		if !re.MatchString(sc.Name) {
			continue
		}
		def := ""
		if sc.Default {
			def = "*"
		}
		video := "-"
		if sc.Traffic.Video.FPS > 0 {
			video = fmt.Sprint(sc.Traffic.Video.Bitrate / 1000)
		}
		audio := "-"
		if sc.Traffic.Audio.FPS > 0 {
			audio = fmt.Sprint(sc.Traffic.Audio.FPS)
		}
		rate := "-"
		if sc.Forward.Rate > 0 {
			rate = fmt.Sprint(sc.Forward.Rate / 1000)
		}
		lossStop := "-"
		if sc.LossStop > 0 {
			lossStop = fmt.Sprint(sc.LossStop.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%g\t%g\t%s\t%g\t%s\t%s\t%s\n", sc.Name, def, sc.Profile,
			float64(sc.RTT)/float64(time.Millisecond), sc.Loss, float64(sc.Forward.Jitter)/float64(time.Millisecond),
			rate, sc.Media.Seconds(), video, audio, lossStop)
	}
	return tw.Flush()
}
