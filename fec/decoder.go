package fec

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/klauspost/reedsolomon"

	"github.com/spillway-rt/spillway/clock"
)

// Decoder defaults.
const (
	DefaultMaxBlocks  = 32
	DefaultHistory    = 256
	DefaultMaxRepairs = 64
	DefaultRepairWait = 20 * time.Millisecond
	DefaultHorizon    = time.Second
)

// codecCacheBudget bounds the memory of the library's inversion caches:
// each reconstruction may cache a k x k matrix, so after this many bytes'
// worth of reconstructions the decoder's codecs are replaced.
const codecCacheBudget = 1 << 20

// maxJump is how far past the highest packet number seen a repair's block
// may reach: half the 24-bit packet-number space the wire decodes within
// (RFC 9000 appendix A.3).
const maxJump = 1 << 23

// DecoderConfig configures a Decoder. Every zero field takes its default.
type DecoderConfig struct {
	// MaxSymbol is the largest protected packet in bytes; it must be at
	// least the encoder's. Default 1400.
	MaxSymbol int
	// MaxBlocks is how many blocks with missing members are tracked at
	// once; when full, the oldest is forgotten. Default 32.
	MaxBlocks int
	// History is how many packet numbers of media are kept for recovery
	// (rounded up to a power of two, at least 2 x MaxSpan): a repair packet
	// whose block starts further back than that is discarded. The copies
	// cost History x (MaxSymbol + 1, rounded up to 64) bytes: 360,448 (352
	// KiB) with the defaults. Default 256.
	History int
	// MaxRepairs bounds the repair symbols held at once (allocated as
	// needed, each MaxSymbol + 1 bytes, rounded up to 64); when none is left, the oldest
	// block is forgotten. Default 64.
	MaxRepairs int
	// MaxK and MaxM are the largest block shape accepted; recovery inverts
	// a k x k matrix. Defaults MaxSpan and MaxParity.
	MaxK, MaxM int
	// RepairWait is how long after a block's first repair packet the rest
	// of its repairs are still expected (Pending). Default 20 ms.
	RepairWait time.Duration
	// Horizon is how long Expire keeps a block after its first repair
	// packet. Default 1 s.
	Horizon time.Duration
}

// maxHistory bounds DecoderConfig.History (a million packets' copies).
const maxHistory = 1 << 20

func (c *DecoderConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxSymbol, DefaultMaxSymbol)
	def(&c.MaxBlocks, DefaultMaxBlocks)
	def(&c.History, DefaultHistory)
	def(&c.MaxRepairs, DefaultMaxRepairs)
	def(&c.MaxK, MaxSpan)
	def(&c.MaxM, MaxParity)
	c.RepairWait = durationOr(c.RepairWait, DefaultRepairWait)
	c.Horizon = durationOr(c.Horizon, DefaultHorizon)
	h := 2 * MaxSpan
	for h < c.History && h < maxHistory {
		h <<= 1
	}
	c.History = h
}

// Validate reports the first field of c (after defaults) a Decoder cannot
// use.
func (c DecoderConfig) Validate() error {
	history := c.History // setDefaults rounds it up
	c.setDefaults()
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s %v %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case history < 0 || history > maxHistory:
		return bad("History", history, fmt.Sprintf("outside 0-%d", maxHistory))
	case c.MaxSymbol < 1 || c.MaxSymbol > 65535-SymbolOverhead:
		return bad("MaxSymbol", c.MaxSymbol, "outside 1-65534")
	case c.MaxBlocks < 1 || c.MaxBlocks > 4096:
		return bad("MaxBlocks", c.MaxBlocks, "outside 1-4096")
	case c.MaxRepairs < 1 || c.MaxRepairs > 65536:
		return bad("MaxRepairs", c.MaxRepairs, "outside 1-65536")
	case c.MaxK < 1 || c.MaxK > MaxSpan:
		return bad("MaxK", c.MaxK, fmt.Sprintf("outside 1-%d", MaxSpan))
	case c.MaxM < 1 || c.MaxM > MaxParity:
		return bad("MaxM", c.MaxM, fmt.Sprintf("outside 1-%d", MaxParity))
	case c.RepairWait < 0:
		return bad("RepairWait", c.RepairWait, "negative")
	case c.Horizon < 0:
		return bad("Horizon", c.Horizon, "negative")
	}
	return nil
}

// slotMeta says what a history slot holds.
type slotMeta struct {
	pn        int64  // packet number of the slot's content; -1: none
	length    uint16 // its length, once stored
	arrived   bool   // the packet itself arrived
	stored    bool   // its bytes are in the slot (arrived and copied, or recovered)
	recovered bool   // rebuilt from repair packets
}

// dblock is a block known from a repair packet, with members missing.
type dblock struct {
	used    bool
	base    int64
	mask    uint64
	k, m    int
	sym     int    // symbol length
	have    uint64 // repair indexes held
	nrep    int
	rep     [MaxParity]int32
	firstAt clock.Time
}

func (b *dblock) top() int64 { return b.base + 63 - int64(bits.LeadingZeros64(b.mask)) }

func (b *dblock) has(pn int64) bool {
	off := pn - b.base
	return off >= 0 && off < MaxSpan && b.mask&(1<<uint(off)) != 0
}

// Decoder rebuilds lost media packets from repair packets. Create one with
// NewDecoder; it is not safe for concurrent use. Everything it holds is
// bounded by its config.
type Decoder struct {
	cfg     DecoderConfig
	hmask   int64
	stride  int
	meta    []slotMeta
	ring    []byte // History slots of stride bytes: the bytes, the end marker
	highest int64  // highest packet number seen (media, or a repair's last member); -1 before any
	floor   int64  // blocks starting below this are expired
	now     clock.Time

	blocks  []dblock
	nblocks int
	reps    [][]byte
	freeRep []int32

	codecs    [MaxSpan + 1][MaxParity + 1]reedsolomon.Encoder // by k and M
	cacheCost int
	shards    [MaxSpan + MaxParity][]byte // reconstruction scratch

	out    []int64 // recovered packet numbers to hand out: a ring
	outH   int
	outLen int

	work int // rebuild work earned, in members (rebuildPerMedia)

	stats Stats
}

// The rebuild work: a reconstruction costs about one shard of work per
// member, so each packet that arrives earns rebuildPerMedia members of it
// (a repair packet one), at most rebuildMax x MaxK, and a reconstruction
// of k members spends k (a decoder starts with MaxK). The packets of a
// block pay for its own rebuild (stored + repairs >= k), so honest traffic
// never waits; forged repairs that make a rebuild fail (their block is
// dropped, and the next forged repair for the same base starts it anew)
// buy one member of work each instead of a whole rebuild (64 shards, about
// 32 us) each.
const (
	rebuildPerMedia = 4
	rebuildMax      = 4
)

// NewDecoder returns a Decoder for cfg.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	d := &Decoder{
		cfg:     cfg,
		hmask:   int64(cfg.History - 1),
		stride:  roundUp64(SymbolOverhead + cfg.MaxSymbol),
		meta:    make([]slotMeta, cfg.History),
		highest: -1,
		work:    cfg.MaxK,
		blocks:  make([]dblock, cfg.MaxBlocks),
		freeRep: make([]int32, 0, cfg.MaxRepairs),
		out:     make([]int64, cfg.History),
	}
	d.ring = make([]byte, cfg.History*d.stride)
	for i := range d.meta {
		d.meta[i].pn = -1
	}
	return d, nil
}

func (d *Decoder) slot(pn int64) []byte {
	i := int(pn&d.hmask) * d.stride
	return d.ring[i : i+d.stride : i+d.stride]
}

func (d *Decoder) present(pn int64) bool {
	m := &d.meta[pn&d.hmask]
	return m.pn == pn && (m.arrived || m.recovered)
}

func (d *Decoder) isStored(pn int64) bool {
	m := &d.meta[pn&d.hmask]
	return m.pn == pn && m.stored
}

func (d *Decoder) tick(now clock.Time) {
	if now > d.now {
		d.now = now
	}
}

// advance moves the window to end at pn, forgetting blocks that fall out.
func (d *Decoder) advance(pn int64) {
	if pn <= d.highest {
		return
	}
	d.highest = pn
	if d.nblocks == 0 {
		return
	}
	for i := range d.blocks {
		if b := &d.blocks[i]; b.used && b.base <= pn-int64(len(d.meta)) {
			d.forget(i)
		}
	}
}

// OnMedia tells the decoder a media packet arrived (first transmission or
// retransmission): pn is its packet number, pkt its protected bytes
// (copied into the history, since a repair packet may name it later).
func (d *Decoder) OnMedia(now clock.Time, pn int64, pkt []byte) {
	d.tick(now)
	if pn < 0 {
		return
	}
	if pn > d.highest {
		d.advance(pn)
	} else if pn <= d.highest-int64(len(d.meta)) {
		return // older than the history
	}
	m := &d.meta[pn&d.hmask]
	if m.pn == pn {
		if m.arrived {
			return // duplicate
		}
		m.arrived = true
		if m.stored {
			return // recovered already: the same bytes
		}
	} else {
		*m = slotMeta{pn: pn, arrived: true}
	}
	d.earn(rebuildPerMedia)
	if len(pkt) <= d.cfg.MaxSymbol {
		s := d.slot(pn)
		s[copy(s, pkt)] = endMarker // the rest is zeroed when a block needs it
		m.length = uint16(len(pkt))
		m.stored = true
	}
	if d.nblocks > 0 {
		for i := range d.blocks {
			if b := &d.blocks[i]; b.used && b.has(pn) {
				d.try(i)
			}
		}
	}
}

// OnRepair takes a repair packet: its block, as the packet's header names
// it, and its symbol. The input is hostile: anything malformed,
// inconsistent with what the decoder knows of the block, outside the
// window, duplicated or no longer needed is counted and discarded.
func (d *Decoder) OnRepair(now clock.Time, b Block, symbol []byte) {
	d.tick(now)
	d.stats.FECPacketsReceived++
	d.stats.FECBytesReceived += int64(len(symbol))
	k := b.K()
	if !b.valid() || k > d.cfg.MaxK || b.M > d.cfg.MaxM ||
		len(symbol) < SymbolOverhead || len(symbol) > SymbolOverhead+d.cfg.MaxSymbol {
		d.discard(&d.stats.DiscardedInvalid)
		return
	}
	if b.Base > math.MaxInt64-64 {
		d.discard(&d.stats.DiscardedInvalid)
		return
	}
	top := b.Base + 63 - int64(bits.LeadingZeros64(b.Mask))
	h := int64(len(d.meta))
	if top-max(d.highest, 0) > maxJump {
		// Further ahead than a packet number can decode to. Before any
		// packet, numbers start at 0: a first repair 2^63 ahead once
		// moved the window there, and nothing was rebuilt again.
		d.discard(&d.stats.DiscardedInvalid)
		return
	}
	if top < d.floor || (d.highest >= 0 && b.Base <= d.highest-h+MaxSpan) {
		d.discard(&d.stats.DiscardedUnneeded) // expired, or older than the history
		return
	}
	d.advance(top)

	bi := -1
	for i := range d.blocks {
		if d.blocks[i].used && d.blocks[i].base == b.Base {
			bi = i
			break
		}
	}
	if bi >= 0 {
		blk := &d.blocks[bi]
		switch {
		case blk.mask != b.Mask || blk.m != b.M || blk.sym != len(symbol):
			d.discard(&d.stats.DiscardedInvalid)
			return
		case blk.have&(1<<uint(b.Index)) != 0:
			d.discard(&d.stats.DiscardedUnneeded) // duplicate
			return
		}
	} else {
		missing := 0
		for m := b.Mask; m != 0; m &= m - 1 {
			pn := b.Base + int64(bits.TrailingZeros64(m))
			if !d.present(pn) {
				missing++
			} else if md := &d.meta[pn&d.hmask]; md.stored && int(md.length)+SymbolOverhead > len(symbol) {
				// A member longer than the symbol: the repair does not
				// describe the packets we have.
				d.discard(&d.stats.DiscardedInvalid)
				return
			}
		}
		if missing == 0 {
			d.discard(&d.stats.DiscardedUnneeded) // complete, or recovered already
			return
		}
		bi = d.newBlock()
		d.blocks[bi] = dblock{used: true, base: b.Base, mask: b.Mask, k: k, m: b.M, sym: len(symbol), firstAt: d.now}
		d.nblocks++
	}
	d.earn(1)
	ri := d.takeRep(bi)
	if ri < 0 {
		d.discard(&d.stats.DiscardedUnneeded)
		if d.blocks[bi].nrep == 0 {
			d.free(bi)
		}
		return
	}
	blk := &d.blocks[bi]
	clear(d.reps[ri][copy(d.reps[ri], symbol):roundUp64(len(symbol))])
	blk.rep[b.Index] = ri
	blk.have |= 1 << uint(b.Index)
	blk.nrep++
	d.try(bi)
}

func (d *Decoder) discard(reason *int64) {
	*reason++
	d.stats.FECPacketsDiscarded++
}

// newBlock returns a free block entry, forgetting the oldest if none is.
func (d *Decoder) newBlock() int {
	oldest := -1
	for i := range d.blocks {
		b := &d.blocks[i]
		if !b.used {
			return i
		}
		if oldest < 0 || b.firstAt < d.blocks[oldest].firstAt ||
			(b.firstAt == d.blocks[oldest].firstAt && b.base < d.blocks[oldest].base) {
			oldest = i
		}
	}
	d.forget(oldest)
	return oldest
}

// takeRep returns a free repair buffer, forgetting the oldest other block
// if none is left; -1 if there is none to forget.
func (d *Decoder) takeRep(keep int) int32 {
	if n := len(d.freeRep); n > 0 {
		r := d.freeRep[n-1]
		d.freeRep = d.freeRep[:n-1]
		return r
	}
	if len(d.reps) < d.cfg.MaxRepairs {
		d.reps = append(d.reps, make([]byte, d.stride))
		return int32(len(d.reps) - 1)
	}
	oldest := -1
	for i := range d.blocks {
		b := &d.blocks[i]
		if !b.used || i == keep || b.nrep == 0 {
			continue
		}
		if oldest < 0 || b.firstAt < d.blocks[oldest].firstAt {
			oldest = i
		}
	}
	if oldest < 0 {
		return -1
	}
	d.forget(oldest)
	return d.takeRep(keep)
}

// forget drops a block, counting what it leaves unrecovered.
func (d *Decoder) forget(i int) {
	b := &d.blocks[i]
	if !b.used {
		return
	}
	missing := 0
	for m := b.mask; m != 0; m &= m - 1 {
		if !d.present(b.base + int64(bits.TrailingZeros64(m))) {
			missing++
		}
	}
	if missing > 0 {
		d.stats.PacketsUnrecovered += int64(missing)
		d.stats.BlocksUnrecovered++
		d.stats.DiscardedExpired += int64(b.nrep)
	} else {
		d.stats.DiscardedUnneeded += int64(b.nrep)
	}
	d.stats.FECPacketsDiscarded += int64(b.nrep)
	d.free(i)
}

// free releases a block entry and its repair buffers.
func (d *Decoder) free(i int) {
	b := &d.blocks[i]
	for h := b.have; h != 0; h &= h - 1 {
		d.freeRep = append(d.freeRep, b.rep[bits.TrailingZeros64(h)])
	}
	*b = dblock{}
	d.nblocks--
}

// try recovers a block if it has enough packets, or drops it if it has
// nothing missing.
func (d *Decoder) try(i int) {
	b := &d.blocks[i]
	stored, missing := 0, 0
	for m := b.mask; m != 0; m &= m - 1 {
		pn := b.base + int64(bits.TrailingZeros64(m))
		if d.isStored(pn) {
			stored++
		} else if !d.present(pn) {
			missing++
		}
	}
	if missing == 0 {
		d.forget(i)
		return
	}
	if stored+b.nrep < b.k {
		return
	}
	if d.work < b.k {
		// Not yet paid for (rebuildPerMedia): the next packet of the block,
		// or any other, brings the rest.
		d.stats.RebuildsDeferred++
		return
	}
	d.work -= b.k
	d.reconstruct(i, stored)
}

// earn adds n members of rebuild work (rebuildPerMedia).
func (d *Decoder) earn(n int) {
	d.work = min(d.work+n, rebuildMax*d.cfg.MaxK)
}

func (d *Decoder) codec(k, m int) (reedsolomon.Encoder, error) {
	if d.cacheCost > codecCacheBudget {
		d.codecs = [MaxSpan + 1][MaxParity + 1]reedsolomon.Encoder{}
		d.cacheCost = 0
	}
	d.cacheCost += k*k + 64
	if c := d.codecs[k][m]; c != nil {
		return c, nil
	}
	c, err := newCodec(k, m)
	if err != nil {
		return nil, err
	}
	d.codecs[k][m] = c
	return c, nil
}

// reconstruct rebuilds a block's members that are not stored: those lost,
// and any that arrived before the decoder kept copies.
func (d *Decoder) reconstruct(i, stored int) {
	b := &d.blocks[i]
	k, s := b.k, b.sym
	// Shards are coded at the symbol length rounded up to 64 (the SIMD
	// stride): the padding is zero in every member and so in every repair.
	sr := roundUp64(s)
	shards := d.shards[:k+b.m]
	n := 0
	for m := b.mask; m != 0; m &= m - 1 {
		pn := b.base + int64(bits.TrailingZeros64(m))
		sl := d.slot(pn)
		if d.isStored(pn) {
			l := int(d.meta[pn&d.hmask].length)
			if SymbolOverhead+l > s {
				// A member longer than the block's symbol: the repair
				// does not describe this packet.
				d.stats.DiscardedInvalid += int64(b.nrep)
				d.stats.FECPacketsDiscarded += int64(b.nrep)
				d.free(i)
				return
			}
			clear(sl[SymbolOverhead+l : sr])
			shards[n] = sl[:sr]
		} else {
			shards[n] = sl[:0]
		}
		n++
	}
	for j := range b.m {
		shards[k+j] = nil
		if b.have&(1<<uint(j)) != 0 {
			shards[k+j] = d.reps[b.rep[j]][:sr]
		}
	}
	c, err := d.codec(k, b.m)
	if err == nil {
		err = c.ReconstructData(shards)
	}
	if err != nil {
		d.stats.DiscardedInvalid += int64(b.nrep)
		d.stats.FECPacketsDiscarded += int64(b.nrep)
		d.free(i)
		return
	}
	n = 0
	for m := b.mask; m != 0; m &= m - 1 {
		pn := b.base + int64(bits.TrailingZeros64(m))
		sh := shards[n]
		n++
		md := &d.meta[pn&d.hmask]
		if md.pn == pn && md.stored {
			continue
		}
		sl := d.slot(pn)
		if len(sh) < SymbolOverhead || &sh[0] != &sl[0] {
			copy(sl, sh)
		}
		l := endOf(sl[:s])
		if l < 0 {
			d.stats.RecoveredInvalid++
			continue
		}
		if md.pn != pn {
			*md = slotMeta{pn: pn}
		}
		md.length = uint16(l)
		md.stored = true
		if !md.arrived {
			md.recovered = true
			d.stats.PacketsRecovered++
			d.push(pn)
		}
	}
	used := min(b.nrep, k-stored)
	d.stats.FECPacketsUsed += int64(used)
	d.stats.DiscardedUnneeded += int64(b.nrep - used)
	d.stats.FECPacketsDiscarded += int64(b.nrep - used)
	d.stats.BlocksRecovered++
	d.free(i)
}

// endOf returns the length of a rebuilt member from its shard: the offset
// of the end marker, the last non-zero byte; -1 if the shard does not end
// in a marker (the repairs did not describe this block).
func endOf(shard []byte) int {
	for i := len(shard) - 1; i >= 0; i-- {
		switch shard[i] {
		case 0:
		case endMarker:
			return i
		default:
			return -1
		}
	}
	return -1
}

func (d *Decoder) push(pn int64) {
	if d.outLen == len(d.out) {
		d.outH = (d.outH + 1) % len(d.out)
		d.outLen--
		d.stats.RecoveredDropped++
	}
	d.out[(d.outH+d.outLen)%len(d.out)] = pn
	d.outLen++
}

// PollRecovered writes the next recovered media packet's protected bytes
// into dst (which must hold MaxSymbol bytes) and returns its packet number
// and length; ok is false when there is none.
func (d *Decoder) PollRecovered(dst []byte) (pn int64, n int, ok bool) {
	for d.outLen > 0 {
		pn = d.out[d.outH]
		md := &d.meta[pn&d.hmask]
		if md.pn != pn || !md.stored || !md.recovered {
			d.outH = (d.outH + 1) % len(d.out)
			d.outLen--
			continue // overwritten since
		}
		l := int(md.length)
		if len(dst) < l {
			return 0, 0, false
		}
		d.outH = (d.outH + 1) % len(d.out)
		d.outLen--
		return pn, copy(dst, d.slot(pn)[:l]), true
	}
	return 0, 0, false
}

// Pending reports whether pn is a missing member of a known block that may
// still recover it, so ARQ should wait before asking for it. It goes by
// the time of the decoder's latest call.
func (d *Decoder) Pending(pn int64) bool {
	_, wait := d.PendingUntil(pn)
	return wait
}

// PendingUntil is Pending with the time until which waiting is worth it:
// the block's first repair packet's arrival plus RepairWait, by when the
// rest of its repairs should have come.
func (d *Decoder) PendingUntil(pn int64) (until clock.Time, wait bool) {
	if d.nblocks == 0 || pn < 0 || d.present(pn) {
		return 0, false
	}
	for i := range d.blocks {
		b := &d.blocks[i]
		if !b.used || !b.has(pn) || b.nrep >= b.m {
			continue
		}
		t := b.firstAt.Add(d.cfg.RepairWait)
		if d.now < t && (!wait || t > until) {
			until, wait = t, true
		}
	}
	return until, wait
}

// Expire forgets the blocks whose members all lie below packet number
// before, and those whose first repair packet came more than Horizon
// before now. Repair packets for blocks below before are discarded as
// unneeded from then on; a later repair of a block forgotten on its
// Horizon tracks it again, until before passes it or its Horizon comes
// again.
// State is bounded without it (MaxBlocks,
// MaxRepairs, History); calling it keeps the counters of unrecovered
// packets timely.
func (d *Decoder) Expire(now clock.Time, before int64) {
	d.tick(now)
	d.floor = max(d.floor, before)
	if d.nblocks == 0 {
		return
	}
	horizon := now.Add(-d.cfg.Horizon)
	for i := range d.blocks {
		b := &d.blocks[i]
		if b.used && (b.top() < before || b.firstAt < horizon) {
			d.forget(i)
		}
	}
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() Stats { return d.stats }

// Blocks returns how many blocks the decoder is tracking.
func (d *Decoder) Blocks() int { return d.nblocks }
