package core

import (
	"encoding/binary"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// The playout offset (docs/PROTOCOL.md §6.1, APP "SPPO"): the receiver
// tells the sender how long after capture it plays frames, and the
// sender's stages (FEC, retransmission, the pacer's drops) then work to
// capture + max(Latency, that offset): a frame repaired after its playout
// time is wasted, one repaired before it is not (DESIGN §4).

var appPlayoutName = [4]byte{'S', 'P', 'P', 'O'}

const (
	appSubPlayout = 0
	// A changed offset is sent at most this often; an unchanged one is
	// repeated every playoutRepeat, so a lost report costs nothing lasting.
	playoutMinInterval = 100 * time.Millisecond
	playoutRepeat      = time.Second
	// playoutStep is the change worth a report.
	playoutStep = 5 * time.Millisecond
	// MaxPeerPlayout bounds the offset a sender accepts (MaxPlayoutDelay's
	// own limit): a peer cannot make it hold frames longer.
	MaxPeerPlayout = 60 * time.Second
)

// playoutFeedback is the receiver's side: what it last reported.
type playoutFeedback struct {
	sent   time.Duration
	sentAt clock.Time
	have   bool  // reported at least once
	media  int64 // media packets received when it was sent
}

// playoutDue is when the receiver next owes an offset report: once it
// has played a frame adaptively, and while media arrives.
func (r *receiver) playoutDue() clock.Time {
	c := r.c
	if c.cfg.Playout != PlayoutAdaptive || c.stats.FramesDelivered == 0 {
		return clock.Never
	}
	p := &r.po
	if p.have && c.stats.MediaPacketsReceived == p.media {
		return clock.Never // nothing new to play: nothing to report
	}
	if !p.have {
		return r.c.lastSend
	}
	if d := r.playoutDelay - p.sent; d >= playoutStep || d <= -playoutStep {
		return p.sentAt.Add(playoutMinInterval)
	}
	return p.sentAt.Add(playoutRepeat)
}

// appendPlayout adds the offset report: 4 bytes, the offset in
// microseconds (saturating).
func (r *receiver) appendPlayout(now clock.Time, b []byte) []byte {
	out, ok := appendAppDuration(b, appSubPlayout, r.playoutDelay)
	if ok {
		r.po = playoutFeedback{sent: r.playoutDelay, sentAt: now, have: true, media: r.c.stats.MediaPacketsReceived}
	}
	return out
}

// handlePlayout takes the peer's offset report.
func (s *sender) handlePlayout(data []byte) {
	if d, ok := parseAppDuration(data); ok {
		s.peerPlayout = d
	} else {
		s.c.stats.ProtocolErrors++
	}
}

// appendAppDuration appends an SPPO message of subtype sub carrying d: 4
// bytes, microseconds (saturating). It reports false, and returns b as it
// was, if the message does not fit.
func appendAppDuration(b []byte, sub uint8, d time.Duration) ([]byte, bool) {
	var data [4]byte
	binary.BigEndian.PutUint32(data[:], uint32(min(d.Microseconds(), 1<<32-1)))
	app := wire.App{Subtype: sub, Name: appPlayoutName, Data: data[:]}
	out, err := app.Append(b)
	if err != nil {
		return b, false
	}
	return out, true
}

// parseAppDuration reads an SPPO message's duration, at most
// MaxPeerPlayout; ok is false unless the data is 4 bytes.
func parseAppDuration(data []byte) (d time.Duration, ok bool) {
	if len(data) != 4 {
		return 0, false
	}
	return min(time.Duration(binary.BigEndian.Uint32(data))*time.Microsecond, MaxPeerPlayout), true
}

// budget is the time from capture a frame may take to reach the receiver:
// Latency, or the receiver's playout offset when that is longer.
func (c *Conn) budget() time.Duration { return max(c.cfg.Latency, c.snd.peerPlayout) }

// PeerPlayoutDelay returns the playout offset the peer last reported (0
// before any report).
func (c *Conn) PeerPlayoutDelay() time.Duration { return c.snd.peerPlayout }

// The deadline horizon (docs/PROTOCOL.md §6.1, APP "SPPO" subtype 1): the
// other direction. While the path's delay alone exceeds Latency (a
// standing queue we cannot drain, as behind a TCP flow), the sender
// judges its frames against capture + the one-way delay + Latency
// (sender.judgeDeadline) rather than dropping them all, and tells the
// receiver how long after capture that is. The receiver keeps assembling
// frames until then: given up at the playout offset (at most
// MaxPlayoutDelay), they would be bytes the sender spent for nothing,
// never delivered, not even late.

const (
	appSubHorizon = 1
	// horizonExpiry: a receiver forgets a horizon not repeated for this
	// long (a lost report of its end must not hold frames for good).
	horizonExpiry = 3 * playoutRepeat
)

// horizonReport is the sender's side: the horizon it last judged a frame
// by (0: none beyond the budget) and when, and what it last reported.
type horizonReport struct {
	cur    time.Duration
	judged clock.Time
	sent   time.Duration
	sentAt clock.Time
	have   bool // reported at least once
}

// horizonDue is when the sender next owes a horizon report, if it has
// judged a frame since the last: at once for the first, after
// playoutMinInterval for a change of playoutStep or to or from 0, and
// every playoutRepeat while it is not 0. A sender that stops sending
// stops reporting, and the receiver forgets the horizon (horizonExpiry).
func (s *sender) horizonDue() clock.Time {
	h := &s.hz
	switch {
	case !h.have && h.cur == 0:
		return clock.Never
	case !h.have:
		return s.c.lastSend
	case h.judged <= h.sentAt:
		return clock.Never
	}
	if d := h.cur - h.sent; d >= playoutStep || d <= -playoutStep || (h.cur == 0) != (h.sent == 0) {
		return h.sentAt.Add(playoutMinInterval)
	}
	if h.cur == 0 {
		return clock.Never
	}
	return h.sentAt.Add(playoutRepeat)
}

// appendHorizon adds the horizon report: 4 bytes, microseconds after
// capture (saturating), 0 for none.
func (s *sender) appendHorizon(now clock.Time, b []byte) []byte {
	h := &s.hz
	out, ok := appendAppDuration(b, appSubHorizon, h.cur)
	if ok {
		h.sent, h.sentAt, h.have = h.cur, now, true
	}
	return out
}

// handleHorizon takes the peer's horizon report.
func (r *receiver) handleHorizon(now clock.Time, data []byte) {
	if d, ok := parseAppDuration(data); ok {
		r.peerHorizon, r.peerHorizonAt = d, now
	} else {
		r.c.stats.ProtocolErrors++
	}
}

// expireHorizon forgets the peer's horizon once horizonExpiry has passed
// since its last report.
func (r *receiver) expireHorizon(now clock.Time) {
	if r.peerHorizon > 0 && now.Sub(r.peerHorizonAt) >= horizonExpiry {
		r.peerHorizon = 0
	}
}
