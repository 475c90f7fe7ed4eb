package netem

import (
	"errors"
	"fmt"
	"math"
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
)

// ErrInvalidConfig is wrapped by every error LinkConfig.Validate returns.
var ErrInvalidConfig = errors.New("netem: invalid link config")

// JitterDist selects the distribution of a link's jitter. It is an enum so
// more distributions (pareto, paretonormal, a trace) can be added later; the
// zero value is Uniform.
type JitterDist uint8

const (
	// Uniform adds a delay drawn uniformly from [0, Jitter] to Delay, so
	// Delay is the minimum and Delay+Jitter the maximum one-way delay.
	Uniform JitterDist = iota
	// Normal adds a sample of a normal distribution with mean 0 and standard
	// deviation Jitter to Delay (as tc-netem's "distribution normal"); the
	// sum is truncated at 0, so a packet never arrives before it left.
	Normal

	numJitterDists // keep last
)

var jitterDistNames = [numJitterDists]string{Uniform: "uniform", Normal: "normal"}

// String returns the distribution's name ("uniform", "normal").
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
	return fmt.Errorf("%w: unknown JitterDist %q (want uniform or normal)", ErrInvalidConfig, b)
}

// LinkConfig describes one direction of a link. The zero value is an ideal
// link: no delay, no loss, no rate limit.
//
// A datagram crosses the link in this order:
//
//  1. loss: it is dropped with probability Loss as it enters the link;
//  2. queue and serialiser: with a Rate set, it waits in a drop-tail queue
//     bounded by QueueBytes/QueueDelay, then leaves the serialiser at
//     departure = max(arrival, previous departure) + (len+Overhead)*8/Rate;
//  3. propagation: it is delivered at departure + Delay + a jitter sample
//     (and, unless Reorder is set, no earlier than its predecessor).
//
// Changing a link's config (Link.SetConfig) affects datagrams that enter the
// link afterwards: datagrams already queued keep their computed departure
// times and drain (the rule DESIGN section 6 asks for when a capacity drop
// shrinks the queue), datagrams propagating keep their delivery times.
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
	Reorder bool `json:"reorder"`

	// Loss is the probability, in [0, 1], that a datagram is lost as it
	// enters the link (independent per datagram: Bernoulli). Zero: none.
	Loss float64 `json:"loss"`

	// Rate is the serialiser's rate in bit/s. Zero: unlimited, no queue
	// (QueueBytes and QueueDelay are then ignored). At most MaxRate.
	Rate int64 `json:"rate"`

	// QueueBytes bounds the drop-tail queue in front of the serialiser, in
	// bytes of len+Overhead per datagram (the datagram being serialised
	// counts until it has left). A datagram that would exceed the bound is
	// dropped and counted in PacketsDropped; one arriving at an empty queue is
	// always accepted. Zero: no byte bound. When both QueueBytes and
	// QueueDelay are set the smaller bound wins; when both are zero and a
	// Rate is set, the queue holds DefaultQueueDelay (300 ms) at Rate.
	QueueBytes int `json:"queue_bytes"`

	// QueueDelay bounds the queue in time: it is converted to bytes at the
	// link's current Rate (QueueDelay*Rate/8). Zero: no time bound (see
	// QueueBytes for the default). At most MaxLinkDelay.
	QueueDelay time.Duration `json:"queue_delay"`

	// Overhead is the number of bytes the rate limiter and the queue count
	// per datagram on top of its payload (IP and UDP headers: the bench sets
	// OverheadIPv4UDP, 28). Zero means zero: only the payload is counted.
	// At most 65535.
	Overhead int `json:"overhead"`
}

// Validate reports the first invalid field, naming it, in an error that wraps
// ErrInvalidConfig.
func (c *LinkConfig) Validate() error {
	switch {
	case c.Delay < 0 || c.Delay > MaxLinkDelay:
		return fmt.Errorf("%w: Delay %v outside [0, %v]", ErrInvalidConfig, c.Delay, MaxLinkDelay)
	case c.Jitter < 0 || c.Jitter > MaxLinkDelay:
		return fmt.Errorf("%w: Jitter %v outside [0, %v]", ErrInvalidConfig, c.Jitter, MaxLinkDelay)
	case c.JitterDist >= numJitterDists:
		return fmt.Errorf("%w: JitterDist %v unknown", ErrInvalidConfig, c.JitterDist)
	case math.IsNaN(c.Loss) || c.Loss < 0 || c.Loss > 1:
		return fmt.Errorf("%w: Loss %v outside [0, 1]", ErrInvalidConfig, c.Loss)
	case c.Rate < 0 || c.Rate > MaxRate:
		return fmt.Errorf("%w: Rate %d bit/s outside [0, %d]", ErrInvalidConfig, c.Rate, int64(MaxRate))
	case c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d is negative", ErrInvalidConfig, c.QueueBytes)
	case c.QueueDelay < 0 || c.QueueDelay > MaxLinkDelay:
		return fmt.Errorf("%w: QueueDelay %v outside [0, %v]", ErrInvalidConfig, c.QueueDelay, MaxLinkDelay)
	case c.Overhead < 0 || c.Overhead > 65535:
		return fmt.Errorf("%w: Overhead %d outside [0, 65535]", ErrInvalidConfig, c.Overhead)
	}
	return nil
}

// queueLimit returns the drop-tail bound in bytes for a rate-limited link
// (see QueueBytes and QueueDelay), or 0 when the link has no rate limit.
func (c *LinkConfig) queueLimit() int64 {
	if c.Rate <= 0 {
		return 0
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
		if b := float64(qd) * float64(c.Rate) / 8e9; b < float64(limit) {
			limit = int64(b)
		}
	}
	return limit
}
