package cc

import (
	"math"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// GCC is a delay-based congestion controller of the Google Congestion
// Control family (draft-ietf-rmcat-gcc-02, "gcc-02" below; libwebrtc's
// goog_cc): packets are grouped by send time, the one-way delay variation
// between groups feeds a trendline (the slope of the accumulated delay
// over arrival time, libwebrtc's replacement of gcc-02's Kalman filter),
// an overuse detector compares it with an adaptive threshold (gcc-02
// §5.4), and a rate controller (gcc-02 §5.5) cuts the target to 0.85 x
// the measured receive rate on overuse and otherwise raises it. A
// loss-based bound (gcc-02 §6) applies only while the delay signal says
// the path is congested: loss without a delay rise is treated as
// non-congestive (random loss on a radio link, say).
//
// It probes (Prober): at the start, after a collapse for the capacity the
// path showed over the last minute, and upward while the target is used.
// This is still a slice of the cc issue's controller: no competitive mode,
// no bytes-in-flight bound. The zero value is unusable: use NewGCC.
type GCC struct {
	cfg GCCConfig

	// Packet groups (gcc-02 §5.2): packets sent within groupSpan of the
	// group's first.
	cur, prev packetGroup
	havePrev  bool

	// Trendline over the last trendWindow groups.
	points      [trendWindow]trendPoint
	pn, ph      int // points held, index of the oldest
	firstArr    clock.Time
	haveFirst   bool
	accDelay    float64 // ms
	smoothDelay float64 // ms
	groups      int     // groups seen, for the trend's gain (at most 60)

	// Overuse detector (gcc-02 §5.4).
	threshold  float64 // ms
	lastThresh clock.Time
	overuseMS  float64
	overuseN   int
	prevTrend  float64
	signal     usage
	overuseAt  clock.Time // the last overuse, for the loss bound

	// Rate control (gcc-02 §5.5).
	target     float64 // bit/s
	state      rcState
	lastUpdate clock.Time
	avgMax     float64 // kbit/s: the receive rate at the last cuts (mean)
	varMax     float64 // its variance, normalised
	haveAvgMax bool

	// Receive (acknowledged) rate over ackWindow.
	ack      [ackSlots]ackSlot
	ackRate  float64 // bit/s, 0 until measured
	sentRate float64 // bit/s the reported packets left at

	// Loss over the recent reports.
	lossFrac float64

	// Feedback silence (OnTime): the last report, and the last halving.
	lastFeedback clock.Time
	haveFeedback bool
	lastHalving  clock.Time

	// Probing (Prober): clusters to hand out, those awaiting results, the
	// receive rate's windowed maximum (the capacity to probe for after a
	// collapse), and the state the triggers read.
	queued      [2]ProbeCluster
	nQueued     int
	results     [probeSlots]probeResult
	nextProbe   int
	startProbed bool
	lastProbe   clock.Time
	appLimited  bool
	peak        [peakSlots]peakSlot

	stats GCCStats
}

// GCCConfig configures a GCC. Zero fields take the defaults.
type GCCConfig struct {
	StartRate int64 // bit/s; default 300 kbit/s
	MinRate   int64 // bit/s; default 50 kbit/s
	MaxRate   int64 // bit/s; default 20 Mbit/s
}

// GCCStats are a GCC's counters.
type GCCStats struct {
	Groups    int64   // packet groups compared
	Overuses  int64   // overuse signals
	Decreases int64   // target cuts on overuse
	LossCuts  int64   // target cuts by the loss bound
	Silences  int64   // target halvings for want of feedback
	Probes    int64   // clusters handed out
	ProbeHits int64   // probe results that raised the target
	Trend     float64 // the latest modified trend, ms
	Threshold float64 // the adaptive threshold, ms
	AckedRate int64   // bit/s
}

type probeResult struct {
	id                  int
	rate                int64
	created             clock.Time
	firstSend, lastSend clock.Time
	firstArr, lastArr   clock.Time
	sentBytes, lastSize int64
	recvBytes, firstRcv int64
	nSent, nRecv        int
	seen                bool // packets of it were in the current report
}

type peakSlot struct {
	start clock.Time
	bps   float64
}

const (
	probeSlots       = 4
	probeDuration    = 15 * time.Millisecond // libwebrtc's minimum probe duration
	probeMinPackets  = 5
	probeResultAfter = 2 * time.Second // a cluster unanswered this long is forgotten
	peakSlots        = 6
	peakSlotLen      = 10 * time.Second // the remembered capacity: the highest receive rate of the last minute
	// After a collapse, probe for the remembered capacity once the delay
	// has been quiet this long, and again at most this often.
	probeAfterQuiet = time.Second
	probeEvery      = 2 * time.Second
	// With the delay quiet for this long and the target used, probe at
	// twice the target.
	upProbeAfter = 5 * time.Second
)

type packetGroup struct {
	firstSend, lastSend clock.Time
	lastArrival         clock.Time
	set                 bool
}

type trendPoint struct{ x, y float64 }

type usage uint8

const (
	usageNormal usage = iota
	usageOver
	usageUnder
)

type rcState uint8

const (
	rcHold rcState = iota
	rcIncrease
	rcDecrease
)

type ackSlot struct {
	start clock.Time
	bytes int64
}

const (
	groupSpan        = 5 * time.Millisecond // gcc-02 §5.2's burst time
	trendWindow      = 20                   // libwebrtc's trendline window
	trendSmoothing   = 0.9
	trendGain        = 4.0
	initialThreshold = 12.5 // ms, gcc-02 §5.4
	thresholdUp      = 0.01 // K_u
	thresholdDown    = 0.00018
	overuseTimeMS    = 10 // ms above the threshold before signalling overuse
	beta             = 0.85
	ackSlots         = 10
	ackSlotLen       = 50 * time.Millisecond // ackSlots x ackSlotLen: a 500 ms window
	maxIncreasePerS  = 0.08                  // gcc-02's multiplicative increase, 8 % a second
	lossHigh         = 0.1                   // gcc-02 §6
	lossHoldAfter    = time.Second           // overuse this recent makes loss congestive
)

// NewGCC returns a controller starting at cfg.StartRate.
func NewGCC(cfg GCCConfig) *GCC {
	if cfg.StartRate <= 0 {
		cfg.StartRate = 300_000
	}
	if cfg.MinRate <= 0 {
		cfg.MinRate = 50_000
	}
	if cfg.MaxRate <= 0 {
		cfg.MaxRate = 20_000_000
	}
	cfg.StartRate = min(max(cfg.StartRate, cfg.MinRate), cfg.MaxRate)
	return &GCC{cfg: cfg, target: float64(cfg.StartRate), threshold: initialThreshold, state: rcIncrease,
		overuseAt: clock.Time(math.MinInt64 / 2)}
}

// Target returns the transport target in bit/s.
func (g *GCC) Target() int64 { return int64(g.target) }

// Stats returns the controller's counters.
func (g *GCC) Stats() GCCStats {
	s := g.stats
	s.Threshold = g.threshold
	s.AckedRate = int64(g.ackRate)
	return s
}

// OnTime halves the target once per RTT while no feedback has come for
// max(2 RTT, 500 ms): a path that stopped answering is not one to keep
// sending at the old rate into (feedback that is merely late halves it
// once or twice, and the controller climbs back when reports resume).
func (g *GCC) OnTime(now clock.Time, rtt RTT) {
	if !g.haveFeedback {
		return
	}
	r := max(rtt.Smoothed, 10*time.Millisecond)
	if now.Sub(g.lastFeedback) < max(2*r, 500*time.Millisecond) || now.Sub(g.lastHalving) < r ||
		g.target <= float64(g.cfg.MinRate) {
		return
	}
	g.target = max(g.target/2, float64(g.cfg.MinRate))
	g.lastHalving = now
	g.state = rcHold
	g.stats.Silences++
}

// PollProbe hands out the next probe cluster due: at the start, two at 3
// and 6 x the start rate, and after each that the path carried, one at
// twice what it carried; after a collapse, one at the capacity the path
// showed over the last minute once the delay has been quiet for a second;
// and, while the target is used and the delay has been quiet for 5 s, one
// at twice the target.
func (g *GCC) PollProbe(now clock.Time) (ProbeCluster, bool) {
	if !g.startProbed {
		g.startProbed = true
		g.queueProbe(now, 3*g.target)
		g.queueProbe(now, 6*g.target)
	}
	if g.nQueued == 0 && g.haveFeedback && now.Sub(g.lastProbe) >= probeEvery && now.Sub(g.overuseAt) >= probeAfterQuiet {
		peak := g.peakRate(now)
		switch {
		case peak > 1.5*g.target:
			g.queueProbe(now, peak)
		case !g.appLimited && now.Sub(g.overuseAt) >= upProbeAfter && now.Sub(g.lastProbe) >= upProbeAfter &&
			g.target < float64(g.cfg.MaxRate):
			g.queueProbe(now, 2*g.target)
		}
	}
	if g.nQueued == 0 {
		return ProbeCluster{}, false
	}
	c := g.queued[0]
	g.queued[0] = g.queued[1]
	g.nQueued--
	g.stats.Probes++
	return c, true
}

func (g *GCC) queueProbe(now clock.Time, rate float64) {
	rate = min(rate, float64(g.cfg.MaxRate))
	if g.nQueued == len(g.queued) || rate <= g.target {
		return
	}
	g.nextProbe++
	bytes := max(int(rate/8*probeDuration.Seconds()), probeMinPackets*1200)
	g.queued[g.nQueued] = ProbeCluster{ID: g.nextProbe, Rate: int64(rate), Bytes: bytes, MinPackets: probeMinPackets}
	g.nQueued++
	g.results[g.nextProbe%probeSlots] = probeResult{id: g.nextProbe, rate: int64(rate), created: now}
	g.lastProbe = now
}

// onProbePacket adds a reported packet to its cluster's result.
func (g *GCC) onProbePacket(p *PacketResult) {
	r := &g.results[p.ProbeID%probeSlots]
	if r.id != p.ProbeID {
		return
	}
	if r.nSent == 0 || p.SendTime < r.firstSend {
		r.firstSend = p.SendTime
	}
	if r.nSent == 0 || p.SendTime >= r.lastSend {
		r.lastSend, r.lastSize = p.SendTime, int64(p.Size)
	}
	r.nSent++
	r.sentBytes += int64(p.Size)
	r.seen = true
	if !p.Received {
		return
	}
	if r.nRecv == 0 || p.ArrivalTime < r.firstArr {
		r.firstArr, r.firstRcv = p.ArrivalTime, int64(p.Size)
	}
	if r.nRecv == 0 || p.ArrivalTime > r.lastArr {
		r.lastArr = p.ArrivalTime
	}
	r.nRecv++
	r.recvBytes += int64(p.Size)
}

// finishProbes resolves the clusters whose packets stopped coming (none in
// this report): the rate the path carried is the smaller of the send and
// the receive rate, and the target rises to it (ProbeBitrateEstimator in
// libwebrtc). A cluster with under 80 % of its packets received, or too
// few, says nothing.
func (g *GCC) finishProbes(now clock.Time) {
	for i := range g.results {
		r := &g.results[i]
		if r.id == 0 {
			continue
		}
		if r.seen {
			r.seen = false
			continue
		}
		if r.nSent == 0 {
			if now.Sub(r.created) > probeResultAfter {
				*r = probeResult{}
			}
			continue
		}
		sendSpan, recvSpan := r.lastSend.Sub(r.firstSend), r.lastArr.Sub(r.firstArr)
		if r.nSent >= probeMinPackets && r.nRecv*5 >= r.nSent*4 && sendSpan > 0 && recvSpan > 0 {
			sendRate := float64(r.sentBytes-r.lastSize) * 8 / sendSpan.Seconds()
			recvRate := float64(r.recvBytes-r.firstRcv) * 8 / recvSpan.Seconds()
			est := min(sendRate, recvRate)
			if recvRate < 0.9*sendRate {
				est = 0.95 * recvRate // the path did not keep up: its rate, a little under
			}
			if est > g.target {
				g.target = min(est, float64(g.cfg.MaxRate))
				g.stats.ProbeHits++
				// The path carried nearly all of it: probe on at twice
				// that (libwebrtc's exponential probing), until a probe
				// comes back short.
				if est >= 0.7*float64(r.rate) && g.nQueued == 0 {
					g.queueProbe(now, 2*est)
				}
			}
		}
		*r = probeResult{}
	}
}

// notePeak keeps the receive rate's maximum per 10 s slot.
func (g *GCC) notePeak(now clock.Time) {
	k := int64(now) / int64(peakSlotLen)
	slot := &g.peak[((k%peakSlots)+peakSlots)%peakSlots]
	if start := clock.Time(k * int64(peakSlotLen)); slot.start != start {
		*slot = peakSlot{start: start}
	}
	slot.bps = max(slot.bps, g.ackRate)
}

func (g *GCC) peakRate(now clock.Time) float64 {
	best := 0.0
	for _, s := range g.peak {
		if now.Sub(s.start) < peakSlots*peakSlotLen {
			best = max(best, s.bps)
		}
	}
	return best
}

// OnFeedback takes one transport-wide report.
func (g *GCC) OnFeedback(now clock.Time, fb *Feedback, rtt RTT, appLimited bool) {
	g.lastFeedback, g.haveFeedback = now, true
	g.appLimited = appLimited
	lost, total := 0, 0
	var firstSend, lastSend clock.Time
	var sentBytes int64
	for i := range fb.Packets {
		p := &fb.Packets[i]
		total++
		if i == 0 {
			firstSend = p.SendTime
		}
		lastSend = p.SendTime
		sentBytes += int64(p.Size)
		if p.ProbeID > 0 {
			g.onProbePacket(p)
		}
		if !p.Received {
			lost++
			continue
		}
		g.onArrival(now, p)
	}
	g.finishProbes(now)
	if total > 0 {
		g.lossFrac += (float64(lost)/float64(total) - g.lossFrac) * 0.3
	}
	if span := lastSend.Sub(firstSend); span >= 20*time.Millisecond {
		g.sentRate = float64(sentBytes) * 8 / span.Seconds()
	}
	g.updateAckRate(now)
	g.notePeak(now)
	g.control(now, rtt, appLimited)
}

// onArrival adds a received packet to the packet groups.
func (g *GCC) onArrival(now clock.Time, p *PacketResult) {
	g.addAck(now, p.Size)
	if !g.cur.set {
		g.cur = packetGroup{firstSend: p.SendTime, lastSend: p.SendTime, lastArrival: p.ArrivalTime, set: true}
		return
	}
	if p.SendTime.Sub(g.cur.firstSend) <= groupSpan && p.SendTime >= g.cur.firstSend {
		g.cur.lastSend = clock.Max(g.cur.lastSend, p.SendTime)
		g.cur.lastArrival = clock.Max(g.cur.lastArrival, p.ArrivalTime)
		return
	}
	if p.SendTime < g.cur.firstSend {
		return // reordered into an older group: ignored, as gcc-02 does
	}
	if g.havePrev {
		sendDelta := g.cur.lastSend.Sub(g.prev.lastSend)
		arrDelta := g.cur.lastArrival.Sub(g.prev.lastArrival)
		g.onDelta(now, float64(arrDelta-sendDelta)/float64(time.Millisecond), g.cur.lastArrival)
	}
	g.prev, g.havePrev = g.cur, true
	g.cur = packetGroup{firstSend: p.SendTime, lastSend: p.SendTime, lastArrival: p.ArrivalTime, set: true}
}

// onDelta feeds one inter-group delay variation (ms) to the trendline and
// the detector.
func (g *GCC) onDelta(now clock.Time, d float64, arrival clock.Time) {
	g.stats.Groups++
	if !g.haveFirst {
		g.firstArr, g.haveFirst = arrival, true
	}
	g.groups = min(g.groups+1, 60)
	g.accDelay += d
	g.smoothDelay = trendSmoothing*g.smoothDelay + (1-trendSmoothing)*g.accDelay
	x := float64(arrival.Sub(g.firstArr)) / float64(time.Millisecond)
	if g.pn < trendWindow {
		g.points[(g.ph+g.pn)%trendWindow] = trendPoint{x, g.smoothDelay}
		g.pn++
	} else {
		g.points[g.ph] = trendPoint{x, g.smoothDelay}
		g.ph = (g.ph + 1) % trendWindow
	}
	if g.pn < trendWindow {
		return
	}
	slope := g.slope()
	trend := float64(g.groups) * slope * trendGain
	g.stats.Trend = trend
	g.detect(now, trend)
}

// slope is the least-squares slope of the trendline's points.
func (g *GCC) slope() float64 {
	var sx, sy float64
	for i := 0; i < g.pn; i++ {
		p := g.points[i]
		sx += p.x
		sy += p.y
	}
	mx, my := sx/float64(g.pn), sy/float64(g.pn)
	var num, den float64
	for i := 0; i < g.pn; i++ {
		p := g.points[i]
		num += (p.x - mx) * (p.y - my)
		den += (p.x - mx) * (p.x - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// detect is gcc-02 §5.4's overuse detector with its adaptive threshold.
func (g *GCC) detect(now clock.Time, trend float64) {
	dtMS := 0.0
	if g.lastThresh != 0 {
		dtMS = min(float64(now.Sub(g.lastThresh))/float64(time.Millisecond), 100)
	}
	switch {
	case trend > g.threshold:
		g.overuseMS += dtMS
		g.overuseN++
		if g.overuseMS > overuseTimeMS && g.overuseN > 1 && trend >= g.prevTrend {
			g.overuseMS, g.overuseN = 0, 0
			g.signal = usageOver
			g.overuseAt = now
			g.stats.Overuses++
		}
	case trend < -g.threshold:
		g.overuseMS, g.overuseN = 0, 0
		g.signal = usageUnder
	default:
		g.overuseMS, g.overuseN = 0, 0
		g.signal = usageNormal
	}
	g.prevTrend = trend
	// The threshold follows |trend| (gcc-02 §5.4), but not a spike far
	// above it.
	if abs := math.Abs(trend); abs <= g.threshold+15 {
		k := thresholdUp
		if abs < g.threshold {
			k = thresholdDown
		}
		g.threshold = min(max(g.threshold+k*(abs-g.threshold)*dtMS, 6), 600)
	}
	g.lastThresh = now
}

func (g *GCC) addAck(now clock.Time, size int) {
	k := int64(now) / int64(ackSlotLen)
	slot := &g.ack[((k%ackSlots)+ackSlots)%ackSlots]
	if start := clock.Time(k * int64(ackSlotLen)); slot.start != start {
		*slot = ackSlot{start: start}
	}
	slot.bytes += int64(size)
}

// updateAckRate is the receive rate over the last ackSlots slots (those
// that have bytes; the current one counted at its share).
func (g *GCC) updateAckRate(now clock.Time) {
	var bytes int64
	oldest := now
	for _, s := range g.ack {
		if s.bytes > 0 && now.Sub(s.start) < ackSlots*ackSlotLen {
			bytes += s.bytes
			oldest = clock.Min(oldest, s.start)
		}
	}
	if span := now.Sub(oldest); bytes > 0 && span >= 100*time.Millisecond {
		g.ackRate = float64(bytes) * 8 / span.Seconds()
	}
}

// control is gcc-02 §5.5's rate controller, bounded by §6's loss rule.
func (g *GCC) control(now clock.Time, rtt RTT, appLimited bool) {
	dt := 0.0
	if g.lastUpdate != 0 {
		dt = min(now.Sub(g.lastUpdate).Seconds(), 1)
	}
	g.lastUpdate = now
	switch g.signal {
	case usageOver:
		if g.ackRate > 0 {
			cut := beta * g.ackRate
			if cut < g.target {
				g.target = cut
				g.stats.Decreases++
			}
			g.noteMax(g.ackRate)
		}
		g.state = rcHold
		g.signal = usageNormal // one cut per overuse signal
	case usageUnder:
		g.state = rcHold // the queues drain: hold
	default:
		if g.state == rcHold {
			g.state = rcIncrease
		}
	}
	if g.state == rcIncrease && dt > 0 {
		grown := g.target
		if g.nearMax() {
			// Additive near the last congestion point: about one packet
			// per response time (gcc-02 §5.5).
			response := max(rtt.Smoothed, 100*time.Millisecond) + 100*time.Millisecond
			grown += 1200 * 8 * dt / response.Seconds()
		} else {
			grown *= math.Pow(1+maxIncreasePerS, dt)
		}
		// An increase goes no further than what the path was seen to
		// carry allows (libwebrtc: 1.5 x the acknowledged rate + 10
		// kbit/s), nor, while the application leaves the target unused,
		// than twice what it sends; neither cuts the target.
		limit := math.Inf(1)
		if g.ackRate > 0 {
			limit = 1.5*g.ackRate + 10_000
		}
		if appLimited && g.sentRate > 0 {
			limit = min(limit, 2*g.sentRate)
		}
		g.target = max(g.target, min(grown, limit))
	}
	// Loss bound: only congestive loss (with a delay rise this second).
	if g.lossFrac > lossHigh && now.Sub(g.overuseAt) < lossHoldAfter {
		g.target *= 1 - 0.5*g.lossFrac*dt
		g.stats.LossCuts++
	}
	g.target = min(max(g.target, float64(g.cfg.MinRate)), float64(g.cfg.MaxRate))
	g.stats.AckedRate = int64(g.ackRate)
}

// noteMax tracks the receive rate at congestion (kbit/s), as gcc-02 §5.5's
// average max bitrate.
func (g *GCC) noteMax(bps float64) {
	kbps := bps / 1000
	if !g.haveAvgMax {
		g.avgMax, g.varMax, g.haveAvgMax = kbps, 0.4, true
		return
	}
	const alpha = 0.05
	g.avgMax = (1-alpha)*g.avgMax + alpha*kbps
	norm := max(g.avgMax, 1)
	g.varMax = (1-alpha)*g.varMax + alpha*(g.avgMax-kbps)*(g.avgMax-kbps)/norm
	g.varMax = min(max(g.varMax, 0.4), 2.5)
}

// nearMax reports whether the receive rate is within 3 standard deviations
// of the average max bitrate: the increase is then additive.
func (g *GCC) nearMax() bool {
	if !g.haveAvgMax || g.ackRate == 0 {
		return false
	}
	kbps := g.ackRate / 1000
	sd := math.Sqrt(g.varMax * g.avgMax)
	return math.Abs(kbps-g.avgMax) <= 3*sd
}
