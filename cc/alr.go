package cc

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// ALR detects the application-limited region: a sender using markedly
// less than its target, whose target is then a guess the path has not
// confirmed (no up-probes, increases bounded by what it sends). It is
// libwebrtc's AlrDetector: a budget that fills at alrUsage of the target
// and empties by what is sent, over alrWindow; the sender enters the
// region when the budget is over alrEnter of its bound (it has sent under
// 65 % of the target for a while) and leaves it under alrLeave. Probe
// padding is not the application's and is not counted. The zero value is
// ready to use.
type ALR struct {
	budget  float64 // bytes
	last    clock.Time
	started bool
	limited bool
}

const (
	alrUsage  = 0.65
	alrWindow = 500 * time.Millisecond
	alrEnter  = 0.8
	alrLeave  = 0.5
)

// OnSent takes bytes the sender sent (not probe padding).
func (a *ALR) OnSent(bytes int) { a.budget -= float64(bytes) }

// Update credits the time since the last call at the target (bit/s) and
// returns whether the sender is application limited.
func (a *ALR) Update(now clock.Time, target int64) bool {
	rate := float64(max(target, 1)) * alrUsage / 8 // bytes/s
	if a.started && now > a.last {
		a.budget += rate * now.Sub(a.last).Seconds()
	}
	a.started, a.last = true, now
	bound := rate * alrWindow.Seconds()
	a.budget = min(max(a.budget, -bound), bound)
	switch ratio := a.budget / bound; {
	case !a.limited && ratio > alrEnter:
		a.limited = true
	case a.limited && ratio < alrLeave:
		a.limited = false
	}
	return a.limited
}

// Limited reports the state the last Update found.
func (a *ALR) Limited() bool { return a.limited }
