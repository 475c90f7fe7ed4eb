package arq

import (
	"errors"
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// ErrInvalidConfig is returned (wrapped, naming the field) by NewReceiver and
// NewHistory for a configuration they cannot honour.
var ErrInvalidConfig = errors.New("arq: invalid config")

// MaxPacketNumber is the largest packet number the receiver and the history
// accept; larger (and negative) ones are counted as invalid and ignored. At
// a million packets a second it lasts 146,000 years.
const MaxPacketNumber = 1<<62 - 1

// Receiver defaults (see ReceiverConfig).
const (
	DefaultMaxMissing      = 1000 // libwebrtc's kMaxNackPackets
	DefaultInitialReorder  = 5 * time.Millisecond
	DefaultMinReorder      = time.Millisecond
	DefaultMaxReorder      = 100 * time.Millisecond
	DefaultReorderHalfLife = 5 * time.Second
	DefaultMaxNACKs        = 10
	DefaultRepeats         = 2
	DefaultReceiverRTT     = 100 * time.Millisecond // libwebrtc's kDefaultRtt

	maxMissingLimit = 1 << 16
	maxRepeats      = 8
	// tailJitterFactor: the tail-loss timer waits this many times the
	// path's jitter (SetJitter) on top of the reorder allowance and twice
	// the inter-arrival time.
	tailJitterFactor = 3
	// interArrivalCap bounds one inter-arrival sample, so the idle time
	// between frames does not stretch the tail-loss timer much.
	interArrivalCap = 50 * time.Millisecond
)

// ReceiverConfig configures a Receiver. The zero value gives the defaults
// named in each field's comment.
type ReceiverConfig struct {
	// MaxMissing bounds the NACK list: packets waited for or requested at
	// once. A gap that would take the list past it clears the list, and the
	// next PollNACK asks for a key frame instead, as libwebrtc's
	// NackRequester does (kMaxNackPackets). Default 1000; at most 65536.
	// Memory: 48 bytes x twice the bound, rounded up to a power of two
	// (96 KiB by default).
	MaxMissing int
	// InitialReorder is the reorder allowance before any reordering is
	// measured: how long a gap waits before its first NACK. Default 5 ms,
	// about one 1200-byte packet's serialisation at 2 Mbit/s: two packets
	// swapped on a slow link do not cost a retransmission, and a loss costs
	// 5 ms of a 300 ms budget.
	InitialReorder time.Duration
	// MinReorder and MaxReorder bound the learned allowance. Defaults 1 ms
	// (Linux RACK's smallest reordering window) and 100 ms.
	MinReorder, MaxReorder time.Duration
	// ReorderHalfLife is how fast the allowance falls back towards
	// MinReorder when no reordering is seen: its excess over MinReorder
	// halves every half-life, the first one counted from the last raise.
	// Default 5 s.
	ReorderHalfLife time.Duration
	// MaxNACKs bounds the NACK rounds (first NACK and re-NACKs, repeats not
	// counted) per packet. Default 10; at most 255. The deadline usually
	// ends a packet's rounds first.
	MaxNACKs int
	// Repeats is how many times each NACK round is repeated, 5 ms apart (a
	// sixth of the smoothed RTT if less), against NACK loss (DESIGN §2: repeated in the next two
	// feedback packets; not a re-NACK, the sender sends one retransmission
	// per round). Default 2; -1 for none; at most 8.
	Repeats int
	// InitialRTT is the RTT assumed until SetRTT gives a measured one.
	// Default 100 ms (libwebrtc's kDefaultRtt).
	InitialRTT time.Duration
}

func (c *ReceiverConfig) setDefaults() {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if c.MaxMissing == 0 {
		c.MaxMissing = DefaultMaxMissing
	}
	def(&c.MinReorder, DefaultMinReorder)
	def(&c.MaxReorder, max(DefaultMaxReorder, c.MinReorder))
	def(&c.InitialReorder, min(max(DefaultInitialReorder, c.MinReorder), c.MaxReorder))
	def(&c.ReorderHalfLife, DefaultReorderHalfLife)
	if c.MaxNACKs == 0 {
		c.MaxNACKs = DefaultMaxNACKs
	}
	if c.Repeats == 0 {
		c.Repeats = DefaultRepeats
	}
	def(&c.InitialRTT, DefaultReceiverRTT)
}

// Validate reports the first field of c (after defaults) that is out of
// range, wrapping ErrInvalidConfig.
func (c ReceiverConfig) Validate() error {
	c.setDefaults()
	bad := func(field string, why string, v any) error {
		return fmt.Errorf("%w: ReceiverConfig.%s %v: %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.MaxMissing < 0 || c.MaxMissing > maxMissingLimit:
		return bad("MaxMissing", "must be within 1-65536", c.MaxMissing)
	case c.MinReorder < 0:
		return bad("MinReorder", "negative", c.MinReorder)
	case c.MaxReorder < c.MinReorder:
		return bad("MaxReorder", "below MinReorder", c.MaxReorder)
	case c.InitialReorder < c.MinReorder || c.InitialReorder > c.MaxReorder:
		return bad("InitialReorder", "must be within MinReorder-MaxReorder", c.InitialReorder)
	case c.ReorderHalfLife < 0:
		return bad("ReorderHalfLife", "negative", c.ReorderHalfLife)
	case c.MaxNACKs < 0 || c.MaxNACKs > 255:
		return bad("MaxNACKs", "must be within 1-255", c.MaxNACKs)
	case c.Repeats < -1 || c.Repeats > maxRepeats:
		return bad("Repeats", "must be -1 (none) or within 1-8", c.Repeats)
	case c.InitialRTT < 0:
		return bad("InitialRTT", "negative", c.InitialRTT)
	}
	return nil
}

// ReceiverStats are the receiver's counters. NACKCount follows W3C
// webrtc-stats (RTCInboundRtpStreamStats.nackCount: NACK messages sent).
type ReceiverStats struct {
	NACKCount     int64 // non-empty batches PollNACK returned: NACK messages, if the caller sends one per batch
	PacketsNACKed int64 // distinct packet numbers requested at least once
	NACKRequests  int64 // packet numbers in all batches: first NACKs, repeats and re-NACKs
	Repeats       int64 // requests that repeated a round against NACK loss
	ReNACKs       int64 // rounds after the first: a retransmission did not arrive in time
	GaveUp        int64 // packets abandoned: a retransmission requested then could no longer arrive by the deadline
	GaveUpRetries int64 // packets abandoned after MaxNACKs rounds
	HeldForFEC    int64 // packets whose first NACK waited for FEC (the hold function)
	TailLosses    int64 // times the tail-loss timer fired
	TailPackets   int64 // packet numbers it added to the list
	TailLate      int64 // of those, originals that came after all (the timer fired early; TailWait learns from them)

	RetransmissionsReceived  int64 // retransmissions received
	RecoveredByRTX           int64 // listed packets filled by a retransmission before its deadline
	RtxArrivedLate           int64 // retransmissions received after their frame's deadline
	DuplicateRetransmissions int64 // retransmissions of a packet already here: spurious
	RtxAfterGiveUp           int64 // retransmissions of a packet no longer listed (given up, forgotten, cleared)
	RecoveredByFEC           int64 // listed packets FEC rebuilt (Recovered)
	Forgotten                int64 // listed packets removed by Forget

	Reordered      int64 // originals that filled a listed gap (reordering, or a late arrival)
	SpuriousNACKs  int64 // of those, originals that came after their NACK went out
	NonMediaNACKed int64 // of those, packets that were not media (feedback, ping, repair): NACKs the sender ignores
	LateArrivals   int64 // originals for a gap no longer listed (given up, forgotten, cleared, before the first packet)
	Duplicates     int64 // packet numbers seen again
	Invalid        int64 // calls with a negative or out-of-range packet number, or a nonsensical original

	RtxLostDetected int64 // rounds ended early because a packet sent after the retransmission arrived first (Sent)

	Overflows        int64 // times the list overflowed and was cleared
	Unlisted         int64 // packet numbers of gaps and tail losses beyond the gap credit: lost without a NACK (creditPerPacket)
	KeyFrameRequests int64 // times PollNACK reported keyFrameNeeded

	Missing          int           // packets listed now
	ReorderAllowance time.Duration // current reorder allowance
	TailWait         time.Duration // current learned extra wait of the tail-loss timer (learnTail)
	InterArrival     time.Duration // smoothed inter-arrival time (for the tail-loss timer)
}

// missing is one packet number of the NACK list.
type missing struct {
	pn       int64
	created  clock.Time // when the gap was seen (the first later packet's arrival)
	due      clock.Time // its next action: first NACK, repeat, re-NACK, end of an FEC hold
	roundAt  clock.Time // when the current round's NACK went out
	deadline clock.Time // estimated: see Receiver
	nacks    uint8      // rounds sent
	repeats  uint8      // repeats left in the current round
	held     bool       // its first NACK waited for FEC
	rack     bool       // Sent showed the current round lost: re-NACK now
	tail     bool       // added by the tail-loss timer: not a reordering sample
	dead     bool
}

type tailState struct {
	armed    bool
	after    int64 // the latest packet number received
	missing  int   // media packets still expected after it
	deadline clock.Time
	at       clock.Time // when the timer was (re)armed
}

// Receiver decides which packet numbers to NACK, and when. It implements
// the receiving half of DESIGN §2's ARQ; PollNACK's comment has the rules.
//
// Packet numbers are the connection's (already unwrapped), each used once;
// a retransmission travels under a fresh number and names its original one,
// and NACKs name originals. Numbers that are not media (feedback, ping,
// repair packets) take numbers too: the receiver learns they are not media
// only when they arrive, so a lost one is NACKed like media (harmless: the
// sender does not know it and ignores it; counted on both sides).
//
// A missing packet's deadline is not known; it is estimated as the latest
// deadline among media packets received up to the first media packet after
// the gap. That errs late (a lost audio packet among a key frame's fragments
// gets the audio deadline, not the older video one), so a packet is never
// abandoned before its real deadline; the sender, which knows the real one,
// makes the final check.
//
// Memory is fixed at NewReceiver: a ring of 48-byte entries, twice
// MaxMissing rounded up to a power of two (2048 entries, 96 KiB, for the
// default 1000), plus 1.1 KiB. Nothing allocates after NewReceiver except
// PollNACK's append to a dst without room.
type Receiver struct {
	cfg  ReceiverConfig
	hold func(pn int64) clock.Time

	list       []missing // ring ordered by packet number; positions are absolute
	mask       int64
	head, tail int64 // live positions are [head, tail)
	prov       int64 // entries at [prov, tail) have a provisional deadline
	live       int

	started      bool
	next         int64 // lowest packet number not yet accounted for
	haveDeadline bool
	maxDeadline  clock.Time
	seen         ReceiveWindow // which originals are here (received or rebuilt)

	allowance time.Duration
	decayAt   clock.Time
	// tailWait: the tail-loss timer's learned extra wait (learnTail),
	// halved every ReorderHalfLife from tailDecayAt.
	tailWait    time.Duration
	tailDecayAt clock.Time

	srtt, rttvar, minRTT time.Duration

	haveArrival  bool
	lastArrival  clock.Time
	interArrival time.Duration
	jitter       time.Duration // SetJitter's

	tl tailState

	nextDue    clock.Time // earliest due of the list; exact unless dueDirty
	dueDirty   bool
	keyFrame   bool
	keyFrameAt clock.Time
	stats      ReceiverStats
	gaveUpTo   clock.Time // the latest deadline of a packet given up as hopeless
	credit     int        // packet numbers gaps may still list (creditPerPacket)

	// Lost-retransmission detection (Sent): the latest send time seen, and
	// the earliest send time that would prove a round's retransmission lost.
	latestSent clock.Time
	rackNext   clock.Time
}

// NewReceiver returns a receiver with cfg's bounds, its memory allocated.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	size := 1
	for size < 2*cfg.MaxMissing {
		size <<= 1
	}
	return &Receiver{
		cfg:       cfg,
		list:      make([]missing, size),
		mask:      int64(size - 1),
		allowance: cfg.InitialReorder,
		srtt:      cfg.InitialRTT,
		rttvar:    cfg.InitialRTT / 2,
		minRTT:    cfg.InitialRTT,
		nextDue:   clock.Never,
		rackNext:  clock.Never,
		credit:    min(initialCredit, cfg.MaxMissing),
	}, nil
}

// The gap credit: a packet number far ahead of the others (spoofed, or
// corrupt past the checksum) must not buy a flood of NACKs. Every packet
// that arrives lets gaps list creditPerPacket more numbers, up to
// MaxMissing; a connection starts with initialCredit. A gap, or a tail
// loss, beyond the credit lists only as many numbers as it holds (the
// newest of a gap, the first of a tail), and the rest are lost unasked
// (ReceiverStats.Unlisted). Honest loss never meets the bound: at 8 per
// packet it takes 89 % loss sustained, or a burst of 1000 after 125
// arrivals. Each listed number costs at most MaxNACKs x (1 + Repeats)
// mentions in NACK messages, so what one packet buys stays a few times
// its own size, where a jump of 999 numbers bought 7.8 kB of NACKs for a
// 19-byte datagram.
const (
	creditPerPacket = 8
	initialCredit   = 64
)

// spend takes up to k numbers from the gap credit and returns how many a
// gap may list.
func (r *Receiver) spend(k int64) int64 {
	n := min(k, int64(r.credit))
	r.credit -= int(n)
	r.stats.Unlisted += k - n
	return n
}

// rackMargin is how long after a NACK reaches the sender a packet it sent
// must have left before its arrival proves the round's retransmission lost:
// the sender queues a retransmission behind an audio packet at most, and
// the reverse path's delay varies by about this much.
const rackMargin = 5 * time.Millisecond

// Sent tells the receiver that a packet the sender sent at sentAt (mapped
// to this side's clock) has arrived. A retransmission is sent as soon as the
// NACK asking for it reaches the sender, and packets cross the path in
// order, so a packet sent after that moment arriving first shows the
// retransmission (or the NACK) was lost: the round ends and the packet is
// NACKed again at once, rather than after the re-NACK interval (the time
// rule of RACK, RFC 8985 §6.2, applied to retransmissions, as RFC 8985
// §5.2 does for TCP). The NACK reaches the sender at the round's start plus
// half the minimum RTT; rackMargin and the reorder allowance cover the rest.
func (r *Receiver) Sent(now clock.Time, sentAt clock.Time) {
	if sentAt <= r.latestSent {
		return
	}
	r.latestSent = sentAt
	if sentAt <= r.rackNext {
		return
	}
	next := clock.Never
	for p := r.head; p < r.tail; p++ {
		e := &r.list[p&r.mask]
		if e.dead || e.nacks == 0 {
			continue
		}
		if t := r.rackAt(e); sentAt > t {
			// A new round at once, not a repeat of this one: also when a
			// repeat is already due (its poll would send a repeat, and no
			// later packet would look at e again before the re-NACK).
			if !e.rack {
				e.repeats = 0
				e.rack = true
				r.stats.RtxLostDetected++
			}
			if e.due > now {
				e.due = now
				r.dueDirty = true
			}
		} else {
			next = clock.Min(next, t)
		}
	}
	r.rackNext = next
}

// rackAt is the send time after which a packet arriving proves e's current
// round lost.
func (r *Receiver) rackAt(e *missing) clock.Time {
	return e.roundAt.Add(r.minRTT/2 + rackMargin + r.allowance)
}

// SetRTT copies rtt's current figures (smoothed, variation, windowed
// minimum); call it again after each sample. Before any sample rtt is
// ignored and ReceiverConfig.InitialRTT stays in use.
func (r *Receiver) SetRTT(rtt *RTT) {
	if rtt == nil || rtt.Samples() == 0 {
		return
	}
	r.srtt, r.rttvar, r.minRTT = rtt.Smoothed(), rtt.Variation(), rtt.WindowedMin()
}

// SetHoldFunc installs FEC's say: before a packet's first NACK, fn(pn) is
// asked until when FEC may still rebuild pn (a time at or before now, or 0,
// for "it cannot"). The NACK then waits until that time, but never past the
// last moment a retransmission requested could still arrive before the
// deadline (deadline - smoothed RTT - variation), and fn is asked again
// then. A packet FEC rebuilds is reported with Recovered and never NACKed.
// fn is called at most once per listed packet per due time, from PollNACK
// only, and must not call the Receiver; nil removes the hook. Pass a method
// value created once (it allocates when created, not when called).
func (r *Receiver) SetHoldFunc(fn func(pn int64) clock.Time) { r.hold = fn }

// Expect tells the Receiver the first packet number to come: a
// connection's packet numbers start at 0 (PROTOCOL.md §2.1), so a loss
// among the very first packets is a gap like any other and is NACKed. It
// has effect only before the first packet; without it the first packet to
// arrive sets the start, and anything lost before it is never requested.
func (r *Receiver) Expect(now clock.Time, pn int64) {
	if r.started || !validPN(pn) {
		return
	}
	r.started = true
	r.next = pn
	r.decayAt = now.Add(r.cfg.ReorderHalfLife)
}

func validPN(pn int64) bool { return pn >= 0 && pn <= MaxPacketNumber }

// OnPacket records the arrival of an original transmission: packet pn of
// any type that is not a retransmission. deadline is when its frame stops
// being useful on this side's clock, or clock.Never for a packet that is not
// media (feedback, ping, repair). Duplicates are counted and ignored.
//
// A packet above every packet number accounted for opens a gap for the
// numbers between, each to be NACKed after the reorder allowance. A packet
// that fills a listed gap is removed from the list and measures reordering:
// how long after the gap was seen the original came.
func (r *Receiver) OnPacket(now clock.Time, pn int64, deadline clock.Time) {
	if !validPN(pn) {
		r.stats.Invalid++
		return
	}
	r.noteArrival(now)
	e, advanced := r.arrive(now, pn, deadline)
	fresh := r.seen.Record(pn)
	switch {
	case e != nil:
		r.filledByOriginal(now, e, deadline == clock.Never)
	case advanced:
	case fresh:
		r.stats.LateArrivals++
	default:
		r.stats.Duplicates++
	}
}

// OnRetransmission records the arrival of a retransmission: pn is its own
// (fresh) packet number, origPN the one it was first sent with, deadline its
// frame's. It accounts for pn as OnPacket would (so the caller does not call
// OnPacket for it) and fills origPN. A retransmission that arrives after
// deadline is counted in RtxArrivedLate.
func (r *Receiver) OnRetransmission(now clock.Time, pn, origPN int64, deadline clock.Time) {
	if !validPN(pn) || !validPN(origPN) || origPN >= pn {
		r.stats.Invalid++ // a retransmission always follows its original
		return
	}
	r.noteArrival(now)
	r.stats.RetransmissionsReceived++
	late := deadline != clock.Never && now > deadline
	if late {
		r.stats.RtxArrivedLate++
	}
	if e, _ := r.arrive(now, pn, deadline); e != nil {
		// A retransmission's own number was listed as a gap: reordering,
		// and NACKing it was useless (the sender does not know it).
		r.filledByOriginal(now, e, true)
	}
	r.seen.Record(pn)
	if e := r.find(origPN); e != nil {
		r.remove(e)
		if !late {
			r.stats.RecoveredByRTX++
		}
		r.seen.Record(origPN)
		return
	}
	if r.seen.Record(origPN) {
		r.stats.RtxAfterGiveUp++
	} else {
		r.stats.DuplicateRetransmissions++
	}
}

// Recovered says FEC rebuilt packet pn: it is not NACKed any more.
func (r *Receiver) Recovered(now clock.Time, pn int64) {
	if !validPN(pn) {
		r.stats.Invalid++
		return
	}
	if e, _ := r.arrive(now, pn, clock.Never); e != nil {
		r.remove(e)
		r.stats.RecoveredByFEC++
	}
	r.seen.Record(pn)
}

// Forget removes packet numbers from to to (inclusive) from the list and
// never lists them again: the sender declared them dropped, or the caller
// gave up their frames. A range that starts at or below the next packet
// number expected also covers the numbers not yet seen (gap detection skips
// them); a range wholly above it is not remembered.
func (r *Receiver) Forget(now clock.Time, from, to int64) {
	if from > to || to < 0 {
		return
	}
	from, to = max(from, 0), min(to, MaxPacketNumber)
	for p := r.lowerBound(from); p < r.tail; p++ {
		e := &r.list[p&r.mask]
		if e.pn > to {
			break
		}
		if !e.dead {
			r.remove(e)
			r.stats.Forgotten++
		}
	}
	if r.started && from <= r.next && to >= r.next {
		r.next = to + 1
		r.tl.armed = false
	}
}

// ExpectTail arms the tail-loss timer: the frame of the packet just received
// (afterPN, which must be the highest packet number accounted for; other
// calls are ignored) still misses `missing` fragments after it, and its
// deadline is deadline. If no packet arrives for the reorder allowance plus
// twice the smoothed inter-arrival time, three times the jitter (SetJitter)
// and what fragments that came after an earlier firing taught
// (ReceiverStats.TailWait), the next `missing` packet numbers are listed as
// lost and NACKed at once. Packets of other frames that arrive meanwhile
// move the timer on: the fragments still expected come after them, or in
// the gap before them (which gap detection NACKs).
//
// Call it after each fragment of a multi-fragment frame that leaves the
// frame's last fragments missing, and with missing 0 when the frame
// completes (which disarms it). One frame is tracked: the latest call wins.
// The guessed numbers may belong to packets that are not media; NACKing
// them is harmless.
func (r *Receiver) ExpectTail(now clock.Time, afterPN int64, missing int, deadline clock.Time) {
	if missing <= 0 {
		r.tl.armed = false
		return
	}
	if !r.started || afterPN != r.next-1 {
		return
	}
	r.decayTail(now) // here, so the due time stays put while armed
	r.tl = tailState{armed: true, after: afterPN, missing: min(missing, r.cfg.MaxMissing+1), deadline: deadline, at: now}
}

// PollNACK appends to dst, in ascending order, the original packet numbers
// to NACK now, and reports whether a key frame is needed (once after each
// overflow of the list: the caller sends a PLI). The caller sends one NACK
// message per non-empty batch (split at the wire's 256 pairs), and calls
// PollNACK when NextTimeout comes; it may call it more often.
//
// The rules:
//   - A gap is NACKed first after the reorder allowance (learned, see
//     ReceiverStats.ReorderAllowance), sooner if waiting would leave no
//     time for a retransmission; tail losses at once when their timer fires.
//   - While FEC may rebuild it (SetHoldFunc), the first NACK waits, bounded
//     by the deadline.
//   - Each round is repeated Repeats times, 5 ms apart (repeatSpacing),
//     against NACK loss; a re-NACK comes smoothed RTT + min(4 x
//     variation, RTT/2) + reorder allowance after the round began
//     (libwebrtc re-NACKs once per RTT), at most MaxNACKs rounds; sooner
//     when waiting would leave the next retransmission no time (reNACKAt),
//     and at once when Sent shows the round's retransmission lost.
//   - A packet is given up when a retransmission requested now could not
//     arrive before its deadline: now + windowed min RTT past the deadline.
func (r *Receiver) PollNACK(now clock.Time, dst []int64) (pns []int64, keyFrameNeeded bool) {
	r.decay(now)
	r.fireTail(now)
	keyFrameNeeded = r.keyFrame
	if keyFrameNeeded {
		r.keyFrame = false
		r.stats.KeyFrameRequests++
	}
	start := len(dst)
	next := clock.Never
	for p := r.head; p < r.tail; p++ {
		e := &r.list[p&r.mask]
		if e.dead {
			continue
		}
		if e.due <= now {
			dst = r.act(now, e, dst)
			if e.dead {
				continue
			}
		}
		next = clock.Min(next, e.due)
	}
	r.trimHead()
	r.nextDue, r.dueDirty = next, false
	if n := len(dst) - start; n > 0 {
		r.stats.NACKCount++
		r.stats.NACKRequests += int64(n)
	}
	return dst, keyFrameNeeded
}

// act takes the action due for e.
func (r *Receiver) act(now clock.Time, e *missing, dst []int64) []int64 {
	switch {
	case e.nacks == 0:
		if r.hold != nil {
			if until := min(r.hold(e.pn), r.lastUseful(e)); until > now {
				if !e.held {
					e.held = true
					r.stats.HeldForFEC++
				}
				e.due = until
				return dst
			}
		}
		if r.hopeless(now, e) {
			r.giveUp(e)
			return dst
		}
		r.stats.PacketsNACKed++
		return r.startRound(now, e, dst)
	case e.repeats > 0 && now < r.reNACKAt(e) && !e.rack:
		if r.hopeless(now, e) {
			r.giveUp(e)
			return dst
		}
		e.repeats--
		r.stats.Repeats++
		e.due = r.nextEvent(e, now)
		return append(dst, e.pn)
	case int(e.nacks) >= r.cfg.MaxNACKs:
		r.remove(e)
		r.stats.GaveUpRetries++
		return dst
	default:
		if r.hopeless(now, e) {
			r.giveUp(e)
			return dst
		}
		r.stats.ReNACKs++
		return r.startRound(now, e, dst)
	}
}

func (r *Receiver) startRound(now clock.Time, e *missing, dst []int64) []int64 {
	e.nacks++
	e.roundAt = now
	e.rack = false
	e.repeats = uint8(max(r.cfg.Repeats, 0))
	e.due = r.nextEvent(e, now)
	r.rackNext = clock.Min(r.rackNext, r.rackAt(e))
	return append(dst, e.pn)
}

// nextEvent is when e's next repeat or re-NACK is due, after now: repeats
// at fixed slots of the round, but never two within a spacing (a late poll
// skips the slots it missed), and none left once the re-NACK is due.
func (r *Receiver) nextEvent(e *missing, now clock.Time) clock.Time {
	reNACK := r.reNACKAt(e)
	if e.repeats > 0 {
		k := r.cfg.Repeats - int(e.repeats) + 1
		sp := r.repeatSpacing()
		if t := clock.Max(e.roundAt.Add(time.Duration(k)*sp), now.Add(sp)); t < reNACK {
			return t
		}
		e.repeats = 0
	}
	return reNACK
}

// reNACKInterval is how long a round waits for its retransmission: the
// smoothed RTT, plus four times its variation (RFC 6298 §2.3's RTO; at
// most half an RTT, so the first samples' large variation does not cost a
// round), plus the reorder allowance (the retransmission is reordered like
// any packet). libwebrtc waits one RTT. The timer is the fallback: a lost
// round is found sooner by Sent (RACK), and a round short of the deadline
// re-NACKs early (reNACKAt). A retransmission merely held up in a queue
// (behind a key frame) outlasted 2 x variation and drew a second copy:
// over seeds 1-5 of the bench's rtc-rtt100 rows, 2 x gave 1.171, 1.208 and
// 1.394 retransmissions per loss at 2, 5 and 10 % (frames on time 1.0000,
// 0.9994, 0.9977), 4 x 1.095, 1.127 and 1.289 (1.0000, 0.9992, 0.9969).
func (r *Receiver) reNACKInterval() time.Duration {
	return max(r.srtt+min(4*r.rttvar, r.srtt/2)+r.allowance, time.Millisecond)
}

// reNACKAt is when e's round gives up waiting and re-NACKs: after
// reNACKInterval, or sooner when waiting that long would leave the next
// retransmission no time to arrive before the deadline. A re-NACK is then
// sent at the last moment a retransmission can still make it (deadline less
// the minimum RTT, the RTT variation or the reorder allowance, and
// lastChanceMargin), though never before the current round's retransmission could
// have come back (a minimum RTT and the allowance after the round began).
// Deadline-aware: at RTT 100 ms in a 300 ms budget the plain interval
// (about 125 ms) lets only one round fit; the early re-NACK lets a second
// one fit, at the price of a spurious retransmission when the first was
// merely late.
// lastChanceMargin is what the last re-NACK leaves on top of the minimum
// RTT and its variation for the sender's own, more cautious check (it adds
// the queue it predicts on the path); without it, most last chances reached
// the sender just too late to be sent.
const lastChanceMargin = 10 * time.Millisecond

func (r *Receiver) reNACKAt(e *missing) clock.Time {
	at := e.roundAt.Add(r.reNACKInterval())
	last := e.deadline.Add(-(r.minRTT + max(r.rttvar, r.allowance) + lastChanceMargin))
	if last < at {
		at = clock.Max(last, e.roundAt.Add(r.minRTT+r.allowance))
	}
	return at
}

// repeatSpacing is the time between a round's NACK and its repeats: a
// sixth of the smoothed RTT with the default two repeats, at most
// repeatSpacingCap. A repeat exists to replace a lost NACK, and every
// millisecond it waits comes off the next round: at RTT 100 ms in a 300 ms
// budget the second round fits with 15-20 ms to spare, and repeats a
// sixth of an RTT (17 ms) apart cost it whenever the first NACK was lost
// (mean on-time over seeds 1-5 of the bench's arq-rtt100-loss10 row:
// 0.9941 with that spacing, 0.9951 with 5 ms; loss20 0.9906 and 0.9903).
// NACKs are small, so the faster repeats cost little on the reverse path.
func (r *Receiver) repeatSpacing() time.Duration {
	return max(min(r.srtt/time.Duration(3*max(r.cfg.Repeats, 1)), repeatSpacingCap), 100*time.Microsecond)
}

// hopeless: a retransmission requested now would arrive after the deadline.
func (r *Receiver) hopeless(now clock.Time, e *missing) bool {
	return now.Add(r.minRTT) > e.deadline
}

// lastUseful is the last moment a NACK of e leaves a retransmission time to
// arrive, by the smoothed figures (the first NACK is never held past it).
func (r *Receiver) lastUseful(e *missing) clock.Time {
	return e.deadline.Add(-(r.srtt + r.rttvar))
}

func (r *Receiver) firstDue(e *missing) clock.Time {
	due := e.created.Add(r.allowance)
	if l := r.lastUseful(e); l < due {
		due = clock.Max(l, e.created)
	}
	return due
}

// NextTimeout returns when PollNACK next has something to do, or
// clock.Never.
func (r *Receiver) NextTimeout() clock.Time {
	if r.dueDirty {
		r.dueDirty = false
		r.nextDue = clock.Never
		for p := r.head; p < r.tail; p++ {
			if e := &r.list[p&r.mask]; !e.dead {
				r.nextDue = clock.Min(r.nextDue, e.due)
			}
		}
	}
	t := r.nextDue
	if r.tl.armed {
		t = clock.Min(t, r.tailDue())
	}
	if r.keyFrame {
		t = clock.Min(t, r.keyFrameAt)
	}
	return t
}

// Stats returns the counters.
func (r *Receiver) Stats() ReceiverStats {
	s := r.stats
	s.Missing = r.live
	s.ReorderAllowance = r.allowance
	s.TailWait = r.tailWait
	s.InterArrival = r.interArrival
	return s
}

// ReorderAllowance returns how long a gap currently waits before its first
// NACK.
func (r *Receiver) ReorderAllowance() time.Duration { return r.allowance }

// arrive accounts for packet number pn. A packet above every number
// accounted for opens a gap (advanced); otherwise the listed entry it fills,
// if any, is returned (not removed).
func (r *Receiver) arrive(now clock.Time, pn int64, deadline clock.Time) (e *missing, advanced bool) {
	media := deadline != clock.Never
	if media {
		r.noteDeadline(deadline)
	}
	if !r.started {
		r.started = true
		r.next = pn + 1
		r.decayAt = now.Add(r.cfg.ReorderHalfLife)
		return nil, true
	}
	if pn >= r.next {
		r.openGap(now, pn, media)
		r.shiftTail(now, pn)
		r.next = pn + 1
		return nil, true
	}
	return r.find(pn), false
}

// noteDeadline takes a media packet's deadline: it raises the running
// maximum and settles the provisional deadlines of gaps opened since the
// last media packet (this packet is their later media neighbour).
func (r *Receiver) noteDeadline(d clock.Time) {
	if !r.haveDeadline || d > r.maxDeadline {
		r.haveDeadline = true
		r.maxDeadline = d
	}
	for p := max(r.prov, r.head); p < r.tail; p++ {
		e := &r.list[p&r.mask]
		if e.dead {
			continue
		}
		if e.deadline == clock.Never || e.deadline < r.maxDeadline {
			e.deadline = r.maxDeadline
		}
		if e.nacks == 0 && !e.held && !e.tail {
			e.due = r.firstDue(e)
			r.nextDue = clock.Min(r.nextDue, e.due)
		}
	}
	r.prov = r.tail
}

func (r *Receiver) gapDeadline() clock.Time {
	if !r.haveDeadline {
		return clock.Never
	}
	return r.maxDeadline
}

// openGap lists r.next..pn-1 as missing.
func (r *Receiver) openGap(now clock.Time, pn int64, media bool) {
	gap := pn - r.next
	if gap == 0 {
		return
	}
	if gap > int64(r.cfg.MaxMissing-r.live) {
		r.overflow(now)
		return
	}
	if n := r.spend(gap); n < gap {
		// The older numbers go unasked (creditPerPacket): lost, as a given-up
		// gap's are, so a frame lacking one need not wait for its playout
		// time to ask for a key frame (HopelessUntil).
		if d := r.gapDeadline(); d != clock.Never {
			r.gaveUpTo = max(r.gaveUpTo, d)
		}
		r.next += gap - n
		gap = n
	}
	r.ensureRoom(int(gap))
	d := r.gapDeadline()
	for p := r.next; p < pn; p++ {
		e := r.push(missing{pn: p, created: now, deadline: d})
		e.due = r.firstDue(e)
		r.nextDue = clock.Min(r.nextDue, e.due)
	}
	if media {
		r.prov = r.tail // this packet is their later media neighbour: final
	}
}

func (r *Receiver) push(m missing) *missing {
	e := &r.list[r.tail&r.mask]
	*e = m
	r.tail++
	r.live++
	return e
}

// ensureRoom makes space in the ring for k more entries (k <= MaxMissing -
// live), compacting dead entries out if needed. The ring is twice the bound,
// so a compaction frees at least as many slots as the list holds live ones:
// amortised O(1) per entry.
func (r *Receiver) ensureRoom(k int) {
	if r.tail-r.head+int64(k) <= int64(len(r.list)) {
		return
	}
	w := r.head
	prov := int64(-1)
	for p := r.head; p < r.tail; p++ {
		if p == r.prov && prov < 0 {
			prov = w
		}
		e := r.list[p&r.mask]
		if e.dead {
			continue
		}
		r.list[w&r.mask] = e
		w++
	}
	if prov < 0 {
		prov = w
	}
	r.tail, r.prov = w, prov
}

// overflow clears the list and asks for a key frame (libwebrtc's
// NackRequester::AddPacketsToNack does the same above kMaxNackPackets).
func (r *Receiver) overflow(now clock.Time) {
	r.head, r.prov = r.tail, r.tail
	r.live = 0
	r.tl.armed = false
	r.keyFrame = true
	r.keyFrameAt = now
	r.nextDue, r.dueDirty = clock.Never, false
	r.stats.Overflows++
}

// giveUp abandons e: no retransmission asked for now could arrive by its
// deadline.
func (r *Receiver) giveUp(e *missing) {
	if !e.tail {
		// A gap later packets showed: lost, not late. (The tail-loss
		// timer's guesses may be packets still on their way.)
		r.gaveUpTo = max(r.gaveUpTo, e.deadline)
	}
	r.remove(e)
	r.stats.GaveUp++
}

// HopelessUntil returns the latest (estimated) deadline of a packet given
// up because no retransmission could reach it in time (Stats.GaveUp), or
// 0 before any; packets the tail-loss timer guessed missing are left out,
// as they may only be late. A frame due by then that still lacks a packet will
// probably never complete: the caller may ask for a key frame at once
// rather than when the frame's playout time comes.
func (r *Receiver) HopelessUntil() clock.Time { return r.gaveUpTo }

func (r *Receiver) remove(e *missing) {
	e.dead = true
	r.live--
	if e.due <= r.nextDue {
		r.dueDirty = true // it may have been the earliest
	}
	r.trimHead()
}

func (r *Receiver) trimHead() {
	for r.head < r.tail && r.list[r.head&r.mask].dead {
		r.head++
	}
	if r.prov < r.head {
		r.prov = r.head
	}
}

// lowerBound returns the first position whose packet number is >= pn.
func (r *Receiver) lowerBound(pn int64) int64 {
	lo, hi := r.head, r.tail
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r.list[mid&r.mask].pn < pn {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// find returns pn's live entry, or nil: a binary search, the list being in
// packet-number order.
func (r *Receiver) find(pn int64) *missing {
	if r.head == r.tail || pn < r.list[r.head&r.mask].pn {
		return nil
	}
	p := r.lowerBound(pn)
	if p < r.tail {
		if e := &r.list[p&r.mask]; e.pn == pn && !e.dead {
			return e
		}
	}
	return nil
}

// filledByOriginal removes e, filled by an original transmission, and
// learns from it.
func (r *Receiver) filledByOriginal(now clock.Time, e *missing, nonMedia bool) {
	if d := now.Sub(e.created); d > 0 {
		if e.tail {
			r.learnTail(now, d)
		} else {
			r.learnReorder(now, d)
		}
	}
	if e.tail {
		r.stats.TailLate++
	}
	r.stats.Reordered++
	if e.nacks > 0 {
		r.stats.SpuriousNACKs++
		if nonMedia {
			r.stats.NonMediaNACKed++
		}
	}
	r.remove(e)
}

// learnReorder raises the allowance to a measured reordering delay plus a
// quarter. The rule follows RACK's reordering window (RFC 8985 §6.2, step
// 4): a time, not a packet count, raised when reordering shows, kept for a
// while and then decayed (RACK resets reo_wnd_mult after 16 recoveries;
// here the excess halves every ReorderHalfLife). Linux's RACK starts the
// window at 1 ms, which it found enough for slight reordering: our floor. Unlike RACK, which waits for DSACK
// to learn that a retransmission was spurious, every reordered original is a
// sample here: the receiver sees the gap and the late packet itself, as
// libwebrtc's NackRequester does with its reordering histogram (which
// counts packets, not time).
func (r *Receiver) learnReorder(now clock.Time, d time.Duration) {
	r.decay(now)
	want := min(max(d+d/4, r.cfg.MinReorder), r.cfg.MaxReorder)
	if want > r.allowance {
		r.allowance = want
		r.decayAt = now.Add(r.cfg.ReorderHalfLife)
	}
}

// learnTail lengthens the tail-loss timer after a fragment it listed as
// lost came d after it fired: the timer waits d and a quarter longer from
// then on (at most MaxReorder), and the extra halves every
// ReorderHalfLife, as the reorder allowance does. The timer's basis
// (tailDue) sees only this path's own packets: on a bottleneck shared
// with other flows, their bursts hold the rest of a frame back longer
// than its inter-arrival time and jitter say, and every such hold read as
// a tail loss. In the bench's rfc8867-5.4 row (three flows, nothing lost)
// that was 132 fragments listed and 131 spurious NACKs in 120 s.
// A tail fragment that never comes teaches nothing: a real tail loss is
// NACKed as soon as before.
func (r *Receiver) learnTail(now clock.Time, d time.Duration) {
	r.decayTail(now)
	if want := min(d+d/4, r.cfg.MaxReorder); want > r.tailWait {
		r.tailWait = want
		r.tailDecayAt = now.Add(r.cfg.ReorderHalfLife)
	}
}

func (r *Receiver) decayTail(now clock.Time) {
	r.tailWait = halveToward(r.tailWait, 0, &r.tailDecayAt, now, r.cfg.ReorderHalfLife)
}

func (r *Receiver) decay(now clock.Time) {
	r.allowance = halveToward(r.allowance, r.cfg.MinReorder, &r.decayAt, now, r.cfg.ReorderHalfLife)
}

// halveToward returns v with its excess over floor halved once for every
// half-life hl from *at up to now, moving *at on by as many; after 64
// half-lives (or with none), v is the floor.
func halveToward(v, floor time.Duration, at *clock.Time, now clock.Time, hl time.Duration) time.Duration {
	for v > floor && now >= *at {
		if hl <= 0 || now.Sub(*at) > 64*hl {
			return floor
		}
		v = floor + (v-floor)/2
		*at = at.Add(hl)
	}
	return v
}

func (r *Receiver) noteArrival(now clock.Time) {
	r.credit = min(r.credit+creditPerPacket, r.cfg.MaxMissing)
	if r.haveArrival {
		gap := min(max(now.Sub(r.lastArrival), 0), interArrivalCap)
		r.interArrival += (gap - r.interArrival) / 8
	}
	r.haveArrival = true
	r.lastArrival = now
}

func (r *Receiver) tailDue() clock.Time {
	return r.tl.at.Add(r.allowance + 2*r.interArrival + tailJitterFactor*r.jitter + r.tailWait)
}

// SetJitter gives the receiver the path's delay variation (RFC 3550
// §6.4.1 interarrival jitter, from the packets' send timestamps). The
// tail-loss timer waits 3 x it longer: a path that delays packets by
// 0-30 ms without reordering them (RFC 8867's jitter) holds the rest of a
// frame back longer than twice the mean inter-arrival time, and every such
// hold read as a tail loss. In the bench's rfc8867-5.1 row that was 1480
// tail "losses" and 2079 spurious retransmissions in 100 s with 64 packets
// actually lost.
func (r *Receiver) SetJitter(j time.Duration) { r.jitter = max(j, 0) }

// shiftTail moves the tail timer past a packet pn that is not of its frame:
// the numbers of the gap before pn may be the missing fragments (gap
// detection lists them); the rest come after pn.
func (r *Receiver) shiftTail(now clock.Time, pn int64) {
	if !r.tl.armed {
		return
	}
	consumed := pn - r.tl.after - 1
	if consumed >= int64(r.tl.missing) {
		r.tl.armed = false
		return
	}
	r.tl.missing -= int(consumed)
	r.tl.after = pn
	r.tl.at = now
}

// fireTail lists the expected tail fragments as lost if their timer ran
// out.
func (r *Receiver) fireTail(now clock.Time) {
	if !r.tl.armed || now < r.tailDue() {
		return
	}
	r.tl.armed = false
	k := r.tl.missing
	if int64(k) > MaxPacketNumber-r.next {
		return
	}
	r.stats.TailLosses++
	if k > r.cfg.MaxMissing-r.live {
		r.overflow(now)
		r.next += int64(k)
		return
	}
	listed := int(r.spend(int64(k))) // the first the credit allows (creditPerPacket)
	r.ensureRoom(listed)
	d := r.tl.deadline
	if d == clock.Never {
		d = r.gapDeadline()
	}
	final := r.prov == r.tail
	for i := range listed {
		r.push(missing{pn: r.next + int64(i), created: now, due: now, deadline: d, tail: true})
	}
	if final {
		r.prov = r.tail
	}
	r.next += int64(k)
	r.stats.TailPackets += int64(listed)
	r.nextDue = clock.Min(r.nextDue, now)
}

// repeatSpacingCap bounds repeatSpacing.
const repeatSpacingCap = 5 * time.Millisecond
