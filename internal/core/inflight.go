package core

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Bytes in flight: media packets (data, retransmissions, repair) sent
// outside probe clusters and not yet reported by transport-wide feedback
// are bounded by the
// window, target x (smoothed RTT + allowance): when feedback slows or
// stops, or the target overshoots, the sender stops adding to the path
// (audio excepted: it is small and first) and its queue, the proactive
// drop and the encoders' pushback take over, instead of the path's queue
// growing until the estimator hears of it (libwebrtc's congestion window
// pushback does the same).
//
// The allowance covers what is in flight besides a round trip at the
// target: up to two feedback intervals before a report covers a packet,
// and a key frame leaving at the pacing rate (8 deltas at once: 239 ms of
// media rate in the foundation's traffic), within the frames' budget:
// max(Latency, minWindowAllowance) + 2 x FeedbackInterval.
const (
	minWindowAllowance = 250 * time.Millisecond
	// minWindowPackets: the window never closes below this many full
	// packets.
	minWindowPackets = 4
	// inflightAge: a packet no report covered this long after it left
	// stops counting (every report repeats the last 100 ms, so only a
	// long feedback outage, which halves the target anyway, gets here).
	inflightAgeMin = 500 * time.Millisecond
)

// record writes a sent media packet into the history, counting it in
// flight unless a probe cluster is going out (a cluster is bounded by its
// own size, and exists to send above the target). The slot's previous
// packet stops counting if it still did.
func (s *sender) record(pn int64, sp sentPacket) {
	slot := &s.history[pn&(historySize-1)]
	s.leaveFlight(slot)
	sp.inflight = s.probe.ID == 0
	*slot = sp
	if sp.inflight {
		s.inflight += int(sp.size)
	}
}

// leaveFlight stops counting a packet in flight (reported, aged out, or
// overwritten).
func (s *sender) leaveFlight(sp *sentPacket) {
	if sp.inflight {
		sp.inflight = false
		s.inflight -= int(sp.size)
	}
}

// inflightAge is how long an unreported packet counts in flight.
func (s *sender) inflightAge() time.Duration {
	return max(2*s.c.rtt.Smoothed()+s.c.cfg.FeedbackInterval, inflightAgeMin)
}

// ageFlight stops counting packets sent longer than inflightAge ago.
func (s *sender) ageFlight(now clock.Time) {
	c := s.c
	s.ifOldest = max(s.ifOldest, c.nextPN-historySize)
	cutoff := now.Add(-s.inflightAge())
	for ; s.ifOldest < c.nextPN; s.ifOldest++ {
		sp := &s.history[s.ifOldest&(historySize-1)]
		if sp.key != s.ifOldest+1 || !sp.inflight {
			continue
		}
		if sp.at > cutoff {
			break
		}
		s.leaveFlight(sp)
	}
}

// window is the most media bytes in flight: the transport target over the
// smoothed RTT and the allowance. Version 1's Fixed target has no window
// (it is not the path's rate).
func (s *sender) window() int {
	if s.fixedTarget() {
		return 1 << 62
	}
	c := s.c
	span := c.rtt.Smoothed() + max(c.cfg.Latency, minWindowAllowance) + 2*c.cfg.FeedbackInterval
	w := int(float64(s.estimator.Target()) / 8 * span.Seconds())
	return max(w, minWindowPackets*c.cfg.MaxDatagramSize)
}

// windowFull reports whether the bytes in flight fill the window. A probe
// cluster going out is not held.
func (s *sender) windowFull(now clock.Time) bool {
	s.ageFlight(now)
	return s.probe.ID == 0 && s.inflight >= s.window()
}

// windowOpensAt is when the oldest packet in flight ages out.
func (s *sender) windowOpensAt() clock.Time {
	c := s.c
	for pn := max(s.ifOldest, c.nextPN-historySize); pn < c.nextPN; pn++ {
		sp := &s.history[pn&(historySize-1)]
		if sp.key == pn+1 && sp.inflight {
			return sp.at.Add(s.inflightAge())
		}
	}
	return clock.Never
}
