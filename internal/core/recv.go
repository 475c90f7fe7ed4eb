package core

import (
	"errors"
	"math/bits"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/fec"
	"github.com/spillway-rt/spillway/internal/bufpool"
	"github.com/spillway-rt/spillway/jitterbuffer"
	"github.com/spillway-rt/spillway/wire"
)

type slotState uint8

const (
	slotEmpty slotState = iota
	slotAssembling
	slotDone // completed or given up: later fragments of it are duplicates
)

// frameSlot assembles one frame. Slots are indexed by frame id modulo the
// slot count, so a stream tracks at most MaxPendingFrames frames.
type frameSlot struct {
	id        int64
	state     slotState
	count     int
	got       int
	bits      []uint64 // received fragments; capacity reused across frames
	buf       []byte   // prefix + frame, from the endpoint's pool
	total     int      // bytes of prefix + frame, once the last fragment came; else -1
	refTS     int64    // capture timestamp if known, else the earliest send timestamp (TimestampUnits)
	capKnown  bool
	key       bool
	droppable bool
	recovered bool       // a fragment came by retransmission or FEC
	rtx       bool       // a fragment came by retransmission
	keyAsked  bool       // a key frame was asked for early, as its repair ran out of time
	firstAt   clock.Time // when its first packet arrived
}

// recvStream is a stream the peer sends.
type recvStream struct {
	id        uint8
	kind      Kind
	priority  Priority
	announced bool // the peer announced it (frames wait for that)
	// reused: data came on the id after its stream had closed and ended,
	// before the announcement of the stream reusing it (assemble): the
	// id's state was reset for the new stream, whose announcement, of a
	// later generation than gen, is awaited; the old stream's are stale.
	reused   bool
	endedAt  clock.Time // when it last ended (finishStream)
	open     bool
	gen      uint8      // its generation on the id, as announced (docs/PROTOCOL.md §6.1)
	closeAt  clock.Time // when a stream the peer closed has drained; Never otherwise
	unsent   int64      // frames released but not delivered (unannounced), owed to the next one's LostBefore
	highest  int64      // highest frame id seen; -1 before any
	firstAt  clock.Time // when its first frame completed
	sawKey   bool       // a key frame of it completed
	keyBegan clock.Time // when a key frame's first packet last came (autoKeyFrame waits for one)
	broken   bool       // frames released since a reference went missing are undecodable (askAgain)
	brokeAt  clock.Time // when the first of them was released
	keyAbove int64      // one more than the id of the latest key frame completed (0: none)
	earlyKey clock.Time // when a key frame was last asked for early (askKeysForHopeless)
	repair   repairNeed // its frames' need for retransmission (the recovery allowance's rounds)
	caughtUp int64      // frames skipped by catch-up, owed to the next delivered frame's CaughtUpBefore
	stalling bool       // it holds its group stalled (PlayoutStallTogether)
	slots    []frameSlot
	active   []int32 // indexes of assembling slots
	jb       *jitterbuffer.Buffer
	drops    recvDrops // frames the sender declared dropped
	stats    StreamRecvStats
}

// StreamRecvStats counts a received stream's frames.
type StreamRecvStats struct {
	FramesReceived        int64 // frames complete
	FramesDelivered       int64 // frames released to the application
	FramesGivenUp         int64 // frames given up incomplete at their deadline
	FramesLate            int64 // frames complete too late to release in order
	FramesSkipped         int64 // frame ids passed over in playout: given up, late, never seen, or dropped by the sender
	FramesDroppedBySender int64 // of those, frames the sender declared dropped (a drop notice)
	FramesUnannounced     int64 // frames dropped at playout because the peer never announced their stream
	FramesCaughtUp        int64 // frames complete but skipped at playout to catch up after a freeze (Config.PlayoutCatchUp)
	BytesReceived         int64 // frame bytes complete
}

type receiver struct {
	c       *Conn
	streams [wire.MaxStreams]*recvStream

	// Loss recovery (recovery.go): nil until the first media packet.
	fecDec      *fec.Decoder
	nack        *arq.Receiver
	nackScratch []int64
	// The frame whose last fragments the NACK generator's tail-loss timer
	// waits for (ExpectTail): a drop notice for it disarms the timer.
	tailStream uint8
	tailFrame  uint16 // low 12 bits, as the wire gives them
	recovered  []byte // a packet FEC rebuilt

	group        *jitterbuffer.Group // the streams' shared playout offset
	po           playoutFeedback     // the offset last reported to the peer
	gap          time.Duration       // mean time between packet arrivals
	lastArrival  clock.Time          // the latest packet's arrival (gap, and carrying leastTransit)
	peerFragSize int
	peerLatency  time.Duration
	playoutDelay time.Duration
	// The sender's deadline horizon (APP SPPO subtype 1) and when it came.
	peerHorizon   time.Duration
	peerHorizonAt clock.Time
	oneWay        time.Duration // smoothed one-way delay of arriving packets (transit above the least, plus owd)
	av            avOffset      // the A/V offset (ConnStats.AVOffset)

	// Timestamp unwrapping and the sender-to-receiver clock mapping.
	haveTS       bool
	lastTS       int64 // full send timestamp of the latest packet (TimestampUnits)
	lastTSAt     clock.Time
	leastTransit time.Duration // min over packets of arrival - send timestamp, carried along the drift
	lastTransit  time.Duration
	jitter       time.Duration // RFC 3550 §6.4.1 interarrival jitter
	loss         lossRate      // packets lost, for the recovery allowance's rounds
	hopeless     clock.Time    // the NACK generator's HopelessUntil last acted on

	fb          feedbackState
	dropAck     dropAcks
	rrScratch   [1]wire.ReceptionReport
	protScratch []byte // a data packet's protected form, for FEC (MaxDatagramSize)
}

func (r *receiver) init(c *Conn) {
	r.c = c
	r.protScratch = make([]byte, 0, c.cfg.MaxDatagramSize)
	for i := range r.fb.lastPLI {
		r.fb.lastPLI[i] = clock.Time(-1 << 62)
	}
}

func (r *receiver) setPeer(p wire.TransportParams) {
	r.peerFragSize = int(p.FragmentSize)
	r.peerLatency = p.Latency
	r.playoutDelay = max(p.Latency, r.c.cfg.MinPlayoutDelay)
	if m := r.c.cfg.MaxPlayoutDelay; m > 0 {
		r.playoutDelay = min(r.playoutDelay, m)
	}
}

// unwrapTS turns a 24-bit send timestamp into a full one, near the latest
// one advanced by the time that passed here since.
func (r *receiver) unwrapTS(now clock.Time, ts uint32) int64 {
	if !r.haveTS {
		return int64(ts)
	}
	ref := r.lastTS + int64(now.Sub(r.lastTSAt)/wire.TimestampUnit)
	return wire.UnwrapTimestamp(ref, ts)
}

func tsDuration(ts int64) time.Duration { return time.Duration(ts) * wire.TimestampUnit }

// localTime maps a full sender timestamp to this side's clock: the least
// transit seen, less the one-way delay, is our best estimate of the clock
// offset.
func (r *receiver) localTime(ts int64) clock.Time {
	return clock.Time(tsDuration(ts) + r.leastTransit - r.c.owd())
}

// noteTimestamp updates the clock mapping and jitter from a packet's send
// timestamp and returns the full timestamp.
func (r *receiver) noteTimestamp(now clock.Time, ts uint32) int64 {
	full := r.unwrapTS(now, ts)
	transit := time.Duration(now) - tsDuration(full)
	since := now.Sub(r.lastArrival)
	r.lastArrival = now
	if r.haveTS {
		// Mean time between arrivals (capped): a lone loss shows when the
		// next packet comes, so recovery takes about this plus an RTT.
		r.gap += (min(since, 100*time.Millisecond) - r.gap) / 16
	}
	if r.group != nil {
		r.group.ObserveTransit(now, transit)
	}
	if !r.haveTS {
		r.haveTS = true
		r.leastTransit = transit
		r.lastTransit = transit
	} else {
		// The least transit follows the clocks' drift (estimated by the
		// playout group): without that, a receiver clock running fast by
		// 1000 ppm would map capture times 0.25 s early after 250 s and
		// give every frame up before its deadline.
		if r.group != nil && since > 0 {
			r.leastTransit += time.Duration(r.group.DriftPPM() * 1e-6 * float64(since))
		}
		if transit < r.leastTransit {
			r.leastTransit = transit
		}
		d := transit - r.lastTransit
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
		r.lastTransit = transit
	}
	// (A sample is at most MaxPeerPlayout: the peer's timestamps, stepping
	// back, would otherwise lift it without bound.)
	r.oneWay += (min(transit-r.leastTransit+r.c.owd(), MaxPeerPlayout) - r.oneWay) / 16
	if !r.haveTS || full >= r.lastTS || now > r.lastTSAt {
		r.lastTS, r.lastTSAt = full, now
	}
	return full
}

// initialRecoveryHold is how long a stream's playout target assumes losses
// may need repair before any has been seen.
const initialRecoveryHold = 2 * time.Second

// newBuffer returns a stream's playout buffer, in the connection's sync
// group.
func (r *receiver) newBuffer() *jitterbuffer.Buffer {
	cfg := r.c.cfg
	if r.group == nil {
		r.group = jitterbuffer.NewGroup(cfg.DrainRate)
	}
	b := jitterbuffer.New(jitterbuffer.Config{
		Mode:      jitterbuffer.Mode(cfg.Playout),
		Delay:     r.playoutDelay,
		MinDelay:  cfg.MinPlayoutDelay,
		MaxDelay:  cfg.MaxPlayoutDelay,
		DrainRate: cfg.DrainRate,
		Quantile:  cfg.PlayoutQuantile,
		Window:    cfg.PlayoutWindow,
		CatchUp:   cfg.PlayoutCatchUp,

		KeyAllowanceAlways: cfg.PlayoutKeyAllowanceAlways,
	})
	r.group.Join(b)
	return b
}

func (r *receiver) stream(id uint8) *recvStream {
	st := r.streams[id]
	if st == nil {
		st = &recvStream{
			id:      id,
			highest: -1,
			closeAt: clock.Never,
			slots:   make([]frameSlot, r.c.cfg.MaxPendingFrames),
			jb:      r.newBuffer(),
		}
		st.jb.Expect(0) // a stream's frames are numbered from 0 (PROTOCOL.md §3.1)
		r.streams[id] = st
	}
	return st
}

// maxHeldGap bounds the missing frames a video stream waits for: a longer
// gap is a jump, not a loss recovery will mend.
const maxHeldGap = 64

// gapHold says whether a video stream's next frame waits for frames
// missing before it, and until when: skipping a frame another references
// costs a freeze until the next key frame, while one that completes late
// costs a short stall (its lateness, then drained). It waits while any of
// them may still come (not given up, refused or declared dropped by the
// sender), until the next frame's own deadline: capture + max(Latency,
// the playout offset), the time the sender's retransmissions work to.
func (r *receiver) gapHold(st *recvStream) (clock.Time, bool) {
	if st.kind != KindVideo || r.c.cfg.Playout == PlayoutPassThrough {
		return 0, false
	}
	from, to, ok := st.jb.Gap()
	if !ok || to-from > maxHeldGap {
		return 0, false
	}
	pending := false
	for id := from; id < to && !pending; id++ {
		pending = !st.jb.IsGone(id) && !(st.drops.n > 0 && st.drops.has(id))
	}
	if !pending {
		return 0, false
	}
	capture, _ := st.jb.Head()
	return capture.Add(max(r.peerLatency, r.playoutDelay)), true
}

// unannouncedUntil is how long the next frame of a stream not yet
// announced waits for the announcement: its deadline, or its playout time
// if later (announcements repeat every 200 ms until acknowledged).
func (r *receiver) unannouncedUntil(st *recvStream) clock.Time {
	capture, ok := st.jb.Head()
	if !ok {
		return clock.Never
	}
	return capture.Add(r.peerLatency)
}

// handleData takes a data or retransmission packet.
func (r *receiver) handleData(now clock.Time, pn int64, h *wire.DataHeader, payload []byte, size int) {
	c := r.c
	r.startRecovery(now, pn)
	sendTS := r.noteTimestamp(now, h.SendTime)
	if r.nack != nil {
		r.nack.SetJitter(r.jitter)
	}
	r.fb.recordArrival(now, pn)
	member := pn // the packet number FEC blocks and NACKs know it by
	if h.Retransmit {
		member = wire.DecodePacketNumber(pn-1, h.Original)
		if member >= pn {
			c.stats.FragmentsRejected++ // a retransmission of a packet not yet sent
			r.notePacket(now, pn)
			return
		}
		c.stats.RetransmissionsReceived++
	}
	if r.fecDec != nil {
		if prot, err := wire.AppendProtected(r.protScratch[:0], h, payload); err == nil {
			r.fecDec.OnMedia(now, member, prot)
		}
	}
	c.stats.MediaPacketsReceived++
	// The deadline NACKs work to is the frame's: its capture time once
	// fragment 0 has come (a fragment sent long after its capture, behind
	// a key frame, would otherwise look as if it had more time), else the
	// earliest send time seen of it.
	ref := r.assemble(now, h, payload, sendTS, h.Retransmit, h.Retransmit)
	deadline := r.packetDeadline(ref)
	if r.nack != nil {
		if h.Retransmit {
			r.nack.OnRetransmission(now, pn, member, deadline)
		} else {
			r.nack.OnPacket(now, pn, deadline)
			// Tail loss: fragments after this one may be lost with
			// nothing after them to reveal the gap.
			r.nack.ExpectTail(now, pn, min(int(h.FragCount-h.FragIndex-1), maxTailGuess), deadline)
			r.tailStream, r.tailFrame = h.Stream, h.FrameID // the frame the timer waits for
		}
		r.nack.Sent(now, r.localTime(sendTS))
	}
	r.drainRecovered(now)
}

// handleRecovered takes a data packet FEC rebuilt (its protected form,
// docs/PROTOCOL.md §5.1). It has no send time: the latest one seen stands in
// for it, which only matters to unwrap its capture time (within 67 s).
func (r *receiver) handleRecovered(now clock.Time, pn int64, prot []byte) {
	c := r.c
	var h wire.DataHeader
	payload, err := wire.ParseProtected(prot, &h)
	if err != nil || !r.haveTS {
		c.stats.RecoveredRejected++
		return
	}
	c.stats.PacketsRecovered++
	r.assemble(now, &h, payload, r.lastTS, true, false)
}

// assemble files a fragment in its frame's slot and returns the frame's
// reference timestamp: its capture time if known, else the earliest send
// time seen of it (sendTS for a fragment it refused).
func (r *receiver) assemble(now clock.Time, h *wire.DataHeader, payload []byte, sendTS int64, repaired, byRTX bool) int64 {
	c := r.c
	// Fragments are exactly the peer's fragment size but for the last.
	fs := r.peerFragSize
	if len(payload) > fs || (!h.Last() && len(payload) != fs) || (h.FragIndex == 0 && len(payload) < wire.FramePrefixLen) {
		c.stats.FragmentsRejected++
		return sendTS
	}
	if int(h.FragCount)*fs > c.cfg.MaxFrameSize+wire.FramePrefixLen+fs {
		c.stats.FragmentsRejected++ // the frame would exceed our limit
		return sendTS
	}
	st := r.stream(h.Stream)
	if ended := st.announced && !st.open && st.closeAt == clock.Never; ended || st.reused {
		// The stream closed and ended. Data on its id sent after that is
		// a new stream's, whose announcement is lost or behind (a sender
		// reuses an id only once none of the old stream's packets can be
		// sent again, docs/PROTOCOL.md §6.1): its frames are assembled and
		// held for the announcement, as a stream's not yet announced;
		// taken for the old stream's, they were dropped as duplicates, its
		// first key frame with them. Data sent before the end (by its send
		// time on our clock, less half the one-way delay: the old
		// stream's last can leave up to its deadline, a one-way delay
		// before the end here, the new stream's first a round trip and
		// 100 ms after it) is the old stream's, late; so is a packet FEC
		// rebuilt, which has no send time of its own.
		if (ended && repaired) || r.localTime(sendTS) <= st.endedAt.Add(-r.c.owd()/2) {
			c.stats.FragmentsDuplicated++
			return sendTS
		}
		if ended {
			r.resetStream(now, st)
			st.announced, st.reused = false, true
		}
	}
	expected := st.highest + 1
	if st.highest < 0 {
		expected = int64(h.FrameID)
	}
	id := wire.DecodeFrameID(expected, h.FrameID)
	mask := int64(len(st.slots) - 1)
	if id <= st.highest-mask {
		c.stats.FragmentsRejected++ // older than any slot remembers
		return sendTS
	}
	if id > st.highest {
		st.highest = id
	}
	if st.drops.n > 0 && st.drops.has(id) {
		c.stats.FragmentsDropped++ // its frame was declared dropped by the sender
		return sendTS
	}
	slot := &st.slots[id&mask]
	switch {
	case slot.state != slotEmpty && slot.id > id:
		c.stats.FragmentsRejected++
		return sendTS
	case slot.state != slotEmpty && slot.id < id:
		if slot.state == slotAssembling {
			r.giveUp(now, st, slot, "displaced by a newer frame")
		}
		slot.state = slotEmpty
	case slot.state == slotDone:
		c.stats.FragmentsDuplicated++
		return slot.refTS
	}
	if slot.state == slotEmpty {
		need := int(h.FragCount) * fs
		if c.recvBytes+bufpool.Cap(need) > c.cfg.MaxReceiveBuffer {
			c.stats.FragmentsRejected++
			c.stats.ReceiveBufferFull++
			return sendTS
		}
		words := (int(h.FragCount) + 63) / 64
		got := slot.bits
		if cap(got) < words {
			got = make([]uint64, words)
		}
		got = got[:words]
		clear(got)
		*slot = frameSlot{id: id, state: slotAssembling, count: int(h.FragCount), bits: got,
			buf: c.ep.pool.Get(need), total: -1, refTS: sendTS, key: h.Key, droppable: h.Droppable, firstAt: now}
		c.recvBytes += cap(slot.buf)
		st.active = append(st.active, int32(id&mask))
		if h.Key {
			st.keyBegan = now
		}
	} else if slot.count != int(h.FragCount) || slot.key != h.Key || slot.droppable != h.Droppable {
		c.stats.FragmentsRejected++ // disagrees with the frame's earlier fragments
		return sendTS
	}
	i := int(h.FragIndex)
	if slot.bits[i/64]&(1<<(i%64)) != 0 {
		c.stats.FragmentsDuplicated++
		return slot.refTS
	}
	slot.bits[i/64] |= 1 << (i % 64)
	slot.got++
	slot.recovered = slot.recovered || repaired
	slot.rtx = slot.rtx || byRTX
	copy(slot.buf[i*fs:], payload)
	if h.Last() {
		slot.total = i*fs + len(payload)
	}
	if i == 0 {
		capTS, _, _ := wire.ParseFramePrefix(payload)
		// The capture time is at or before the send time, within half the
		// timestamp period.
		slot.refTS = sendTS - int64((uint32(sendTS)-capTS)&(1<<24-1))
		slot.capKnown = true
	} else if !slot.capKnown && sendTS < slot.refTS {
		slot.refTS = sendTS
	}
	if slot.got == slot.count {
		r.complete(now, st, slot)
	}
	return slot.refTS
}

// removeActive forgets that a slot is assembling.
func (st *recvStream) removeActive(slot *frameSlot) {
	idx := int32(slot.id & int64(len(st.slots)-1))
	for k, a := range st.active {
		if a == idx {
			st.active[k] = st.active[len(st.active)-1]
			st.active = st.active[:len(st.active)-1]
			return
		}
	}
}

func (r *receiver) complete(now clock.Time, st *recvStream, slot *frameSlot) {
	c := r.c
	st.removeActive(slot)
	slot.state = slotDone
	f := jitterbuffer.Frame{
		ID:           slot.id,
		Capture:      r.localTime(slot.refTS),
		Completed:    now,
		FirstArrival: slot.firstAt,
		Transit:      time.Duration(now) - tsDuration(slot.refTS),
		Key:          slot.key,
		Droppable:    slot.droppable,
		Recovered:    slot.recovered,
		Data:         slot.buf[:slot.total],
	}
	if st.stats.FramesReceived == 0 {
		st.firstAt = now
	}
	r.loss.update(c.window.Expected(), c.window.Lost(), c.window.Gaps())
	st.repair.frame(slot.rtx)
	if slot.recovered || (now.Sub(st.firstAt) < initialRecoveryHold && r.nack != nil) {
		// Losses recur (or, for the first seconds, may): keep the
		// repairs' time in the playout target (recoveryAllowance).
		st.jb.NoteRecovery(now, r.recoveryAllowance(st))
	}
	slot.buf = nil
	size := slot.total - wire.FramePrefixLen
	if slot.key {
		st.sawKey = true
		st.keyAbove = max(st.keyAbove, slot.id+1)
	} else if !st.sawKey && st.kind == KindVideo {
		// Joined mid-stream, or the first key frame was lost: nothing
		// decodes before one, so ask at once (at most once per RTT).
		c.autoKeyFrame(now, st.id)
	}
	st.stats.FramesReceived++
	st.stats.BytesReceived += int64(size)
	c.stats.FramesReceived++
	if err := st.jb.Push(now, f); errors.Is(err, jitterbuffer.ErrDuplicate) {
		// Completed twice (a relay's pass-through remembers what it
		// released): delivered once already, so neither lost nor late.
		c.stats.FramesDuplicated++
		r.freeBuf(f.Data)
	} else if err != nil {
		st.stats.FramesLate++
		st.jb.NoteGone(f.ID, f.Droppable)
		r.lost(st, FrameMeta{ID: f.ID, Capture: f.Capture, Completed: now, Key: f.Key, Droppable: f.Droppable,
			Size: size, Fragments: slot.count, Received: slot.got, Reason: "completed after a later frame played"})
		r.freeBuf(f.Data)
	}
}

func (r *receiver) freeBuf(b []byte) {
	r.c.recvBytes -= cap(b)
	r.c.ep.pool.Put(b)
}

func (r *receiver) giveUp(now clock.Time, st *recvStream, slot *frameSlot, reason string) {
	st.repair.frame(true) // it needed more repair than it got
	st.stats.FramesGivenUp++
	r.c.stats.FramesGivenUp++
	r.abandon(st, slot, FrameMeta{Reason: reason})
}

// giveUpDropped gives up a frame being assembled that the sender declared
// dropped: reported as dropped by the sender, not lost.
func (r *receiver) giveUpDropped(st *recvStream, slot *frameSlot) {
	r.abandon(st, slot, FrameMeta{Reason: "dropped by the sender", DroppedBySender: true})
}

// abandon frees a slot being assembled and reports the frame lost with
// m's reason.
func (r *receiver) abandon(st *recvStream, slot *frameSlot, m FrameMeta) {
	st.removeActive(slot)
	slot.state = slotDone
	r.freeBuf(slot.buf)
	slot.buf = nil
	if slot.capKnown {
		m.Capture = r.localTime(slot.refTS)
	}
	m.ID, m.Key, m.Droppable, m.Fragments, m.Received = slot.id, slot.key, slot.droppable, slot.count, slot.got
	st.jb.NoteGone(slot.id, slot.droppable) // waiting for it is over; droppable: its gap breaks nothing
	r.lost(st, m)
}

func (r *receiver) lost(st *recvStream, m FrameMeta) {
	r.c.ep.pushEvent(Event{Type: EventFrameLost, Conn: r.c, Stream: st.id, Kind: st.kind, Frame: m})
}

// askKeysForHopeless asks for a key frame (once per frame) for each
// video frame that others reference, still incomplete, due by the latest
// deadline of a packet the NACK generator gave up as hopeless: such a frame
// will not complete, and the frames after it will not decode. Asking now
// rather than when the frame's playout time comes shortens the freeze its
// loss costs by up to a round trip.
func (r *receiver) askKeysForHopeless(now clock.Time, until clock.Time) {
	for _, st := range r.streams {
		if st == nil || st.kind != KindVideo || !st.sawKey {
			continue
		}
		for _, a := range st.active {
			slot := &st.slots[a]
			if slot.droppable || slot.keyAsked || r.giveUpAt(slot) > until {
				continue
			}
			slot.keyAsked, st.earlyKey = true, now
			r.c.autoKeyFrame(now, st.id)
		}
	}
}

// askAgain repeats a broken stream's key-frame request when the answer
// went missing, as undecodable frame id is released: no key frame after
// it has completed (it would end the break at its playout time) or is
// being assembled, and none has begun to arrive nor been asked for since
// two smoothed RTTs and keyFrameWait before now, nor has the break begun
// since. The answer to a request, or the request itself, can be lost (a
// loss burst; a key frame is the largest frame and the likeliest to lose
// a packet), and an encoder that makes key frames only when asked (as RTC
// encoders commonly run) would otherwise leave the stream undecodable for
// good. A key frame given up incomplete is asked for again as soon as the
// wait since its first packet is over; one still being repaired, or
// complete and waiting for its playout time, is waited for.
func (r *receiver) askAgain(now clock.Time, st *recvStream, id int64) {
	if !st.broken || st.kind != KindVideo || st.keyAbove > id+1 {
		return
	}
	for _, a := range st.active {
		if st.slots[a].key {
			return
		}
	}
	since := clock.Max(clock.Max(st.brokeAt, r.fb.lastPLI[st.id]), st.keyBegan)
	if now.Sub(since) < 2*r.c.rtt.Smoothed()+keyFrameWait {
		return
	}
	r.c.autoKeyFrame(now, st.id)
}

// askKeysForUnreachable asks for a key frame (once per frame, as
// askKeysForHopeless) for each video frame that others reference, still
// incomplete though a later frame of its stream has begun to arrive (a
// stream's frames are sent in order: what it lacks was lost, not still on
// its way), once a retransmission asked for now could no longer reach it
// by the time it is given up (giveUpAt, from its capture time, less the
// least RTT). The NACK generator gives a packet up (HopelessUntil) only
// when its last round's answer is overdue, near the frame's deadline: a
// key frame asked for then is captured after the lost frame's playout
// time (seed 5 of the bench's e2e-rtc-rtt200-ge10b3, 800 ms of playout
// offset: 8 freezes of 0.9-0.97 s, 6.93 s in all; 0.8 s with this). A
// last round still on its way may yet complete the frame: the key frame
// is then spent for nothing, the price of the earlier request.
func (r *receiver) askKeysForUnreachable(now clock.Time) {
	reach := now.Add(r.c.rtt.WindowedMin())
	for _, st := range r.streams {
		if st == nil || st.kind != KindVideo || !st.sawKey {
			continue
		}
		for _, a := range st.active {
			slot := &st.slots[a]
			if slot.droppable || slot.keyAsked || !slot.capKnown || slot.id >= st.highest || r.giveUpAt(slot) >= reach {
				continue
			}
			slot.keyAsked, st.earlyKey = true, now
			r.c.autoKeyFrame(now, st.id)
		}
	}
}

// keyOnItsWay reports whether a key frame asked for early may still be on
// its way: a gap it was asked for needs no second ask, even once that key
// frame has begun to arrive (which lets autoKeyFrame ask again).
func (r *receiver) keyOnItsWay(now clock.Time, st *recvStream) bool {
	return st.earlyKey != 0 && now.Sub(st.earlyKey) < 2*r.c.rtt.Smoothed()+200*time.Millisecond
}

// giveUpAt is when an incomplete frame stops being worth waiting for: its
// deadline or its playout time, whichever is later, or the sender's
// deadline horizon while it reports one (the path's delay alone exceeds
// Latency, and it still sends frames that can arrive within the horizon).
func (r *receiver) giveUpAt(slot *frameSlot) clock.Time {
	h := r.peerHorizon
	if h > 0 {
		h = min(max(h, r.oneWay+r.peerLatency), MaxPeerPlayout)
	}
	return r.localTime(slot.refTS).Add(max(r.peerLatency, r.playoutDelay, h))
}

func (r *receiver) handleRepair(now clock.Time, pn int64, h *wire.RepairHeader, payload []byte, size int) {
	r.startRecovery(now, pn)
	sendTS := r.noteTimestamp(now, h.SendTime)
	r.fb.recordArrival(now, pn)
	r.notePacket(now, pn)
	if r.nack != nil {
		r.nack.Sent(now, r.localTime(sendTS))
	}
	base := wire.DecodePacketNumber(pn-1, h.BasePacketNumber)
	// Every member precedes its repair packets: a block reaching past this
	// one would "recover" packets not yet sent.
	if last := base + int64(63-bits.LeadingZeros64(h.Mask)); base >= pn || last >= pn || r.fecDec == nil {
		r.c.stats.ProtocolErrors++
		return
	}
	r.fecDec.OnRepair(now, fec.Block{Base: base, Mask: h.Mask, M: int(h.M), Index: int(h.Index)}, payload)
	r.drainRecovered(now)
}

func (r *receiver) handleTimeout(now clock.Time) {
	r.expireHorizon(now)
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for k := 0; k < len(st.active); {
			slot := &st.slots[st.active[k]]
			if now >= r.giveUpAt(slot) {
				r.giveUp(now, st, slot, "incomplete at its deadline")
				continue // giveUp swapped another index into k
			}
			k++
		}
		for {
			if !st.announced && now < r.unannouncedUntil(st) {
				break // its announcement may still come
			}
			if until, hold := r.gapHold(st); hold && now < until {
				// A missing reference frame may still come. Past the next
				// frame's playout time, the group waits with it if asked.
				if r.c.cfg.PlayoutStallTogether && !st.stalling && now >= st.jb.NextTimeout() {
					r.group.Stall(now)
					st.stalling = true
				}
				break
			}
			if st.stalling {
				r.group.Resume(now)
				st.stalling = false
			}
			f, ok := st.jb.Pop(now)
			if !ok {
				break
			}
			if f.Dropped {
				// Catching up after a freeze: it came, and is not played.
				st.stats.FramesCaughtUp++
				st.caughtUp++
				st.unsent += f.LostBefore
				r.freeBuf(f.Data)
				continue
			}
			if !st.announced {
				// Frames wait for their stream's announcement until their
				// playout time; the peer never announced this one.
				st.stats.FramesUnannounced++
				st.unsent += f.LostBefore + 1
				r.c.stats.ProtocolErrors++
				r.freeBuf(f.Data)
				continue
			}
			r.deliver(now, st, f)
		}
		if now >= st.closeAt {
			r.finishStream(now, st)
		}
	}
}

// finishStream ends a stream the peer closed: whatever is complete is
// delivered at once, the rest given up, then the application is told.
func (r *receiver) finishStream(now clock.Time, st *recvStream) {
	for len(st.active) > 0 {
		r.giveUp(now, st, &st.slots[st.active[0]], "stream closed")
	}
	for {
		f, ok := st.jb.Flush(now)
		if !ok {
			break
		}
		r.deliver(now, st, f)
	}
	st.open = false
	st.closeAt = clock.Never
	st.endedAt = now
	r.c.ep.pushEvent(Event{Type: EventStreamClosed, Conn: r.c, Stream: st.id, Kind: st.kind})
}

// peerClosed delivers what every stream holds: the peer closed in order, so
// what it sent and we completed is the application's.
func (r *receiver) peerClosed(now clock.Time) {
	for _, st := range r.streams {
		if st != nil && st.announced && (st.open || st.closeAt != clock.Never) {
			r.finishStream(now, st)
		}
	}
}

func (r *receiver) deliver(now clock.Time, st *recvStream, f jitterbuffer.Frame) {
	c := r.c
	f.LostBefore += st.unsent
	st.unsent = 0
	st.stats.FramesSkipped += f.LostBefore
	c.stats.FramesSkipped += f.LostBefore
	if f.Reordered {
		// Pass-through: an earlier frame's LostBefore counted it.
		st.stats.FramesSkipped--
		c.stats.FramesSkipped--
	}
	var dropped int64
	if st.drops.n > 0 {
		if f.LostBefore > 0 {
			dropped = min(st.drops.count(f.ID-f.LostBefore, f.ID-1), f.LostBefore)
		}
		st.drops.forgetBefore(f.ID)
	}
	st.stats.FramesDroppedBySender += dropped
	c.stats.FramesDroppedBySender += dropped
	if f.NeedKey && (f.LostBefore == 0 || dropped < f.LostBefore) && !r.keyOnItsWay(now, st) {
		// A reference went (or the stream joined mid-GOP): one key-frame
		// request path, at most one per RTT; none when the sender itself
		// dropped what is missing (it already raised a local request).
		c.autoKeyFrame(now, st.id)
	}
	switch {
	case f.NeedKey:
		st.broken, st.brokeAt = true, now
	case f.Undecodable:
		r.askAgain(now, st, f.ID)
	default:
		st.broken = false
	}
	if c.cfg.Playout == PlayoutAdaptive {
		// The deadline this side holds frames to follows the offset,
		// within its bounds: a frame released late reads as its own
		// delay (a frame captured 50 s before it came, 50 s), which would
		// otherwise hold every gap, NACK and report that long.
		r.playoutDelay = min(max(st.jb.Delay(), c.cfg.MinPlayoutDelay), st.jb.Config().MaxDelay)
	}
	if !f.Late {
		r.av.release(now, st.kind, now.Sub(f.Capture))
	}
	st.stats.FramesDelivered++
	c.stats.FramesDelivered++
	caughtUp := st.caughtUp
	st.caughtUp = 0
	c.ep.pushEvent(Event{Type: EventFrame, Conn: c, Stream: st.id, Kind: st.kind,
		Frame: FrameMeta{ID: f.ID, Capture: f.Capture, Completed: f.Completed, Playout: now, Key: f.Key,
			Droppable: f.Droppable, Size: len(f.Data) - wire.FramePrefixLen, LostBefore: f.LostBefore - dropped,
			DroppedBefore: dropped, CaughtUpBefore: caughtUp, PlayedLate: f.Late, Undecodable: f.Undecodable,
			Reordered: f.Reordered},
		Data: f.Data[wire.FramePrefixLen:], buf: f.Data})
}

func (r *receiver) nextTimeout() clock.Time {
	t := clock.Never
	if r.peerHorizon > 0 {
		t = r.peerHorizonAt.Add(horizonExpiry) // the horizon lapses (handleTimeout), and frames are given up sooner
	}
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for _, a := range st.active {
			t = clock.Min(t, r.giveUpAt(&st.slots[a]))
		}
		if until, hold := r.gapHold(st); hold {
			switch {
			case st.stalling:
				t = clock.Min(t, until)
			case r.c.cfg.PlayoutStallTogether:
				// Stall at its playout time (or release it, the hold over).
				// Not at until: while another stream stalls the group this
				// one's playout time is Never, and an until already past
				// would wake the driver again and again for nothing.
				t = clock.Min(t, st.jb.NextTimeout())
			default:
				t = clock.Min(t, clock.Max(st.jb.NextTimeout(), until))
			}
		} else if st.stalling {
			t = clock.Min(t, r.c.lastSend) // the gap closed: resume now
		} else if st.announced {
			t = clock.Min(t, st.jb.NextTimeout())
		} else {
			t = clock.Min(t, clock.Max(st.jb.NextTimeout(), r.unannouncedUntil(st)))
		}
		t = clock.Min(t, st.closeAt)
	}
	return t
}

// dropAll gives up everything (connection closed).
func (r *receiver) dropAll(now clock.Time) {
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for len(st.active) > 0 {
			r.giveUp(now, st, &st.slots[st.active[0]], "connection closed")
		}
		r.discardHeld(st)
	}
}

// discardHeld frees the frames st's jitter buffer holds, releasing none
// (a stream reset, or the connection gone).
func (r *receiver) discardHeld(st *recvStream) {
	for {
		f, ok := st.jb.Discard()
		if !ok {
			return
		}
		r.freeBuf(f.Data)
	}
}

// avOffset measures the A/V offset (ConnStats.AVOffset) from the frames
// released at their playout time: at each video frame, its offset from
// capture minus that of the audio frame playing, the last one released if
// it still plays (it lasts the time between the last two audio releases,
// within avMaxAudioFrame).
type avOffset struct {
	audioAt   clock.Time    // the last audio release
	audioOff  time.Duration // its offset from capture
	audioDur  time.Duration // how long an audio frame plays
	haveAudio bool
	last, max time.Duration
	n         int64
}

// avMaxAudioFrame bounds an audio frame's duration (Opus's longest is
// 120 ms): a gap longer is a pause, not a frame playing.
const avMaxAudioFrame = 120 * time.Millisecond

func (a *avOffset) release(now clock.Time, kind Kind, off time.Duration) {
	switch kind {
	case KindAudio:
		if a.haveAudio {
			if d := now.Sub(a.audioAt); d > 0 && d <= avMaxAudioFrame {
				a.audioDur = d
			}
		}
		a.audioAt, a.audioOff, a.haveAudio = now, off, true
	case KindVideo:
		if !a.haveAudio || a.audioDur == 0 || now.Sub(a.audioAt) > a.audioDur {
			return // no audio playing
		}
		a.last = off - a.audioOff
		a.n++
		if a.last.Abs() > a.max.Abs() {
			a.max = a.last
		}
	}
}
