package fec

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/klauspost/reedsolomon"

	"github.com/spillway-rt/spillway/clock"
)

// Encoder defaults.
const (
	DefaultMaxSymbol      = 1400
	DefaultMaxK           = 48
	DefaultMaxM           = 16
	DefaultMaxOverhead    = 0.5 // libwebrtc's cap on protection
	DefaultRepairMargin   = 20 * time.Millisecond
	DefaultARQMargin      = 5 * time.Millisecond
	DefaultMaxInterleave  = 4
	DefaultMaxPending     = 32
	DefaultMaxBufferBytes = 1 << 20
)

// EncoderConfig configures an Encoder. Every zero field takes its default.
type EncoderConfig struct {
	// MaxSymbol is the largest protected packet in bytes (the data packet
	// after its short header). Larger packets are sent unprotected.
	// Default 1400.
	MaxSymbol int
	// MaxK is the most media packets in a block, at most MaxSpan.
	// Default 48.
	MaxK int
	// MaxM is the most repair packets in a block, at most MaxParity.
	// Default 16.
	MaxM int
	// MaxOverhead caps a block's repair packets at MaxOverhead x k, in
	// (0, 1]. Default 0.5 (libwebrtc's cap). FixedM is not bound by it.
	MaxOverhead float64
	// Targets, by class, of the failure probability the policy aims below:
	// F (frame or block lost after FEC and ARQ) for video and data, Q
	// (packet lost after FEC and ARQ) for audio. Defaults DefaultTarget*.
	TargetAudio, TargetKey, TargetDelta, TargetDroppable, TargetData float64
	// FixedK and FixedM, when FixedM > 0, bypass the policy: blocks of up to
	// FixedK packets (default MaxK) with FixedM repair packets each, closed
	// as usual at k, at the end of a frame or on the time bound.
	FixedK, FixedM int
	// RepairMargin is how long before its first member's deadline, less
	// the one-way delay, a block must close so its repair packets still
	// arrive in time (pacing, jitter, the receiver's work). Default 20 ms.
	RepairMargin time.Duration
	// ARQMargin is what a retransmission round takes beyond one RTT (loss
	// detection, reorder allowance, pacing). Default 5 ms: the receiver
	// NACKs a gap after a 1-5 ms reorder allowance and re-NACKs as soon as
	// the round's retransmission is due (arq.Receiver), so at RTT 100 ms in
	// the bench's arq rows retransmissions left about 105-110 ms and
	// 215-225 ms after the original; with 20 ms the policy counted one round
	// where two fit and protected every delta frame.
	ARQMargin time.Duration
	// MaxInterleave is the most blocks a lane fills in turn when loss is
	// bursty; 1 disables interleaving. Default 4.
	MaxInterleave int
	// MaxPending is the most closed blocks whose repair packets wait for
	// PollRepair; when full, the oldest block's remaining repairs are
	// dropped. Default 32.
	MaxPending int
	// MaxBufferBytes bounds the memory for parity symbols (each is
	// MaxSymbol + 1 rounded up to 64 bytes); a block that finds none left
	// gets fewer repair packets. Default 1 MiB.
	MaxBufferBytes int
}

func (c *EncoderConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxSymbol, DefaultMaxSymbol)
	def(&c.MaxK, DefaultMaxK)
	def(&c.MaxM, DefaultMaxM)
	def(&c.MaxInterleave, DefaultMaxInterleave)
	def(&c.MaxPending, DefaultMaxPending)
	def(&c.MaxBufferBytes, DefaultMaxBufferBytes)
	if c.MaxOverhead == 0 {
		c.MaxOverhead = DefaultMaxOverhead
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	deff(&c.TargetAudio, DefaultTargetAudio)
	deff(&c.TargetKey, DefaultTargetKey)
	deff(&c.TargetDelta, DefaultTargetDelta)
	deff(&c.TargetDroppable, DefaultTargetDroppable)
	deff(&c.TargetData, DefaultTargetData)
	if c.FixedM > 0 {
		def(&c.FixedK, c.MaxK)
	}
	c.RepairMargin = durationOr(c.RepairMargin, DefaultRepairMargin)
	c.ARQMargin = durationOr(c.ARQMargin, DefaultARQMargin)
}

// Validate reports the first field of c (after defaults) that an Encoder
// cannot use.
func (c EncoderConfig) Validate() error {
	c.setDefaults()
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s %v %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.MaxSymbol < 1 || c.MaxSymbol > math.MaxUint16-SymbolOverhead:
		return bad("MaxSymbol", c.MaxSymbol, "outside 1-65534")
	case c.MaxK < 1 || c.MaxK > MaxSpan:
		return bad("MaxK", c.MaxK, fmt.Sprintf("outside 1-%d", MaxSpan))
	case c.MaxM < 1 || c.MaxM > MaxParity:
		return bad("MaxM", c.MaxM, fmt.Sprintf("outside 1-%d", MaxParity))
	case !(c.MaxOverhead > 0 && c.MaxOverhead <= 1):
		return bad("MaxOverhead", c.MaxOverhead, "outside (0, 1]")
	case c.FixedM < 0 || c.FixedM > c.MaxM:
		return bad("FixedM", c.FixedM, "outside 0-MaxM")
	case c.FixedK < 0 || c.FixedK > c.MaxK:
		return bad("FixedK", c.FixedK, "outside 0-MaxK")
	case c.RepairMargin < 0:
		return bad("RepairMargin", c.RepairMargin, "negative")
	case c.ARQMargin < 0:
		return bad("ARQMargin", c.ARQMargin, "negative")
	case c.MaxInterleave < 1 || c.MaxInterleave > 8:
		return bad("MaxInterleave", c.MaxInterleave, "outside 1-8")
	case c.MaxPending < 1:
		return bad("MaxPending", c.MaxPending, "below 1")
	case c.MaxBufferBytes < 0:
		return bad("MaxBufferBytes", c.MaxBufferBytes, "negative")
	}
	for _, t := range []struct {
		name string
		v    float64
	}{{"TargetAudio", c.TargetAudio}, {"TargetKey", c.TargetKey}, {"TargetDelta", c.TargetDelta},
		{"TargetDroppable", c.TargetDroppable}, {"TargetData", c.TargetData}} {
		if !(t.v > 0 && t.v < 1) {
			return bad(t.name, t.v, "outside (0, 1)")
		}
	}
	return nil
}

func (c *EncoderConfig) target(cl Class) float64 {
	switch cl {
	case ClassAudio:
		return c.TargetAudio
	case ClassKey:
		return c.TargetKey
	case ClassDelta:
		return c.TargetDelta
	case ClassDroppable:
		return c.TargetDroppable
	}
	return c.TargetData
}

// Why a block closed.
const (
	closeFull = iota
	closeEndOfFrame
	closeTimeBound
)

// eblock is a block being filled or whose repairs wait to be sent.
type eblock struct {
	base     int64
	mask     uint64
	k        int
	kTarget  int
	m        int // repair packets planned (buffers held); after close, to send
	next     int // next repair index to hand out
	sym      int // symbol length: SymbolOverhead + largest member
	extent   int // parity bytes written, to clear on reuse
	first    clock.Time
	last     clock.Time
	closeBy  clock.Time
	minSlack time.Duration
	gm, gr   int               // member and repair spacing the policy assumed
	par      [MaxParity]int32  // parity buffers
	views    [MaxParity][]byte // the parity buffers cut to viewLen
	viewLen  int
}

// lane is the encoder's state for one class.
type lane struct {
	open     [8]int32 // open block per interleave slot, -1 if none
	depth    int      // interleave depth of the current group
	rr       int      // next slot
	inFrame  bool     // the lane's last packet did not end its frame
	lastPN   int64    // -1 before the first packet
	lastAt   clock.Time
	frameLen int     // packets of the current frame so far
	frameEst float64 // EWMA of packets per multi-packet frame; 0: unknown
	gapEst   float64 // EWMA of the packet-number gap between the lane's packets
	ivalEst  float64 // EWMA of nanoseconds between the lane's single-packet frames
	fillEst  float64 // EWMA of nanoseconds between packets within a frame
	tables   [maxRounds + 1]table
}

// Encoder groups media packets into blocks and computes their repair
// packets. Create one with NewEncoder; it is not safe for concurrent use.
type Encoder struct {
	cfg     EncoderConfig
	cond    Conditions
	md      model
	version uint64

	lanes   [numClasses]lane
	blocks  []eblock
	free    []int32 // free block indices
	pending []int32 // closed blocks with repairs left: a ring
	pHead   int
	pLen    int
	// What the pending blocks have left to hand out: repair packets and
	// symbol bytes (Due).
	dueN     int
	dueBytes int64

	bufs     [][]byte // parity buffers
	freeBufs []int32
	maxBufs  int
	symCap   int

	codecs  []reedsolomon.Encoder // codecs[m-1]: MaxK data, m parity shards
	scratch []byte                // one shard: MaxSymbol + 1 rounded up to 64
	ev      evaluator
	stats   Stats
}

// NewEncoder returns an Encoder for cfg.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Encoder{cfg: cfg, version: 1}
	e.symCap = roundUp64(SymbolOverhead + cfg.MaxSymbol)
	e.scratch = make([]byte, e.symCap)
	e.maxBufs = max(cfg.MaxBufferBytes/e.symCap, 0)
	nb := int(numClasses)*cfg.MaxInterleave + cfg.MaxPending
	e.blocks = make([]eblock, nb)
	e.free = make([]int32, 0, nb)
	for i := nb - 1; i >= 0; i-- {
		e.free = append(e.free, int32(i))
	}
	e.pending = make([]int32, nb)
	e.freeBufs = make([]int32, 0, e.maxBufs)
	e.codecs = make([]reedsolomon.Encoder, cfg.MaxM)
	for m := 1; m <= cfg.MaxM; m++ {
		c, err := newCodec(cfg.MaxK, m)
		if err != nil {
			return nil, fmt.Errorf("fec: codec %d+%d: %w", cfg.MaxK, m, err)
		}
		e.codecs[m-1] = c
	}
	for i := range e.lanes {
		ln := &e.lanes[i]
		for s := range ln.open {
			ln.open[s] = -1
		}
		ln.lastPN = -1
		ln.depth = 1
	}
	return e, nil
}

// Config returns the encoder's configuration with defaults filled in.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// SetConditions gives the policy new path measurements. Blocks already
// open keep the protection chosen when they opened (at most; see doc).
func (e *Encoder) SetConditions(now clock.Time, c Conditions) {
	if c.MeanBurst < 1 || math.IsNaN(c.MeanBurst) {
		c.MeanBurst = 1
	}
	if !(c.Loss >= 0) {
		c.Loss = 0
	}
	c.Loss = min(c.Loss, 1)
	c.RTT = max(c.RTT, 0)
	c.OneWay = max(c.OneWay, 0)
	if c == e.cond {
		return
	}
	e.cond = c
	e.md = newModel(c.Loss, c.MeanBurst)
	e.version++
}

// Conditions returns the conditions last set.
func (e *Encoder) Conditions() Conditions { return e.cond }

// plan returns the policy's table for a lane shape, computing it if the
// conditions changed since.
func (e *Encoder) plan(cl Class, r, gm, gr int) *table {
	t := &e.lanes[cl].tables[r]
	if t.version == e.version && t.gm == gm && t.gr == gr {
		return t
	}
	pp := policyParams{
		maxK:        e.cfg.MaxK,
		maxM:        e.cfg.MaxM,
		maxOverhead: e.cfg.MaxOverhead,
		target:      e.cfg.target(cl),
		audio:       cl == ClassAudio,
	}
	e.ev.compute(t, e.md, pp, r, gm, gr)
	t.version, t.class, t.rounds, t.gm, t.gr = e.version, cl, r, gm, gr
	return t
}

// arqOnly reports whether a class leaves recovery to ARQ once a round fits.
func arqOnly(cl Class) bool { return cl == ClassDelta || cl == ClassDroppable }

// mFor returns the repair packets the policy gives a block of k members of
// class cl with r ARQ rounds, and, when it gives none, whether the members'
// last retransmission should go twice (arqPlan).
func (e *Encoder) mFor(cl Class, k, r, gm, gr int) (m int, dup bool) {
	if e.cfg.FixedM > 0 {
		return e.cfg.FixedM, false
	}
	if e.md.p == 0 || k < 1 {
		return 0, false
	}
	if skip, dup := e.arqPlan(cl, k, r); skip {
		return 0, dup
	}
	return int(e.plan(cl, r, gm, gr).m[min(k, MaxSpan)]), false
}

// arqPlan decides whether a block of k members of class cl with r ARQ
// rounds is left to retransmission (skip), and whether its members' last
// useful retransmission is then sent twice (dup). Only delta and droppable
// video are left to ARQ, once a round fits, in this order: ARQ alone when
// it keeps the block under the class's target; with two rounds or more,
// the last retransmission doubled when that does (each member is then lost
// with p^(r+2): the doubled round fails only if both copies are lost); ARQ
// alone when it keeps the block under ARQCeiling. Doubling costs one
// packet per loss that reaches its last round (p of the losses with two
// rounds) where FEC would cost m/k of every block.
func (e *Encoder) arqPlan(cl Class, k, r int) (skip, dup bool) {
	if r < 1 || !arqOnly(cl) {
		return false, false
	}
	fa, fd, t := e.arqFails(k, r+1), e.arqFails(k, r+2), e.cfg.target(cl)
	switch {
	case fa <= t:
		return true, false
	case fd <= t && r >= 2:
		return true, true
	case fa <= ARQCeiling:
		return true, false
	}
	return false, false
}

// arqFails is the failure of a block of k members left to retransmission
// when each member is lost with p^x: 1 - (1 - p^x)^k. With r rounds, x is
// r+1 (the original and r retransmissions, an RTT apart, so independently
// lost).
func (e *Encoder) arqFails(k, x int) float64 {
	q := math.Pow(e.md.p, float64(x))
	return 1 - math.Pow(1-q, float64(k))
}

// ARQCeiling is the block failure up to which delta and droppable video
// rely on retransmission alone once a round fits, when neither ARQ alone
// nor ARQ with a doubled last chance reaches their target (see the
// policy's comment). At RTT 100 ms, two rounds in the 300 ms budget, a
// 7-packet delta frame fails with 7 p^3: 0.09 % at 5 % loss (ARQ alone),
// 0.7 % at 10 % (the last round doubled: 0.07 %), 5.5 % at 20 % (FEC
// added). Mean on-time over seeds 1-6 of the
// bench's arq-rtt100-loss20 row: 0.9544 before this rule and the round
// count above, 0.9908 with them; a ceiling of 2e-2 or 4e-2 gave 0.9906 and
// 0.9902 at 20 % and less at 10 % (0.9938, 0.9937 against 0.9945) for
// 0.03-0.04 less redundancy.
const ARQCeiling = 1e-2

func (e *Encoder) rounds(slack time.Duration) int {
	return rounds(&e.cond, slack, e.cfg.ARQMargin)
}

// AddMedia tells the encoder a media packet was sent. pkt is its protected
// bytes (the data packet after its short header; copied into the parity as
// it goes, so the caller may reuse it), class what it carries, deadline its
// frame's deadline on the sender's clock, and endOfFrame whether it is its
// frame's last packet. A block closes when it reaches its k, at the end of
// a frame of two or more packets, or on its time bound; its repair packets
// are then due at once (PollRepair). It reports dupLastChance when the
// policy left the packet to retransmission with its last useful
// retransmission sent twice (see the policy's comment): the caller asks
// its send history for that copy (arq.History.MarkLastChance).
func (e *Encoder) AddMedia(now clock.Time, pn int64, pkt []byte, class Class, deadline clock.Time, endOfFrame bool) (dupLastChance bool) {
	if class >= numClasses {
		class = ClassData
	}
	ln := &e.lanes[class]
	single := !ln.inFrame && endOfFrame // a frame of one packet
	e.measure(ln, now, pn, single, endOfFrame)

	// Blocks that cannot take this packet close first.
	for s := range ln.depth {
		if bi := ln.open[s]; bi >= 0 {
			b := &e.blocks[bi]
			// A packet number at or below the block's highest closes it
			// too: the decoder orders a block's packets by number, and
			// the parity by the order they came (a repeat would count
			// twice).
			if pn-b.base >= MaxSpan || pn-b.base < int64(bits.Len64(b.mask)) || now >= b.closeBy {
				e.close(class, s, closeTimeBound)
			}
		}
	}
	if ln.openCount() == 0 {
		ln.depth, ln.rr = e.depthFor(ln, class, single), 0
	}
	slot := ln.rr % ln.depth
	ln.rr++
	// A packet whose repairs could not arrive by its deadline is left out
	// (Reaches): it once joined a block opened for later deadlines.
	protected := len(pkt) <= e.cfg.MaxSymbol && pn >= 0
	if protected && ln.open[slot] < 0 {
		dupLastChance = e.open(ln, class, slot, now, pn, deadline, single)
	}
	if bi := ln.open[slot]; protected && bi >= 0 {
		e.add(&e.blocks[bi], now, pn, pkt, deadline)
		if b := &e.blocks[bi]; b.k >= b.kTarget || b.k >= e.cfg.MaxK {
			e.close(class, slot, closeFull)
		}
	} else {
		e.stats.MediaUnprotected++
		if dupLastChance {
			e.stats.MediaLastChance++
		}
	}
	if endOfFrame && !single {
		for s := range ln.depth {
			e.close(class, s, closeEndOfFrame)
		}
	}
	return dupLastChance
}

func (ln *lane) openCount() int {
	n := 0
	for s := range ln.depth {
		if ln.open[s] >= 0 {
			n++
		}
	}
	return n
}

// measure updates a lane's estimates of its packet spacing and frame size.
func (e *Encoder) measure(ln *lane, now clock.Time, pn int64, single, endOfFrame bool) {
	const a = 0.25
	if ln.lastPN >= 0 && pn > ln.lastPN {
		g := float64(min(pn-ln.lastPN, 64))
		if ln.gapEst == 0 {
			ln.gapEst = g
		} else {
			ln.gapEst += a * (g - ln.gapEst)
		}
		switch dt := float64(now - ln.lastAt); {
		case single && !ln.inFrame:
			ln.ivalEst = ewma(ln.ivalEst, dt, a)
		case ln.inFrame:
			ln.fillEst = ewma(ln.fillEst, dt, a)
		}
	}
	ln.lastPN, ln.lastAt = pn, now
	ln.frameLen++
	if endOfFrame {
		if !single {
			ln.frameEst = ewma(ln.frameEst, float64(ln.frameLen), a)
		}
		ln.frameLen = 0
	}
	ln.inFrame = !endOfFrame
}

func ewma(old, v, a float64) float64 {
	if old == 0 {
		return v
	}
	return old + a*(v-old)
}

// gap returns the lane's member spacing on the link, in packets.
func (ln *lane) gap() int {
	return min(max(int(ln.gapEst+0.5), 1), 16)
}

// depthFor chooses the interleave depth for a lane's next group of blocks:
// more than one only when loss is bursty, frames are large enough to need
// several blocks anyway, and the interleaved layout protects as well for
// less overhead.
func (e *Encoder) depthFor(ln *lane, cl Class, single bool) int {
	if e.cfg.MaxInterleave <= 1 || single || e.md.p == 0 || e.cond.MeanBurst <= 1.5 || e.cfg.FixedM > 0 {
		return 1
	}
	n := ln.frameEst
	if n <= float64(e.cfg.MaxK) {
		return 1
	}
	d := e.cfg.MaxInterleave
	if b := math.Ceil(e.cond.MeanBurst); b < float64(d) { // (+Inf, or any huge burst, converts to int differently by platform)
		d = int(b)
	}
	if d <= 1 {
		return 1
	}
	// Compare overheads (without ARQ, which is when FEC matters):
	// sequential blocks, or d interleaved ones, of the sizes open would
	// give them: at most MaxK, and spanning at most MaxSpan packet numbers
	// at the members' spacing (g, or g x d interleaved). (With the spans
	// left out, a lane of key frames whose packets sat 12 apart chose depth
	// 3, where open could only make blocks of 1 packet, and no repair.)
	g := ln.gap()
	seqK := kSplit(n, min(e.cfg.MaxK, MaxSpan/g))
	intK := kSplit(n/float64(d), min(e.cfg.MaxK, MaxSpan/(g*d)))
	seq, _ := e.mFor(cl, seqK, 0, g, 1)
	inter, _ := e.mFor(cl, intK, 0, g*d, d)
	if inter == 0 && seq > 0 {
		return 1 // no repair at all is no cheaper protection
	}
	if float64(inter)/float64(intK) < float64(seq)/float64(seqK) {
		return d
	}
	return 1
}

// kSplit returns the block size that splits a frame of about n packets
// into equal blocks of at most kmax, with a little room so a slightly
// larger frame does not leave a tiny last block.
func kSplit(n float64, kmax int) int {
	if n <= 0 {
		return kmax
	}
	nb := math.Ceil(n / float64(kmax))
	return min(kmax, int(math.Ceil(n*1.1/nb)))
}

// open starts a block in a lane slot, if the policy protects it. When it
// does not, it reports whether the policy wants the packet's last
// retransmission sent twice instead (arqPlan).
func (e *Encoder) open(ln *lane, cl Class, slot int, now clock.Time, pn int64, deadline clock.Time, single bool) (dup bool) {
	closeBy := e.closeBy(deadline)
	if closeBy <= now {
		return false // its repairs could not arrive in time
	}
	d := ln.depth
	gm, gr := ln.gap()*d, d
	slack := deadline.Sub(now) - e.cond.OneWay
	var kTarget, m int
	switch {
	case e.cfg.FixedM > 0:
		kTarget, m = e.cfg.FixedK, e.cfg.FixedM
	case single:
		kTarget, m, dup = e.groupShape(ln, cl, now, closeBy, slack, gm, gr)
	default:
		kmax := min(e.cfg.MaxK, MaxSpan/gm)
		if d > 1 {
			kTarget = kSplit(ln.frameEst/float64(d), kmax)
		} else {
			kTarget = kSplit(ln.frameEst, kmax)
		}
		// The last member leaves about (kTarget-1) x fill later with the
		// same deadline: plan for its slack.
		fill := time.Duration(ln.fillEst * float64(kTarget*d-1))
		m, dup = e.mFor(cl, kTarget, e.rounds(slack-fill), gm, gr)
	}
	if m == 0 {
		return dup
	}
	m = min(m, e.cfg.MaxM)
	if len(e.free) == 0 {
		e.dropOldestPending()
		if len(e.free) == 0 {
			return false
		}
	}
	bi := e.free[len(e.free)-1]
	e.free = e.free[:len(e.free)-1]
	b := &e.blocks[bi]
	*b = eblock{
		base: pn, kTarget: max(kTarget, 1), first: deadline, last: deadline,
		closeBy: closeBy, minSlack: slack, gm: gm, gr: gr,
	}
	for j := range m {
		bx := e.takeBuf()
		if bx < 0 {
			e.stats.RepairsDropped += int64(m - j)
			break
		}
		b.par[j] = bx
		b.m++
	}
	if b.m == 0 {
		e.free = append(e.free, bi)
		return false
	}
	ln.open[slot] = bi
	return false
}

// closeBy is when a block whose first member is due at deadline must
// close for its repairs to arrive in time: the one-way delay
// (SetConditions) and RepairMargin before it.
func (e *Encoder) closeBy(deadline clock.Time) clock.Time {
	return deadline.Add(-e.cond.OneWay - e.cfg.RepairMargin)
}

// Reaches reports whether the repairs of a block opened now for a member
// due at deadline could still arrive by it: AddMedia opens no block for a
// packet for which it is false. Such a packet still joins a block of its
// lane already open, whose repairs may come too late for it but serve the
// others (leaving it out measured worse: the bench's random-loss-5, seeds
// 1-5, froze 22.3 s against 10.2). A caller with a later deadline
// worth working to (the receiver's playout time) can pass that one
// instead.
func (e *Encoder) Reaches(now, deadline clock.Time) bool {
	return e.closeBy(deadline) > now
}

// groupShape chooses k and m for a block of single-packet frames: the k
// that fits before the time bound at the lane's packet interval, with the
// least overhead that meets the target (or the smallest failure).
func (e *Encoder) groupShape(ln *lane, cl Class, now, closeBy clock.Time, slack time.Duration, gm, gr int) (k, m int, dup bool) {
	r := e.rounds(slack)
	if e.md.p == 0 {
		return 1, 0, false
	}
	if skip, dup := e.arqPlan(cl, 1, r); skip {
		return 1, 0, dup
	}
	kmax := min(e.cfg.MaxK, MaxSpan/gm)
	if ln.ivalEst > 0 {
		// Members arrive every ivalEst; those strictly before the
		// time bound fit.
		fit := int(math.Ceil(float64(closeBy-now)/ln.ivalEst - 1e-9))
		kmax = min(kmax, max(fit, 1))
	}
	t := e.plan(cl, r, gm, gr)
	best := -1
	better := func(a, b int) bool { // is k=a a better choice than k=b?
		if b < 0 {
			return true
		}
		oa := float64(t.m[a]) / float64(a)
		ob := float64(t.m[b]) / float64(b)
		if t.met[a] != t.met[b] {
			return t.met[a]
		}
		if t.met[a] {
			return oa < ob-1e-12
		}
		if t.metric[a] != t.metric[b] {
			return t.metric[a] < t.metric[b]
		}
		return oa < ob
	}
	for kk := 1; kk <= kmax; kk++ {
		if better(kk, best) {
			best = kk
		}
	}
	return best, int(t.m[best]), false
}

func (e *Encoder) takeBuf() int32 {
	if n := len(e.freeBufs); n > 0 {
		bi := e.freeBufs[n-1]
		e.freeBufs = e.freeBufs[:n-1]
		return bi
	}
	if len(e.bufs) >= e.maxBufs {
		return -1
	}
	e.bufs = append(e.bufs, make([]byte, e.symCap))
	return int32(len(e.bufs) - 1)
}

// add puts a media packet into a block and adds it to the parity.
func (e *Encoder) add(b *eblock, now clock.Time, pn int64, pkt []byte, deadline clock.Time) {
	idx := b.k
	b.mask |= 1 << uint(pn-b.base)
	b.k++
	b.first = clock.Min(b.first, deadline)
	b.last = clock.Max(b.last, deadline)
	b.closeBy = clock.Min(b.closeBy, e.closeBy(deadline))
	b.minSlack = min(b.minSlack, deadline.Sub(now)-e.cond.OneWay)
	n := len(pkt)
	b.sym = max(b.sym, SymbolOverhead+n)
	// The shard is the bytes, the end marker, then zeros to the block's
	// symbol length, coded at a multiple of 64 bytes (the SIMD stride, so
	// no kernel ends in a scalar tail; the zeros add nothing to the
	// parity). One contiguous shard takes one EncodeIdx: copying it is
	// cheaper than coding the caller's bytes and a tail separately.
	l := roundUp64(n + SymbolOverhead)
	sh := e.scratch[:l]
	copy(sh, pkt)
	sh[n] = endMarker
	clear(sh[n+1:])
	if l != b.viewLen { // the parity views, as long as the shard
		for j := range b.m {
			b.views[j] = e.bufs[b.par[j]][:l]
		}
		b.viewLen = l
		b.extent = max(b.extent, l)
	}
	if err := e.codecs[b.m-1].EncodeIdx(sh, idx, b.views[:b.m]); err != nil {
		// Shapes are ours and checked: this is a bug.
		panic(fmt.Sprintf("fec: EncodeIdx(%d bytes, %d, %d parity): %v", len(sh), idx, b.m, err))
	}
}

// close ends the block in a lane slot: its repair packets become due.
func (e *Encoder) close(cl Class, slot int, why int) {
	ln := &e.lanes[cl]
	bi := ln.open[slot]
	if bi < 0 {
		return
	}
	ln.open[slot] = -1
	b := &e.blocks[bi]
	m := b.m
	if e.cfg.FixedM == 0 && b.k < b.kTarget {
		// Fewer members than planned: the policy's m for the actual k,
		// never more than the parity already computed. Unless that is
		// "no repair, the last retransmission doubled": the members are
		// sent, and the doubling can no longer be asked for (AddMedia
		// answered for each), so the parity stays (plain ARQ, which the
		// policy judged short, once left such a block with neither).
		if mk, dup := e.mFor(cl, b.k, e.rounds(b.minSlack), b.gm, b.gr); mk > 0 || !dup {
			m = min(m, mk)
		}
	}
	if m == 0 || b.k == 0 {
		e.stats.MediaUnprotected += int64(b.k)
		e.release(bi)
		return
	}
	if m < b.m {
		for j := m; j < b.m; j++ {
			e.putBuf(b.par[j], b.extent)
		}
		b.m = m
	}
	e.stats.MediaProtected += int64(b.k)
	e.stats.BlocksClosed++
	switch why {
	case closeFull:
		e.stats.ClosedFull++
	case closeEndOfFrame:
		e.stats.ClosedEndOfFrame++
	default:
		e.stats.ClosedTimeBound++
	}
	if e.pLen >= e.cfg.MaxPending {
		e.dropOldestPending()
	}
	e.pushPending(bi)
	e.dueN += b.m
	e.dueBytes += int64(b.m * b.sym)
}

// undue takes n repair packets of block b off the due counts (handed out
// or dropped).
func (e *Encoder) undue(b *eblock, n int) {
	e.dueN -= n
	e.dueBytes -= int64(n * b.sym)
}

// pushPending appends a block to the pending ring; popPending removes its
// head.
func (e *Encoder) pushPending(bi int32) {
	i := e.pHead + e.pLen
	if i >= len(e.pending) {
		i -= len(e.pending)
	}
	e.pending[i] = bi
	e.pLen++
}

func (e *Encoder) popPending() int32 {
	bi := e.pending[e.pHead]
	e.pHead++
	if e.pHead == len(e.pending) {
		e.pHead = 0
	}
	e.pLen--
	return bi
}

func (e *Encoder) putBuf(bx int32, extent int) {
	clear(e.bufs[bx][:extent])
	e.freeBufs = append(e.freeBufs, bx)
}

// release frees a block and its buffers.
func (e *Encoder) release(bi int32) {
	b := &e.blocks[bi]
	for j := range b.m {
		e.putBuf(b.par[j], b.extent)
	}
	b.m = 0
	e.free = append(e.free, bi)
}

func (e *Encoder) dropOldestPending() {
	if e.pLen == 0 {
		return
	}
	bi := e.popPending()
	b := &e.blocks[bi]
	e.stats.RepairsDropped += int64(b.m - b.next)
	e.undue(b, b.m-b.next)
	e.release(bi)
}

// PollRepair writes the next due repair symbol into dst and returns its
// block, the deadline it serves (its earliest member's) and its length.
// dst must hold MaxSymbol + SymbolOverhead bytes. ok is false when no
// repair packet is due. Repairs of blocks closed together are handed out
// in turn, so the repairs of one block do not sit next to each other when
// interleaving. Repairs that can no longer arrive before any member's
// deadline (now + one-way delay past the latest) are dropped.
func (e *Encoder) PollRepair(now clock.Time, dst []byte) (b Block, deadline clock.Time, n int, ok bool) {
	for e.pLen > 0 {
		bi := e.pending[e.pHead]
		blk := &e.blocks[bi]
		if now.Add(e.cond.OneWay) > blk.last {
			e.popPending()
			e.stats.RepairsDropped += int64(blk.m - blk.next)
			e.undue(blk, blk.m-blk.next)
			e.release(bi)
			continue
		}
		if len(dst) < blk.sym {
			return Block{}, 0, 0, false
		}
		n = copy(dst, e.bufs[blk.par[blk.next]][:blk.sym])
		b = Block{Base: blk.base, Mask: blk.mask, M: blk.m, Index: blk.next}
		deadline = blk.first
		blk.next++
		e.undue(blk, 1)
		e.popPending()
		if blk.next < blk.m {
			e.pushPending(bi)
		} else {
			e.release(bi)
		}
		e.stats.FECPacketsSent++
		e.stats.FECBytesSent += int64(n)
		return b, deadline, n, true
	}
	return Block{}, 0, 0, false
}

// RepairsDue returns how many repair packets PollRepair would hand out now
// (before its deadline checks).
func (e *Encoder) RepairsDue() int { return e.dueN }

// RepairBytesDue returns the symbol bytes of the repair packets
// PollRepair would hand out now (before its deadline checks): with
// RepairsDue, the caller's send backlog of repair.
func (e *Encoder) RepairBytesDue() int64 { return e.dueBytes }

// NextTimeout returns when an open block must close on its time bound, or
// clock.Never.
func (e *Encoder) NextTimeout() clock.Time {
	t := clock.Never
	for cl := range e.lanes {
		ln := &e.lanes[cl]
		for s := range ln.depth {
			if bi := ln.open[s]; bi >= 0 {
				t = clock.Min(t, e.blocks[bi].closeBy)
			}
		}
	}
	return t
}

// HandleTimeout closes the blocks whose time bound has come.
func (e *Encoder) HandleTimeout(now clock.Time) {
	for cl := range e.lanes {
		ln := &e.lanes[cl]
		for s := range ln.depth {
			if bi := ln.open[s]; bi >= 0 && e.blocks[bi].closeBy <= now {
				e.close(Class(cl), s, closeTimeBound)
			}
		}
	}
}

// Flush closes every open block now (for example when the session ends or
// a stream stops), making their repairs due.
func (e *Encoder) Flush(now clock.Time) {
	for cl := range e.lanes {
		for s := range e.lanes[cl].depth {
			e.close(Class(cl), s, closeTimeBound)
		}
	}
}

// Stats returns the encoder's counters.
func (e *Encoder) Stats() Stats { return e.stats }

// Plan returns the block shape the policy would use now for a frame of
// class cl whose members have the given slack (deadline - send time -
// one-way delay), n packets per frame (1: single-packet frames, grouped)
// and member spacing gap on the link: its k, m and the analysis. It is for
// tests, tools and logs; it does not change the encoder's state beyond its
// policy cache.
func (e *Encoder) Plan(cl Class, n int, slack time.Duration, gap int, interval time.Duration) Analysis {
	if cl >= numClasses {
		cl = ClassData
	}
	gap = min(max(gap, 1), 16)
	r := e.rounds(slack)
	var k, m int
	var dup bool
	switch {
	case e.cfg.FixedM > 0:
		k, m = e.cfg.FixedK, e.cfg.FixedM
	case n <= 1:
		var ln lane
		ln.ivalEst = float64(interval)
		now := clock.Time(0)
		k, m, dup = e.groupShape(&ln, cl, now, now.Add(slack-e.cfg.RepairMargin), slack, gap, 1)
	default:
		k = kSplit(float64(n), min(e.cfg.MaxK, MaxSpan/gap))
		k = min(k, n)
		m, dup = e.mFor(cl, k, r, gap, 1)
	}
	a := Analyze(e.cond, k, m, gap, 1, slack, e.cfg.ARQMargin)
	if dup {
		// The last round goes twice: a member is lost with p^(R+2).
		a.DuplicateLastChance = true
		a.Failure = e.arqFails(a.K, a.Rounds+2)
		a.Residual = math.Pow(e.md.p, float64(a.Rounds+2))
	}
	return a
}
