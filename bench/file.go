package bench

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spillway-rt/spillway/internal/strictcfg"
	"github.com/spillway-rt/spillway/netem"
)

// ErrInvalidFile is wrapped by every error about a scenario file's content.
var ErrInvalidFile = errors.New("bench: invalid scenario file")

// LinkStep changes a scenario's links At a time after the media starts. A
// nil direction keeps its link as it is.
type LinkStep struct {
	At      time.Duration     `json:"at"`
	Forward *netem.LinkConfig `json:"forward,omitempty"`
	Reverse *netem.LinkConfig `json:"reverse,omitempty"`
}

// A scenario file is JSON or YAML (by its extension: .yaml/.yml, else JSON)
// holding one scenario object or {"scenarios": [...]}. A scenario object:
//
//	name: my-path            # required
//	profile: rtc             # rtc (default) or live
//	media: 60s               # media offered (default 60s)
//	rtt: 100ms               # for the report (default: forward + reverse delay)
//	loss: 0.05               # for the report (default: the forward link's loss)
//	forward: {...}           # a netem.LinkConfig, field names as its json tags
//	reverse: {...}           # default: the same as forward
//	traffic: {video: {...}, audio: {...}}  # default: DefaultTraffic(); fields left out keep the default
//	loss_stop: 30s           # turn random loss off at this point of the media
//	max_fec_overhead: 0.25   # cap FEC at 25 % of a block's packets (default: the transport's, 0.5)
//	playout_quantile: 0.999  # frames the receiver's playout offset aims to play on time (default: the profile's)
//	schedule:                # link changes, in time order
//	  - at: 10s
//	    forward: {rate: 1mbit}   # only the fields named change
//	target: gcc              # "" (nominal rates), scripted, gcc (the congestion controller) or gcc02
//	reference: true          # run it again with gcc02 (gcc-02 as written) beside it
//	start_target: 300k       # where gcc starts
//	flows:                   # several media flows through one shared bottleneck (forward)
//	  - {delay: 50ms}        # one way each way; start, stop, pause_at, resume_at
//	  - {delay: 25ms, start: 10s}
//	  - {delay: 50ms, reverse: true}  # media the other way, through a reverse bottleneck (reverse)
//	cross:                   # TCP flows through it: variant reno/cubic, delay, start, stop,
//	  - {variant: cubic, delay: 50ms}  # file_size, file_size_max, idle_mean, start_idle
//	source_steps: [{at: 60s, bitrate: 3mbit}]  # the video sources' R_max from then on
//	converge_skip: 5s        # what each phase of the phases array leaves out
//	measure_from: 20s        # and what the whole row leaves out
//
// In a row with flows, times (schedule, flows, cross) count from the run's
// start and the schedule changes the bottlenecks only: the forward one,
// and the reverse one if a flow goes in reverse (Scenario.Flows,
// FlowSpec.Reverse).
//
// Durations are strings with units ("50ms"), integers may carry k/M/G
// ("4mbit"); unknown fields and out-of-range values are errors naming the
// field (see internal/strictcfg).
type scenarioFile struct {
	Scenarios []fileScenario `json:"scenarios"`
}

type fileScenario struct {
	Name     string            `json:"name"`
	Profile  Profile           `json:"profile"`
	Media    time.Duration     `json:"media"`
	RTT      time.Duration     `json:"rtt"`
	Loss     *float64          `json:"loss"`
	Forward  netem.LinkConfig  `json:"forward"`
	Reverse  *netem.LinkConfig `json:"reverse"`
	Traffic  Traffic           `json:"traffic"`
	LossStop time.Duration     `json:"loss_stop"`
	Schedule []fileStep        `json:"schedule"`
	// MaxFECOverhead and PlayoutQuantile: Scenario's.
	MaxFECOverhead  float64 `json:"max_fec_overhead"`
	PlayoutQuantile float64 `json:"playout_quantile"`
	// The cc issue's fields (Scenario's).
	Target       TargetMode    `json:"target"`
	Reference    bool          `json:"reference"`
	StartTarget  int64         `json:"start_target"`
	Flows        []FlowSpec    `json:"flows"`
	Cross        []CrossSpec   `json:"cross"`
	SourceSteps  []SourceStep  `json:"source_steps"`
	ConvergeSkip time.Duration `json:"converge_skip"`
	MeasureFrom  time.Duration `json:"measure_from"`
}

type fileStep struct {
	At      time.Duration `json:"at"`
	Forward any           `json:"forward"`
	Reverse any           `json:"reverse"`
}

// LoadScenarioFile reads the scenarios of a JSON or YAML file.
func LoadScenarioFile(path string) ([]Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	out, err := ParseScenarios(data, strictcfg.FormatOf(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// ParseScenarios decodes scenarios from data in the given format and
// validates them.
func ParseScenarios(data []byte, f strictcfg.Format) ([]Scenario, error) {
	var list []fileScenario
	if n := strictcfg.ListLen(data, f, "scenarios"); n >= 0 {
		// Defaults first, then the file's fields decoded onto them.
		sf := scenarioFile{Scenarios: make([]fileScenario, n)}
		for i := range sf.Scenarios {
			fillDefaults(&sf.Scenarios[i])
		}
		if err := strictcfg.Decode(data, f, &sf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidFile, err)
		}
		list = sf.Scenarios
	} else {
		var one fileScenario
		fillDefaults(&one)
		if err := strictcfg.Decode(data, f, &one); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidFile, err)
		}
		list = []fileScenario{one}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no scenario", ErrInvalidFile)
	}
	out := make([]Scenario, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i := range list {
		sc, err := list[i].scenario()
		if err != nil {
			return nil, fmt.Errorf("%w: scenario %d: %w", ErrInvalidFile, i, err)
		}
		if seen[sc.Name] {
			return nil, fmt.Errorf("%w: scenario %d: name %q used twice", ErrInvalidFile, i, sc.Name)
		}
		seen[sc.Name] = true
		out = append(out, sc)
	}
	return out, nil
}

func fillDefaults(fs *fileScenario) {
	fs.Profile = ProfileRTC
	fs.Media = time.Minute
	fs.Traffic = DefaultTraffic()
}

func (fs *fileScenario) scenario() (Scenario, error) {
	sc := Scenario{
		Name:     fs.Name,
		Profile:  fs.Profile,
		RTT:      fs.RTT,
		Forward:  fs.Forward,
		Reverse:  fs.Forward,
		Traffic:  fs.Traffic,
		Media:    fs.Media,
		LossStop: fs.LossStop,

		MaxFECOverhead:  fs.MaxFECOverhead,
		PlayoutQuantile: fs.PlayoutQuantile,

		Target:       fs.Target,
		Reference:    fs.Reference,
		StartTarget:  fs.StartTarget,
		Flows:        fs.Flows,
		Cross:        fs.Cross,
		SourceSteps:  fs.SourceSteps,
		ConvergeSkip: fs.ConvergeSkip,
		MeasureFrom:  fs.MeasureFrom,
	}
	if fs.Reverse != nil {
		sc.Reverse = *fs.Reverse
	}
	if sc.RTT == 0 {
		sc.RTT = sc.Forward.Delay + sc.Reverse.Delay
	}
	sc.Loss = sc.Forward.Loss
	if fs.Loss != nil {
		sc.Loss = *fs.Loss
	}
	fwd, rev := sc.Forward, sc.Reverse
	var prev time.Duration
	for i, st := range fs.Schedule {
		path := fmt.Sprintf("schedule[%d]", i)
		if end := sc.end(); st.At < prev || st.At > end {
			return Scenario{}, fmt.Errorf("%s.at: %v not in time order within the media (0-%v)", path, st.At, end)
		}
		prev = st.At
		step := LinkStep{At: st.At}
		if st.Forward != nil {
			if err := strictcfg.Assign(st.Forward, &fwd, path+".forward"); err != nil {
				return Scenario{}, err
			}
			c := fwd
			step.Forward = &c
		}
		if st.Reverse != nil {
			if err := strictcfg.Assign(st.Reverse, &rev, path+".reverse"); err != nil {
				return Scenario{}, err
			}
			c := rev
			step.Reverse = &c
		}
		sc.Schedule = append(sc.Schedule, step)
	}
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}
