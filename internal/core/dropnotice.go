package core

import (
	"encoding/binary"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// Drop notices (docs/PROTOCOL.md §6.1, APP "SPDR"): the sender tells the
// receiver which frames it dropped, and which packet numbers the fragments
// it had sent of a frame cut short carried, so the receiver neither waits
// for nor NACKs them and reports them as dropped by the sender. Each notice
// has a sequence number; notices are repeated in the sender's feedback
// packets until acknowledged, for at most dropNoticeLife.

var appDropName = [4]byte{'S', 'P', 'D', 'R'}

const (
	appSubDrops   = 0 // sender -> receiver: notices
	appSubDropAck = 1 // receiver -> sender: the notices received
	// dropNoticeLen is the bytes of one notice on the wire.
	dropNoticeLen = 12
	// dropAckLen: largest sequence number, 2 bytes of padding, a 64-bit
	// mask of the 64 before it.
	dropAckLen = 12
	// maxDropNotices bounds the notices a sender keeps unacknowledged; past
	// it the oldest goes (the receiver then counts those frames as lost).
	maxDropNotices = 64
	// dropNoticeLife is how long a notice is repeated: long after any
	// frame it names has passed its playout time.
	dropNoticeLife = 2 * time.Second
	// maxNoticeRuns bounds the packet-number runs declared for one frame
	// cut short; packets past them are still never retransmitted.
	maxNoticeRuns = 8
	// dropFlagPackets: the notice carries a packet-number run.
	dropFlagPackets = 1
	// recvDropRanges bounds the dropped frame ranges a receiver remembers
	// per stream.
	recvDropRanges = 16
)

// dropNotice is one notice: a range of frames of a stream (frames may be
// 0) and, with pnCount > 0, a run of packet numbers that carried fragments
// of them.
type dropNotice struct {
	seq        uint16
	stream     uint8
	firstFrame int64
	frames     int
	pnFirst    int64
	pnCount    int
	at         clock.Time
	sent       bool
	// owed: the last packet had no room for it (its budget); it goes
	// first in the next.
	owed bool
}

// DropNoticeStats counts drop notices (ours: no W3C equivalent).
type DropNoticeStats struct {
	Sent     int64 // notices sent (each repetition counts)
	Acked    int64 // notices the peer acknowledged
	Expired  int64 // notices given up unacknowledged after 2 s
	Overflow int64 // notices pushed out by newer ones before an ack
}

// dropNotices is the sender's list of notices not yet acknowledged.
type dropNotices struct {
	ring     [maxDropNotices]dropNotice
	head, n  int
	nextSeq  uint16
	due      bool // a notice was never sent
	lastSent clock.Time
	stats    DropNoticeStats
}

func (d *dropNotices) at(i int) *dropNotice { return &d.ring[(d.head+i)%maxDropNotices] }

func (d *dropNotices) push(n dropNotice) {
	if d.n == maxDropNotices {
		d.head = (d.head + 1) % maxDropNotices
		d.n--
		d.stats.Overflow++
	}
	n.seq = d.nextSeq
	d.nextSeq++
	*d.at(d.n) = n
	d.n++
	d.due = true
}

// addFrame notes a dropped frame none of whose fragments left: merged into
// the newest notice when that one is unsent, of the same stream and ends
// just before it, or starts just after it (the queue limit evicts the
// newest frames first: 14, 13, 12 made three notices).
func (d *dropNotices) addFrame(now clock.Time, stream uint8, id int64) {
	if d.n > 0 {
		last := d.at(d.n - 1)
		if !last.sent && last.stream == stream && last.pnCount == 0 && last.frames > 0 && last.frames < wire.FrameIDMask {
			switch id {
			case last.firstFrame + int64(last.frames):
				last.frames++
				return
			case last.firstFrame - 1:
				last.firstFrame--
				last.frames++
				return
			}
		}
	}
	d.push(dropNotice{stream: stream, firstFrame: id, frames: 1, at: now})
}

// pending reports whether a notice about stream waits for an
// acknowledgement at now (one past dropNoticeLife does not).
func (d *dropNotices) pending(now clock.Time, stream uint8) bool {
	d.expire(now)
	for i := 0; i < d.n; i++ {
		if d.at(i).stream == stream {
			return true
		}
	}
	return false
}

// expire forgets notices older than dropNoticeLife.
func (d *dropNotices) expire(now clock.Time) {
	for d.n > 0 && now.Sub(d.at(0).at) > dropNoticeLife {
		d.head = (d.head + 1) % maxDropNotices
		d.n--
		d.stats.Expired++
	}
}

// remove deletes the notices an acknowledgement names, keeping order.
func (d *dropNotices) ack(largest uint16, mask uint64) {
	k := 0
	for i := 0; i < d.n; i++ {
		n := *d.at(i)
		dist := largest - n.seq
		if dist == 0 || (dist <= 64 && mask&(1<<(dist-1)) != 0) {
			d.stats.Acked++
			continue
		}
		*d.at(k) = n
		k++
	}
	d.n = k
}

// noticeRepeat is how often unacknowledged notices go again.
func (s *sender) noticeRepeat() time.Duration { return max(s.c.rtt.Smoothed(), announceInterval) }

// noticeDue is when the sender next owes notices (clock.Never: none).
func (s *sender) noticeDue() clock.Time {
	d := &s.notices
	switch {
	case d.n == 0:
		return clock.Never
	case d.due:
		return s.c.lastSend
	}
	return d.lastSent.Add(s.noticeRepeat())
}

// appendNotices appends every live notice that fits in budget bytes:
// those never sent first, then those the packet before had no room for;
// what does not fit is owed to the next packet. Every live notice goes with
// each new one, not only on the repeat clock: under loss the copies are
// what gets a notice through soon (sending only the new one, the others
// on the repeat, took the bench's random-loss-10 from 0.37 to 0.94 s of
// freezes a minute, seeds 1-30), and a notice costs 12 bytes.
func (s *sender) appendNotices(now clock.Time, b []byte, budget int) []byte {
	d := &s.notices
	d.expire(now)
	var data [maxDropNotices * dropNoticeLen]byte
	var in uint64 // the notices in this packet, by position
	k := 0
	for pass := range 3 { // never sent, owed, the rest
		for i := 0; i < d.n && (k+1)*dropNoticeLen+12 <= budget; i++ {
			n := d.at(i)
			if in&(1<<i) != 0 || (pass == 0 && n.sent) || (pass == 1 && !n.owed) {
				continue
			}
			e := data[k*dropNoticeLen : (k+1)*dropNoticeLen]
			binary.BigEndian.PutUint16(e[0:], n.seq)
			e[2] = n.stream
			e[3] = 0
			binary.BigEndian.PutUint16(e[4:], uint16(n.firstFrame)&wire.FrameIDMask)
			binary.BigEndian.PutUint16(e[6:], uint16(n.frames))
			if n.pnCount > 0 {
				e[3] = dropFlagPackets
				binary.BigEndian.PutUint32(e[8:], uint32(n.pnFirst)<<8|uint32(n.pnCount))
			} else {
				binary.BigEndian.PutUint32(e[8:], 0)
			}
			n.sent, n.owed = true, false
			in |= 1 << i
			k++
		}
	}
	// What had no room goes first in the next packet (owed): cut short by
	// the budget at the same place every time, a packet would skip the
	// same notices. A notice never sent makes that packet due at once; one
	// sent before waits for the next packet or the repeat (due at once, a
	// budget too small for every live notice would send without end).
	d.due = false
	for i := 0; i < d.n; i++ {
		if n := d.at(i); in&(1<<i) == 0 {
			n.owed = n.sent
			d.due = d.due || !n.sent
		}
	}
	d.lastSent = now
	if k == 0 {
		return b
	}
	app := wire.App{Subtype: appSubDrops, Name: appDropName, Data: data[:k*dropNoticeLen]}
	out, err := app.Append(b)
	if err != nil {
		return b
	}
	d.stats.Sent += int64(k)
	return out
}

func (s *sender) handleDropAck(data []byte) {
	if len(data) != dropAckLen {
		s.c.stats.ProtocolErrors++
		return
	}
	s.notices.ack(binary.BigEndian.Uint16(data), binary.BigEndian.Uint64(data[4:]))
}

// declareDropped tells the receiver of a frame this sender dropped (it
// took a frame id, so the receiver sees the gap). For a frame cut short,
// the packets that carried its fragments are found in the sent history:
// they are declared in runs and never retransmitted.
func (s *sender) declareDropped(now clock.Time, st *sendStream, f *outFrame) {
	if f.next == 0 {
		s.notices.addFrame(now, st.id, f.id)
		return
	}
	frameNoted := false
	runs := 0
	var runFirst int64 = -1
	var runLen int
	flush := func() {
		if runFirst < 0 {
			return
		}
		n := dropNotice{stream: st.id, firstFrame: f.id, pnFirst: runFirst, pnCount: runLen, at: now}
		if !frameNoted {
			n.frames = 1
			frameNoted = true
		}
		if runs < maxNoticeRuns {
			s.notices.push(n)
		}
		runs++
		runFirst, runLen = -1, 0
	}
	for pn := f.firstPN; pn < s.c.nextPN; pn++ {
		p, ok := s.lookupSent(pn)
		mine := ok && p.media && p.stream == st.id && p.frame == f.id+1
		if !ok && pn < s.c.nextPN-historySize {
			// Past the sent history (a frame of thousands of fragments,
			// or a slow one): the retransmission history may still hold
			// the packet, and its header says whose it is. It is dropped
			// there, though no notice can name it.
			s.dropHeld(pn, st.id, f.id)
			continue
		}
		if mine && s.hist != nil {
			s.hist.Drop(pn)
		}
		switch {
		case mine && runFirst >= 0 && runLen < 255:
			runLen++
		case mine:
			flush()
			runFirst, runLen = pn, 1
		default:
			flush()
		}
	}
	flush()
	if !frameNoted {
		s.notices.addFrame(now, st.id, f.id)
	}
}

// dropHeld drops pn from the retransmission history if it carried a
// fragment of stream's frame id. Frames leave a stream in order, so since
// the frame's first fragment the stream's data packets are its own; the
// 12-bit id checks it all the same.
func (s *sender) dropHeld(pn int64, stream uint8, id int64) {
	if s.hist == nil {
		return
	}
	b, ok := s.hist.Packet(pn)
	if !ok {
		return
	}
	var h wire.DataHeader
	if _, err := wire.ParseProtected(b, &h); err == nil && h.Stream == stream && int64(h.FrameID) == id&wire.FrameIDMask {
		s.hist.Drop(pn)
	}
}

// recvDrops is what a receiving stream knows the sender dropped.
type recvDrops struct {
	ranges [recvDropRanges]struct{ first, last int64 }
	n      int
}

func (d *recvDrops) add(first, last int64) {
	for i := 0; i < d.n; i++ {
		r := &d.ranges[i]
		if first <= r.last+1 && last >= r.first-1 {
			r.first, r.last = min(r.first, first), max(r.last, last)
			return
		}
	}
	if d.n == recvDropRanges {
		copy(d.ranges[:], d.ranges[1:])
		d.n--
	}
	d.ranges[d.n] = struct{ first, last int64 }{first, last}
	d.n++
}

func (d *recvDrops) has(id int64) bool {
	for i := 0; i < d.n; i++ {
		if id >= d.ranges[i].first && id <= d.ranges[i].last {
			return true
		}
	}
	return false
}

// count returns how many ids of [from, to] were dropped by the sender.
func (d *recvDrops) count(from, to int64) int64 {
	var c int64
	for i := 0; i < d.n; i++ {
		lo, hi := max(from, d.ranges[i].first), min(to, d.ranges[i].last)
		if hi >= lo {
			c += hi - lo + 1
		}
	}
	return c
}

// forgetBefore drops ranges wholly below id (released already).
func (d *recvDrops) forgetBefore(id int64) {
	k := 0
	for i := 0; i < d.n; i++ {
		if d.ranges[i].last >= id {
			d.ranges[k] = d.ranges[i]
			k++
		}
	}
	d.n = k
}

// dropAcks is what the receiver acknowledges: the largest notice sequence
// number seen and which of the 64 before it were seen.
type dropAcks struct {
	largest uint16
	mask    uint64
	any     bool
	pending bool
}

// seen records a notice's sequence number and reports whether it is new.
func (a *dropAcks) seen(seq uint16) bool {
	a.pending = true
	if !a.any {
		a.any, a.largest = true, seq
		return true
	}
	dist := seq - a.largest
	switch {
	case dist == 0:
		return false
	case dist < 1<<15: // newer
		if dist > 64 {
			a.mask = 0
		} else {
			a.mask = a.mask<<dist | 1<<(dist-1)
		}
		a.largest = seq
		return true
	}
	back := a.largest - seq
	if back > 64 {
		return false // too old to tell: treated as seen
	}
	bit := uint64(1) << (back - 1)
	if a.mask&bit != 0 {
		return false
	}
	a.mask |= bit
	return true
}

func (r *receiver) appendDropAck(b []byte) []byte {
	a := &r.dropAck
	var data [dropAckLen]byte
	binary.BigEndian.PutUint16(data[0:], a.largest)
	binary.BigEndian.PutUint64(data[4:], a.mask)
	a.pending = false
	app := wire.App{Subtype: appSubDropAck, Name: appDropName, Data: data[:]}
	out, err := app.Append(b)
	if err != nil {
		return b
	}
	return out
}

// handleDropNotices acts on the notices of an APP "SPDR" message: frames
// being assembled are given up as dropped by the sender, the frame ids are
// remembered so playout reports them so, and the packet numbers declared
// are never NACKed.
func (r *receiver) handleDropNotices(now clock.Time, data []byte) {
	c := r.c
	if len(data)%dropNoticeLen != 0 {
		c.stats.ProtocolErrors++
		return
	}
	for len(data) > 0 {
		e := data[:dropNoticeLen]
		data = data[dropNoticeLen:]
		seq := binary.BigEndian.Uint16(e[0:])
		id, flags := e[2], e[3]
		first16 := binary.BigEndian.Uint16(e[4:])
		frames := int(binary.BigEndian.Uint16(e[6:]))
		run := binary.BigEndian.Uint32(e[8:])
		if id >= wire.MaxStreams || flags&^dropFlagPackets != 0 || first16 > wire.FrameIDMask ||
			frames > wire.FrameIDMask || (frames == 0 && flags == 0) || (flags == 0 && run != 0) ||
			(flags != 0 && run&0xff == 0) {
			c.stats.ProtocolErrors++
			continue
		}
		if !r.dropAck.seen(seq) {
			continue
		}
		c.stats.DropNoticesReceived++
		if flags&dropFlagPackets != 0 && r.nack == nil {
			// Before the first media packet: the generator that packet
			// would start lists every number since 0 it did not see, these
			// too.
			r.startRecovery(now, c.window.Largest()+1)
		}
		if flags&dropFlagPackets != 0 && r.nack != nil {
			pn := wire.DecodePacketNumber(c.window.Largest(), run>>8)
			r.nack.Forget(now, pn, pn+int64(run&0xff)-1)
		}
		if frames > 0 && r.nack != nil && r.tailStream == id && (r.tailFrame-first16)&wire.FrameIDMask < uint16(frames) {
			// The tail-loss timer waits for this frame's last fragments,
			// which will not come: NACKing its guesses would ask for them.
			r.nack.ExpectTail(now, 0, 0, 0)
		}
		if frames == 0 {
			continue
		}
		st := r.stream(id)
		expected := st.highest + 1
		if st.highest < 0 {
			expected = 0
		}
		firstID := wire.DecodeFrameID(expected, first16)
		if firstID < 0 {
			c.stats.ProtocolErrors++
			continue
		}
		lastID := firstID + int64(frames) - 1
		st.drops.add(firstID, lastID)
		// A gap the sender made breaks no reference: it drops a reference
		// frame's dependents with it (up to the next key frame), and
		// nothing references a droppable one. So the frames after it
		// decode, as they would after droppable frames given up.
		st.jb.NoteGoneRange(firstID, lastID, true)
		for k := 0; k < len(st.active); {
			slot := &st.slots[st.active[k]]
			if slot.id >= firstID && slot.id <= lastID {
				r.giveUpDropped(st, slot)
				continue // giveUpDropped swapped another index into k
			}
			k++
		}
	}
}
