package jitterbuffer

import (
	"fmt"
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Group is the streams of one broadcast (the audio and video of one
// connection): they share one playout offset, the largest any member
// needs, so they stay in sync, and drain together. Every Buffer starts in
// a group of its own; Join moves it.
//
// The offset is kept in the transit space (capture timestamp on the
// sender's clock to playout on the receiver's): it moves at DrainRate
// toward what the members want (playout runs 1 ± DrainRate times real
// time), and rises at once only to a frame played late.
type Group struct {
	rate    float64
	members []*Buffer
	off     time.Duration // offset in force at `at`
	at      clock.Time
	want    time.Duration // the largest any member wants
	set     bool
	played  bool // a member has released a frame: from then on the offset moves at rate
	stalled bool // Stall: the offset grows with real time, nothing plays
	drift   driftEstimator
}

// NewGroup returns an empty group draining at drainRate (0:
// DefaultDrainRate). Like Config.DrainRate, the rate must be in [0, 1)
// (playout runs 1 ± drainRate times real time): NewGroup panics on any
// other. The group's rate is its members' from Join on, whatever their
// Config.DrainRate.
func NewGroup(drainRate float64) *Group {
	if !(drainRate >= 0 && drainRate < 1) {
		panic(fmt.Sprintf("jitterbuffer: NewGroup drain rate %v outside [0, 1)", drainRate))
	}
	if drainRate == 0 {
		drainRate = DefaultDrainRate
	}
	return &Group{rate: drainRate, drift: newDriftEstimator()}
}

// Join moves b into g (out of its own group). Members keep their own
// targets; the group plays them at the largest of those whose last frame
// came within memberIdle (a stream that ended, or paused, no longer holds
// the others back). Join b before pushing it frames. A group holds its
// members until they Leave: one kept for a long session should see each
// stream that ends leave it.
func (g *Group) Join(b *Buffer) {
	b.g.remove(b)
	b.g = g
	g.members = append(g.members, b)
}

// Leave takes b out of g into a group of its own (at g's rate), as it
// was before it joined; a b not in g is left as it is. Its new group
// starts from g's offset, and drains from there at the rate: a stream
// that plays on does not jump (it took its own target at once, and about
// 300 ms of audio came out together).
func (g *Group) Leave(b *Buffer) {
	if b.g != g {
		return
	}
	g.remove(b)
	ng := NewGroup(g.rate)
	ng.off, ng.at, ng.want, ng.set, ng.played, ng.drift = g.off, g.at, g.want, g.set, g.played, g.drift
	b.g = ng
	ng.members = append(ng.members, b)
}

func (g *Group) remove(b *Buffer) {
	for i, m := range g.members {
		if m == b {
			copy(g.members[i:], g.members[i+1:])
			g.members[len(g.members)-1] = nil
			g.members = g.members[:len(g.members)-1]
			return
		}
	}
}

// ObserveTransit feeds the drift estimator one packet's transit (arrival
// on the receiver's clock minus its send timestamp on the sender's): with
// packets as well as frames it sees more of the floor.
func (g *Group) ObserveTransit(now clock.Time, transit time.Duration) {
	g.drift.add(now, transit)
}

// ObserveReverseTransit feeds the drift estimator one transit of the path
// back to the sender: the time a ping sent here at sent (this side's
// clock) arrived there (the sender's clock, from its pong), minus sent.
// It falls as this side's clock gains; when the path back has less
// jitter than the path here, it fixes the drift sooner. Samples must come
// in order of sent; one that does not is left out.
func (g *Group) ObserveReverseTransit(sent clock.Time, transit time.Duration) {
	g.drift.addReverse(sent, transit)
}

// DriftPPM returns the estimated clock drift, positive when the
// receiver's clock runs fast.
func (g *Group) DriftPPM() float64 { return g.drift.ppm() }

// Stall stops every member's playout at now (the offset then grows with
// real time) until Resume: a video stream waiting for a missing reference
// holds its audio back with it, so they stay in sync.
func (g *Group) Stall(now clock.Time) {
	if g.stalled || !g.set {
		return
	}
	g.off, g.at, g.stalled = g.offset(now), now, true
}

// Resume ends a Stall: playout goes on at the offset the stall grew to,
// but no further than the members' MaxDelay allows (what playout is
// clamped to): excess beyond it would only delay the drain.
func (g *Group) Resume(now clock.Time) {
	if !g.stalled {
		return
	}
	off := g.offset(now)
	if hi, ok := g.maxOffset(); ok {
		off = min(off, hi)
	}
	g.off, g.at, g.stalled = off, now, false
}

// maxOffset is the largest offset any member's MaxDelay allows, in the
// transit space (from the capture-time mapping of each member's last
// release); ok is false before a member released a frame.
func (g *Group) maxOffset() (hi time.Duration, ok bool) {
	for _, m := range g.members {
		if m.mapSet && (!ok || m.mapK+m.cfg.MaxDelay > hi) {
			hi, ok = m.mapK+m.cfg.MaxDelay, true
		}
	}
	return hi, ok
}

// Stalled reports whether the group is stalled.
func (g *Group) Stalled() bool { return g.stalled }

// offset returns the offset in force at now: moving from off toward want
// at the group's rate, in either direction (growing with time while
// stalled).
func (g *Group) offset(now clock.Time) time.Duration {
	if !g.set {
		return g.want
	}
	if g.stalled {
		return g.off + max(0, now.Sub(g.at))
	}
	step := time.Duration(g.rate * float64(now.Sub(g.at)))
	if g.off > g.want {
		return max(g.off-step, g.want)
	}
	return min(g.off+step, g.want)
}

// Rate returns the playout speed at now: 1 + DrainRate while excess
// drains, 1 - DrainRate while the offset grows toward a larger target, 0
// while stalled, else 1. An audio renderer time-stretches by it.
func (g *Group) Rate(now clock.Time) float64 {
	if !g.set {
		return 1
	}
	if g.stalled {
		return 0
	}
	switch cur := g.offset(now); {
	case cur > g.want:
		return 1 + g.rate
	case cur < g.want:
		return 1 - g.rate
	}
	return 1
}

func (g *Group) update(now clock.Time) {
	var want time.Duration
	ok := false
	for _, m := range g.members {
		if m.wantSet && (!ok || m.want > want) && now.Sub(m.lastCompleted) <= memberIdle {
			want, ok = m.want, true
		}
	}
	if !ok {
		return
	}
	if g.stalled {
		g.want = want
		return
	}
	cur := g.offset(now)
	g.want = want
	if !g.set || !g.played {
		// Nothing has played yet: no one sees the offset move, so it
		// takes the target at once (Live's first second learns the loss
		// rate and the rounds its repairs need, which at a 3 % rise would
		// take half a minute to reach).
		cur = want
	}
	g.off, g.at, g.set = cur, now, true
}

// raise lifts the offset to off at now if it is below.
func (g *Group) raise(now clock.Time, off time.Duration) {
	if g.stalled {
		return
	}
	if cur := g.offset(now); off > cur {
		g.off, g.at, g.set = off, now, true
	}
}

// playoutAt returns when a frame captured at ts (the receiver's reading)
// plays: the first t with t = ts + offset(t).
func (g *Group) playoutAt(ts clock.Time) clock.Time {
	if !g.set || g.stalled {
		return clock.Never
	}
	if g.off == g.want || ts.Add(g.off) <= g.at {
		return ts.Add(g.off)
	}
	// While the offset moves, offset(t) = off + s r (t - at), s = -1
	// draining, +1 growing: t = (ts + off - s r at) / (1 - s r), until
	// the offset reaches want (at end).
	sr := g.rate
	if g.off > g.want {
		sr = -g.rate
	}
	t := clock.Time(math.Round((float64(ts) + float64(g.off) - sr*float64(g.at)) / (1 - sr)))
	if end := g.at.Add(time.Duration(math.Abs(float64(g.off-g.want)) / g.rate)); t <= end {
		return t
	}
	return ts.Add(g.want)
}
