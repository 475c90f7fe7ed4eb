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
// §5.4), and a rate controller (gcc-02 §5.5) cuts the target under the
// measured receive rate on overuse and otherwise raises it (8 %/s, or
// additively near the last congestion point).
//
// Beyond gcc-02:
//   - A cut leaves enough under the receive rate to drain the queue it
//     found within 500 ms, 5-20 % (gcc-02: always 15 %; cutShare). The
//     receive rate counts arrivals on the receiver's clock, over the last
//     500 ms, or over the last 200 ms when that is under half of it (after
//     a capacity drop the longer window still remembers the rate before;
//     the cut is then the deepest, 20 %).
//   - Such a cut on a dropped receive rate is provisional: another flow's
//     burst (a TCP flow's slow start, a joining flow's probes) holds our
//     packets back just as a capacity drop does. If within 1 s packets
//     sent after the cut cross with no queue while we kept sending at a
//     quarter of the cut's rate or more, it was a burst, and the target
//     goes back to where it was (at most the receive rate then). After a
//     capacity drop the queue stands until the cut drains it, or drains
//     because the sender fell silent, and the cut stays. (A drop that
//     leaves the path more than the cut, the sender still sending, looks
//     like a burst: the target goes back, and the next overuse cuts it.)
//   - A queue estimate that jitter cannot fake: the least one-way delay of
//     the last 32 packets above its least over 10 s, and the round trip
//     above its least ever (skew-free). A queue over 25 ms for 250 ms
//     "stands": the trend sees nothing in a full queue, so it is cut like
//     an overuse (once per RTT + 300 ms, and only while it does not
//     drain: a round trip from pings a second apart that still shows a
//     queue the one-way estimate saw drain cuts nothing); over 10 ms the
//     target does not grow.
//   - The loss bound (gcc-02 §6) applies only to congestive loss, with a
//     delay rise in the last second or a standing queue: loss at the
//     path's least delay is not congestion (random loss on a radio link).
//     Over 10 % it cuts by half the loss, at most once per RTT + 300 ms.
//     After a cut the loss rate counts only packets sent after it (TCP's
//     recovery point), from at most 10 %: a drop-tail queue that
//     overflowed as the capacity fell was answered by the cut the delay
//     called for, and its loss, reported later, is not a reason to cut
//     again.
//   - A cut made with a queue of 25 ms or more measures our receive rate
//     while that queue stands (it is the path's rate, or our share of a
//     shared one); once the queue has drained, the target comes back to
//     0.9 of it, at most to where it was before the cut (drainMeasure).
//     The cut itself goes deep enough to drain the queue; the 8 %/s
//     increase would take seconds to climb back.
//   - A competitive mode: a standing queue that ignored three cuts in a
//     row (for overuse or for the queue, or none possible at the least
//     rate) is another flow's (a loss-based TCP keeps it full whatever we
//     send), so the delay stops steering and loss does, as it would a TCP
//     flow's: each loss event (of packets sent since the last cut), once
//     per round trip, cuts to 0.85 of the receive rate, and the target
//     grows by 8 %/s plus two packets per round trip. It ends once the
//     queue has been gone for 2 s (longer than a TCP sawtooth's trough),
//     or after two loss cuts in a row that the queue heeded (it fell by a
//     third within RTT + 300 ms: the queue was ours).
//   - Application limited (ALR, fed by the core): increases go no
//     further than alrHeadroom (1.8) x the sent rate, and the target
//     falls back to that, or to what a probe measured in the last 10 s:
//     within twice the sent rate at any instant, though the rate over
//     500 ms moves by several percent with the frames' sizes. It never
//     falls below StartRate that way (an application sending little, as
//     audio alone, starts its video from there, not from 1.8 x its audio),
//     so with a StartRate above 1.8 x the sent rate the target stays at
//     StartRate.
//   - A target under half of what a probe measured in the last 10 s grows
//     at least as fast as the additive increase (outside the competitive
//     mode): 8 %/s of a small rate is slower, and multiplicative increase
//     and decrease would keep a flow that other flows' bursts cut small
//     at its small share.
//
// It probes (Prober): at the start, a gentle one at 1.5 x the target while
// the target is used and the delay has been quiet for 2 s, exponentially
// while the path carries them, and after a collapse at the capacity the
// path showed over the last minute, once probes the path carried come
// within a factor of 2 of it (a collapsed path would overflow). A cluster
// lasts 60 ms, so jitter cannot fake its rate by much, and counts as
// carried only if its one-way delay did not grow faster than 0.9 of its
// rate allows, which bunched arrivals cannot fake. After start-up, only one
// the path carried in full raises the target (a FIFO shared with other
// flows gives a burst a share in proportion to its rate, so a queued
// cluster's receive rate would claim more than a fair share), to 0.85 of
// what it carried (0.95 for the probe after a collapse); overuse while it
// is out waits for its result.
// The zero value is unusable: use NewGCC.
type GCC struct {
	cfg GCCConfig

	groups groups // packet groups, gcc-02 §5.2

	// Trendline over the last trendWindow groups.
	points      [trendWindow]trendPoint
	pn, ph      int // points held, index of the oldest
	firstArr    clock.Time
	haveFirst   bool
	accDelay    float64 // ms
	smoothDelay float64 // ms
	nGroups     int     // groups seen, for the trend's gain (at most 60)

	// Overuse detector (gcc-02 §5.4).
	det       detector
	overuseAt clock.Time // the last overuse, for the loss bound

	// Rate control (gcc-02 §5.5).
	target     float64 // bit/s
	state      rcState
	lastUpdate clock.Time
	atMax      maxTracker

	// Receive (acknowledged) rate over ackWindow.
	// The receive rate over the packets received within ackWindow of the
	// latest arrival, on the receiver's clock (a report's batch must not
	// count as if it arrived when the report did).
	ack ackWindowRate
	// The rate the reported packets left at over the last ackWindow of
	// their send times (not one report's span: a report may hold one
	// burst at the pacing rate).
	sent ackWindowRate

	// Loss over the recent reports, and the last cut it made.
	lossFrac     float64
	lastLossCut  clock.Time
	lastStandCut clock.Time
	lastCut      clock.Time // the last cut of any kind
	standQ       float64    // queueExcess at the last standing cut (-Inf: none since the queue stood)
	standOWQ     float64    // the one-way estimate (queueMS) then
	ignoredCuts  int        // standing cuts in a row after which the queue did not drain
	competitive  bool       // the competitive mode (updateCompetitive)
	calmSince    clock.Time // in the competitive mode, since when the queue has been gone (0: it is not)
	stands       bool       // a queue stood at the last report (standing)
	compCutAt    clock.Time // the competitive mode's loss cut being judged (0: none)
	compCutQ     float64    // the queue excess at it, ms
	heededCuts   int        // its loss cuts in a row that the queue heeded

	// Queueing delay: each report's least one-way delay (arrival minus
	// send, clocks apart) above its minimum over the last baseSlots x
	// baseSlotLen. A queue that stands (full, so the delay no longer
	// rises) still shows here.
	owd         [owdPackets]float64 // the last received packets' one-way delays, ms
	owdNext     int
	base        [baseSlots]baseSlot
	skew        skewEstimator // brings the base's older minima forward
	queueMS     float64
	baseMS      float64       // the least one-way delay queueMS is measured from, ms
	queuedSince clock.Time    // since when every report's queueMS was over congestedQueueMS (0: it is not)
	queuedFor   time.Duration // how long that has lasted

	// A cut on a dropped receive rate, until it stands or is taken back.
	undo provisionalCut
	// drain follows a cut made with a queue until the queue drains
	// (drainMeasure).
	drain drainMeasure

	// Collapse: the target's largest value per slot (the last
	// recentSlots x recentSlotLen), when it last fell under collapseShare
	// of it, and the probes made since.
	recent     [recentSlots]peakSlot
	collapseAt clock.Time

	// What probes measured lately (the app-limited bound).
	probed [probeSlots]peakSlot

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
	upProbeAt   clock.Time // the last up-probe handed out (stats.UpProbes > 0)
	appLimited  bool
	// probeQuietUntil: overuse until then is a probe's doing.
	probeQuietUntil clock.Time
	lastRTT         time.Duration
	peak            [peakSlots]peakSlot

	stats GCCStats
}

// GCCConfig configures a GCC. Zero fields take the defaults; a MinRate
// above MaxRate counts as MaxRate.
type GCCConfig struct {
	StartRate int64 // bit/s; default 300 kbit/s
	MinRate   int64 // bit/s; default 50 kbit/s
	MaxRate   int64 // bit/s; default 20 Mbit/s
}

// GCCStats are a GCC's counters.
type GCCStats struct {
	Groups    int64 // packet groups compared
	Overuses  int64 // overuse signals
	Decreases int64 // target cuts on overuse
	LossCuts  int64 // target cuts by the loss bound
	// StandingCuts: target cuts for a queue that stands (above the path's
	// least delay without rising further).
	StandingCuts int64
	// Undos: cuts on a dropped receive rate taken back (another flow's
	// burst, not a capacity drop; GCC's doc).
	Undos int64
	// DrainRestores: targets brought back, once the queue a cut was made
	// with had drained, to what the path carried meanwhile (drainMeasure).
	DrainRestores int64
	// CompetitiveEntries counts entries into the competitive mode;
	// Competitive says it is on (GCC's doc).
	CompetitiveEntries int64
	Competitive        bool
	Silences           int64 // target halvings for want of feedback
	Probes             int64 // clusters handed out
	ProbeHits          int64 // probe results that raised the target
	// UpProbes: of the clusters handed out, the up-probes (the gentle
	// ones sent at 1.5 x the target while the delay is quiet, and those
	// following on from a carried one); UpProbeMisses: their results that
	// the path did not carry, which say it is at capacity. CutsAfterUpProbe:
	// cuts for overuse or a standing queue within 2 s (upProbeAfter) of
	// an up-probe going out, which its own queue may have caused: at
	// capacity under 30 ms of jitter most cuts are these (RFC 8867's
	// jitter-30 row).
	UpProbes         int64
	UpProbeMisses    int64
	CutsAfterUpProbe int64
	Trend            float64 // the latest modified trend, ms
	Threshold        float64 // the adaptive threshold, ms
	AckedRate        int64   // bit/s
	// ProbedRate: the highest rate a probe measured within the 10 s
	// before the last report (what bounds an app-limited target with
	// twice the sent rate), bit/s.
	ProbedRate int64
}

type probeResult struct {
	id                  int
	rate                int64
	kind                probeKind
	created             clock.Time
	firstSend, lastSend clock.Time
	firstArr, lastArr   clock.Time
	sentBytes, lastSize int64
	recvBytes, firstRcv int64
	nSent, nRecv        int
	seen                bool // packets of it were in the current report
	// The received packets' send times and one-way delays, in send order
	// (the first probePackets of them), for owdRate.
	pk  [probePackets]probePacket
	npk int
}

type probePacket struct {
	send clock.Time
	owd  float64 // ms, arrival minus send (clocks apart)
}

// owdRate is the rate the path carried the cluster at, read from the
// growth of its one-way delay: the queue in front of a bottleneck carrying
// the cluster's rate R at C grows by R/C - 1 of the send time. The delay
// at each end is the least of a third of the packets (jitter only adds
// delay: the least of several is near the queue's), their send times the
// mean of the same thirds. A cluster whose arrivals 30 ms of jitter
// bunched (receive rate up by as much as half) still shows the queue it
// built. It returns sendRate when there are too few packets to tell.
func (r *probeResult) owdRate(sendRate float64) float64 {
	n := r.npk
	if n < probeOWDPackets {
		return sendRate
	}
	k := n / 3
	first, last := math.Inf(1), math.Inf(1)
	var t1, t3 time.Duration
	for i := range k {
		first = min(first, r.pk[i].owd)
		last = min(last, r.pk[n-1-i].owd)
		t1 += r.pk[i].send.Sub(r.pk[0].send)
		t3 += r.pk[n-1-i].send.Sub(r.pk[0].send)
	}
	span := float64(t3-t1) / float64(k) / float64(time.Millisecond)
	if span <= 0 {
		return sendRate
	}
	return sendRate / (1 + max(last-first, 0)/span)
}

type peakSlot struct {
	start clock.Time
	bps   float64
}

type baseSlot struct {
	start clock.Time
	ms    float64
	at    clock.Time // when ms was seen
	set   bool
}

const (
	probeSlots = 4
	// probePackets: the packets of a cluster owdRate looks at (a 60 ms
	// cluster at the default MaxRate is 125 of 1200 bytes); probeOWDPackets:
	// the fewest it reads a growth from (two of each third).
	probePackets    = 128
	probeOWDPackets = 6
	// A cluster lasts long enough that jitter cannot fake its result by
	// much: 30 ms of jitter can bunch the arrivals of a cluster of D by 30
	// ms, so a probe at twice a capacity C measures at most C·2D/(2D-30
	// ms): 1.33 C at 60 ms, where libwebrtc's 15 ms would let it claim any
	// rate. That is still enough to pass the 0.9 test now and then, so
	// the delay's growth over the cluster is checked too (owdRate).
	probeDuration    = 60 * time.Millisecond
	probeMinPackets  = 5
	probeResultAfter = 2 * time.Second // a cluster unanswered this long is forgotten
	peakSlots        = 6
	peakSlotLen      = 10 * time.Second // the remembered capacity: the highest receive rate of the last minute
	// For collapseProbeFor after a collapse, a probe the path carried is
	// followed by one at the remembered capacity. A collapse is the
	// target falling under collapseShare of its largest value of the last
	// recentSlots x recentSlotLen: a capacity drop, not a flow joining
	// (1/2) or RFC 8867's steps (0.24 at the least).
	collapseProbeFor = time.Minute
	collapseShare    = 0.2
	recentSlots      = 5
	recentSlotLen    = 2 * time.Second
	// With the delay quiet for this long and the target used, probe at
	// upProbeGain x the target: gentle, so that at capacity the probe adds
	// a queue of about probeDuration x (upProbeGain - 1), 30 ms.
	upProbeAfter    = 2 * time.Second
	probeQuietAfter = 200 * time.Millisecond
	upProbeGain     = 1.5
	// What the target takes of what a carried cluster carried (probeKind).
	upProbeUse   = 0.85
	collapseUse  = 0.95
	saturatedUse = 0.95
	// The probe at the remembered capacity waits until the next probe
	// would come within this factor of it: 60 ms at 8 x a collapsed
	// path's capacity would queue 480 ms, more than the path holds.
	collapseJump = 2
	// A probe result counts as measured capacity (the app-limited bound)
	// this long.
	probeMemory = 10 * time.Second
	// smallShare: a target under this share of what a probe measured
	// within probeMemory grows at least additively (increase).
	smallShare = 0.5
	// alrHeadroom: an application-limited target stays within this
	// multiple of the sent rate (the cc issue's bound is twice it, at any
	// instant; the 500 ms rate the controller sees lags and moves by
	// several percent with frame sizes, Laplacian noise of 0.15 a frame).
	alrHeadroom = 1.8
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

const (
	groupSpan        = 5 * time.Millisecond // gcc-02 §5.2's burst time
	trendWindow      = 20                   // libwebrtc's trendline window
	trendSmoothing   = 0.9
	trendGain        = 4.0
	initialThreshold = 12.5 // ms, gcc-02 §5.4
	thresholdUp      = 0.01 // K_u
	thresholdDown    = 0.00018
	overuseTimeMS    = 10   // ms above the threshold before signalling overuse
	beta             = 0.85 // gcc-02's cut (GCC02; GCC sizes its cuts, cutShare)
	// cutShare: a cut drains the queue it found within drainTime, taking
	// between cutDeepest and cutShallowest of the receive rate.
	drainTime       = 500 * time.Millisecond
	cutDeepest      = 0.8
	cutShallowest   = 0.95
	ackWindow       = 500 * time.Millisecond
	ackRingLen      = 2048                   // 500 ms at 40 Mbit/s of 1200-byte packets
	cutWindow       = 200 * time.Millisecond // the receive rate a cut takes after a drop (cutBasis)
	dropShare       = 0.5                    // a cutWindow rate under this share of ackWindow's is a drop (halved)
	lullShare       = 1.25                   // one over this share of ackWindow's follows a lull (cutBasis)
	maxIncreasePerS = 0.08                   // gcc-02's multiplicative increase, 8 % a second
	lossHigh        = 0.1                    // gcc-02 §6
	lossHoldAfter   = time.Second            // overuse this recent makes loss congestive
	lossLow         = 0.02                   // gcc-02 §6: under it, loss says nothing
	lossWindow      = 500 * time.Millisecond
	// A queue this far above the path's least delay makes loss
	// congestive even without a delay rise (a full drop-tail queue).
	// 30 ms jitter moves a report's least delay by a few ms only.
	congestedQueueMS = 25
	// A round trip this far above the least one stands for a queue that
	// has stood longer than the one-way window; 30 ms of jitter each way
	// stays under it.
	standingRTT = 70 * time.Millisecond
	// A queue that has not drained under congestedQueueMS for this long
	// stands.
	standingFor = 250 * time.Millisecond
	drainingMS  = 5 // a queue this much lower than at the last cut is draining
	// Standing cuts in a row that a queue ignores before the competitive
	// mode: three cuts of 15 % leave 61 % of the rate, which a queue of
	// ours would have felt.
	competitiveAfter = 3
	// competitiveCalm: the competitive mode ends once the queue has been
	// gone this long (a loss-based flow's sawtooth passes its trough in
	// less).
	competitiveCalm = 2 * time.Second
	// competitiveBeta: the competitive mode's cut on a loss event.
	competitiveBeta = 0.85
	// competitivePackets: the competitive mode's additive increase, full
	// packets per round trip.
	competitivePackets = 2
	// floorShare: a target within this factor of MinRate has nothing left
	// to cut.
	floorShare  = 1.5
	holdQueueMS = 10 // no increase over a queue this large
	owdPackets  = 32 // the queue estimate looks at the least delay of this many packets
	baseSlots   = 5
	baseSlotLen = 2 * time.Second // the least delay of the last 10 s: 10 ms of drift at 1000 ppm
)

// withDefaults fills the zero fields, takes a MinRate above MaxRate as
// MaxRate, and keeps StartRate within bounds.
func (cfg GCCConfig) withDefaults() GCCConfig {
	if cfg.StartRate <= 0 {
		cfg.StartRate = 300_000
	}
	if cfg.MinRate <= 0 {
		cfg.MinRate = 50_000
	}
	if cfg.MaxRate <= 0 {
		cfg.MaxRate = 20_000_000
	}
	cfg.MinRate = min(cfg.MinRate, cfg.MaxRate)
	cfg.StartRate = min(max(cfg.StartRate, cfg.MinRate), cfg.MaxRate)
	return cfg
}

// NewGCC returns a controller starting at cfg.StartRate.
func NewGCC(cfg GCCConfig) *GCC {
	cfg = cfg.withDefaults()
	long := clock.Time(math.MinInt64 / 2)
	return &GCC{cfg: cfg, target: float64(cfg.StartRate), det: newDetector(), state: rcIncrease,
		overuseAt: long, collapseAt: long, standQ: math.Inf(-1)}
}

// Target returns the transport target in bit/s.
func (g *GCC) Target() int64 { return int64(g.target) }

// Stats returns the controller's counters.
func (g *GCC) Stats() GCCStats {
	s := g.stats
	s.Threshold = g.det.threshold
	s.Competitive = g.competitive
	s.AckedRate = int64(g.ack.rate)
	s.ProbedRate = int64(g.probedRate(g.lastUpdate))
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
// and 6 x the start rate; while the target is used (not app-limited) and
// the delay has been quiet for upProbeAfter, a gentle one at 1.5 x the
// target; and after each that the path carried in full, one at twice what
// it carried, or, within collapseProbeFor of a collapse and once that is
// within collapseJump of it, at the capacity the path showed over the
// last minute (finishProbes queues those).
func (g *GCC) PollProbe(now clock.Time) (ProbeCluster, bool) {
	if !g.startProbed {
		g.startProbed = true
		g.queueProbe(now, 3*g.target, probeStart)
		g.queueProbe(now, 6*g.target, probeStart)
	}
	if g.nQueued == 0 && g.haveFeedback && !g.appLimited && g.pending() == 0 && !g.stands && !g.competitive &&
		now.Sub(clock.Max(g.overuseAt, g.lastCut)) >= upProbeAfter && now.Sub(g.lastProbe) >= upProbeAfter &&
		g.target < float64(g.cfg.MaxRate) {
		g.queueProbe(now, upProbeGain*g.target, probeUp)
	}
	if g.nQueued == 0 {
		return ProbeCluster{}, false
	}
	c := g.queued[0]
	g.queued[0] = g.queued[1]
	g.nQueued--
	g.stats.Probes++
	if r := &g.results[c.ID%probeSlots]; r.id == c.ID && r.kind == probeUp {
		g.stats.UpProbes++
		g.upProbeAt = now
	}
	// The cluster's own queue is no congestion: overuse the delay signal
	// shows until its result is in does not cut (the result says whether
	// the path carried it).
	g.probeQuietUntil = now.Add(probeDuration + g.lastRTT + probeQuietAfter)
	return c, true
}

// pending counts the probe clusters awaiting their results.
func (g *GCC) pending() int {
	n := 0
	for i := range g.results {
		if g.results[i].id != 0 {
			n++
		}
	}
	return n
}

// probeKind says why a cluster went, which sets what its result does.
type probeKind uint8

const (
	// probeStart: the two start-up probes. The flow knows nothing yet,
	// and takes all of what a cluster carried (libwebrtc's
	// ProbeBitrateEstimator), or 0.95 of the receive rate of one the path
	// did not keep up with: a joiner's burst gets a share of a shared
	// queue in proportion to its rate, about the fair share at these
	// rates.
	probeStart probeKind = iota
	// probeStartNext: those following on from them, taking all of what
	// they carried.
	probeStartNext
	// probeUp: the gentle up-probes and those following on from them,
	// sent while the target already holds the path near its capacity. 30
	// ms of jitter can make a cluster's receive rate read high, so the
	// target takes upProbeUse (the rate controller's beta) of it.
	probeUp
	// probeCollapse: the probe at the capacity the path showed before a
	// collapse; the target takes collapseUse of what it carried.
	probeCollapse
)

// use is the share of a carried cluster's rate the target takes.
func (k probeKind) use() float64 {
	switch k {
	case probeUp:
		return upProbeUse
	case probeCollapse:
		return collapseUse
	}
	return 1
}

// queueProbe queues a cluster at rate.
func (g *GCC) queueProbe(now clock.Time, rate float64, kind probeKind) {
	rate = min(rate, float64(g.cfg.MaxRate))
	if g.nQueued == len(g.queued) || rate <= g.target {
		return
	}
	g.nextProbe++
	bytes := max(int(rate/8*probeDuration.Seconds()), probeMinPackets*1200)
	g.queued[g.nQueued] = ProbeCluster{ID: g.nextProbe, Rate: int64(rate), Bytes: bytes, MinPackets: probeMinPackets}
	g.nQueued++
	g.results[g.nextProbe%probeSlots] = probeResult{id: g.nextProbe, rate: int64(rate), kind: kind, created: now}
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
	if r.npk < len(r.pk) {
		r.pk[r.npk] = probePacket{send: p.SendTime, owd: float64(p.ArrivalTime.Sub(p.SendTime)) / float64(time.Millisecond)}
		r.npk++
	}
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
			// Only a cluster the path carried in full raises the target,
			// to the rate it carried. One it did not keep up with says the
			// path is saturated, not what share of it is ours: a FIFO
			// queue shared with other flows gives a burst a share in
			// proportion to its rate, so its receive rate would claim more
			// than a fair share (and every flow probing would stand a
			// queue). Alone on the path, the next increase finds the rest.
			// At the start, a saturated cluster counts too (probeStart).
			// The probe at the remembered capacity is judged against the
			// rate asked for when the pacer sent it faster (bursts of its
			// own): it asks whether the path is back to that capacity.
			// Carried in full means both received at 0.9 of that rate and
			// with no more queue growth than that rate allows (owdRate):
			// jitter that bunched the arrivals fakes the first alone.
			est := min(sendRate, recvRate)
			asked := sendRate
			if r.kind == probeCollapse {
				asked = min(sendRate, float64(r.rate))
			}
			switch {
			case recvRate >= 0.9*asked && r.owdRate(sendRate) >= 0.9*asked:
				g.noteProbeRate(now, est)
				est *= r.kind.use()
			case r.kind == probeStart:
				est = saturatedUse * recvRate
			default:
				est = 0
				if r.kind == probeUp {
					g.stats.UpProbeMisses++
				}
			}
			if est > g.target {
				g.target = min(est, float64(g.cfg.MaxRate))
				g.stats.ProbeHits++
				// The path carried nearly all of it: probe on at twice
				// that (libwebrtc's exponential probing), or at the
				// remembered capacity after a collapse, until a probe
				// comes back short.
				if est >= 0.7*float64(r.rate) && g.nQueued == 0 {
					next, kind := 2*est, probeUp
					if r.kind == probeStart || r.kind == probeStartNext {
						kind = probeStartNext
					}
					if peak := g.peakRate(now); now.Sub(g.collapseAt) < collapseProbeFor && next*collapseJump >= peak && peak > next {
						next, kind = peak, probeCollapse
					}
					g.queueProbe(now, next, kind)
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
	slot.bps = max(slot.bps, g.ack.rate)
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

// noteProbeRate remembers a rate a probe measured.
func (g *GCC) noteProbeRate(now clock.Time, bps float64) {
	oldest := 0
	for i := range g.probed {
		if g.probed[i].start < g.probed[oldest].start {
			oldest = i
		}
	}
	g.probed[oldest] = peakSlot{start: now, bps: bps}
}

// probedRate is the highest rate a probe measured within probeMemory.
func (g *GCC) probedRate(now clock.Time) float64 {
	best := 0.0
	for _, p := range g.probed {
		if p.bps > 0 && now.Sub(p.start) < probeMemory {
			best = max(best, p.bps)
		}
	}
	return best
}

// noteRecent keeps the target's largest value per slot and marks a
// collapse when the target falls under collapseShare of the largest of
// the last recentSlots.
func (g *GCC) noteRecent(now clock.Time) {
	k := int64(now) / int64(recentSlotLen)
	slot := &g.recent[((k%recentSlots)+recentSlots)%recentSlots]
	if start := clock.Time(k * int64(recentSlotLen)); slot.start != start {
		*slot = peakSlot{start: start}
	}
	slot.bps = max(slot.bps, g.target)
	for _, r := range g.recent {
		if now.Sub(r.start) < recentSlots*recentSlotLen && g.target < collapseShare*r.bps {
			g.collapseAt = now
			return
		}
	}
}

// noteOWD keeps a received packet's one-way delay (ms, arrival minus
// send, clocks apart) among the last owdPackets.
func (g *GCC) noteOWD(owd float64) {
	g.owd[g.owdNext%owdPackets] = owd
	g.owdNext++
}

// noteDelay updates the queueing-delay estimate after a report: the least
// one-way delay of the last owdPackets received packets (enough that
// jitter rarely lifts all of them, whatever the rate) above the least of
// the last baseSlots x baseSlotLen.
func (g *GCC) noteDelay(now clock.Time) {
	n := min(g.owdNext, owdPackets)
	if n == 0 {
		return
	}
	owd := g.owd[0]
	for _, v := range g.owd[:n] {
		owd = min(owd, v)
	}
	k := int64(now) / int64(baseSlotLen)
	slot := &g.base[((k%baseSlots)+baseSlots)%baseSlots]
	if start := clock.Time(k * int64(baseSlotLen)); slot.start != start || !slot.set {
		*slot = baseSlot{start: start, ms: owd, at: now, set: true}
	}
	if owd < slot.ms {
		slot.ms, slot.at = owd, now
	}
	// Each slot's least delay, brought forward to now by the clocks' skew
	// from when it was seen (from the slot's middle instead, the least of
	// the slots picked the one the skew put most in its favour: at 1000
	// ppm up to 1 ms under the true base, read as queue).
	base := owd
	for _, b := range g.base {
		if b.set && now.Sub(b.start) < baseSlots*baseSlotLen {
			base = min(base, b.ms+g.skew.correction(now, b.at))
		}
	}
	g.queueMS, g.baseMS = owd-base, base
	switch {
	case g.queueMS <= congestedQueueMS:
		g.queuedSince, g.queuedFor = 0, 0
	case g.queuedSince == 0:
		g.queuedSince = now
	default:
		g.queuedFor = now.Sub(g.queuedSince)
	}
}

// OnFeedback takes one transport-wide report.
func (g *GCC) OnFeedback(now clock.Time, fb *Feedback, rtt RTT, appLimited bool) {
	prevFeedback := clock.Time(0)
	if g.haveFeedback {
		prevFeedback = g.lastFeedback
	}
	g.lastFeedback, g.haveFeedback = now, true
	g.appLimited = appLimited
	lost, total := 0, 0
	for i := range fb.Packets {
		p := &fb.Packets[i]
		total++
		g.sent.add(p.SendTime, p.Size)
		g.undo.note(p)
		if p.ProbeID > 0 {
			g.onProbePacket(p)
		}
		// The loss rate counts the packets sent since the last cut
		// (cutAt): those sent before it met the rate it answered (TCP's
		// recovery point).
		fresh := p.SendTime >= g.lastCut
		if !fresh {
			total--
		}
		if !p.Received {
			if fresh {
				lost++
			}
			continue
		}
		owd := float64(p.ArrivalTime.Sub(p.SendTime)) / float64(time.Millisecond)
		g.noteOWD(owd)
		g.skew.add(p.SendTime, owd)
		g.onArrival(now, p)
	}
	g.noteDelay(now)
	g.finishProbes(now)
	if total > 0 {
		// Weighted by time, about the last half second of reports: one
		// report's few packets must not read 10 % out of 5 %.
		w := 1.0
		if prevFeedback != 0 {
			// (A caller's now going back weighs nothing: a negative gap
			// made w negative, and past about 355 s -Inf, then NaN.)
			w = 1 - math.Exp(-max(now.Sub(prevFeedback), 0).Seconds()/lossWindow.Seconds())
		}
		g.lossFrac += (float64(lost)/float64(total) - g.lossFrac) * w
	}
	g.sent.update()
	g.ack.update()
	g.notePeak(now)
	g.control(now, rtt, appLimited, lost)
}

// onArrival adds a received packet to the packet groups.
func (g *GCC) onArrival(now clock.Time, p *PacketResult) {
	g.ack.add(p.ArrivalTime, p.Size)
	if d, _, arrival, ok := g.groups.add(p); ok {
		g.onDelta(now, d, arrival)
	}
}

// onDelta feeds one inter-group delay variation (ms) to the trendline and
// the detector.
func (g *GCC) onDelta(now clock.Time, d float64, arrival clock.Time) {
	g.stats.Groups++
	if !g.haveFirst {
		g.firstArr, g.haveFirst = arrival, true
	}
	g.nGroups = min(g.nGroups+1, 60)
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
	trend := float64(g.nGroups) * slope * trendGain
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

// detect runs gcc-02 §5.4's overuse detector on the modified trend.
func (g *GCC) detect(now clock.Time, trend float64) {
	if g.det.update(now, trend) {
		g.overuseAt = now
		g.stats.Overuses++
	}
}

// cutShare is the share of the receive rate a cut for overuse or a
// standing queue keeps: enough below it to drain the queue the one-way
// estimate shows within drainTime (a queue of q ms drains at a spare
// q/drainTime of the rate), between cutDeepest and cutShallowest.
// gcc-02's fixed 0.85 cuts 15 % whatever the queue: too little for a
// queue of 100 ms, and three times what a queue of 25 ms needs, which left
// the rate further under the capacity than it had to (the figures are in
// the commit that made it).
func (g *GCC) cutShare() float64 {
	return min(max(1-g.queueMS/float64(drainTime.Milliseconds()), cutDeepest), cutShallowest)
}

// cutTo is what a cut for overuse or a standing queue leaves: cutShare of
// the receive rate, or cutDeepest of it after a drop (cutBasis): the
// estimate, the least delay of the last packets, lags a queue that
// builds at several times the path's new rate.
func (g *GCC) cutTo() (bps float64, dropped bool) {
	basis, dropped := g.cutBasis()
	if dropped {
		return cutDeepest * basis, true
	}
	return g.cutShare() * basis, false
}

// cutBasis is what a cut takes cutShare of: the receive rate, over its last
// cutWindow when that is under dropShare of it (after a capacity drop the
// 500 ms window still remembers the rate before it), which it reports as
// dropped. A smaller dip is the shorter window's noise, not a drop: 200 ms
// of a 500 kbit/s flow are ten packets, and its frames' sizes vary.
// Taking the lower of the two whatever they read cut small flows deeper
// than large ones on a shared bottleneck. When the last cutWindow reads
// over lullShare of the 500 ms, arrivals were thin earlier in the window
// because we sent little (frames dropped, the window full), not because
// the path carried little: the cut takes the recent rate, at most the
// target (gcc-02's R over a window that straddles a lull of our own cut
// RFC 8867's jitter-30 by half, TestGCCCutBasisAfterALull).
func (g *GCC) cutBasis() (bps float64, dropped bool) {
	recent := g.ack.recent(cutWindow, g.ack.rate)
	switch {
	case recent < dropShare*g.ack.rate:
		return recent, true
	case recent > lullShare*g.ack.rate:
		return max(g.ack.rate, min(recent, g.target)), false
	}
	return g.ack.rate, false
}

// control is gcc-02 §5.5's rate controller, bounded by §6's loss rule.
// lost is how many of the report's packets sent since the last cut were
// lost.
func (g *GCC) control(now clock.Time, rtt RTT, appLimited bool, lost int) {
	dt := 0.0
	if g.lastUpdate != 0 {
		dt = min(now.Sub(g.lastUpdate).Seconds(), 1)
	}
	g.lastUpdate = now
	g.lastRTT = rtt.Smoothed
	g.stands = g.standing(rtt)
	excess := g.queueExcess(rtt)
	if g.undo.pending() {
		switch {
		case now > g.undo.at.Add(undoWithin):
			g.undo = provisionalCut{}
		case g.undo.cleared(g.baseMS):
			g.target = max(g.target, g.undo.restore)
			g.undo = provisionalCut{}
			g.stats.Undos++
		}
	}
	g.drainRestore(now)
	g.updateCompetitive(now, rtt, excess)
	switch {
	case g.competitive:
		// The queue is another flow's (a loss-based TCP keeps it full
		// whatever we send): the delay says nothing about our share, so
		// only loss steers the target (gcc-02 §6 as written).
		g.det.signal = usageNormal
		g.state = rcIncrease
	case g.det.signal == usageOver:
		g.state = rcHold
		if now < g.probeQuietUntil {
			// Perhaps the probe's doing: the signal waits for the
			// cluster's result, and cuts then if the delay still says
			// overuse (detect keeps it while the trend stays high).
			break
		}
		if g.ack.rate > 0 {
			if cut, dropped := g.cutTo(); cut < g.target {
				g.applyCut(now, cut, dropped, rtt, excess)
				g.stats.Decreases++
			}
			g.atMax.note(g.ack.rate)
		}
		g.det.signal = usageNormal // one cut per overuse signal
	case g.det.signal == usageUnder:
		g.state = rcHold // the queues drain: hold
	default:
		if g.state == rcHold {
			g.state = rcIncrease
		}
	}
	// A queue that stands (full, so its delay no longer rises and the
	// trend sees nothing) is cut like an overuse, once per RTT + 300 ms.
	// After a cut, a queue that drains is left to drain: another cut
	// needs it no lower than at the last one (what arrives meanwhile is
	// what the sender sent after cutting, not the path's capacity).
	if !g.stands {
		g.standQ, g.ignoredCuts = math.Inf(-1), 0
	}
	// The round trip comes from pings, a second apart: after a cut, the
	// one-way estimate (every report) sees a queue drain first, and a
	// stale round trip must not cut again what the last cut already
	// drained.
	drained := !math.IsInf(g.standQ, -1) && g.forwardClear()
	// At the least rate nothing of ours is left to drain, so the mark
	// does not apply: another flow's queue falls and grows back with that
	// flow's losses (RFC 8867 5.6's NewReno behind a 1000 ms queue held
	// us at the floor 26 s, the queue at 120-300 ms under a 420 ms mark).
	atFloor := g.target <= floorShare*float64(g.cfg.MinRate)
	if !g.competitive && g.stands && !drained && g.ack.rate > 0 && now >= g.probeQuietUntil && (atFloor || excess >= g.standQ-drainingMS) &&
		now.Sub(g.lastStandCut) >= rtt.Smoothed+300*time.Millisecond {
		// A cut that would not lower the target (the receive rate still
		// remembers faster times) is no cut: it is tried again next report.
		// At the least rate there is nothing left to cut: the queue
		// standing there ignores us as a cut would have shown.
		if cut, dropped := g.cutTo(); cut < g.target {
			g.applyCut(now, cut, dropped, rtt, excess)
			g.stats.StandingCuts++
		} else if atFloor {
			g.noteStandingCut(now, rtt, excess, true)
		}
		g.state = rcHold
	}
	// Loss bound (gcc-02 §6), for congestive loss only: with a delay
	// rise within lossHoldAfter, or a queue standing above the path's
	// least delay (always, in the competitive mode). Over lossHigh it
	// cuts the target by half the loss, at most once per RTT + 300 ms
	// (libwebrtc's loss-based estimator); between lossLow and lossHigh it
	// holds.
	// In the competitive mode a loss event (any loss, once per round
	// trip) cuts as a loss-based flow does, if less (competitiveBeta, 0.85;
	// CUBIC's is 0.7, NewReno's 0.5): the share stays fair, and a queue
	// that was ours drains, which ends the mode.
	if g.competitive && lost > 0 && now.Sub(g.lastLossCut) >= rtt.Smoothed {
		// The receive rate bounds the cut's basis (a target far above
		// what gets through is no basis), but no lower than dropShare of
		// the target: behind a full drop-tail queue the reports come in
		// clumps, and a 500 ms window of them once read 46 kbit/s of a
		// 560 kbit/s flow, cutting it to the floor for 15 s (RFC 8867
		// 5.6 with a 1000 ms queue, seed 3).
		g.target = competitiveBeta * min(g.target, max(g.ack.rate, dropShare*g.target, float64(g.cfg.MinRate)))
		g.lastLossCut = now
		g.cutAt(now)
		g.state = rcHold
		g.stats.LossCuts++
		if g.compCutAt == 0 {
			g.compCutAt, g.compCutQ = now, excess
		}
	}
	// (After a cut the loss rate is at most lossHigh and moves with the
	// packets sent after it, whose reports take a round trip to come: no
	// loss cut sooner.)
	congestive := g.lossFrac > lossLow && (g.competitive || g.congestive(now, rtt))
	if congestive && g.lossFrac > lossHigh && now.Sub(g.lastLossCut) >= rtt.Smoothed+300*time.Millisecond && now.Sub(g.lastCut) >= rtt.Smoothed {
		g.target *= 1 - 0.5*g.lossFrac
		g.lastLossCut = now
		g.cutAt(now)
		g.state = rcHold
		g.stats.LossCuts++
	}
	// A queue building under the trend's notice (the least delay of the
	// last packets above the path's) holds the target where it is.
	if g.state == rcIncrease && dt > 0 && !congestive && (g.competitive || g.queueMS <= holdQueueMS) {
		g.increase(now, dt, rtt, appLimited)
	}
	// Application limited: no further than alrHeadroom x what it sends,
	// or what a probe measured lately (ALR: an unused target is a guess).
	if appLimited && g.sent.rate > 0 {
		g.target = min(g.target, max(alrHeadroom*g.sent.rate, g.probedRate(now), float64(g.cfg.StartRate)))
	}
	g.target = min(max(g.target, float64(g.cfg.MinRate)), float64(g.cfg.MaxRate))
	g.noteRecent(now)
}

// increase raises the target for dt seconds (gcc-02 §5.5): multiplicative
// (8 %/s) far from the last congestion point, additive near it.
func (g *GCC) increase(now clock.Time, dt float64, rtt RTT, appLimited bool) {
	grown := g.target
	// Additive: about one packet per response time (gcc-02 §5.5).
	response := max(rtt.Smoothed, 100*time.Millisecond) + 100*time.Millisecond
	additive := 1200 * 8 * dt / response.Seconds()
	if g.atMax.near(g.ack.rate) && !g.competitive {
		grown += additive
	} else {
		grown *= math.Pow(1+maxIncreasePerS, dt)
		// Under smallShare of what a probe lately measured the path
		// carrying for us, 8 %/s of a small rate grows slower than the
		// additive increase near the last congestion point (under 600
		// kbit/s at 100 ms): a flow other flows' bursts cut small would
		// stay small, as multiplicative increase and decrease keep the
		// flows' ratio. It grows at least additively (not in the
		// competitive mode, which adds its own packets per round trip).
		if !g.competitive && g.target < smallShare*g.probedRate(now) {
			grown = max(grown, g.target+additive)
		}
	}
	if g.competitive {
		// Against a loss-based flow, also a packet per round trip, as it
		// grows (TCP's congestion avoidance).
		grown += competitivePackets * 1200 * 8 * dt / max(rtt.Smoothed, 100*time.Millisecond).Seconds()
	}
	// An increase goes no further than what the path was seen to carry
	// allows (libwebrtc: 1.5 x the acknowledged rate + 10 kbit/s), nor,
	// while the application leaves the target unused, than alrHeadroom x
	// what it sends; neither cuts the target.
	limit := math.Inf(1)
	if g.ack.rate > 0 {
		limit = 1.5*g.ack.rate + 10_000
	}
	if appLimited && g.sent.rate > 0 {
		limit = min(limit, alrHeadroom*g.sent.rate)
	}
	g.target = max(g.target, min(grown, limit))
}

// A cut on a dropped receive rate stands unless within undoWithin
// packets sent after it cross with no queue (under holdQueueMS) while the
// sender sent at least undoSendShare of the cut's rate, over undoMinSpan
// or more.
const (
	undoWithin    = time.Second
	undoSendShare = 0.25
	undoMinSpan   = 50 * time.Millisecond
)

// provisionalCut is a cut on a dropped receive rate (cutBasis) that
// another flow's burst may have caused: the packets sent after it tell.
type provisionalCut struct {
	restore  float64    // the target to go back to, bit/s; 0: none pending
	cut      float64    // the target the cut set, bit/s
	at       clock.Time // when the cut was made (the sender's clock)
	minOWD   float64    // the least one-way delay of the packets sent since that arrived, ms
	sent     int64      // bytes sent since, received or lost
	lastSend clock.Time // the latest send time among them
}

// start makes a cut provisional, unless one already is: a burst can take
// several cuts, and the first says where the target was before it.
func (u *provisionalCut) start(now clock.Time, restore, cut float64) {
	if u.pending() {
		return
	}
	*u = provisionalCut{restore: restore, cut: cut, at: now, minOWD: math.Inf(1), lastSend: now}
}

func (u *provisionalCut) pending() bool { return u.restore > 0 }

// note takes a packet of a report.
func (u *provisionalCut) note(p *PacketResult) {
	if !u.pending() || p.SendTime < u.at {
		return
	}
	u.sent += int64(p.Size)
	u.lastSend = clock.Max(u.lastSend, p.SendTime)
	if p.Received {
		u.minOWD = min(u.minOWD, float64(p.ArrivalTime.Sub(p.SendTime))/float64(time.Millisecond))
	}
}

// cleared says whether the packets sent since the cut crossed with no
// queue (base: the path's least one-way delay, ms) while the sender kept
// sending: a sender that fell silent (its frames dropped for a collapsed
// path) lets any queue drain.
func (u *provisionalCut) cleared(base float64) bool {
	span := u.lastSend.Sub(u.at)
	return u.minOWD-base < holdQueueMS && span >= undoMinSpan &&
		float64(u.sent)*8/span.Seconds() >= undoSendShare*u.cut
}

// drainMeasure measures what the path carries of ours while the queue a cut
// was made with (congestedQueueMS or more) drains: our receive rate over
// each cutWindow while the queue stands (congestedQueueMS or more still) is
// the path's rate, or our share of it on a shared bottleneck. The cut goes
// deep enough to drain the queue (cutShare, cutDeepest after a drop, of a
// rate that may still have been falling); once the queue has drained (under
// holdQueueMS), the target comes back to drainUse of the mean measured
// (drainRestore), at most to where it was before the cut, rather than
// climbing back by the rate controller's increase, 8 %/s at most and none
// while the queue estimate reads over holdQueueMS. After RFC 8867
// 5.1-rmax4's drop from 2.5 to 0.6 Mbit/s the target sat 25-30 % under the
// capacity for about 9 s (seed 1), and converged 6.9-12.2 s after the drop
// (seeds 1-5).
type drainMeasure struct {
	active bool
	at     clock.Time // the cut's time
	before float64    // the target before the cut, bit/s: a restore goes no higher
	sum    float64    // the receive rates measured while the queue stood, bit/s
	n      int
}

const (
	drainUse       = 0.9             // the share of the measured rate the target comes back to
	drainSamples   = 3               // the fewest measurements a restore takes
	drainMeasureIn = 2 * time.Second // a queue not drained by then restores nothing
)

// drainRestore takes a report's measurement, and once the queue has
// drained, brings the target back (drainMeasure).
func (g *GCC) drainRestore(now clock.Time) {
	d := &g.drain
	switch {
	case !d.active:
	case now.Sub(d.at) > drainMeasureIn:
		*d = drainMeasure{}
	case g.queueMS >= congestedQueueMS:
		// (Under 100 ms of arrivals in the window measure nothing: the
		// longer window still remembers the rate before a drop.)
		if r := g.ack.recent(cutWindow, -1); r >= 0 {
			d.sum += r
			d.n++
		}
	case g.queueMS < holdQueueMS:
		if d.n >= drainSamples {
			if bps := min(drainUse*d.sum/float64(d.n), d.before); bps > g.target {
				g.target = bps
				g.stats.DrainRestores++
			}
		}
		*d = drainMeasure{}
	}
}

// cutAt notes a cut at now. From then on the loss rate counts the packets
// sent after it (TCP's recovery point; OnFeedback), and it is left at most
// lossHigh: what was lost before the cut, reported after it, cannot cut
// again by itself (with a shallow queue a drop's overflow is reported
// before the cut, and held the rate at 0.11-0.17 to cut again a round
// trip later), while loss that goes on among the packets sent after it
// still does.
func (g *GCC) cutAt(now clock.Time) {
	g.lastCut, g.lossFrac = now, min(g.lossFrac, lossHigh)
}

// applyCut lowers the target to bps for overuse or a standing queue (cutTo);
// one on a dropped receive rate is provisional (provisionalCut).
func (g *GCC) applyCut(now clock.Time, bps float64, dropped bool, rtt RTT, excess float64) {
	if dropped {
		g.undo.start(now, min(g.target, g.ack.rate), bps)
	}
	if g.queueMS >= congestedQueueMS && !g.drain.active {
		g.drain = drainMeasure{active: true, at: now, before: g.target}
	}
	if g.stats.UpProbes > 0 && now.Sub(g.upProbeAt) < upProbeAfter {
		g.stats.CutsAfterUpProbe++
	}
	g.target = bps
	g.cutAt(now)
	g.noteStandingCut(now, rtt, excess, false)
}

// noteStandingCut notes a cut (for overuse or a standing queue, or none
// possible at the least rate) while a queue stands: one that left the
// queue no lower than the last one did counts as ignored
// (updateCompetitive), unless the one-way estimate shows the forward
// queue gone (under congestedQueueMS, not standing) or lower than at the
// last cut by drainingMS: the round trip also carries the reverse path's
// queue, which no cut of ours drains (our feedback behind another flow's
// media, RFC 8867 5.3), and comes from pings a second apart. Counted,
// those took 3 of 60 runs of 5.3 and its control into the competitive
// mode, which filled the forward queue to its 300 ms (20 seeds); the
// second rule, a forward queue our cuts were draining after a capacity
// drop. At most one cut per RTT + 300 ms counts, the time a cut takes to
// show. At the least rate (atFloor: no cut was possible) any forward
// queue still standing counts: we have nothing left to drain it with.
func (g *GCC) noteStandingCut(now clock.Time, rtt RTT, excess float64, atFloor bool) {
	if !g.stands || now.Sub(g.lastStandCut) < rtt.Smoothed+300*time.Millisecond {
		return
	}
	forwardFell := g.queueMS < g.standOWQ-drainingMS
	if !math.IsInf(g.standQ, -1) && !g.forwardClear() && (atFloor || excess >= g.standQ-drainingMS && !forwardFell) {
		g.ignoredCuts++ // the last cut left the queue where it was
	}
	g.lastStandCut = now
	g.standQ, g.standOWQ = excess, g.queueMS
}

// forwardClear reports whether the one-way estimate shows no forward queue:
// under congestedQueueMS, and not standing.
func (g *GCC) forwardClear() bool { return g.queueMS < congestedQueueMS && g.queuedFor == 0 }

// Competing reports whether the competitive mode is on: the standing
// queue is another flow's (cc.Competing).
func (g *GCC) Competing() bool { return g.competitive }

// updateCompetitive enters the competitive mode when a standing queue
// ignored competitiveAfter cuts in a row (it is not ours: a loss-based
// flow keeps it full), and leaves it once the queue is gone (excess under
// congestedQueueMS for competitiveCalm). RFC 8867 5.6's media against TCP.
func (g *GCC) updateCompetitive(now clock.Time, rtt RTT, excess float64) {
	// A loss cut the queue heeded (it fell by a third within RTT + 300 ms)
	// says the queue is ours: two in a row end the mode (with a loss-based
	// flow there, it fills what we leave).
	if g.competitive && g.compCutAt != 0 && now.Sub(g.compCutAt) >= rtt.Smoothed+300*time.Millisecond {
		if excess <= g.compCutQ*2/3 {
			g.heededCuts++
		} else {
			g.heededCuts = 0
		}
		g.compCutAt = 0
		if g.heededCuts >= 2 {
			g.competitive, g.ignoredCuts, g.standQ, g.heededCuts = false, 0, math.Inf(-1), 0
			return
		}
	}
	switch {
	case !g.competitive && g.ignoredCuts >= competitiveAfter:
		g.competitive, g.calmSince, g.compCutAt, g.heededCuts = true, 0, 0, 0
		g.stats.CompetitiveEntries++
	case g.competitive && excess > congestedQueueMS:
		g.calmSince = 0
	case g.competitive && g.calmSince == 0:
		g.calmSince = now
	case g.competitive && now.Sub(g.calmSince) >= competitiveCalm:
		g.competitive, g.ignoredCuts, g.standQ = false, 0, math.Inf(-1)
	}
}

// congestive says whether loss now is congestion's: the delay rose within
// lossHoldAfter, or a queue stands.
func (g *GCC) congestive(now clock.Time, rtt RTT) bool {
	return now.Sub(g.overuseAt) < lossHoldAfter || g.standing(rtt)
}

// standing says whether a queue stands: for standingFor, every report's
// least one-way delay was above that of the last 10 s (a queue that built
// lately and never drained), or the round trip is above the least ever
// (one that has stood longer; the RTT is measured on the sender's clock
// alone, so clock skew cannot fake it).
func (g *GCC) standing(rtt RTT) bool {
	latest := rtt.Latest
	if latest == 0 {
		latest = rtt.Smoothed
	}
	return g.queuedFor >= standingFor || (rtt.Min > 0 && latest-rtt.Min > standingRTT)
}

// queueExcess is the larger of the two standing-queue measures, ms: the
// one-way queue estimate and the round trip above its least.
func (g *GCC) queueExcess(rtt RTT) float64 {
	latest := rtt.Latest
	if latest == 0 {
		latest = rtt.Smoothed
	}
	ex := g.queueMS
	if rtt.Min > 0 {
		ex = max(ex, float64(latest-rtt.Min)/float64(time.Millisecond))
	}
	return ex
}
