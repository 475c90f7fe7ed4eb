package netem

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Limits and defaults of the link model. They bound memory: nothing a node or
// a PacketConn writes can make a link hold more than MaxInFlightPackets
// datagrams or MaxInFlightBytes payload bytes.
const (
	// MaxDatagramSize is the largest datagram a link carries (the largest UDP
	// payload an IPv4/IPv6 header can describe). Larger ones are dropped and
	// counted.
	MaxDatagramSize = 65535

	// MaxInFlightPackets caps the datagrams one link direction holds at once
	// (queued, being serialised or propagating). Datagrams offered beyond it
	// are dropped and counted as LinkStats.PacketsOverflow.
	MaxInFlightPackets = 1 << 16

	// MaxInFlightBytes caps the payload bytes one link direction holds at once
	// (64 MiB: 12.5 MB is a full 1 Gbit/s x 100 ms pipe). Pooled buffers are
	// rounded up to a power of two, so a link's buffers take at most twice
	// this. Datagrams beyond it are dropped and counted as PacketsOverflow.
	MaxInFlightBytes = 64 << 20

	// DefaultQueueDelay is the drop-tail queue limit of a rate-limited link
	// whose QueueBytes and QueueDelay are both zero (DESIGN section 9: the
	// bench's bottleneck has a 300 ms drop-tail queue).
	DefaultQueueDelay = 300 * time.Millisecond

	// MaxLinkDelay bounds Delay, Jitter and QueueDelay, which keeps every
	// time computation far from overflow.
	MaxLinkDelay = time.Hour

	// MaxRate bounds Rate (1 Pbit/s), which keeps the serialiser's integer
	// arithmetic exact.
	MaxRate = 1_000_000_000_000_000

	// OverheadIPv4UDP is the per-datagram overhead of an IPv4 and a UDP
	// header (20 + 8 bytes), the usual value of LinkConfig.Overhead.
	OverheadIPv4UDP = 28

	// OverheadIPv6UDP is the per-datagram overhead of an IPv6 and a UDP
	// header (40 + 8 bytes).
	OverheadIPv6UDP = 48

	// DefaultCoDelTarget and DefaultCoDelInterval are CoDel's target
	// sojourn time and interval when LinkConfig leaves them zero (RFC 8289
	// section 4.2 and 4.3).
	DefaultCoDelTarget   = 5 * time.Millisecond
	DefaultCoDelInterval = 100 * time.Millisecond

	// MaxReorderGap bounds LinkConfig.ReorderGap.
	MaxReorderGap = 1 << 20
)

// ErrInvalidConfig is wrapped by every error LinkConfig.Validate returns.
var ErrInvalidConfig = errors.New("netem: invalid link config")

// JitterDist selects the distribution of a link's jitter; the names are
// tc-netem's. A datagram's propagation delay is Delay + Jitter*X, with X
// drawn from the distribution below, truncated at 0 (a datagram never
// arrives before it left; tc-netem's own uniform jitter is symmetric,
// Delay +- Jitter, ours is not). The zero value is Uniform.
//
// Pareto and ParetoNormal are continuous versions of the tables iproute2
// generates (netem/pareto.c, netem/paretonormal.c), read as inverse CDFs
// of a uniform u in (0, 1): tc draws from 4,096 table entries, we evaluate
// the same function at u. With P(u) = (4/3)((1-u)^(-1/3) - 3/2), a
// Pareto(shape 3, scale 1) quantile shifted to mean 0 and scaled by 4/3,
// and tc's 16-bit cap C = 32767/8192 (about 4.0):
//
//	Pareto:       X = min(P(u), C)
//	ParetoNormal: X = min(Φ⁻¹(u)/4 + 3·min(P(u), C)/4, C)
//
// (tc's "paretonormal" adds a quarter of the normal quantile and three
// quarters of the Pareto one at the same u: a comonotonic blend, not a
// mixture). Jitter is therefore tc's sigma, a scale, not the standard
// deviation. The resulting moments and percentiles of X:
//
//	dist          mean      std      p50      p95     p99
//	uniform       0.5       0.2887   0.5      0.95    0.99
//	normal        0         1        0        1.6449  2.3263
//	pareto       -0.03292   0.8209  -0.3201   1.6192  C (an atom of mass C'⁻³ = 1.097 % at C)
//	paretonormal -0.02469   0.8349  -0.2401   1.6256  3.5815
//
// where C' = 3/2 + 3C/4 and the Pareto mean is -(4/3)/(2C'^2) exactly. The
// means and percentiles hold before the truncation at 0, so calibrate with
// Delay well above the lower tail (X >= -2/3 for pareto, about -1.45 for
// paretonormal) and with Reorder set (see LinkConfig.Reorder).
type JitterDist uint8

const (
	// Uniform adds a delay drawn uniformly from [0, Jitter] to Delay, so
	// Delay is the minimum and Delay+Jitter the maximum one-way delay.
	Uniform JitterDist = iota
	// Normal adds a sample of a normal distribution with mean 0 and standard
	// deviation Jitter to Delay (as tc-netem's "distribution normal"), so
	// half the datagrams take less than Delay, as with tc-netem; the sum is
	// truncated at 0, so a datagram never arrives before it left (with
	// Jitter above Delay/4 the truncation shows in the mean).
	Normal
	// Pareto adds Jitter times tc-netem's "distribution pareto" sample (see
	// JitterDist): mostly a little below Delay, with a heavy tail capped at
	// about Delay + 4*Jitter.
	Pareto
	// ParetoNormal adds Jitter times tc-netem's "distribution
	// paretonormal" sample (see JitterDist).
	ParetoNormal

	numJitterDists // keep last
)

var jitterDistNames = [numJitterDists]string{
	Uniform: "uniform", Normal: "normal", Pareto: "pareto", ParetoNormal: "paretonormal",
}

// String returns the distribution's tc-netem name ("uniform", "normal",
// "pareto", "paretonormal").
func (d JitterDist) String() string {
	if d < numJitterDists {
		return jitterDistNames[d]
	}
	return fmt.Sprintf("JitterDist(%d)", uint8(d))
}

// MarshalText implements encoding.TextMarshaler, so scenarios saved as JSON
// read "uniform" rather than 0.
func (d JitterDist) MarshalText() ([]byte, error) {
	if d >= numJitterDists {
		return nil, fmt.Errorf("%w: unknown JitterDist %d", ErrInvalidConfig, uint8(d))
	}
	return []byte(jitterDistNames[d]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *JitterDist) UnmarshalText(b []byte) error {
	for i, name := range jitterDistNames {
		if string(b) == name {
			*d = JitterDist(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown JitterDist %q (want uniform, normal, pareto or paretonormal)", ErrInvalidConfig, b)
}

// QueueDisc selects how a rate-limited link's queue drops. The zero value is
// DropTail.
type QueueDisc uint8

const (
	// DropTail drops an arriving datagram that would overflow the queue's
	// bound (QueueBytes/QueueDelay).
	DropTail QueueDisc = iota
	// CoDel keeps the drop-tail bound and adds CoDel (RFC 8289): when the
	// datagram at the head of the queue has waited more than CoDelTarget
	// for at least CoDelInterval, datagrams are dropped as they are taken
	// for serialisation, at a rate growing with the square root of the
	// drops, until the sojourn time falls below the target again.
	CoDel

	numQueueDiscs // keep last
)

var queueDiscNames = [numQueueDiscs]string{DropTail: "droptail", CoDel: "codel"}

// String returns "droptail" or "codel".
func (q QueueDisc) String() string {
	if q < numQueueDiscs {
		return queueDiscNames[q]
	}
	return fmt.Sprintf("QueueDisc(%d)", uint8(q))
}

// MarshalText implements encoding.TextMarshaler.
func (q QueueDisc) MarshalText() ([]byte, error) {
	if q >= numQueueDiscs {
		return nil, fmt.Errorf("%w: unknown QueueDisc %d", ErrInvalidConfig, uint8(q))
	}
	return []byte(queueDiscNames[q]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *QueueDisc) UnmarshalText(b []byte) error {
	for i, name := range queueDiscNames {
		if string(b) == name {
			*q = QueueDisc(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown QueueDisc %q (want droptail or codel)", ErrInvalidConfig, b)
}

// LinkConfig describes one direction of a link. The zero value is an ideal
// link: no delay, no loss, no rate limit.
//
// A datagram crosses the link in this order:
//
//  1. blackout: while Down is set, it is lost as it enters the link
//     (LinkStats.PacketsBlackout);
//  2. loss: it is lost by the one loss model set: Loss (Bernoulli), GE
//     (Gilbert-Elliott) or FourState; none set, no loss;
//  3. duplication: with probability Duplicate a copy joins the queue right
//     behind it, and from there on is a datagram of its own;
//  4. queue and serialiser: with a Rate (or a Trace) set, it waits in a
//     FIFO bounded by QueueBytes/QueueDelay (drop-tail on arrival), and, with
//     QueueDisc CoDel, may be dropped when it reaches the head of the queue;
//     it is then serialised at Rate bit/s counting len+Overhead bytes (or in
//     the Trace's delivery opportunities) and departs;
//  5. corruption: with probability Corrupt one random bit of it is flipped;
//  6. propagation: with probability ReorderProb (see ReorderGap) it is
//     delivered at once; otherwise at departure + Delay + Jitter*X (see
//     JitterDist), truncated at 0, and, unless Reorder is set, no earlier
//     than its predecessor.
//
// A link whose datagrams go through a shared Bottleneck (Link.SetVia) hands
// each one to the bottleneck at the time step 6 gives, and the bottleneck's
// own LinkConfig applies from step 1 again.
//
// Changing a link's config (Link.SetConfig) affects what happens from then
// on: arrivals see the new loss model, queue bound and so on; the datagram
// being serialised finishes at the time computed when it started; datagrams
// waiting in the queue stay there, whatever the new bound (the rule DESIGN
// section 6 asks for when a capacity drop shrinks the queue: they stay and
// drain; only new arrivals see the new limit), and are serialised at the
// rate in force when their turn comes; datagrams propagating keep their
// delivery times. The state of the loss chains, of CoDel and of the
// reordering gap carries over.
//
// Every field's zero value means "off"; new fields are omitted from JSON
// when zero, so a config saved before they existed reads the same.
type LinkConfig struct {
	// Delay is the propagation delay added to every datagram after it leaves
	// the serialiser. Zero: none. At most MaxLinkDelay.
	Delay time.Duration `json:"delay"`

	// Jitter is the spread of the extra delay drawn per datagram; JitterDist
	// says how it is drawn. Zero: no jitter. At most MaxLinkDelay.
	Jitter time.Duration `json:"jitter"`

	// JitterDist is the distribution of the jitter sample. The zero value is
	// Uniform (on [0, Jitter]).
	JitterDist JitterDist `json:"jitter_dist"`

	// Reorder lets jitter reorder datagrams. False (the default): a datagram
	// is never delivered before its predecessor on the link; its delivery
	// time is max(its own, the previous delivery time), as tc-netem behaves
	// with jitter and a rate but no reordering. The delay distribution then
	// no longer follows JitterDist exactly: calibrate with Reorder set.
	// ReorderProb overrides it for the datagrams it picks.
	Reorder bool `json:"reorder"`

	// Loss is the probability, in [0, 1], that a datagram is lost as it
	// enters the link (independent per datagram: Bernoulli). Zero: none.
	// At most one of Loss, GE and FourState may be set.
	Loss float64 `json:"loss"`

	// GE is a Gilbert-Elliott loss chain (tc-netem's "loss gemodel"), used
	// when it is not the zero value. Zero: off.
	GE GilbertElliott `json:"ge,omitzero"`

	// FourState is the 4-state Markov loss model (tc-netem's "loss state"),
	// used when it is not the zero value. Zero: off.
	FourState FourState `json:"four_state,omitzero"`

	// Duplicate is the probability, in [0, 1], that a datagram surviving
	// loss is duplicated (tc-netem's "duplicate"): an identical copy enters
	// the queue right behind it, counted in PacketsDuplicated, and then
	// meets its own fate (queue, corruption, delay). Zero: none.
	Duplicate float64 `json:"duplicate,omitzero"`

	// Corrupt is the probability, in [0, 1], that one bit of a departing
	// datagram, chosen uniformly among its len*8 bits, is flipped
	// (tc-netem's "corrupt"; zero-length datagrams are left alone). The
	// datagram is still delivered; PacketsCorrupted counts it. Zero: none.
	Corrupt float64 `json:"corrupt,omitzero"`

	// ReorderProb is tc-netem's "reorder P": the probability, in [0, 1],
	// that a datagram leaving the serialiser skips Delay and jitter and is
	// delivered at once, ahead of those still propagating (it passes the
	// queue and serialiser as usual). Counted in PacketsReordered. Zero: off.
	ReorderProb float64 `json:"reorder_prob,omitzero"`

	// ReorderGap is tc-netem's "gap N": after a datagram sent at once, the
	// next ReorderGap-1 datagrams are always delayed, and only then is each
	// one sent at once with probability ReorderProb. So the fraction sent at
	// once is 1/(ReorderGap-1 + 1/ReorderProb). Zero means 1 (every datagram
	// is a candidate). At most MaxReorderGap; only with ReorderProb set.
	ReorderGap int `json:"reorder_gap,omitzero"`

	// Rate is the serialiser's rate in bit/s. Zero: unlimited, no queue
	// (QueueBytes, QueueDelay and QueueDisc are then ignored) unless Trace is
	// set. At most MaxRate. Exclusive with Trace.
	Rate int64 `json:"rate"`

	// Trace, when set, replaces Rate: the link's capacity follows the
	// delivery-opportunity trace (see Trace). The trace is shared and never
	// modified. Nil: no trace.
	Trace *Trace `json:"trace,omitempty"`

	// QueueBytes bounds the drop-tail queue in front of the serialiser, in
	// bytes of len+Overhead per datagram (the datagram being serialised
	// counts until it has left). A datagram that would exceed the bound is
	// dropped and counted in PacketsDropped; one arriving at an empty queue is
	// always accepted. Zero: no byte bound. When both QueueBytes and
	// QueueDelay are set the smaller bound wins; when both are zero and a
	// Rate (or Trace) is set, the queue holds DefaultQueueDelay (300 ms) at
	// Rate (or at the Trace's mean rate).
	QueueBytes int `json:"queue_bytes"`

	// QueueDelay bounds the queue in time: it is converted to bytes at the
	// link's current Rate (QueueDelay*Rate/8), or at the Trace's mean rate.
	// Zero: no time bound (see QueueBytes for the default). At most
	// MaxLinkDelay.
	QueueDelay time.Duration `json:"queue_delay"`

	// QueueDisc is the queue's drop policy. The zero value is DropTail.
	QueueDisc QueueDisc `json:"queue_disc,omitzero"`

	// CoDelTarget is CoDel's target sojourn time. Zero: DefaultCoDelTarget
	// (5 ms). Only with QueueDisc CoDel; less than the interval.
	CoDelTarget time.Duration `json:"codel_target,omitzero"`

	// CoDelInterval is CoDel's interval. Zero: DefaultCoDelInterval
	// (100 ms). Only with QueueDisc CoDel; at most MaxLinkDelay.
	CoDelInterval time.Duration `json:"codel_interval,omitzero"`

	// Overhead is the number of bytes the rate limiter and the queue count
	// per datagram on top of its payload (IP and UDP headers: the bench sets
	// OverheadIPv4UDP, 28). Zero means zero: only the payload is counted.
	// At most 65535.
	Overhead int `json:"overhead"`

	// Down takes the link down: every datagram entering it is lost and
	// counted in PacketsBlackout; datagrams already on the link carry on.
	// A blackout is a Down config between two others in a schedule (see
	// Simulator.ApplySchedule). False: up.
	Down bool `json:"down,omitzero"`

	// HoldUntil, if set, stalls the link: a datagram that leaves its queue
	// while this config holds and would be delivered before this time
	// (since the face's time 0) is held and delivered then, in order, with
	// the others held (a stall that releases what it held, as a Wi-Fi or
	// cellular link does). Datagrams already crossing the link when the
	// config took effect are not held. A stall is a HoldUntil config
	// between two others in a schedule (see Stall).
	HoldUntil time.Duration `json:"hold_until,omitzero"`
}

// Validate reports the first invalid field, naming it, in an error that wraps
// ErrInvalidConfig.
func (c *LinkConfig) Validate() error {
	switch {
	case c.Delay < 0 || c.Delay > MaxLinkDelay:
		return fmt.Errorf("%w: Delay %v outside [0, %v]", ErrInvalidConfig, c.Delay, MaxLinkDelay)
	case c.HoldUntil < 0:
		return fmt.Errorf("%w: HoldUntil %v is negative", ErrInvalidConfig, c.HoldUntil)
	case c.Jitter < 0 || c.Jitter > MaxLinkDelay:
		return fmt.Errorf("%w: Jitter %v outside [0, %v]", ErrInvalidConfig, c.Jitter, MaxLinkDelay)
	case c.JitterDist >= numJitterDists:
		return fmt.Errorf("%w: JitterDist %v unknown", ErrInvalidConfig, c.JitterDist)
	case !isProb(c.Loss):
		return fmt.Errorf("%w: Loss %v outside [0, 1]", ErrInvalidConfig, c.Loss)
	case !isProb(c.Duplicate):
		return fmt.Errorf("%w: Duplicate %v outside [0, 1]", ErrInvalidConfig, c.Duplicate)
	case !isProb(c.Corrupt):
		return fmt.Errorf("%w: Corrupt %v outside [0, 1]", ErrInvalidConfig, c.Corrupt)
	case !isProb(c.ReorderProb):
		return fmt.Errorf("%w: ReorderProb %v outside [0, 1]", ErrInvalidConfig, c.ReorderProb)
	case c.ReorderGap < 0 || c.ReorderGap > MaxReorderGap:
		return fmt.Errorf("%w: ReorderGap %d outside [0, %d]", ErrInvalidConfig, c.ReorderGap, MaxReorderGap)
	case c.ReorderGap != 0 && c.ReorderProb == 0:
		return fmt.Errorf("%w: ReorderGap %d set without ReorderProb", ErrInvalidConfig, c.ReorderGap)
	case c.Rate < 0 || c.Rate > MaxRate:
		return fmt.Errorf("%w: Rate %d bit/s outside [0, %d]", ErrInvalidConfig, c.Rate, int64(MaxRate))
	case c.Trace != nil && c.Rate != 0:
		return fmt.Errorf("%w: Trace and Rate are both set (a trace gives the capacity)", ErrInvalidConfig)
	case c.Trace != nil && !c.Trace.valid():
		return fmt.Errorf("%w: Trace is empty (build one with ParseTrace or NewTrace)", ErrInvalidConfig)
	case c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d is negative", ErrInvalidConfig, c.QueueBytes)
	case c.QueueDelay < 0 || c.QueueDelay > MaxLinkDelay:
		return fmt.Errorf("%w: QueueDelay %v outside [0, %v]", ErrInvalidConfig, c.QueueDelay, MaxLinkDelay)
	case c.QueueDisc >= numQueueDiscs:
		return fmt.Errorf("%w: QueueDisc %v unknown", ErrInvalidConfig, c.QueueDisc)
	case c.Overhead < 0 || c.Overhead > 65535:
		return fmt.Errorf("%w: Overhead %d outside [0, 65535]", ErrInvalidConfig, c.Overhead)
	}
	if err := c.validateCoDel(); err != nil {
		return err
	}
	return c.validateLoss()
}

func (c *LinkConfig) validateCoDel() error {
	switch {
	case c.CoDelTarget < 0 || c.CoDelTarget > MaxLinkDelay:
		return fmt.Errorf("%w: CoDelTarget %v outside [0, %v]", ErrInvalidConfig, c.CoDelTarget, MaxLinkDelay)
	case c.CoDelInterval < 0 || c.CoDelInterval > MaxLinkDelay:
		return fmt.Errorf("%w: CoDelInterval %v outside [0, %v]", ErrInvalidConfig, c.CoDelInterval, MaxLinkDelay)
	case c.QueueDisc != CoDel && c.CoDelTarget != 0:
		return fmt.Errorf("%w: CoDelTarget set but QueueDisc is %v", ErrInvalidConfig, c.QueueDisc)
	case c.QueueDisc != CoDel && c.CoDelInterval != 0:
		return fmt.Errorf("%w: CoDelInterval set but QueueDisc is %v", ErrInvalidConfig, c.QueueDisc)
	}
	if c.QueueDisc == CoDel {
		if t, i := c.codelParams(); t >= i {
			return fmt.Errorf("%w: CoDelTarget %v not below CoDelInterval %v", ErrInvalidConfig, t, i)
		}
	}
	return nil
}

func (c *LinkConfig) validateLoss() error {
	var set []string
	if c.Loss != 0 {
		set = append(set, "Loss")
	}
	if !c.GE.IsZero() {
		set = append(set, "GE")
		if err := c.GE.Validate(); err != nil {
			return err
		}
	}
	if !c.FourState.IsZero() {
		set = append(set, "FourState")
		if err := c.FourState.Validate(); err != nil {
			return err
		}
	}
	if len(set) > 1 {
		return fmt.Errorf("%w: %s are all set: use one loss model", ErrInvalidConfig, strings.Join(set, ", "))
	}
	return nil
}

// isProb reports whether p is a probability (NaN is not).
func isProb(p float64) bool { return p >= 0 && p <= 1 }

// codelParams returns CoDel's target and interval, defaults applied.
func (c *LinkConfig) codelParams() (target, interval time.Duration) {
	target, interval = c.CoDelTarget, c.CoDelInterval
	if target == 0 {
		target = DefaultCoDelTarget
	}
	if interval == 0 {
		interval = DefaultCoDelInterval
	}
	return target, interval
}

// serialises reports whether the link has a serialiser (a Rate or a Trace),
// hence a queue.
func (c *LinkConfig) serialises() bool { return c.Rate > 0 || c.Trace != nil }

// queueLimit returns the drop-tail bound in bytes (see QueueBytes and
// QueueDelay). A link without a serialiser has no bound: datagrams still
// waiting after the rate was removed drain, and new ones queue behind them.
func (c *LinkConfig) queueLimit() int64 {
	rate := float64(c.Rate)
	if c.Trace != nil {
		rate = c.Trace.meanRate()
	}
	if rate <= 0 {
		return math.MaxInt64
	}
	qb, qd := int64(c.QueueBytes), c.QueueDelay
	if qb == 0 && qd == 0 {
		qd = DefaultQueueDelay
	}
	limit := int64(math.MaxInt64)
	if qb > 0 {
		limit = qb
	}
	if qd > 0 {
		// At most 3.6e12 ns * 1e15 bit/s / 8e9 = 4.5e17 bytes: fits.
		if b := float64(qd) * rate / 8e9; b < float64(limit) {
			limit = int64(b)
		}
	}
	return limit
}
