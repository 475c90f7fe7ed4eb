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
	us := min(r.playoutDelay.Microseconds(), 1<<32-1)
	var data [4]byte
	binary.BigEndian.PutUint32(data[:], uint32(us))
	app := wire.App{Subtype: appSubPlayout, Name: appPlayoutName, Data: data[:]}
	out, err := app.Append(b)
	if err != nil {
		return b
	}
	r.po = playoutFeedback{sent: r.playoutDelay, sentAt: now, have: true, media: r.c.stats.MediaPacketsReceived}
	return out
}

// handlePlayout takes the peer's offset report.
func (s *sender) handlePlayout(data []byte) {
	if len(data) != 4 {
		s.c.stats.ProtocolErrors++
		return
	}
	us := time.Duration(binary.BigEndian.Uint32(data)) * time.Microsecond
	s.peerPlayout = min(us, MaxPeerPlayout)
}

// budget is the time from capture a frame may take to reach the receiver:
// Latency, or the receiver's playout offset when that is longer.
func (c *Conn) budget() time.Duration { return max(c.cfg.Latency, c.snd.peerPlayout) }

// PeerPlayoutDelay returns the playout offset the peer last reported (0
// before any report).
func (c *Conn) PeerPlayoutDelay() time.Duration { return c.snd.peerPlayout }
