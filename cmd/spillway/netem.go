package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
)

// netemOptions are the netem subcommand's flags.
type netemOptions struct {
	Listen        string
	Forward       string
	Fwd, Rev      netem.LinkConfig // resolved: the -config file's links (or none) with the flags applied
	Config        string           // -config: a scenario file ("" = none)
	Scenario      string           // -scenario: the file's scenario to use ("" = its only one)
	Pcap          string
	Seed          uint64
	StatsInterval time.Duration
	Duration      time.Duration
	WakeEarly     time.Duration
	Measure       bool

	// Schedule is the -config scenario's schedule (with its loss_stop
	// folded in as a step), the flags applied to every step: each step's
	// configs are complete, At counts from the proxy's start.
	Schedule []bench.LinkStep

	both, rev linkFlags            // what the both-ways and the -rev-* flags parsed into
	delaySt   bool                 // -delay was given (measure mode defaults it)
	onListen  func(netip.AddrPort) // tests: called with the proxy's address
	onStep    func(i int)          // tests: called after schedule step i was applied
}

// Measure mode: a sender at measureRate of measureSize-byte datagrams
// through a proxy with measureDelay (unless -delay says otherwise).
const (
	measureRate     = 10_000_000
	measureSize     = 1250
	measureDelay    = 50 * time.Millisecond
	measureDuration = 5 * time.Second
	// maxMeasureDuration bounds -measure's -duration.
	maxMeasureDuration = time.Hour
	measureWarmup      = 500 // datagrams before the allocation count starts (the pools grow first)
)

// linkFlags is what one set of impairment flags (the both-ways ones, or the
// -rev-* ones) parses into: a LinkConfig, and the Gilbert-Elliott
// convenience pair, which is not a field of it.
type linkFlags struct {
	netem.LinkConfig
	GELoss, GEBurst float64 // -ge-loss, -ge-burst
}

// linkField is one LinkConfig field as a pair of flags: -NAME for both
// directions and -rev-NAME for the reverse direction only. Add a row when
// the link model gains a field.
type linkField struct {
	name  string
	usage string
	// group is set for the rows that choose a loss model ("loss", "ge",
	// "ge-pair", "four-state") or a capacity source ("rate", "trace"): see
	// groupFamily and applyField.
	group    string
	register func(fs *flag.FlagSet, name, usage string, c *linkFlags)
	copy     func(dst, src *linkFlags)
	check    func(c *linkFlags) string // what is wrong with the flag's value, or ""
}

// groupFamily maps a row's group to its family: two groups of one family
// exclude each other, so giving both in one set of flags is an error, and a
// flag of one replaces what the other set (from the -config file, or from a
// both-ways flag for -rev-*).
var groupFamily = map[string]string{
	"loss": "loss model", "ge": "loss model", "ge-pair": "loss model", "four-state": "loss model",
	"rate": "capacity", "trace": "capacity",
}

func durationCheck(get func(c *linkFlags) time.Duration) func(c *linkFlags) string {
	return func(c *linkFlags) string {
		switch d := get(c); {
		case d < 0:
			return fmt.Sprintf("%v: must not be negative", d)
		case d > netem.MaxLinkDelay:
			return fmt.Sprintf("%v: at most %v", d, netem.MaxLinkDelay)
		}
		return ""
	}
}

func probCheck(get func(c *linkFlags) float64) func(c *linkFlags) string {
	return func(c *linkFlags) string {
		if p := get(c); !(p >= 0 && p <= 1) {
			return fmt.Sprintf("%v: must be in [0, 1]", p)
		}
		return ""
	}
}

func noCheck(*linkFlags) string { return "" }

// probField is a row for a probability field.
func probField(name, group, usage string, field func(c *linkFlags) *float64) linkField {
	return linkField{name, usage, group,
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Float64Var(field(c), n, 0, u) },
		func(d, s *linkFlags) { *field(d) = *field(s) },
		probCheck(func(c *linkFlags) float64 { return *field(c) })}
}

// durationField is a row for a duration field bounded by MaxLinkDelay.
func durationField(name, usage string, field func(c *linkFlags) *time.Duration) linkField {
	return linkField{name, usage, "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.DurationVar(field(c), n, 0, u) },
		func(d, s *linkFlags) { *field(d) = *field(s) },
		durationCheck(func(c *linkFlags) time.Duration { return *field(c) })}
}

var linkFields = []linkField{
	durationField("delay", "propagation `delay` (e.g. 50ms)",
		func(c *linkFlags) *time.Duration { return &c.Delay }),
	durationField("jitter", "`jitter` added to the delay: uniform on [0, J], or the scale of -jitter-dist",
		func(c *linkFlags) *time.Duration { return &c.Jitter }),
	{"jitter-dist", "jitter `distribution`: " + textNames[netem.JitterDist](), "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.TextVar(&c.JitterDist, n, netem.Uniform, u) },
		func(d, s *linkFlags) { d.JitterDist = s.JitterDist },
		noCheck},
	probField("loss", "loss", "random (Bernoulli) loss `probability` in [0, 1]",
		func(c *linkFlags) *float64 { return &c.Loss }),
	probField("ge-p", "ge", "Gilbert-Elliott loss: `probability` of moving from Good to Bad",
		func(c *linkFlags) *float64 { return &c.GE.P }),
	probField("ge-r", "ge", "Gilbert-Elliott loss: `probability` of moving from Bad to Good",
		func(c *linkFlags) *float64 { return &c.GE.R }),
	probField("ge-h", "ge", "Gilbert-Elliott loss: `probability` of delivery in Bad (default 0: all lost)",
		func(c *linkFlags) *float64 { return &c.GE.H }),
	probField("ge-k1", "ge", "Gilbert-Elliott loss: `probability` of loss in Good (default 0: none)",
		func(c *linkFlags) *float64 { return &c.GE.K1 }),
	{"ge-loss", "Gilbert-Elliott loss as its stationary loss `fraction` in [0, 1), with -ge-burst (instead of -ge-p etc.)", "ge-pair",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Float64Var(&c.GELoss, n, 0, u) },
		func(d, s *linkFlags) { d.GELoss = s.GELoss },
		func(c *linkFlags) string {
			if !(c.GELoss >= 0 && c.GELoss < 1) {
				return fmt.Sprintf("%v: must be in [0, 1)", c.GELoss)
			}
			return ""
		}},
	{"ge-burst", "Gilbert-Elliott loss: mean `length` of its loss bursts (at least 1), with -ge-loss", "ge-pair",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Float64Var(&c.GEBurst, n, 0, u) },
		func(d, s *linkFlags) { d.GEBurst = s.GEBurst },
		func(c *linkFlags) string {
			if !(c.GEBurst >= 1 && c.GEBurst <= math.MaxFloat64) {
				return fmt.Sprintf("%v: must be at least 1", c.GEBurst)
			}
			return ""
		}},
	{"four-state", "4-state Markov loss (tc's \"loss state\"): the `probabilities` p13,p31,p32,p23,p14", "four-state",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Var((*fourStateFlag)(&c.FourState), n, u) },
		func(d, s *linkFlags) { d.FourState = s.FourState },
		noCheck}, // Set checked the values
	probField("duplicate", "", "`probability` in [0, 1] that a datagram is duplicated",
		func(c *linkFlags) *float64 { return &c.Duplicate }),
	probField("corrupt", "", "`probability` in [0, 1] that one bit of a datagram is flipped",
		func(c *linkFlags) *float64 { return &c.Corrupt }),
	probField("reorder-prob", "", "`probability` in [0, 1] that a datagram skips the delay (tc's \"reorder\")",
		func(c *linkFlags) *float64 { return &c.ReorderProb }),
	{"reorder-gap", "with -reorder-prob: `N`-1 datagrams are delayed after each one sent at once (tc's \"gap\")", "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.IntVar(&c.ReorderGap, n, 0, u) },
		func(d, s *linkFlags) { d.ReorderGap = s.ReorderGap },
		func(c *linkFlags) string {
			if c.ReorderGap < 0 || c.ReorderGap > netem.MaxReorderGap {
				return fmt.Sprintf("%d: must be in [0, %d]", c.ReorderGap, netem.MaxReorderGap)
			}
			return ""
		}},
	{"rate", "rate limit in bit/s, with an optional k, M or G suffix (e.g. 4M); 0: none", "rate",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Var((*bitRate)(&c.Rate), n, u) },
		func(d, s *linkFlags) { d.Rate = s.Rate },
		func(c *linkFlags) string {
			if c.Rate < 0 || c.Rate > netem.MaxRate {
				return fmt.Sprintf("%d: must be in [0, %d]", c.Rate, int64(netem.MaxRate))
			}
			return ""
		}},
	{"trace", "capacity from a Mahimahi trace `file` (one delivery time in ms per line), instead of -rate", "trace",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.Var(&traceFlag{c: &c.LinkConfig}, n, u) },
		func(d, s *linkFlags) { d.Trace = s.Trace },
		noCheck}, // Set loaded and checked the file
	{"queue-bytes", "queue bound in `bytes` (with -rate or -trace); 0: none", "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.IntVar(&c.QueueBytes, n, 0, u) },
		func(d, s *linkFlags) { d.QueueBytes = s.QueueBytes },
		func(c *linkFlags) string {
			if c.QueueBytes < 0 {
				return fmt.Sprintf("%d: must not be negative", c.QueueBytes)
			}
			return ""
		}},
	durationField("queue-delay", "queue bound in `time` at the rate (with -rate or -trace; default 300ms if neither bound is set)",
		func(c *linkFlags) *time.Duration { return &c.QueueDelay }),
	{"queue-disc", "queue `discipline`: " + textNames[netem.QueueDisc](), "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.TextVar(&c.QueueDisc, n, netem.DropTail, u) },
		func(d, s *linkFlags) { d.QueueDisc = s.QueueDisc },
		noCheck},
	durationField("codel-target", "CoDel's target sojourn `time` (with -queue-disc codel; default 5ms)",
		func(c *linkFlags) *time.Duration { return &c.CoDelTarget }),
	durationField("codel-interval", "CoDel's `interval` (with -queue-disc codel; default 100ms)",
		func(c *linkFlags) *time.Duration { return &c.CoDelInterval }),
	{"overhead", "`bytes` the rate limiter counts per datagram on top of its payload (28 for IPv4+UDP)", "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.IntVar(&c.Overhead, n, 0, u) },
		func(d, s *linkFlags) { d.Overhead = s.Overhead },
		func(c *linkFlags) string {
			if c.Overhead < 0 || c.Overhead > 65535 {
				return fmt.Sprintf("%d: must be in [0, 65535]", c.Overhead)
			}
			return ""
		}},
	{"reorder", "let jitter reorder datagrams", "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.BoolVar(&c.Reorder, n, false, u) },
		func(d, s *linkFlags) { d.Reorder = s.Reorder },
		noCheck},
	{"down", "start with the link down: every datagram entering it is lost (a blackout)", "",
		func(fs *flag.FlagSet, n, u string, c *linkFlags) { fs.BoolVar(&c.Down, n, false, u) },
		func(d, s *linkFlags) { d.Down = s.Down },
		noCheck},
}

// applyField sets f's field of m from src, and clears what f's group
// excludes: a loss-model flag replaces any other loss model, -rate a trace
// and -trace a rate. -ge-loss and -ge-burst rebuild the whole
// Gilbert-Elliott chain from the pair.
func applyField(m *linkFlags, f *linkField, src *linkFlags) {
	f.copy(m, src)
	switch f.group {
	case "loss":
		m.GE, m.FourState = netem.GilbertElliott{}, netem.FourState{}
	case "ge":
		m.Loss, m.FourState = 0, netem.FourState{}
	case "ge-pair":
		m.Loss, m.FourState = 0, netem.FourState{}
		m.GE = netem.GEFromLossBurst(m.GELoss, m.GEBurst)
	case "four-state":
		m.Loss, m.GE = 0, netem.GilbertElliott{}
	case "rate":
		m.Trace = nil
	case "trace":
		m.Rate = 0
	}
}

// textNames lists the names a TextMarshaler enum of the link model takes.
func textNames[T interface {
	~uint8
	MarshalText() ([]byte, error)
}]() string {
	var names []string
	for d := T(0); d < 255; d++ {
		b, err := d.MarshalText()
		if err != nil {
			break
		}
		names = append(names, string(b))
	}
	return strings.Join(names, ", ")
}

// fourStateFlag is -four-state: p13,p31,p32,p23,p14.
type fourStateFlag netem.FourState

func (f *fourStateFlag) String() string {
	if f == nil || netem.FourState(*f).IsZero() {
		return ""
	}
	var parts []string
	for _, p := range []float64{f.P13, f.P31, f.P32, f.P23, f.P14} {
		parts = append(parts, strconv.FormatFloat(p, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

func (f *fourStateFlag) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 5 {
		return fmt.Errorf("want 5 comma-separated probabilities p13,p31,p32,p23,p14, got %d", len(parts))
	}
	var v [5]float64
	for i, part := range parts {
		p, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return fmt.Errorf("%s %q is not a probability in [0, 1]", [...]string{"p13", "p31", "p32", "p23", "p14"}[i], part)
		}
		v[i] = p
	}
	*f = fourStateFlag{P13: v[0], P31: v[1], P32: v[2], P23: v[3], P14: v[4]}
	return nil
}

// traceFlag is -trace: a Mahimahi trace file, loaded when the flag is set.
type traceFlag struct {
	c    *netem.LinkConfig
	path string
}

func (t *traceFlag) String() string {
	if t == nil {
		return ""
	}
	return t.path
}

func (t *traceFlag) Set(s string) error {
	tr, err := netem.LoadTrace(s)
	if err != nil {
		return err
	}
	t.c.Trace, t.path = tr, s
	return nil
}

// bitRate is a rate flag: an integer of bit/s with an optional k, M or G
// suffix (powers of 1000) and an optional "bit" or "bps" after it.
type bitRate int64

func (r *bitRate) String() string {
	if r == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*r), 10)
}

func (r *bitRate) Set(s string) error {
	v := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "bps"), "bit")
	mult := 1.0
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mult, v = 1e3, v[:n-1]
		case 'm', 'M':
			mult, v = 1e6, v[:n-1]
		case 'g', 'G':
			mult, v = 1e9, v[:n-1]
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f*mult > float64(netem.MaxRate) || f*mult < -float64(netem.MaxRate) {
		return fmt.Errorf("%q is not a rate (bit/s, e.g. 4000000 or 4M)", s)
	}
	if v := f * mult; v > 0 && v < 1 {
		// It would round to 0, which means no limit at all.
		return fmt.Errorf("%q is under 1 bit/s (0 means no limit)", s)
	}
	*r = bitRate(f * mult)
	return nil
}

func netemFlags(o *netemOptions) *flag.FlagSet {
	fs := newFlagSet("netem", "-listen ADDR -forward ADDR [-config FILE [-scenario NAME]] [impairments] [-pcap DIR] | -measure", `
Netem is a UDP proxy that impairs any UDP program: it listens on -listen and
forwards what it receives to -forward through an emulated link, and what the
-forward address answers back to the client through another (netem's link
model, in real time). The client is the most recent source address seen on
-listen.

Each impairment flag sets both directions; its -rev- form (-rev-delay,
-rev-loss, ...) overrides it for the reverse direction (forward address to
client) only. So "-delay 50ms -loss 0.02 -rev-loss 0" delays both ways and
loses only forward datagrams. One loss model per direction: -loss, the
Gilbert-Elliott chain (-ge-p, -ge-r, -ge-h, -ge-k1, or -ge-loss with
-ge-burst) or -four-state; a -rev- flag of another model replaces the
both-ways one. -trace replaces -rate the same way.

-config FILE takes the links from a scenario file, the JSON or YAML that
"spillway bench -file" reads: its forward and reverse links, and its
schedule (and loss_stop) applied in real time from the proxy's start (the
last step stays in force). With several scenarios in the file, -scenario
NAME picks one. Impairment flags given on the command line override the
file's fields for their direction, in every step of the schedule.

It runs until SIGINT or SIGTERM, or for -duration, printing a stats line to
stderr every -stats-interval and a final one to stdout:
fwd_offered=N fwd_delivered=N fwd_lost=N fwd_dropped=N fwd_codel_dropped=N
fwd_overflow=N fwd_blackout=N fwd_duplicated=N ... rev_... client_changes=N.
-pcap DIR writes DIR/netem-fwd.pcap and DIR/netem-rev.pcap (wall-clock times).

-measure runs a self-test instead: a sender writes 10 Mbit/s of 1,250-byte
datagrams on loopback through a proxy with a 50 ms delay (or -delay, and the
other impairment flags) to a receiver, all in this process, for -duration
(default 5s), and prints the delay error distribution (measured one-way
delay minus the configured delay).`)
	fs.StringVar(&o.Listen, "listen", "", "UDP `address` to listen on for the client (host:port; :port for all addresses)")
	fs.StringVar(&o.Forward, "forward", "", "UDP `address` to forward the client's datagrams to (host:port)")
	fs.StringVar(&o.Config, "config", "", "take the links and their schedule from the scenario `file` (JSON or YAML, as bench -file)")
	fs.StringVar(&o.Scenario, "scenario", "", "with -config: the `name` of the file's scenario to use (needed when it has several)")
	for i := range linkFields {
		f := &linkFields[i]
		f.register(fs, f.name, f.usage, &o.both)
		f.register(fs, "rev-"+f.name, "reverse direction only: "+strings.ReplaceAll(f.usage, "`", ""), &o.rev)
	}
	fs.StringVar(&o.Pcap, "pcap", "", "write the captures netem-fwd.pcap and netem-rev.pcap into `DIR`")
	fs.Uint64Var(&o.Seed, "seed", 1, "`seed` of the links' randomness")
	fs.DurationVar(&o.StatsInterval, "stats-interval", 0, "print a stats line to stderr this often (0: only at the end)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: at SIGINT or SIGTERM; -measure: 5s)")
	fs.DurationVar(&o.WakeEarly, "wake-early", 0, "wake this long before a datagram is due and spin for the rest (0: measured; negative: never spin)")
	fs.BoolVar(&o.Measure, "measure", false, "measure the proxy's delay accuracy on loopback and exit")
	return fs
}

// parseNetemFlags parses and checks args into o, reading the -config file
// if there is one. A bad command line returns errUsage (reported on
// stderr); an unreadable or invalid -config file returns its error.
func parseNetemFlags(args []string, stderr io.Writer) (*netemOptions, *flag.FlagSet, error) {
	o := new(netemOptions)
	fs := netemFlags(o)
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, fs, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.delaySt = set["delay"]
	switch {
	case o.StatsInterval < 0:
		return nil, fs, usageErr(fs, "-stats-interval %v: must not be negative", o.StatsInterval)
	case o.Duration < 0:
		return nil, fs, usageErr(fs, "-duration %v: must not be negative", o.Duration)
	case o.Measure && o.Duration > maxMeasureDuration:
		// It keeps every datagram's delay error, preallocated (8 B each,
		// 1000 a second).
		return nil, fs, usageErr(fs, "-measure -duration %v: at most %v", o.Duration, maxMeasureDuration)
	case o.Measure && (o.Listen != "" || o.Forward != ""):
		return nil, fs, usageErr(fs, "-measure makes its own sender and receiver: no -listen or -forward")
	case o.Measure && o.Config != "":
		return nil, fs, usageErr(fs, "-measure takes the impairment flags, not -config")
	case set["scenario"] && o.Config == "":
		return nil, fs, usageErr(fs, "-scenario picks a scenario of the -config file: give -config")
	}

	// The flags' own values, both-ways flags and -rev- flags apart.
	scopes := []flagScope{{"", &o.both, nil}, {"rev-", &o.rev, nil}}
	for si := range scopes {
		sc := &scopes[si]
		byFamily := map[string]*linkField{} // the first row of each family given
		for i := range linkFields {
			f := &linkFields[i]
			name := sc.prefix + f.name
			if !set[name] {
				continue
			}
			if msg := f.check(sc.vals); msg != "" {
				return nil, fs, usageErr(fs, "-%s %s", name, msg)
			}
			if fam := groupFamily[f.group]; fam != "" {
				if prev := byFamily[fam]; prev == nil {
					byFamily[fam] = f
				} else if prev.group != f.group {
					return nil, fs, usageErr(fs, "-%s%s and -%s: %s", sc.prefix, prev.name, name, familyConflict(prev, f))
				}
			}
			sc.given = append(sc.given, f)
		}
	}

	var base [2]netem.LinkConfig // the -config file's links, or ideal ones
	var file *bench.Scenario
	if o.Config != "" {
		sc, msg, err := loadNetemScenario(o.Config, o.Scenario)
		switch {
		case err != nil:
			return nil, fs, fmt.Errorf("-config: %w", err)
		case msg != "":
			return nil, fs, usageErr(fs, "%s", msg)
		}
		file = sc
		base = [2]netem.LinkConfig{sc.Forward, sc.Reverse}
	}
	dirs := [2]linkDir{{name: "forward", scopes: scopes[:1]}, {name: "reverse", scopes: scopes}}
	for d := range dirs {
		dir := &dirs[d]
		dir.file = file != nil
		if msg := dir.checkPair(); msg != "" {
			return nil, fs, usageErr(fs, "%s", msg)
		}
		cfg, msg := dir.resolve(base[d])
		if msg != "" {
			return nil, fs, usageErr(fs, "%s", msg)
		}
		if d == 0 {
			o.Fwd = cfg
		} else {
			o.Rev = cfg
		}
	}
	if file != nil {
		sched, msg := netemSchedule(file, dirs)
		if msg != "" {
			return nil, fs, usageErr(fs, "-config %s: %s", o.Config, msg)
		}
		o.Schedule = sched
	}
	switch {
	case !o.Measure && o.Listen == "":
		return nil, fs, usageErr(fs, "-listen is required (or -measure)")
	case !o.Measure && o.Forward == "":
		return nil, fs, usageErr(fs, "-forward is required (or -measure)")
	}
	return o, fs, nil
}

// flagScope is one set of impairment flags: the both-ways ones (prefix "")
// or the -rev- ones.
type flagScope struct {
	prefix string
	vals   *linkFlags
	given  []*linkField // the rows given on the command line, in table order
}

// familyConflict says why rows a and b, of one family, exclude each other.
func familyConflict(a, b *linkField) string {
	switch {
	case groupFamily[a.group] == "capacity":
		return "a link's capacity is a rate or a trace, not both"
	case a.group == "ge-pair" && b.group == "ge" || a.group == "ge" && b.group == "ge-pair":
		return "give the Gilbert-Elliott chain as -ge-p/-ge-r/-ge-h/-ge-k1 or as -ge-loss with -ge-burst, not both"
	}
	return "choose one loss model (-loss, -ge-*, or -four-state)"
}

// linkDir is one direction's flags: the forward direction takes the
// both-ways flags, the reverse one those and then the -rev- ones.
type linkDir struct {
	name   string
	scopes []flagScope
	file   bool // the base configs come from a -config file
}

// flag returns the name, with its dash, of the flag that set row name in
// this direction (the -rev- one wins), or "".
func (d *linkDir) flag(name string) string {
	for i := len(d.scopes) - 1; i >= 0; i-- {
		for _, f := range d.scopes[i].given {
			if f.name == name {
				return "-" + d.scopes[i].prefix + name
			}
		}
	}
	return ""
}

// setsFamily reports whether a flag of this direction sets a row of the
// family (see groupFamily).
func (d *linkDir) setsFamily(fam string) bool {
	for _, sc := range d.scopes {
		for _, f := range sc.given {
			if groupFamily[f.group] == fam {
				return true
			}
		}
	}
	return false
}

// checkPair checks that -ge-loss and -ge-burst come together (either may
// come from the both-ways flags for the reverse direction).
func (d *linkDir) checkPair() string {
	l, b := d.flag("ge-loss"), d.flag("ge-burst")
	switch {
	case l != "" && b == "":
		return fmt.Sprintf("%s needs %s", l, strings.Replace(l, "ge-loss", "ge-burst", 1))
	case b != "" && l == "":
		return fmt.Sprintf("%s needs %s", b, strings.Replace(b, "ge-burst", "ge-loss", 1))
	}
	return ""
}

// apply returns base with this direction's flags applied, both-ways flags
// first.
func (d *linkDir) apply(base netem.LinkConfig) (netem.LinkConfig, linkFlags) {
	m := linkFlags{LinkConfig: base}
	for _, sc := range d.scopes {
		for _, f := range sc.given {
			applyField(&m, f, sc.vals)
		}
	}
	return m.LinkConfig, m
}

// resolve applies the flags to base and checks the result, naming the flags
// that made it invalid.
func (d *linkDir) resolve(base netem.LinkConfig) (netem.LinkConfig, string) {
	cfg, m := d.apply(base)
	return cfg, d.check(&cfg, &m)
}

// check reports what is wrong with cfg, the flags m applied to a base,
// naming the flags (or the -config file) responsible; "" if nothing.
func (d *linkDir) check(cfg *netem.LinkConfig, m *linkFlags) string {
	fileField := func(json string) string {
		if d.file {
			return "the -config file's " + json
		}
		return json
	}
	// who names the flag that set row, else the other rows' flags, else the file.
	who := func(rows ...string) string {
		for _, r := range rows {
			if n := d.flag(r); n != "" {
				return n
			}
		}
		return "-config"
	}
	if l := d.flag("ge-loss"); l != "" {
		g := netem.GEFromLossBurst(m.GELoss, m.GEBurst)
		if err := g.Validate(); err != nil {
			return fmt.Sprintf("%s %v %s %v: no Gilbert-Elliott chain has this loss and mean burst (loss/(1-loss) must not exceed the burst)",
				l, m.GELoss, d.flag("ge-burst"), m.GEBurst)
		}
	}
	if cfg.ReorderGap != 0 && cfg.ReorderProb == 0 {
		if n := d.flag("reorder-gap"); n != "" {
			return fmt.Sprintf("%s %d needs %s", n, cfg.ReorderGap, strings.Replace(n, "reorder-gap", "reorder-prob", 1))
		}
		return fmt.Sprintf("%s 0: %s %d needs a reorder probability", who("reorder-prob"), fileField("reorder_gap"), cfg.ReorderGap)
	}
	if cfg.QueueDisc != netem.CoDel {
		for _, c := range []struct {
			row, json string
			v         time.Duration
		}{{"codel-target", "codel_target", cfg.CoDelTarget}, {"codel-interval", "codel_interval", cfg.CoDelInterval}} {
			if c.v == 0 {
				continue
			}
			if n := d.flag(c.row); n != "" {
				return fmt.Sprintf("%s %v needs -queue-disc codel", n, c.v)
			}
			return fmt.Sprintf("%s %v: %s needs codel", who("queue-disc"), cfg.QueueDisc, fileField(c.json))
		}
	} else {
		t, i := cfg.CoDelTarget, cfg.CoDelInterval
		if t == 0 {
			t = netem.DefaultCoDelTarget
		}
		if i == 0 {
			i = netem.DefaultCoDelInterval
		}
		if t >= i {
			return fmt.Sprintf("%s: the CoDel target %v must be below the CoDel interval %v", who("codel-target", "codel-interval", "queue-disc"), t, i)
		}
	}
	if !cfg.GE.IsZero() {
		if err := cfg.GE.Validate(); err != nil {
			return fmt.Sprintf("%s: %v", who("ge-p", "ge-r", "ge-h", "ge-k1", "ge-loss"), err)
		}
	}
	if !cfg.FourState.IsZero() {
		if err := cfg.FourState.Validate(); err != nil {
			return fmt.Sprintf("%s %s: %v", who("four-state"), (*fourStateFlag)(&cfg.FourState), err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Sprintf("%s direction: %v", d.name, err)
	}
	return ""
}

// loadNetemScenario reads path and returns its scenario called name, or its
// only one if name is "". It returns a usage message when the command line
// is at fault (no such scenario, or several to choose from), an error when
// the file is.
func loadNetemScenario(path, name string) (*bench.Scenario, string, error) {
	scs, err := bench.LoadScenarioFile(path)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(scs))
	for i := range scs {
		if scs[i].Name == name {
			return &scs[i], "", nil
		}
		names[i] = scs[i].Name
	}
	switch {
	case name != "":
		return nil, fmt.Sprintf("-scenario %q: %s has no such scenario (it has %s)", name, path, strings.Join(names, ", ")), nil
	case len(scs) > 1:
		return nil, fmt.Sprintf("%s has %d scenarios: pick one with -scenario (%s)", path, len(scs), strings.Join(names, ", ")), nil
	}
	return &scs[0], "", nil
}

// netemSchedule returns sc's schedule for the proxy: its steps and its
// loss_stop (loss off in both directions, as the bench does), with each
// direction's flags applied to every config, or what is wrong with a step
// the flags made invalid.
func netemSchedule(sc *bench.Scenario, dirs [2]linkDir) ([]bench.LinkStep, string) {
	steps := slices.Clone(sc.Schedule)
	if sc.LossStop > 0 {
		// The bench turns loss off before the steps due at the same time
		// run: find the configs in force then.
		i := 0
		for i < len(steps) && steps[i].At < sc.LossStop {
			i++
		}
		cur := [2]netem.LinkConfig{sc.Forward, sc.Reverse}
		for _, st := range steps[:i] {
			if st.Forward != nil {
				cur[0] = *st.Forward
			}
			if st.Reverse != nil {
				cur[1] = *st.Reverse
			}
		}
		stop := bench.LinkStep{At: sc.LossStop}
		for d := range cur {
			if dirs[d].setsFamily("loss model") {
				continue // the flags pin this direction's loss model
			}
			c := cur[d]
			if c.Loss == 0 && c.GE.IsZero() && c.FourState.IsZero() {
				continue // nothing to turn off
			}
			c.Loss, c.GE, c.FourState = 0, netem.GilbertElliott{}, netem.FourState{}
			if d == 0 {
				stop.Forward = &c
			} else {
				stop.Reverse = &c
			}
		}
		if stop.Forward != nil || stop.Reverse != nil {
			steps = slices.Insert(steps, i, stop)
		}
	}
	for i := range steps {
		st := &steps[i]
		for d, p := range []**netem.LinkConfig{&st.Forward, &st.Reverse} {
			if *p == nil {
				continue
			}
			cfg, m := dirs[d].apply(**p)
			if msg := dirs[d].check(&cfg, &m); msg != "" {
				return nil, fmt.Sprintf("schedule step at %v, %s link: %s", st.At, dirs[d].name, msg)
			}
			*p = &cfg
		}
	}
	return steps, ""
}

func netemMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, fs, err := parseNetemFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.Measure {
		return netemMeasure(ctx, o, stdout, stderr)
	}
	listen, err := resolveUDP(o.Listen, true)
	if err != nil {
		return usageErr(fs, "-listen: %v", err)
	}
	target, err := resolveUDP(o.Forward, false)
	if err != nil {
		return usageErr(fs, "-forward: %v", err)
	}
	if loopsBack(listen, target) {
		// One datagram would be forwarded to the proxy itself for ever
		// (174,641 times in 3 s, a review measured), more with -duplicate.
		return usageErr(fs, "-forward %v is the proxy's own -listen address %v: every datagram would come back to it", target, listen)
	}
	return runNetem(ctx, o, listen, target, stdout, stderr)
}

// loopsBack reports whether a proxy listening on listen would receive what
// it forwards to target: the same port, and the same address or one of
// this host's while it listens on all of them.
func loopsBack(listen, target netip.AddrPort) bool {
	if listen.Port() != target.Port() {
		return false
	}
	la, ta := listen.Addr().Unmap(), target.Addr().Unmap()
	if la == ta {
		return true
	}
	if !la.IsUnspecified() {
		return false
	}
	if ta.IsLoopback() || ta.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == ta {
				return true
			}
		}
	}
	return false
}

// resolveUDP resolves host:port. A listen address may leave the host out
// (all addresses); a target may not.
func resolveUDP(s string, listen bool) (netip.AddrPort, error) {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := a.AddrPort()
	if len(a.IP) == 0 {
		if !listen {
			return netip.AddrPort{}, fmt.Errorf("%q: want host:port", s)
		}
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(a.Port))
	}
	if !listen && ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: want a port", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// captures are the proxy's two pcap writers.
type captures struct{ fwd, rev *pcap.Writer }

func openCaptures(dir, name string) (*captures, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fwd, err := pcap.Create(filepath.Join(dir, name+"-fwd.pcap"))
	if err != nil {
		return nil, err
	}
	rev, err := pcap.Create(filepath.Join(dir, name+"-rev.pcap"))
	if err != nil {
		_ = fwd.Close()
		return nil, err
	}
	return &captures{fwd, rev}, nil
}

func (c *captures) close() error {
	if c == nil {
		return nil
	}
	return errors.Join(c.fwd.Close(), c.rev.Close())
}

// newNetemProxy starts the proxy o describes, with its captures.
func newNetemProxy(o *netemOptions, listen, target netip.AddrPort) (*netem.Proxy, *captures, error) {
	cfg := netem.ProxyConfig{Listen: listen, Target: target, Forward: o.Fwd, Reverse: o.Rev,
		Seed: o.Seed, WakeEarly: o.WakeEarly, Epoch: time.Now()}
	var caps *captures
	if o.Pcap != "" {
		var err error
		if caps, err = openCaptures(o.Pcap, "netem"); err != nil {
			return nil, nil, err
		}
		cfg.CaptureForward, cfg.CaptureReverse = caps.fwd.CaptureFunc(cfg.Epoch), caps.rev.CaptureFunc(cfg.Epoch)
	}
	p, err := netem.NewProxy(cfg)
	if err != nil {
		return nil, nil, errors.Join(err, caps.close())
	}
	return p, caps, nil
}

// runNetem runs the proxy until ctx ends or o.Duration passes.
func runNetem(ctx context.Context, o *netemOptions, listen, target netip.AddrPort, stdout, stderr io.Writer) error {
	p, caps, err := newNetemProxy(o, listen, target)
	if err != nil {
		return err
	}
	stderr = &syncWriter{w: stderr} // the schedule's goroutine writes too
	fmt.Fprintf(stderr, "listening on %v, forwarding to %v (wake early %v)\n", p.Addr(), p.Target(), p.WakeEarly())
	if o.Config != "" {
		fmt.Fprintf(stderr, "links from %s (%d schedule steps)\n", o.Config, len(o.Schedule))
	}
	stopSchedule := startSchedule(p, o.Schedule, func(i int, err error) {
		if err != nil {
			fmt.Fprintf(stderr, "schedule step %d/%d (at %v): %v\n", i+1, len(o.Schedule), o.Schedule[i].At, err)
		} else {
			fmt.Fprintf(stderr, "schedule step %d/%d (at %v) applied\n", i+1, len(o.Schedule), o.Schedule[i].At)
		}
		if o.onStep != nil {
			o.onStep(i)
		}
	})
	defer stopSchedule()
	if o.onListen != nil {
		o.onListen(p.Addr())
	}
	var end <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		end = t.C
	}
	var tick <-chan time.Time
	if o.StatsInterval > 0 {
		t := time.NewTicker(o.StatsInterval)
		defer t.Stop()
		tick = t.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "interrupted")
			break loop
		case <-end:
			break loop
		case <-tick:
			fmt.Fprintln(stderr, proxyStatsLine(p.Stats()))
		}
	}
	stopSchedule()
	err = p.Close()
	fmt.Fprintln(stdout, proxyStatsLine(p.Stats()))
	return errors.Join(err, caps.close())
}

// startSchedule applies steps to p's links on a goroutine, each at its At
// after the proxy's epoch (a step already due applies at once), calling
// applied after each. The returned stop ends the goroutine, if it has not
// ended yet, and waits for it; it is idempotent.
func startSchedule(p *netem.Proxy, steps []bench.LinkStep, applied func(i int, err error)) (stop func()) {
	if len(steps) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(time.Until(p.Epoch().Add(steps[0].At)))
		defer t.Stop()
		for i, st := range steps {
			if i > 0 {
				t.Reset(time.Until(p.Epoch().Add(st.At)))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
			var err error
			if st.Forward != nil {
				err = p.Forward().SetConfig(*st.Forward)
			}
			if st.Reverse != nil {
				err = errors.Join(err, p.Reverse().SetConfig(*st.Reverse))
			}
			applied(i, err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// proxyStatsLine formats a proxy's counters as key=value fields.
func proxyStatsLine(st netem.ProxyStats) string {
	var b strings.Builder
	for _, d := range []struct {
		name string
		s    *netem.LinkStats
	}{{"fwd", &st.Forward}, {"rev", &st.Reverse}} {
		// Every fate LinkStats counts: offered + duplicated = delivered +
		// lost + blackout + dropped + codel_dropped + overflow + in flight.
		fmt.Fprintf(&b, "%s_offered=%d %s_delivered=%d %s_lost=%d %s_dropped=%d %s_codel_dropped=%d %s_overflow=%d %s_blackout=%d %s_duplicated=%d %s_bytes=%d ",
			d.name, d.s.PacketsOffered, d.name, d.s.PacketsDelivered, d.name, d.s.PacketsLost,
			d.name, d.s.PacketsDropped, d.name, d.s.PacketsCoDelDropped, d.name, d.s.PacketsOverflow,
			d.name, d.s.PacketsBlackout, d.name, d.s.PacketsDuplicated, d.name, d.s.BytesDelivered)
	}
	var lateMean time.Duration
	if n := st.Forward.PacketsDelivered + st.Reverse.PacketsDelivered; n > 0 {
		lateMean = st.LateSum / time.Duration(n)
	}
	fmt.Fprintf(&b, "client_changes=%d strangers=%d no_client=%d write_errors=%d read_errors=%d late_mean_us=%s late_max_us=%s",
		st.ClientChanges, st.Strangers, st.NoClient, st.WriteErrors, st.ReadErrors, us(lateMean), us(st.LateMax))
	return b.String()
}

// netemMeasure is -measure: the proxy's delay accuracy at 10 Mbit/s of
// 1,250 B datagrams, sender and receiver in this process, neither allocating
// per datagram.
func netemMeasure(ctx context.Context, o *netemOptions, stdout, stderr io.Writer) error {
	if !o.delaySt {
		o.Fwd.Delay = measureDelay
	}
	dur := o.Duration
	if dur == 0 {
		dur = measureDuration
	}
	lat := netem.MeasureTimerLateness(100)
	fmt.Fprintf(stdout, "timer_lateness_us p50=%s p90=%s p99=%s max=%s\n", us(lat.P50), us(lat.P90), us(lat.P99), us(lat.Max))

	lo := netip.MustParseAddrPort("127.0.0.1:0")
	rcv, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo))
	if err != nil {
		return err
	}
	defer rcv.Close()
	_ = rcv.SetReadBuffer(4 << 20)
	snd, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo))
	if err != nil {
		return err
	}
	defer snd.Close()
	p, caps, err := newNetemProxy(o, lo, rcv.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(stdout, "measure: %d Mbit/s of %d B datagrams for %v on loopback through a proxy with delay %v (jitter %v, wake early %v)\n",
		measureRate/1_000_000, measureSize, dur, o.Fwd.Delay, o.Fwd.Jitter, p.WakeEarly())

	interval := time.Duration(measureSize * 8 * int64(time.Second) / measureRate)
	total := int(dur / interval)
	errs := make([]time.Duration, 0, total) // delay errors, preallocated: nothing per datagram
	start := time.Now()

	// Receiver: one-way delay from the timestamp in each datagram.
	var rwg sync.WaitGroup
	rwg.Add(1)
	received := 0
	go func() {
		defer rwg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, _, err := rcv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			now := time.Since(start)
			if n < 16 {
				continue
			}
			sent := time.Duration(binary.BigEndian.Uint64(buf[8:]))
			if len(errs) < cap(errs) {
				errs = append(errs, now-sent-o.Fwd.Delay)
			}
			received++
		}
	}()

	// Sender, paced on the clock (a late wake-up sends what is due at
	// once), stamping each datagram with its send time.
	msg := make([]byte, measureSize)
	var ms0, ms1 runtime.MemStats
	sent, counted := 0, 0
	for sent < total && ctx.Err() == nil {
		if wait := time.Until(start.Add(time.Duration(sent) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if sent == measureWarmup {
			runtime.ReadMemStats(&ms0)
		}
		binary.BigEndian.PutUint64(msg, uint64(sent))
		binary.BigEndian.PutUint64(msg[8:], uint64(time.Since(start)))
		if _, err := snd.WriteToUDPAddrPort(msg, p.Addr()); err != nil {
			return err
		}
		sent++
		if sent > measureWarmup {
			counted++
		}
	}
	runtime.ReadMemStats(&ms1)
	// Let the last datagrams through (unless interrupted), then stop the
	// receiver.
	drain := time.NewTimer(o.Fwd.Delay + o.Fwd.Jitter + 200*time.Millisecond)
	select {
	case <-drain.C:
	case <-ctx.Done():
		drain.Stop()
	}
	_ = rcv.SetReadDeadline(time.Now())
	rwg.Wait()
	if err := errors.Join(p.Close(), caps.close()); err != nil {
		return err
	}

	allocs := 0.0
	if counted > 0 {
		allocs = float64(ms1.Mallocs-ms0.Mallocs) / float64(counted)
	}
	// What did not arrive, by its fate on the link (its loss model; its
	// queue: drops, CoDel, overflow, a link down; still queued when the
	// run stopped). sent - received read as "lost" counted queue drops and
	// the datagrams still queued as losses with no loss model set.
	fw := p.Stats().Forward
	lost := int64(fw.PacketsLost)
	dropped := int64(fw.PacketsDropped + fw.PacketsCoDelDropped + fw.PacketsOverflow + fw.PacketsBlackout)
	queued := max(int64(sent)+int64(fw.PacketsDuplicated)-int64(received)-lost-dropped, 0)
	fmt.Fprintf(stdout, "sent=%d received=%d lost=%d dropped=%d queued=%d allocs_per_datagram=%.3f\n",
		sent, received, lost, dropped, queued, allocs)
	if len(errs) == 0 {
		return errors.New("measure: no datagram arrived")
	}
	slices.Sort(errs)
	q := func(f float64) time.Duration { return errs[min(int(f*float64(len(errs))), len(errs)-1)] }
	fmt.Fprintf(stdout, "delay_error_us p50=%s p90=%s p99=%s max=%s min=%s\n", us(q(0.5)), us(q(0.9)), us(q(0.99)), us(errs[len(errs)-1]), us(errs[0]))
	if q(0.99) > time.Millisecond {
		fmt.Fprintln(stdout, "note: p99 delay error above 1 ms")
	}
	fmt.Fprintln(stderr, proxyStatsLine(p.Stats()))
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "interrupted: the figures cover the datagrams sent until then")
	}
	return nil
}

// us formats a duration in microseconds.
func us(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
