package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spillway-rt/spillway/transport"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure: the socket, the session, a file
	exitUsage   = 2 // bad command line
)

// errUsage marks a command-line error whose message and usage text have
// already been printed.
var errUsage = errors.New("usage error")

// command is one subcommand.
type command struct {
	name    string
	summary string
	// flags returns the subcommand's flag set, for help text.
	flags func() *flag.FlagSet
	// main parses args and runs the subcommand.
	main func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"bench", "run the simulator's benchmark scenarios and print their table",
		func() *flag.FlagSet { return benchFlags(new(benchOptions)) }, benchMain},
	{"push", "send a synthetic audio and video stream to a player",
		func() *flag.FlagSet { return pushFlags(new(pushOptions)) }, pushMain},
	{"play", "receive a stream, verify every frame, report latency and loss",
		func() *flag.FlagSet { return playFlags(new(playOptions)) }, playMain},
	{"netem", "a UDP proxy that impairs any UDP program (delay, loss, rate); -measure checks its accuracy",
		func() *flag.FlagSet { return netemFlags(new(netemOptions)) }, netemMain},
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process the
		// default way instead of waiting for an orderly end.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns the
// process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "spillway: no command given")
		fmt.Fprintln(stderr)
		printUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(rest, stdout, stderr)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "spillway: unknown command %q\n\n", name)
		printUsage(stderr)
		return exitUsage
	}
	err := cmd.main(ctx, rest, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		fmt.Fprintf(stderr, "spillway %s: %v\n", name, err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Spillway is a real-time media transport over UDP.

Usage:

	spillway <command> [flags]

Commands:

`)
	for _, c := range commands {
		fmt.Fprintf(w, "	%-6s  %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "	%-6s  %s\n", "help", "show a command's flags")
	fmt.Fprint(w, `
Run "spillway help <command>" for a command's flags.
`)
}

// help implements "spillway help [command]".
func help(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		printUsage(stdout)
		return exitOK
	case 1:
		if c := lookup(args[0]); c != nil {
			fs := c.flags()
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		fmt.Fprintf(stderr, "spillway help: unknown command %q\n\n", args[0])
	default:
		fmt.Fprintln(stderr, "spillway help: at most one command")
		fmt.Fprintln(stderr)
	}
	printUsage(stderr)
	return exitUsage
}

// newFlagSet returns a flag set whose usage text starts with the synopsis
// and description.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: spillway %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, writing errors and usage to stderr. It
// returns errUsage (already reported) or flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package printed the error and the usage
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// usageErr prints a command-line error and the usage, and returns errUsage.
func usageErr(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "spillway %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// transportFlags adds the transport.Config flags to fs, filling cfg.
func transportFlags(fs *flag.FlagSet, cfg *transport.Config) {
	fs.TextVar(&cfg.Profile, "profile", transport.RTC, "transport `profile`: rtc (300 ms budget) or live (3 s budget)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "transport latency budget, capture to frame complete (default: the profile's)")
	fs.TextVar(&cfg.CongestionControl, "cc", transport.GCC, "congestion `control`: gcc, gcc-02 (the draft as written) or fixed (the tracks' nominal rates)")
	fs.Int64Var(&cfg.StartBitrate, "start-bitrate", 0, "the congestion controller's starting rate in `bit/s` (default 300000)")
	fs.Int64Var(&cfg.MinBitrate, "min-bitrate", 0, "the least the congestion controller's target falls to, in `bit/s` (default 50000)")
	fs.Int64Var(&cfg.MaxBitrate, "max-bitrate", 0, "the most the sender sends, in `bit/s` (default 20000000)")
	fs.DurationVar(&cfg.PacerQueueLimit, "pacer-queue", 0, "the send queue's bound in time (default: 150ms rtc, 1s live)")
	fs.DurationVar(&cfg.MinPlayoutDelay, "min-playout", 0, "the least playout offset, capture to playout (default: 0 rtc, 1s live)")
	fs.DurationVar(&cfg.MaxPlayoutDelay, "max-playout", 0, "the most playout offset (default: 800ms rtc, 3s live, or -min-playout if more)")
	fs.Float64Var(&cfg.DrainRate, "drain-rate", 0, "how fast excess playout delay drains, a `fraction` of real time (default: 0.10 rtc, 0.03 live)")
	fs.BoolVar(&cfg.CatchUp, "catch-up", false, "after a video freeze, skip to the newest decodable frame")
	fs.BoolVar(&cfg.KeyFrameAllowanceAlways, "key-allowance-always", false, "cover the key frames' longer transit in the playout offset at all times, not only around periodic key frames")
	fs.BoolVar(&cfg.PassThrough, "passthrough", false, "deliver received frames as they complete, with no playout buffer")
}

// checkTransportFlags validates what transportFlags filled.
func checkTransportFlags(fs *flag.FlagSet, cfg *transport.Config) error {
	if cfg.Latency < 0 {
		return usageErr(fs, "-latency %v: must not be negative", cfg.Latency)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"pacer-queue", cfg.PacerQueueLimit}, {"min-playout", cfg.MinPlayoutDelay}, {"max-playout", cfg.MaxPlayoutDelay}} {
		if d.v < 0 {
			return usageErr(fs, "-%s %v: must not be negative", d.name, d.v)
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageErr(fs, "%v", err)
	}
	return nil
}

// latencyBudget is the Latency a Config resolves to.
func latencyBudget(cfg *transport.Config) time.Duration {
	if cfg.Latency > 0 {
		return cfg.Latency
	}
	return cfg.Profile.Latency()
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// ms formats a duration as milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// kbps is a rate in kbit/s from bytes over an interval.
func kbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds() / 1000
}
