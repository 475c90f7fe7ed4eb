package arq

import (
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// History defaults (see HistoryConfig).
const (
	DefaultHistoryBytes   = 1 << 20
	DefaultHistoryPackets = 4096

	maxHistoryBytes   = 1 << 30
	maxHistoryPackets = 1 << 20
	maxCopySpacing    = time.Second
)

// NumClasses is the number of retransmission priority classes: Put's prio
// 0 is retransmitted first, values above NumClasses-1 count as the last.
const NumClasses = 4

// HistoryConfig configures a History. The zero value gives the defaults
// named in each field's comment.
type HistoryConfig struct {
	// MaxBytes is the arena holding the packets' bytes. Default 1 MiB,
	// 4 s of 2 Mbit/s: size it to the send rate times the longest deadline
	// (Latency, or the peer's playout offset). When it is full the oldest
	// packets go first, counted in EvictedEarly if still before their
	// deadline. At most 1 GiB.
	MaxBytes int
	// MaxPackets bounds the packets held, rounded up to a power of two.
	// Default 4096; at most 2^20. Memory: 104 bytes per packet (a 48-byte
	// entry, two index slots, a slot in each class's queue and one in the
	// spaced copies' queue): 416 KiB by default, on top of MaxBytes.
	MaxPackets int
	// MinRetransmitInterval is the least time between two retransmissions
	// of one packet: NACKs inside it are duplicates (the receiver repeats
	// each round twice, 5 ms apart, against NACK loss, and re-NACKs
	// no sooner than an RTT later). Default 0: half the smoothed RTT.
	MinRetransmitInterval time.Duration
	// DuplicateLastChance has a bit per class (bit c for Put's prio c):
	// the classes whose last useful retransmission is sent twice, which
	// cuts its loss from p to p squared (DESIGN §2: worth it for key frames,
	// audio and Live, not for every packet). MarkLastChance asks the same
	// for one packet. A retransmission is the last useful one when another
	// round could not arrive before the deadline: the receiver re-NACKs a
	// minimum RTT after its NACK at the earliest, so the next copy would
	// arrive a minimum RTT + max(variation, 5 ms) + 10 ms after this one
	// (arq.Receiver's reorder allowance and lastChanceMargin). The copy
	// goes at the back of its class's queue and is checked again when it
	// leaves. Default 0: none.
	DuplicateLastChance uint8
	// DuplicateFirst has a bit per class, like DuplicateLastChance: the
	// classes whose first retransmission of a packet is sent twice, which
	// cuts the first round's loss from p to about p squared on a path
	// whose losses are independent (right behind the retransmission, a
	// burst takes both; CopySpacing holds the copy back). For a playout
	// offset that keeps one round: the caller turns it on while losses
	// are frequent and short (SetDuplicateFirst). A packet gets one copy
	// in all: with its first retransmission doubled, its last chance is
	// not doubled again. Default 0: none.
	DuplicateFirst uint8
	// DuplicateAfter, when above 0, sends every retransmission of a packet
	// twice from its (DuplicateAfter+1)-th round on, whatever its class: a
	// packet whose first DuplicateAfter retransmissions were all lost is
	// on a chain that, at loss p, fails its next round with p but a
	// doubled round with about p squared. Few packets get there (p to the
	// DuplicateAfter+1 of those sent: 0.8 % at 20 % loss after 2), so the
	// copies cost little, and the rare chain that outlasts a long
	// budget's rounds (Live's 8 or 9 at RTT 300 ms) ends far sooner.
	// Default 0: off. At most 255.
	DuplicateAfter int
	// CopySpacing is the least time between a retransmission and its
	// second copy (DuplicateFirst, DuplicateLastChance, MarkLastChance).
	// 0: the copy goes right behind, at the back of its class's queue.
	// On a path that loses in bursts, a copy right behind is lost with the
	// first; spaced, it goes when due, ahead of the queued
	// retransmissions, and is checked against its deadline then
	// (SetCopySpacing). At most a second.
	CopySpacing time.Duration
}

func (c *HistoryConfig) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultHistoryBytes
	}
	if c.MaxPackets == 0 {
		c.MaxPackets = DefaultHistoryPackets
	}
}

// Validate reports the first field of c (after defaults) that is out of
// range, wrapping ErrInvalidConfig.
func (c HistoryConfig) Validate() error {
	c.setDefaults()
	bad := func(field, why string, v any) error {
		return fmt.Errorf("%w: HistoryConfig.%s %v: %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.MaxBytes < 0 || c.MaxBytes > maxHistoryBytes:
		return bad("MaxBytes", "must be within 1 B-1 GiB", c.MaxBytes)
	case c.MaxPackets < 0 || c.MaxPackets > maxHistoryPackets:
		return bad("MaxPackets", "must be within 1-1048576", c.MaxPackets)
	case c.MinRetransmitInterval < 0:
		return bad("MinRetransmitInterval", "negative", c.MinRetransmitInterval)
	case c.CopySpacing < 0 || c.CopySpacing > maxCopySpacing:
		return bad("CopySpacing", "must be within 0-1s", c.CopySpacing)
	case c.DuplicateAfter < 0 || c.DuplicateAfter > 255:
		return bad("DuplicateAfter", "must be within 0-255", c.DuplicateAfter)
	}
	return nil
}

// SenderStats are the history's counters. RetransmittedPacketsSent and
// RetransmittedBytesSent are W3C webrtc-stats' (RTCOutboundRtpStreamStats);
// the bytes are those stored (what Put was given: in the session core, a
// data packet's protected form, 6 bytes more than its fragment, so the
// core's own ConnStats.RetransmittedBytesSent, which counts fragment
// bytes, reads less).
type SenderStats struct {
	Stored       int64 // packets Put
	TooLarge     int64 // packets larger than MaxBytes, not stored
	Rejected     int64 // Put with an invalid, repeated or decreasing packet number, or an empty packet
	Expired      int64 // packets dropped at their deadline
	EvictedEarly int64 // packets dropped before their deadline to make room (history too small)
	PaddingSent  int64 // copies PollPadding handed out (probe padding)

	NACKsReceived   int64 // packet numbers named by NACKs (OnNACK calls)
	NACKsUnknown    int64 // not in the history: not media, too old, evicted, never sent
	NACKsDuplicate  int64 // already queued, or retransmitted less than MinRetransmitInterval ago
	NACKsLate       int64 // at or past the packet's deadline
	NACKsAcked      int64 // for a packet feedback said arrived
	NACKsQueueFull  int64 // the class's retransmission queue was full
	RetransmitQueue int64 // NACKs that queued a retransmission

	RetransmittedPacketsSent int64 // retransmissions PollRetransmit returned
	RetransmittedBytesSent   int64 // their bytes
	RtxSkippedLate           int64 // queued retransmissions discarded, unsent, because now + oneWay was not before the deadline
	RtxCancelled             int64 // queued retransmissions dropped unsent: acknowledged, expired, evicted or dropped meanwhile
	RtxDstTooSmall           int64 // queued retransmissions dropped because PollRetransmit's dst was too small
	LastChanceDuplicates     int64 // second copies queued by DuplicateLastChance or MarkLastChance (counted in RetransmittedPacketsSent when sent)
	SpacedCopies             int64 // of the second copies, those held back by CopySpacing
	FirstDuplicates          int64 // second copies queued by DuplicateFirst (counted in RetransmittedPacketsSent when sent)
	LateRoundDuplicates      int64 // second copies queued by DuplicateAfter (counted in RetransmittedPacketsSent when sent)
	SpuriousRetransmissions  int64 // packets retransmitted whose original feedback reported arrived

	Packets int // packets held now
	Bytes   int // bytes held now (arena space in use, wrap waste included)
}

type histEntry struct {
	pn       int64
	deadline clock.Time
	sent     clock.Time
	lastRtx  clock.Time
	off      int32
	n        int32
	prio     uint8
	rtx      uint8 // retransmission rounds sent (second copies not counted), saturating
	dup      bool  // a second copy (DuplicateFirst, last chance) was queued
	copying  bool  // the queued retransmission is a second copy
	dupLast  bool  // MarkLastChance: send the last useful retransmission twice
	inUse    bool
	acked    bool // feedback says the original arrived, or Drop
	queued   bool
}

// pnRing is a fixed-size FIFO of packet numbers.
type pnRing struct {
	buf  []int64
	head int
	n    int
}

func (q *pnRing) push(pn int64) bool {
	if q.n == len(q.buf) {
		return false
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = pn
	q.n++
	return true
}

func (q *pnRing) pop() int64 {
	pn := q.buf[q.head]
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return pn
}

// copyRing is a fixed-size queue of spaced copies in due order: a packet
// number (in a pnRing) and, in the same slot of due, when its copy may
// leave.
type copyRing struct {
	pnRing
	due []clock.Time
}

// pushAt queues pn's copy, due at due, behind the copies due no later.
// Copies nearly always come in due order (the spacing is a constant); one
// queued after the spacing shrank goes ahead of those due later (SetCopySpacing:
// served from the head only, it waited behind them).
func (q *copyRing) pushAt(pn int64, due clock.Time) bool {
	mask := len(q.buf) - 1
	i := (q.head + q.n) & mask
	if !q.push(pn) {
		return false
	}
	for k := q.n - 1; k > 0; k-- {
		j := (i - 1) & mask
		if q.due[j] <= due {
			break
		}
		q.buf[i], q.due[i] = q.buf[j], q.due[j]
		i = j
	}
	q.buf[i], q.due[i] = pn, due
	return true
}

// headDue is when the oldest copy may leave (the ring is not empty).
func (q *copyRing) headDue() clock.Time { return q.due[q.head] }

// History is the sender's half of DESIGN §2's ARQ: it keeps each media
// packet sent until its deadline, in a fixed byte arena (FIFO: the oldest
// goes first when memory runs out), finds a NACKed packet in O(1) by packet
// number, and hands back the retransmissions that can still arrive in time,
// in priority-class order then NACK order.
//
// A packet is retransmitted only if it is known, not acknowledged, not
// queued already, not retransmitted within MinRetransmitInterval, and, when
// it leaves, now + oneWay is strictly before its deadline; otherwise it is
// counted and never sent (SenderStats). Unlike KCP, which resends until a
// dead-link limit whatever the data's age, and SRT, which keeps packets for
// at least a second, nothing outlives its deadline here.
//
// The caller sends what PollRetransmit returns through its pacer, charging
// its size to the congestion controller's budget like any packet, and
// decides where retransmissions stand in the pacer's priority order
// (DESIGN §2: audio, retransmissions, key frames, other video).
//
// Memory is fixed at NewHistory (MaxBytes plus 104 bytes per MaxPackets
// slot, plus 0.5 KiB); nothing allocates afterwards.
type History struct {
	cfg HistoryConfig

	buf        []byte
	start, end int // the live bytes are [start, end), wrapped when end <= start

	ents   []histEntry
	emask  int64
	ehead  int64 // position of the oldest entry
	ecount int
	index  []int32 // pn & imask -> entry slot + 1
	imask  int64

	queues [NumClasses]pnRing
	copies copyRing // spaced second copies, in due order (CopySpacing)
	// The retransmissions queued (entries with queued set): packets and
	// bytes (Queued).
	qN     int
	qBytes int64

	srtt    time.Duration
	rttvar  time.Duration
	minRTT  time.Duration
	havePut bool
	lastPut int64
	padBack int64 // PollPadding's cursor: entries back from the newest
	stats   SenderStats
}

// NewHistory returns a history with cfg's bounds, its memory allocated.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	n := 1
	for n < cfg.MaxPackets {
		n <<= 1
	}
	cfg.MaxPackets = n
	h := &History{
		cfg:    cfg,
		buf:    make([]byte, cfg.MaxBytes),
		ents:   make([]histEntry, n),
		emask:  int64(n - 1),
		index:  make([]int32, 2*n),
		imask:  int64(2*n - 1),
		srtt:   InitialRTT,
		rttvar: InitialRTT / 2,
		minRTT: InitialRTT,
	}
	for i := range h.queues {
		h.queues[i].buf = make([]int64, n)
	}
	h.copies = copyRing{pnRing: pnRing{buf: make([]int64, n)}, due: make([]clock.Time, n)}
	return h, nil
}

// SetRTT copies rtt's smoothed RTT and variation (for the default
// MinRetransmitInterval and DuplicateLastChance). Before any sample it is
// ignored.
func (h *History) SetRTT(rtt *RTT) {
	if rtt == nil || rtt.Samples() == 0 {
		return
	}
	h.srtt, h.rttvar, h.minRTT = rtt.Smoothed(), rtt.Variation(), rtt.WindowedMin()
}

func (h *History) minInterval() time.Duration {
	if h.cfg.MinRetransmitInterval > 0 {
		return h.cfg.MinRetransmitInterval
	}
	return h.srtt / 2
}

// Put stores a copy of a media packet just sent: pn its packet number
// (increasing from one Put to the next), pkt its bytes after the short
// header (the caller rebuilds the header, with a fresh packet number, on
// retransmission), deadline its frame's deadline on this side's clock, prio
// its retransmission class (0 first; see NumClasses). Packets past
// their deadline are dropped first; then, if memory is short, the oldest.
func (h *History) Put(now clock.Time, pn int64, pkt []byte, deadline clock.Time, prio uint8) {
	if !validPN(pn) || (h.havePut && pn <= h.lastPut) || len(pkt) == 0 {
		h.stats.Rejected++
		return
	}
	h.havePut, h.lastPut = true, pn
	if len(pkt) > len(h.buf) {
		h.stats.TooLarge++
		return
	}
	h.Expire(now)
	if h.ecount == len(h.ents) {
		h.evict(now)
	}
	off := h.alloc(now, len(pkt))
	copy(h.buf[off:], pkt)
	pos := h.ehead + int64(h.ecount)
	slot := pos & h.emask
	h.ents[slot] = histEntry{pn: pn, deadline: deadline, sent: now, off: int32(off), n: int32(len(pkt)),
		prio: min(prio, NumClasses-1), inUse: true}
	h.ecount++
	h.index[pn&h.imask] = int32(slot + 1)
	h.stats.Stored++
}

// alloc returns the offset of n free bytes, evicting the oldest packets
// until they fit. The live bytes are one circular run from the oldest
// packet's offset to the write offset; a packet that does not fit before the
// arena's end starts again at 0, wasting the end.
func (h *History) alloc(now clock.Time, n int) int {
	for {
		if h.ecount == 0 {
			h.start, h.end = 0, 0
		}
		if h.ecount == 0 || h.start < h.end {
			if n <= len(h.buf)-h.end {
				off := h.end
				h.end += n
				return off
			}
			if n <= h.start {
				h.end = n
				return 0
			}
		} else if n <= h.start-h.end { // wrapped: the free run is [end, start)
			off := h.end
			h.end += n
			return off
		}
		h.evict(now)
	}
}

// evict drops the oldest packet.
func (h *History) evict(now clock.Time) {
	e := &h.ents[h.ehead&h.emask]
	switch {
	case e.acked:
	case now >= e.deadline:
		h.stats.Expired++
	default:
		h.stats.EvictedEarly++
	}
	e.inUse = false
	h.setQueued(e, false)
	h.ehead++
	h.ecount--
	if h.ecount > 0 {
		h.start = int(h.ents[h.ehead&h.emask].off)
	} else {
		h.start, h.end = 0, 0
	}
}

// Expire drops, oldest first, the packets acknowledged or at or past their
// deadline, up to the first one still needed (deadlines are nearly in send
// order; a later packet past its deadline is caught when it is looked up).
// Put calls it; calling it when idle frees memory sooner.
func (h *History) Expire(now clock.Time) {
	for h.ecount > 0 {
		e := &h.ents[h.ehead&h.emask]
		if !e.acked && now < e.deadline {
			return
		}
		h.evict(now)
	}
}

// lookup finds pn's entry: by the index, or, when a later packet number
// took its index slot (numbers of repair, feedback and other packets come
// between media packets, so two held packets' numbers can be 2 x
// MaxPackets apart: 341 of 4096 held packets were lost to NACKs so), by
// a binary search of the entries, which are in packet-number order.
func (h *History) lookup(pn int64) *histEntry {
	if !validPN(pn) {
		return nil
	}
	if s := h.index[pn&h.imask]; s != 0 {
		if e := &h.ents[s-1]; e.inUse && e.pn == pn {
			return e
		}
	}
	lo, hi := 0, h.ecount
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if h.ents[(h.ehead+int64(mid))&h.emask].pn < pn {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < h.ecount {
		if e := &h.ents[(h.ehead+int64(lo))&h.emask]; e.inUse && e.pn == pn {
			return e
		}
	}
	return nil
}

// OnNACK takes one packet number a NACK named, and queues its
// retransmission if it is known, not acknowledged, before its deadline, not
// queued and not retransmitted within MinRetransmitInterval. It reports
// whether it queued one. The deadline is checked again, with the one-way
// delay, when the retransmission leaves.
func (h *History) OnNACK(now clock.Time, pn int64) bool {
	h.stats.NACKsReceived++
	e := h.lookup(pn)
	switch {
	case e == nil:
		h.stats.NACKsUnknown++
		return false
	case e.acked:
		h.stats.NACKsAcked++
		return false
	case now >= e.deadline:
		h.stats.NACKsLate++
		return false
	case e.queued || (e.rtx > 0 && now < e.lastRtx.Add(h.minInterval())):
		h.stats.NACKsDuplicate++
		return false
	}
	if !h.queues[e.prio].push(pn) {
		h.stats.NACKsQueueFull++
		return false
	}
	h.setQueued(e, true)
	h.stats.RetransmitQueue++
	return true
}

// Acked takes feedback that the original transmission of pn arrived: the
// packet is dropped (and its queued retransmission cancelled). If it had
// been retransmitted, the retransmission was spurious. Packet numbers not
// in the history (retransmissions' own numbers, control packets) are
// ignored.
func (h *History) Acked(pn int64) {
	e := h.lookup(pn)
	if e == nil || e.acked {
		return
	}
	e.acked = true
	h.setQueued(e, false) // cancelled: its ring slot is skipped when reached
	if e.rtx > 0 {
		h.stats.SpuriousRetransmissions++
	}
}

// Drop forgets pn (its frame was dropped, so retransmitting it is useless).
func (h *History) Drop(pn int64) {
	if e := h.lookup(pn); e != nil {
		e.acked = true
		h.setQueued(e, false)
	}
}

// Packet returns the bytes Put stored for pn, while the history holds
// it and it is not acknowledged or dropped; the slice aliases the
// history's memory and is valid until the next Put.
func (h *History) Packet(pn int64) ([]byte, bool) {
	e := h.lookup(pn)
	if e == nil || e.acked {
		return nil, false
	}
	return h.buf[e.off : e.off+e.n], true
}

// HasRetransmit reports whether retransmissions are queued, or a spaced
// copy is due by now (NextCopy). PollRetransmit may still return none:
// each is checked when it leaves.
func (h *History) HasRetransmit(now clock.Time) bool {
	if h.copies.n > 0 && h.copies.headDue() <= now {
		return true
	}
	for i := range h.queues {
		if h.queues[i].n > 0 {
			return true
		}
	}
	return false
}

// NextCopy returns when the next spaced copy is due (CopySpacing), or
// clock.Never: the caller's timer wakes it to send the copy.
func (h *History) NextCopy() clock.Time {
	if h.copies.n == 0 {
		return clock.Never
	}
	return h.copies.headDue()
}

// PollRetransmit copies into dst the next queued retransmission that can
// still arrive in time, and returns its original packet number, its length,
// and its deadline. oneWay is the delay the caller expects before the
// packet arrives: the path's one-way delay including the queue on it (half
// the minimum RTT alone leaves the queue out; the session core adds its
// model of the queue its own packets built) plus what waits ahead of it in
// the pacer. A retransmission leaves only if
// now + oneWay is strictly before its deadline; those that cannot are
// discarded unsent and counted (RtxSkippedLate): no retransmission is ever
// sent that the caller's own estimate says would arrive late. dst must hold
// the largest packet Put; a retransmission that does not fit is dropped and
// counted (RtxDstTooSmall). The returned packet counts as sent: the caller
// sends it (under a fresh packet number).
func (h *History) PollRetransmit(now clock.Time, oneWay time.Duration, dst []byte) (origPN int64, n int, deadline clock.Time, ok bool) {
	arrival := now.Add(max(oneWay, 0))
	for q := &h.copies; q.n > 0 && q.headDue() <= now; {
		pn := q.pop()
		if e, _ := h.ready(pn, arrival, dst); e != nil {
			return h.retransmit(now, e, dst, true)
		}
	}
	for c := range h.queues {
		q := &h.queues[c]
		for q.n > 0 {
			e, isCopy := h.ready(q.pop(), arrival, dst)
			if e == nil {
				continue
			}
			if !isCopy {
				h.maybeCopy(now, q, e, arrival)
			}
			return h.retransmit(now, e, dst, isCopy)
		}
	}
	return 0, 0, 0, false
}

// maybeCopy queues a second copy of the round e is about to send, if a
// policy asks for one: DuplicateFirst or a last chance (once per packet),
// or DuplicateAfter (every round from its (DuplicateAfter+1)-th on).
func (h *History) maybeCopy(now clock.Time, q *pnRing, e *histEntry, arrival clock.Time) {
	late := h.cfg.DuplicateAfter > 0 && int(e.rtx) >= h.cfg.DuplicateAfter
	var first, last bool
	if !e.dup {
		first = e.rtx == 0 && h.cfg.DuplicateFirst&(1<<e.prio) != 0
		last = (e.dupLast || h.cfg.DuplicateLastChance&(1<<e.prio) != 0) && h.lastChance(arrival, e.deadline)
	}
	if !first && !last && !late {
		return
	}
	if !h.queueCopy(now, q, e) {
		return
	}
	switch {
	case first:
		e.dup = true
		h.stats.FirstDuplicates++
	case last:
		e.dup = true
		h.stats.LastChanceDuplicates++
	default:
		h.stats.LateRoundDuplicates++
	}
}

// ready takes a queued packet number off its queue: its entry if it may
// still go (known, not acknowledged, arriving before its deadline, fitting
// dst), counting why not otherwise.
func (h *History) ready(pn int64, arrival clock.Time, dst []byte) (e *histEntry, isCopy bool) {
	e = h.lookup(pn)
	if e == nil || !e.queued {
		h.stats.RtxCancelled++
		return nil, false
	}
	h.setQueued(e, false)
	isCopy, e.copying = e.copying, false
	switch {
	case e.acked:
		h.stats.RtxCancelled++
		return nil, false
	case arrival >= e.deadline:
		h.stats.RtxSkippedLate++
		return nil, false
	case len(dst) < int(e.n):
		h.stats.RtxDstTooSmall++
		return nil, false
	}
	return e, isCopy
}

// queueCopy queues e's second copy: in the spaced copies' queue when
// CopySpacing is set, else behind in its class's queue q.
func (h *History) queueCopy(now clock.Time, q *pnRing, e *histEntry) bool {
	if sp := h.cfg.CopySpacing; sp > 0 {
		if !h.copies.pushAt(e.pn, now.Add(sp)) {
			return false
		}
		h.stats.SpacedCopies++
	} else if !q.push(e.pn) {
		return false
	}
	e.copying = true
	h.setQueued(e, true)
	return true
}

// setQueued marks e queued for retransmission or not, keeping Queued's
// counts.
func (h *History) setQueued(e *histEntry, q bool) {
	if e.queued == q {
		return
	}
	e.queued = q
	if q {
		h.qN++
		h.qBytes += int64(e.n)
	} else {
		h.qN--
		h.qBytes -= int64(e.n)
	}
}

// Queued returns the retransmissions queued and not yet polled, spaced
// copies included, and their bytes (as Put stored them: the caller adds its
// header): what a pacer counts as waiting ahead of the classes that leave
// after retransmissions. Some may still be skipped when they leave
// (PollRetransmit's checks).
func (h *History) Queued() (packets int, bytes int64) { return h.qN, h.qBytes }

// retransmit copies e into dst and counts it sent.
func (h *History) retransmit(now clock.Time, e *histEntry, dst []byte, isCopy bool) (int64, int, clock.Time, bool) {
	n := copy(dst, h.buf[e.off:e.off+e.n])
	e.lastRtx = now
	if !isCopy && e.rtx < 255 {
		e.rtx++
	}
	h.stats.RetransmittedPacketsSent++
	h.stats.RetransmittedBytesSent += int64(n)
	return e.pn, n, e.deadline, true
}

// Len returns how many packets the history holds.
func (h *History) Len() int { return h.ecount }

// PollPadding copies a recent packet into dst for use as padding (a
// congestion controller's probe): the newest packets first, going back
// one per call through the last maxPadBack. It prefers packets neither
// acknowledged nor too late to arrive before their deadline (now +
// oneWay): a copy of one repairs it if the original was lost. Failing
// those, any stored packet will do: the receiver discards the copy as a
// duplicate, and the probe still measures the path. It returns the copied
// packet's number and length, or false when nothing is stored. The copy is
// not a retransmission in Stats.
func (h *History) PollPadding(now clock.Time, oneWay time.Duration, dst []byte) (origPN int64, n int, ok bool) {
	arrival := now.Add(max(oneWay, 0))
	tries := min(int64(h.ecount), maxPadBack)
	var fallback *histEntry
	for i := int64(0); i < tries; i++ {
		if h.padBack >= tries {
			h.padBack = 0
		}
		e := &h.ents[(h.ehead+int64(h.ecount)-1-h.padBack)&h.emask]
		h.padBack++
		if !e.inUse || len(dst) < int(e.n) {
			continue
		}
		if e.acked || arrival >= e.deadline {
			if fallback == nil {
				fallback = e
			}
			continue
		}
		return h.pad(e, dst)
	}
	if fallback != nil {
		return h.pad(fallback, dst)
	}
	return 0, 0, false
}

func (h *History) pad(e *histEntry, dst []byte) (int64, int, bool) {
	h.stats.PaddingSent++
	return e.pn, copy(dst, h.buf[e.off:e.off+e.n]), true
}

// maxPadBack is how far back PollPadding looks for packets to copy.
const maxPadBack = 64

// lastChance reports whether a retransmission arriving at arrival is the
// last that can arrive before deadline (see DuplicateLastChance).
func (h *History) lastChance(arrival, deadline clock.Time) bool {
	return arrival.Add(h.minRTT+max(h.rttvar, 5*time.Millisecond)+10*time.Millisecond) >= deadline
}

// SetDuplicateLastChance changes HistoryConfig.DuplicateLastChance: the
// classes whose last useful retransmission goes twice from now on (the
// caller may follow the loss rate).
func (h *History) SetDuplicateLastChance(classes uint8) { h.cfg.DuplicateLastChance = classes }

// SetCopySpacing changes HistoryConfig.CopySpacing for the copies queued
// from now on (clamped to 0-1 s).
func (h *History) SetCopySpacing(d time.Duration) {
	h.cfg.CopySpacing = min(max(d, 0), maxCopySpacing)
}

// SetDuplicateAfter changes HistoryConfig.DuplicateAfter for the rounds
// sent from now on (clamped to 0-255; 0: off).
func (h *History) SetDuplicateAfter(n int) { h.cfg.DuplicateAfter = min(max(n, 0), 255) }

// SetDuplicateFirst changes HistoryConfig.DuplicateFirst: the classes
// whose first retransmission goes twice from now on.
func (h *History) SetDuplicateFirst(classes uint8) { h.cfg.DuplicateFirst = classes }

// MarkLastChance asks that packet pn's last useful retransmission, if it
// comes to one, be sent twice, as DuplicateLastChance does for a whole
// class: the FEC policy's choice for a packet whose frame retransmission
// alone would leave too exposed (fec.Encoder.AddMedia). It reports whether
// pn is held.
func (h *History) MarkLastChance(pn int64) bool {
	e := h.lookup(pn)
	if e == nil {
		return false
	}
	e.dupLast = true
	return true
}

// Stats returns the counters.
func (h *History) Stats() SenderStats {
	s := h.stats
	s.Packets = h.ecount
	switch {
	case h.ecount == 0:
	case h.start < h.end:
		s.Bytes = h.end - h.start
	default:
		s.Bytes = len(h.buf) - h.start + h.end
	}
	return s
}
