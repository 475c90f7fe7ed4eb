package core

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// The encoder targets (EventTargetRate): every targetInterval, the
// transport target less the control datagrams' rate and pushback while
// queues grow, shared out audio first (at its wire cost per frame byte),
// the rest less the other media's overhead share, all measured over the
// last second (overheadCost).
const (
	// targetInterval spaces TargetRate updates: at most 5 a second.
	targetInterval = 200 * time.Millisecond
	// overheadSlots x targetInterval is the window the overhead is
	// measured over (1 s).
	overheadSlots = 5
	// defaultOverhead is the share of the wire assumed for headers, FEC and
	// retransmissions before a second of sending has measured it.
	defaultOverhead = 0.1
	// targetRise is the share of a rise applied per update: rises are
	// smoothed (about a second to 70 %), cuts apply at once.
	targetRise = 0.25
	// targetMinChange: smaller changes are not reported.
	targetMinChange = 0.01
	// pushbackFloor is the least share of the target pushback leaves.
	pushbackFloor = 0.5
	// queueMinSlots x targetInterval is the window the standing queue is
	// the least over (1 s).
	queueMinSlots = 5
)

// byteMark is the sent-byte counters at one target update: every
// datagram's bytes and the frame bytes among them, the control datagrams'
// bytes, and the audio's on the wire and in frames (sender.ctrlBytes ...).
type byteMark struct {
	at                    clock.Time
	wire, media, ctrl     int64
	audioWire, audioFrame int64
}

// standingQueue is the delay our bytes queued now meet: the pacer's queue
// and the path model's, unless the estimator says the path's standing
// queue is another flow's (cc.Competing: a loss-based TCP keeps it full
// whatever we send), when a smaller encoder target would not drain it.
func (s *sender) standingQueue(now clock.Time) time.Duration {
	if s.competing() {
		return s.pacer.QueueDelay()
	}
	return s.pacer.QueueDelay() + s.path.fitQueueDelay(now)
}

// pushback is the share of the media target kept while queues grow: the
// least, over the last second, of the pacer queue's delay plus the queue
// the path model sees our bytes building on the path (bytes in flight
// beyond what the path drains). A key frame passes through in less, so
// only a standing queue counts. Up to a quarter of the pacer's limit costs nothing;
// from there the share falls linearly to pushbackFloor at the limit.
func pushback(queue, limit time.Duration) float64 {
	if limit <= 0 {
		return 1
	}
	free := limit / 4
	if queue <= free {
		return 1
	}
	f := 1 - (1-pushbackFloor)*float64(queue-free)/float64(limit-free)
	return max(f, pushbackFloor)
}

// overheadCost is what the wire cost beyond the frame bytes over the last
// second, in the order the pacer serves it:
//   - ctrl, the rate of the datagrams that carry no media (pings, feedback,
//     drop notices), which does not grow with the media;
//   - audio, the audio's wire bytes per frame byte (headers,
//     retransmissions, its FEC repair), audio being sent first;
//   - share, the share of the other media datagrams' bytes that were not
//     frame bytes (headers, FEC repair, retransmissions, probe padding),
//     which grows with the video.
//
// One share of every byte made the audio pay for the video's
// retransmissions, and read a second of audio alone as the video's
// overhead: after collapse-av-live's collapse, while the path carried
// retransmissions (0.89 of the wire), the audio's target fell from 64 to
// 25 kbit/s; in collapse-av the share read 0.62 while the video waited for
// a key frame that fitted.
func (s *sender) overheadCost(now clock.Time) (ctrl, audio, share float64) {
	c := s.c
	cur := byteMark{at: now, wire: c.stats.BytesSent, media: c.stats.MediaBytesSent,
		ctrl: s.ctrlBytes, audioWire: s.audioWire, audioFrame: s.audioFrame}
	old := s.overhead[s.ovhN%overheadSlots]
	s.overhead[s.ovhN%overheadSlots] = cur
	s.ovhN++
	audio, share = 1/(1-defaultOverhead), defaultOverhead
	if s.ovhN <= overheadSlots {
		return 0, audio, share
	}
	if dt := cur.at.Sub(old.at); dt >= minOverheadWindow {
		s.ctrlRate = float64(cur.ctrl-old.ctrl) * 8 / dt.Seconds()
	}
	ctrl = s.ctrlRate
	if af := cur.audioFrame - old.audioFrame; af >= minOverheadSample/10 {
		audio = min(max(float64(cur.audioWire-old.audioWire)/float64(af), 1), 10)
	}
	dw := (cur.wire - old.wire) - (cur.ctrl - old.ctrl) - (cur.audioWire - old.audioWire)
	dm := (cur.media - old.media) - (cur.audioFrame - old.audioFrame)
	if dw >= minOverheadSample {
		share = min(max(1-float64(dm)/float64(dw), 0), 0.9)
	}
	return ctrl, audio, share
}

// minOverheadWindow is the least time the control rate is measured over:
// updates come sooner than targetInterval when a stream opens or the
// target falls, and a few milliseconds holding a stream announcement read
// as 280 kbit/s.
const minOverheadWindow = 500 * time.Millisecond

// minOverheadSample is the least video (or other non-audio) bytes sent in
// the last second for their overhead share to be measured (a tenth of it
// for the audio's).
const minOverheadSample = 10_000

// updateTargets recomputes every open stream's media target and tells the
// application of those that changed (EventTargetRate).
func (s *sender) updateTargets(now clock.Time) {
	s.updateRate()
	avail := float64(s.estimator.Target())
	s.targetBasis = s.estimator.Target()
	ctrl, audioCost, share := s.overheadCost(now)
	if s.fixedTarget() {
		// A measured target is wire bytes; version 1's Fixed target is the
		// nominal media rates already.
		ctrl, audioCost, share = 0, 1, 0
	}
	avail = max(avail-ctrl, 0)
	// The standing queue: the least over the last second (key frames,
	// every 2 s in the foundation's traffic, pass through in less).
	s.queueMins[s.qmN%queueMinSlots] = min(s.queueMin, s.standingQueue(now))
	s.qmN++
	standing := s.queueMins[0]
	for _, q := range s.queueMins[:min(s.qmN, queueMinSlots)] {
		standing = min(standing, q)
	}
	avail *= pushback(standing, s.pacer.QueueLimit())
	s.queueMin = s.standingQueue(now)

	// Audio first, at its most (MaxBitrate, or the nominal rate); then the
	// other streams share what is left by priority weight (1, 2, 4), each
	// at most its most, what one cannot use going to the others. Last,
	// every target is raised to its stream's MinBitrate.
	var want [len(s.streams)]float64
	var weight [len(s.streams)]float64
	for i, st := range s.streams {
		if st == nil || !st.open || st.cfg.Kind != KindAudio {
			continue
		}
		want[i] = min(float64(st.cfg.maxBitrate()), avail/audioCost)
		avail -= want[i] * audioCost
	}
	avail *= 1 - share
	for round := 0; round < len(s.streams) && avail > 1; round++ {
		var total float64
		for i, st := range s.streams {
			weight[i] = 0
			if st != nil && st.open && st.cfg.Kind != KindAudio && want[i] < float64(st.cfg.maxBitrate()) {
				weight[i] = float64(int(1) << st.cfg.Priority)
				total += weight[i]
			}
		}
		if total == 0 {
			break
		}
		share := avail
		for i, st := range s.streams {
			if weight[i] == 0 {
				continue
			}
			give := min(share*weight[i]/total, float64(st.cfg.maxBitrate())-want[i])
			want[i] += give
			avail -= give
		}
	}
	for i, st := range s.streams {
		if st == nil || !st.open {
			continue
		}
		w := max(int64(want[i]), st.cfg.MinBitrate)
		if st.pushedTo > 0 {
			// A pushback held back since the last update (pushback).
			w = min(w, st.pushedTo)
			st.pushedTo = 0
		}
		next := w
		if st.target > 0 && w > st.target {
			next = st.target + int64(float64(w-st.target)*targetRise)
			if w-next < int64(float64(w)*targetMinChange) {
				next = w
			}
		}
		if st.target > 0 && absDiff(next, st.target) < int64(float64(st.target)*targetMinChange) {
			continue
		}
		s.setTarget(now, st, next)
	}
}

// setTarget gives a stream a new target and tells the application, unless
// it is the target it has.
func (s *sender) setTarget(now clock.Time, st *sendStream, bps int64) {
	if bps == st.target {
		return
	}
	st.target, st.targetAt = bps, now
	st.stats.TargetBitrate = bps
	s.c.ep.pushEvent(Event{Type: EventTargetRate, Conn: s.c, Stream: st.id, Kind: st.cfg.Kind, Bitrate: bps})
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
