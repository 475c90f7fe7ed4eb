package fec

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// LossEstimator turns per-packet outcomes (in sending order, as feedback
// reports them) into the Loss and MeanBurst of Conditions, the way the
// policy expects them: steady, so that noise in a short window does not
// take protection away from a lossy path, yet quick to fall to zero when
// loss stops.
//
//   - Loss is the rate over the last Window (default 5 s), or over the last
//     second if that is higher (loss rising).
//   - Loss is 0 once no packet has been lost for Quiet(rate) packets: about
//     4/rate packets, at least 1 s's worth and at most 2 s, so FEC stops
//     within 2 s of loss stopping (a quiet run that long at the measured
//     rate happens by chance about 2 % of the time).
//   - MeanBurst is lost packets per loss run over the Window.
//
// It keeps 100 ms buckets over the window: bounded memory, no allocation.
// The zero value is ready to use.
type LossEstimator struct {
	// Window is the long window. Default 5 s; at most 10 s.
	Window time.Duration

	buckets  [estBuckets]estBucket
	lastLost bool
	quiet    int        // packets since the last loss
	quietAt  clock.Time // when that run of good packets started
	lastAt   clock.Time // the latest packet's (send) time
	any      bool       // a loss has been seen
}

const (
	estSpan    = 100 * time.Millisecond
	estBuckets = 100 // 10 s
)

type estBucket struct {
	id               int64 // bucket number (time / 100 ms) + 1; 0: empty
	sent, lost, runs int64
}

func (l *LossEstimator) window() time.Duration {
	w := l.Window
	if w <= 0 {
		w = 5 * time.Second
	}
	return min(w, estBuckets*estSpan)
}

// OnPacket records the fate of one packet sent at now (its send time is
// what places it in a window).
func (l *LossEstimator) OnPacket(now clock.Time, lost bool) {
	id := bucketID(now)
	b := &l.buckets[(id%estBuckets+estBuckets)%estBuckets]
	if b.id != id {
		*b = estBucket{id: id}
	}
	b.sent++
	if lost {
		b.lost++
		if !l.lastLost {
			b.runs++
		}
		l.quiet = 0
		l.any = true
	} else {
		if l.quiet == 0 {
			l.quietAt = now
		}
		l.quiet++
	}
	l.lastLost = lost
	l.lastAt = now
}

// bucketID is the number of now's bucket, plus 1 (so the zero bucket is an
// empty one). Times may be negative (only differences mean anything), so
// the division floors.
func bucketID(now clock.Time) int64 {
	id := int64(now) / int64(estSpan)
	if int64(now)%int64(estSpan) < 0 {
		id--
	}
	return id + 1
}

// sum returns sent, lost and runs over the last d before now.
func (l *LossEstimator) sum(now clock.Time, d time.Duration) (sent, lost, runs int64) {
	last := bucketID(now)
	first := last - int64(d/estSpan) + 1
	for i := range l.buckets {
		b := &l.buckets[i]
		if b.id >= first && b.id <= last {
			sent += b.sent
			lost += b.lost
			runs += b.runs
		}
	}
	return sent, lost, runs
}

// Estimate returns the loss rate and mean burst length to put in
// Conditions at now.
func (l *LossEstimator) Estimate(now clock.Time) (loss, meanBurst float64) {
	sent, lost, runs := l.sum(now, l.window())
	if sent == 0 || lost == 0 || !l.any {
		return 0, 1
	}
	loss = float64(lost) / float64(sent)
	if s, x, _ := l.sum(now, time.Second); s > 0 {
		loss = max(loss, float64(x)/float64(s))
	}
	meanBurst = 1
	if runs > 0 {
		meanBurst = max(1, float64(lost)/float64(runs))
	}
	// Loss stopped? A run of good packets longer than 4/loss (at least 1 s
	// of packets, at most 2 s). The run's own span counts, to its latest
	// packet: feedback that stops coming says nothing of the time since
	// (one good packet and 2 s of silence once read as loss stopped).
	if l.quiet > 0 {
		quietFor := l.lastAt.Sub(l.quietAt)
		if quietFor >= 2*time.Second || (quietFor >= time.Second && float64(l.quiet) >= 4/loss) {
			return 0, 1
		}
	}
	return loss, meanBurst
}
