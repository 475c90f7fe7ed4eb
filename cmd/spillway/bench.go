package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
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
}

func benchFlags(o *benchOptions) *flag.FlagSet {
	fs := newFlagSet("bench", "[-json FILE] [-seed N] [-scenario REGEX] [-list]", `
Bench runs scenarios in the simulator (virtual time, deterministic for a
seed) and prints one table row per scenario. Without -scenario it runs the
default matrix, rtc-rtt{40,100,200}-loss{0,2,5,10}. Progress lines go to
stderr.`)
	fs.StringVar(&o.JSON, "json", "", "write the results as JSON ({\"results\": [...]}) to `FILE`")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulation `seed`; the same seed gives the same results")
	fs.StringVar(&o.Scenario, "scenario", "", "run the scenarios whose names match `REGEX` (default: the default matrix)")
	fs.BoolVar(&o.List, "list", false, "list the scenarios (* marks the default matrix) and exit")
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
	if o.List {
		return listScenarios(o.Scenario, stdout)
	}
	scs, err := bench.Select(o.Scenario)
	if err != nil {
		return usageErr(fs, "%v", err)
	}
	return runBench(ctx, o, scs, stdout, stderr)
}

// runBench runs scs in order, prints the table to stdout and writes the
// JSON report. Interrupted (ctx done) between scenarios, it prints the rows
// done and fails.
func runBench(ctx context.Context, o benchOptions, scs []bench.Scenario, stdout, stderr io.Writer) error {
	results := make([]bench.Result, 0, len(scs))
	for i, sc := range scs {
		if err := ctx.Err(); err != nil {
			if len(results) > 0 {
				_ = bench.WriteTable(stdout, results)
			}
			return fmt.Errorf("interrupted after %d of %d scenarios: %w", i, len(scs), err)
		}
		start := time.Now()
		res, err := bench.Run(sc, o.Seed)
		if err != nil {
			return err
		}
		results = append(results, res)
		fmt.Fprintf(stderr, "[%d/%d] %s: on_time=%.4f p99_ms=%s lost_pkts=%d (%.2fs)\n", i+1, len(scs), sc.Name,
			res.OnTimeRatio, fmtOptMS(res.LatencyMS.P99), res.LostPackets, time.Since(start).Seconds())
	}
	if err := bench.WriteTable(stdout, results); err != nil {
		return err
	}
	if o.JSON != "" {
		if err := writeReport(o.JSON, results); err != nil {
			return err
		}
	}
	return nil
}

// writeReport writes bench.Report as indented JSON: byte-identical for a
// seed but for the wall-clock fields sim_speed and wall_s.
func writeReport(path string, results []bench.Result) error {
	b, err := json.MarshalIndent(bench.Report{Results: results}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	if err := os.WriteFile(path, b, 0o644); err != nil {
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

// listScenarios prints the scenarios matching pattern ("" = all) with their
// main parameters; * marks the default matrix.
func listScenarios(pattern string, w io.Writer) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tdefault\tprofile\trtt_ms\tloss\tjitter_ms\trate_kbps\tmedia_s\tvideo_kbps\taudio_fps\tloss_stop_s")
	for _, sc := range bench.Scenarios() {
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
