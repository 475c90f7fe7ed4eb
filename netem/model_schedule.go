package netem

import (
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// ScheduleStep is one timed change of a link's (or a bottleneck's)
// configuration: from virtual time At on, Config applies (see LinkConfig
// for what happens to datagrams already on the link). A capacity step is a
// step whose Config differs in Rate (or Trace); a blackout is a step whose
// Config has Down set, followed by one without.
type ScheduleStep struct {
	At     time.Duration `json:"at"` // since virtual time 0
	Config LinkConfig    `json:"config"`
}

// Reconfigurable is what a schedule changes: a *Link or a *Bottleneck.
type Reconfigurable interface {
	SetConfig(cfg LinkConfig) error
}

// ApplySchedule validates steps and schedules each one (Simulator.Schedule)
// to set target's config at its time; a time already past applies at once,
// in order. Steps must be in non-decreasing order of At, which must not be
// negative. Nothing is scheduled if any step is invalid; the error names it
// and wraps ErrInvalidConfig. ApplySchedule allocates per step, not per
// datagram.
func (s *Simulator) ApplySchedule(target Reconfigurable, steps []ScheduleStep) error {
	for i := range steps {
		st := &steps[i]
		switch {
		case st.At < 0:
			return fmt.Errorf("%w: schedule step %d: At %v is negative", ErrInvalidConfig, i, st.At)
		case i > 0 && st.At < steps[i-1].At:
			return fmt.Errorf("%w: schedule step %d: At %v is before step %d's %v", ErrInvalidConfig, i, st.At, i-1, steps[i-1].At)
		}
		if err := st.Config.Validate(); err != nil {
			return fmt.Errorf("schedule step %d (at %v): %w", i, st.At, err)
		}
	}
	for _, st := range steps {
		cfg := st.Config
		s.Schedule(clock.Time(st.At), func(clock.Time) {
			if err := target.SetConfig(cfg); err != nil {
				panic("netem: ApplySchedule: a validated config was refused: " + err.Error())
			}
		})
	}
	return nil
}

// Blackout returns the two steps of a blackout of base from start to end:
// base with Down set at start, base again at end.
func Blackout(base LinkConfig, start, end time.Duration) []ScheduleStep {
	down := base
	down.Down = true
	return []ScheduleStep{{At: start, Config: down}, {At: end, Config: base}}
}

// Stall returns the two steps of a stall of base from start to end: the
// datagrams that leave the link's queue in between are held and delivered
// at end, in order. Those already crossing the link (its Delay) when the
// stall began arrive as usual, so the receiver's gap is the stall less
// the link's delay, as behind a real link that stalls at its sending end.
func Stall(base LinkConfig, start, end time.Duration) []ScheduleStep {
	held := base
	held.HoldUntil = end
	return []ScheduleStep{{At: start, Config: held}, {At: end, Config: base}}
}
