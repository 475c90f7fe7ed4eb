package cc

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Parts GCC and GCC02 share: the receive rate over a window of arrivals,
// gcc-02's packet groups, its adaptive threshold and its average max
// bitrate.

// ackWindowRate is the receive rate over the packets that arrived within
// ackWindow of the latest arrival (the receiver's clock), R in gcc-02
// §5.5: a ring, so a report's batch counts when its packets arrived.
type ackWindowRate struct {
	ring  [ackRingLen]ackEntry
	head  int
	n     int
	bytes int64
	last  clock.Time // the latest arrival
	rate  float64    // bit/s, 0 until measured
}

type ackEntry struct {
	at   clock.Time
	size int64
}

func (a *ackWindowRate) add(at clock.Time, size int) {
	if a.n > 0 && at < a.last.Add(-ackWindow) {
		// The arrival clock stepped back by more than the window (the
		// peer's clock, or its reference time, jumped): the entries
		// before it would never leave, since they go from the head only
		// and last never falls, and the rate would freeze for good.
		// Start over.
		a.head, a.n, a.bytes = 0, 0, 0
	}
	if a.n == len(a.ring) {
		a.pop()
	}
	a.ring[(a.head+a.n)%len(a.ring)] = ackEntry{at: at, size: int64(size)}
	a.n++
	a.bytes += int64(size)
	if a.n == 1 || at > a.last {
		a.last = at
	}
	for a.n > 1 && a.ring[a.head].at <= a.last.Add(-ackWindow) {
		a.pop()
	}
}

func (a *ackWindowRate) pop() {
	a.bytes -= a.ring[a.head].size
	a.head = (a.head + 1) % len(a.ring)
	a.n--
}

// update sets rate: the bytes after the first packet over the time from
// its arrival to the latest (at least 100 ms of them).
func (a *ackWindowRate) update() {
	if a.n < 2 {
		return
	}
	first := a.ring[a.head]
	if span := a.last.Sub(first.at); span >= 100*time.Millisecond {
		a.rate = float64(a.bytes-first.size) * 8 / span.Seconds()
	}
}

// recent is the receive rate over the last d of arrivals (at least 100
// ms of them), or else.
func (a *ackWindowRate) recent(d time.Duration, orElse float64) float64 {
	from := a.last.Add(-d)
	var bytes, firstSize int64
	first := a.last
	for i := a.n - 1; i >= 0; i-- {
		e := a.ring[(a.head+i)%len(a.ring)]
		if e.at < from {
			break
		}
		bytes += e.size
		if e.at <= first {
			first, firstSize = e.at, e.size
		}
	}
	if span := a.last.Sub(first); span >= 100*time.Millisecond {
		return float64(bytes-firstSize) * 8 / span.Seconds()
	}
	return orElse
}

// groups are gcc-02 §5.2's packet groups: packets sent within groupSpan
// of the group's first.
type groups struct {
	cur, prev packetGroup
	havePrev  bool
	// burst, for gcc-02 as written: §5.2's second rule, a packet that
	// arrives within burstTime of the one before with a negative delay
	// variation against the group (held back, then delivered in a burst)
	// joins the current group.
	burst bool
}

// burstTime is gcc-02 §5.2's burst_time.
const burstTime = 5 * time.Millisecond

// add takes a received packet; when it starts a new group, it returns the
// finished group's delay variation against the one before (ms: arrival
// delta minus send delta), its send delta and its last arrival.
func (gs *groups) add(p *PacketResult) (d float64, sendDelta time.Duration, arrival clock.Time, ok bool) {
	if !gs.cur.set {
		gs.cur = packetGroup{firstSend: p.SendTime, lastSend: p.SendTime, lastArrival: p.ArrivalTime, set: true}
		return 0, 0, 0, false
	}
	if p.SendTime.Sub(gs.cur.firstSend) <= groupSpan && p.SendTime >= gs.cur.firstSend {
		gs.cur.lastSend = clock.Max(gs.cur.lastSend, p.SendTime)
		gs.cur.lastArrival = clock.Max(gs.cur.lastArrival, p.ArrivalTime)
		return 0, 0, 0, false
	}
	if p.SendTime < gs.cur.firstSend {
		return 0, 0, 0, false // reordered into an older group: ignored, as gcc-02 does
	}
	if gs.burst && p.ArrivalTime >= gs.cur.lastArrival && p.ArrivalTime.Sub(gs.cur.lastArrival) < burstTime &&
		p.ArrivalTime.Sub(gs.cur.lastArrival) < p.SendTime.Sub(gs.cur.lastSend) {
		gs.cur.lastSend = clock.Max(gs.cur.lastSend, p.SendTime)
		gs.cur.lastArrival = p.ArrivalTime
		return 0, 0, 0, false
	}
	if gs.havePrev {
		sendDelta = gs.cur.lastSend.Sub(gs.prev.lastSend)
		d = float64(gs.cur.lastArrival.Sub(gs.prev.lastArrival)-sendDelta) / float64(time.Millisecond)
		arrival, ok = gs.cur.lastArrival, true
	}
	gs.prev, gs.havePrev = gs.cur, true
	gs.cur = packetGroup{firstSend: p.SendTime, lastSend: p.SendTime, lastArrival: p.ArrivalTime, set: true}
	return d, sendDelta, arrival, ok
}

// detector is gcc-02 §5.4's overuse detector: a signal m (ms) over the
// adaptive threshold for overuseTimeMS and two updates, and not falling,
// is overuse; under its negative, underuse.
type detector struct {
	threshold float64 // ms
	last      clock.Time
	overMS    float64
	overN     int
	prev      float64
	signal    usage
	// asWritten, for gcc-02 as written: overuse needs overuse_time_th
	// alone (not also a second update) and the threshold's time step is
	// not capped at 100 ms, both libwebrtc's additions; sawOver keeps an
	// overuse until the rate controller has read it (a later group of the
	// same report must not overwrite it).
	asWritten bool
	sawOver   bool
}

func newDetector() detector { return detector{threshold: initialThreshold} }

// update takes the signal m at now and reports whether it just signalled
// overuse.
func (d *detector) update(now clock.Time, m float64) (overuse bool) {
	dtMS := 0.0
	if d.last != 0 {
		dtMS = float64(now.Sub(d.last)) / float64(time.Millisecond)
		if !d.asWritten {
			dtMS = min(dtMS, 100)
		}
	}
	switch {
	case m > d.threshold:
		d.overMS += dtMS
		d.overN++
		if d.overMS > overuseTimeMS && (d.overN > 1 || d.asWritten) && m >= d.prev {
			d.overMS, d.overN = 0, 0
			d.signal, overuse = usageOver, true
			d.sawOver = d.asWritten
		}
	case m < -d.threshold:
		d.overMS, d.overN = 0, 0
		d.signal = usageUnder
	default:
		d.overMS, d.overN = 0, 0
		d.signal = usageNormal
	}
	d.prev = m
	d.threshold = adaptThreshold(d.threshold, m, dtMS)
	d.last = now
	return overuse
}

// adaptThreshold is gcc-02 §5.4's adaptive threshold after a signal m
// (ms) dtMS after the last update: it follows |m| (K_u up, K_d down),
// but not a spike more than 15 ms above it, within [6, 600] ms.
func adaptThreshold(th, m, dtMS float64) float64 {
	abs := math.Abs(m)
	if abs-th > 15 {
		return th
	}
	k := thresholdUp
	if abs < th {
		k = thresholdDown
	}
	return min(max(th+k*(abs-th)*dtMS, 6), 600)
}

// maxTracker is gcc-02 §5.5's average max bitrate: the receive rate at the
// cuts (kbit/s), with its normalised variance.
type maxTracker struct {
	avg, variance float64
	have          bool
}

func (t *maxTracker) note(bps float64) {
	kbps := bps / 1000
	if !t.have {
		t.avg, t.variance, t.have = kbps, 0.4, true
		return
	}
	const alpha = 0.05
	t.avg = (1-alpha)*t.avg + alpha*kbps
	t.variance = min(max((1-alpha)*t.variance+alpha*(t.avg-kbps)*(t.avg-kbps)/max(t.avg, 1), 0.4), 2.5)
}

// near reports whether a receive rate is within 3 standard deviations of
// the average max: increases are then additive.
func (t *maxTracker) near(bps float64) bool {
	if !t.have || bps == 0 {
		return false
	}
	return math.Abs(bps/1000-t.avg) <= 3*math.Sqrt(t.variance*t.avg)
}
