package core

import (
	"math/bits"
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// Feedback carries RTCP (docs/PROTOCOL.md §6). The receiver reports arrivals
// (transport-wide CC) every FeedbackInterval, a receiver report every
// second, key-frame requests (PLI) when asked; both sides announce the
// streams they send in APP messages, acknowledged by the other side.

const (
	rrInterval   = time.Second
	arrivalSlots = 2048 // arrivals remembered for the next report (a power of two)
	// twccRepeat: each transport-wide report repeats the arrivals of at
	// least this long before it (twccRepeatFor), so one lost report loses
	// nothing (the sender ignores what it has heard already).
	twccRepeat      = 100 * time.Millisecond
	twccChunkBudget = 3 // bytes per reported packet we budget, worst case
	minPLIInterval  = 20 * time.Millisecond
	// keyFrameWait is how long past two smoothed RTTs a key-frame request
	// waits for its key frame to begin arriving before it is repeated.
	keyFrameWait = 100 * time.Millisecond
	twccReserve  = 200 // bytes a feedback packet keeps for the TWCC report after NACKs
)

// The sizes of a PLI and of a receiver report with one block on the wire:
// what a feedback packet keeps for them after NACKs and drop notices.
var (
	pliWireSize = func() int { b, _ := (&wire.PLI{}).Append(nil); return len(b) }()
	rrWireSize  = func() int {
		b, _ := (&wire.ReceiverReport{Reports: []wire.ReceptionReport{{}}}).Append(nil)
		return len(b)
	}()
)

// APP message name and subtypes for stream announcements.
var appStreamName = [4]byte{'S', 'P', 'S', 'T'}

const (
	appSubStreams   = 0 // sender -> receiver: entries of id, kind, priority, flags
	appSubStreamAck = 1 // receiver -> sender: bitmaps of streams known open and closed, then each id's generation
	streamFlagOpen  = 1
	// An announcement's flags carry, above the open bit, the stream's
	// generation: how many streams the sender opened on that id before it,
	// modulo 128. A reordered or repeated announcement of an earlier
	// stream on the id is then told from the id's reuse.
	streamGenShift = 1
	streamGenMask  = 0x7f
	streamAckLen   = 4 + wire.MaxStreams
)

// genNewer reports whether generation a is later than b (serial
// arithmetic modulo 128: up to 63 reuses ahead).
func genNewer(a, b uint8) bool {
	d := (a - b) & streamGenMask
	return d != 0 && d < 64
}

type arrival struct {
	key int64 // packet number + 1; 0 marks an empty slot
	at  clock.Time
}

// feedbackState is what the receiving side owes the sender.
type feedbackState struct {
	arrivals [arrivalSlots]arrival
	base     int64 // lowest packet number not yet reported
	first    int64 // the first packet number recorded
	top      int64 // highest packet number recorded + 1
	pending  int   // arrivals recorded since the last report
	// unrepeated: the last report carried new arrivals; one more report
	// repeats them even if nothing arrives after (the last arrivals before
	// a pause are not lost with one report).
	unrepeated bool
	started    bool
	lastReport clock.Time
	count      uint8 // TWCC feedback packet count

	lastRR                  clock.Time
	priorExpected, priorRcv int64
	priorMedia              int64 // media packets received at the last report

	ackPending bool
	pli        uint16 // streams to send a PLI for
	lastPLI    [wire.MaxStreams]clock.Time

	parsed   wire.Feedback // reused parse target
	twcc     wire.TWCC     // reused build scratch
	ccReport cc.Feedback   // reused translation for the estimator
	nackMsg  wire.NACK     // reused NACK build scratch
}

// recordArrival notes a media packet for the next transport-wide report.
func (f *feedbackState) recordArrival(now clock.Time, pn int64) {
	if !f.started {
		f.started = true
		f.base = pn
		f.top = pn
		f.first = pn
	}
	if pn < f.base {
		// Reported already as not received: a late arrival within the
		// repeated span is reported with the next report's repeat.
		if f.top-pn < arrivalSlots/2 {
			f.arrivals[pn&(arrivalSlots-1)] = arrival{key: pn + 1, at: now}
		}
		return
	}
	if pn-f.base >= arrivalSlots {
		// Far ahead of what was reported: the report would not fit. Skip
		// the oldest; they are reported as not received.
		f.base = pn - arrivalSlots + 1
	}
	f.arrivals[pn&(arrivalSlots-1)] = arrival{key: pn + 1, at: now}
	if pn >= f.top {
		f.top = pn + 1
	}
	f.pending++
}

// nextFeedback is when the connection next owes a feedback packet.
func (c *Conn) nextFeedback() clock.Time {
	if c.state != stateEstablished && c.state != stateClosing {
		return clock.Never
	}
	f := &c.rcv.fb
	t := clock.Never
	if f.ackPending || f.pli != 0 || c.rcv.dropAck.pending {
		return c.lastSend // at once
	}
	if f.pending > 0 || f.unrepeated {
		t = f.lastReport.Add(c.cfg.FeedbackInterval)
		if c.twccAtOnce() {
			t = c.lastSend
		}
	}
	if c.stats.MediaPacketsReceived > f.priorMedia {
		t = clock.Min(t, f.lastRR.Add(rrInterval))
	}
	if c.rcv.nack != nil {
		t = clock.Min(t, clock.Max(c.rcv.nack.NextTimeout(), c.lastSend))
	}
	if c.snd.announceDue {
		t = clock.Min(t, c.snd.announceSent.Add(c.snd.announceRepeat()))
	}
	t = clock.Min(t, clock.Max(c.rcv.playoutDue(), c.lastSend))
	t = clock.Min(t, clock.Max(c.snd.horizonDue(), c.lastSend))
	return clock.Min(t, c.snd.noticeDue())
}

// pollFeedback writes a feedback packet into dst if one is due.
func (c *Conn) pollFeedback(now clock.Time, dst []byte) (int, bool) {
	if next := c.nextFeedback(); next == clock.Never || next > now {
		return 0, false
	}
	f := &c.rcv.fb
	limit := c.cfg.MaxDatagramSize
	if p := int(c.peerParams.MaxDatagramSize); p > 0 && p < limit {
		limit = p
	}
	b, err := wire.AppendFeedbackHeader(dst[:0], c.remoteCID, c.pnTrunc())
	if err != nil {
		return 0, false
	}
	start := len(b)
	if c.snd.announceDue && now >= c.snd.announceSent.Add(c.snd.announceRepeat()) {
		b = c.snd.appendAnnounce(b)
		c.snd.announceSent = now
	}
	if f.ackPending {
		b = c.rcv.appendStreamAck(b)
		f.ackPending = false
	}
	if c.rcv.dropAck.pending {
		b = c.rcv.appendDropAck(b)
	}
	if now >= c.rcv.playoutDue() {
		b = c.rcv.appendPlayout(now, b)
	}
	if now >= c.snd.horizonDue() {
		b = c.snd.appendHorizon(now, b)
	}
	// What comes after the NACKs and notices: the PLIs due, the receiver
	// report if due, and room for a transport-wide report. (Up to 16 PLIs
	// and a report, 224 bytes, once overran a 200-byte reserve: the packet
	// came out longer than the datagram size, past dst's end.)
	rrDue := c.stats.MediaPacketsReceived > f.priorMedia && now >= f.lastRR.Add(rrInterval)
	reserve := twccReserve + bits.OnesCount16(f.pli)*pliWireSize
	if rrDue {
		reserve += rrWireSize
	}
	if now >= c.snd.noticeDue() {
		b = c.snd.appendNotices(now, b, limit-len(b)-reserve)
	}
	b = c.appendNACKs(now, b, limit-len(b)-reserve)
	for f.pli != 0 {
		id := uint8(0)
		for f.pli&(1<<id) == 0 {
			id++
		}
		f.pli &^= 1 << id
		pli := wire.PLI{MediaSSRC: uint32(id)}
		b, _ = pli.Append(b)
		c.stats.PLIsSent++
	}
	if rrDue {
		b = c.appendRR(now, b)
	}
	if f.pending > 0 || f.unrepeated {
		if now >= f.lastReport.Add(c.cfg.FeedbackInterval) {
			b = c.appendTWCC(now, b, limit-len(b))
		} else if c.twccAtOnce() {
			// Sooner than the interval: a reply the peer's packets pay
			// for (the reply credit), as a NACK is.
			n := len(b)
			b = c.appendTWCC(now, b, limit-len(b))
			c.replyCredit -= len(b) - n
		}
	}
	if len(b) == start {
		return 0, false
	}
	c.consumePN()
	c.stats.FeedbackSent++
	c.sent(now, len(b), classControl)
	return len(b), true
}

// twccAtOnce says whether the arrivals span half the ring, so a report
// goes before the interval ends (the ring would overwrite unreported
// ones), and the reply credit can pay for one: packet numbers forged far
// apart once made every packet a report of its own, about 1.8 x their
// bytes.
func (c *Conn) twccAtOnce() bool {
	f := &c.rcv.fb
	return f.top-f.base >= arrivalSlots/2 && c.replyCredit >= twccReserve
}

// twccRepeatFor is how far back a report repeats arrivals at a feedback
// interval: one lost report leaves two intervals to cover (a fixed 100 ms
// covered nothing at a 100 ms interval: every second report lost, 206 of
// 375 arrivals reached the estimator).
func twccRepeatFor(interval time.Duration) time.Duration {
	return max(twccRepeat, 2*interval)
}

// appendTWCC reports arrivals from f.base on, as many as fit in budget bytes.
func (c *Conn) appendTWCC(now clock.Time, b []byte, budget int) []byte {
	f := &c.rcv.fb
	maxPackets := min((budget-24)/twccChunkBudget, wire.MaxTWCCPackets)
	if maxPackets <= 0 {
		return b
	}
	// A run of packet numbers with no arrival recorded (the peer's own
	// feedback and pings, or lost packets) longer than one message would
	// leave nothing to report and stall the feedback: start at the first
	// arrival instead.
	first := f.base
	for first < f.top && f.arrivals[first&(arrivalSlots-1)].key != first+1 {
		first++
	}
	if first-f.base >= int64(maxPackets) {
		f.base = first
	}
	// Repeat the arrivals of the last twccRepeat before the new ones, in
	// the room the new ones leave: back from f.base to the first arrival
	// older than that (the packet numbers between, not received, are
	// repeated as such).
	from := f.base
	room := int64(maxPackets) - min(f.top-f.base, int64(maxPackets))
	floor := max(f.top-arrivalSlots/2, f.first)
	since := now.Add(-twccRepeatFor(c.cfg.FeedbackInterval))
	for from > floor && f.base-from < room {
		a := f.arrivals[(from-1)&(arrivalSlots-1)]
		if a.key == from && a.at < since {
			break
		}
		from--
	}
	// A report starts at an arrival (its reference time): skip leading
	// packet numbers not received.
	for from < f.base && f.arrivals[from&(arrivalSlots-1)].key != from+1 {
		from++
	}
	t := &f.twcc
	t.Packets = t.Packets[:0]
	t.BaseSeq = uint16(from)
	t.FeedbackCount = f.count
	var ref clock.Time
	var prevQ int64
	haveRef := false
	pn := from
	for ; pn < f.top && len(t.Packets) < maxPackets; pn++ {
		a := f.arrivals[pn&(arrivalSlots-1)]
		if a.key != pn+1 {
			t.Packets = append(t.Packets, wire.TWCCPacket{})
			continue
		}
		if !haveRef {
			haveRef = true
			refUnits := int64(a.at) / int64(wire.TWCCRefTimeUnit)
			ref = clock.Time(refUnits * int64(wire.TWCCRefTimeUnit))
			t.RefTime = int32(refUnits & (1<<24 - 1))
			if t.RefTime >= 1<<23 {
				t.RefTime -= 1 << 24
			}
		}
		q := int64(a.at.Sub(ref) / wire.TWCCDeltaUnit)
		d := q - prevQ
		if d < -32768 || d > 32767 {
			break // does not fit a delta: the next report starts here
		}
		prevQ = q
		t.Packets = append(t.Packets, wire.TWCCPacket{Received: true, Delta: int32(d)})
	}
	// Trailing packets that did not arrive are reported next time: they may
	// still be on their way.
	for len(t.Packets) > 0 && !t.Packets[len(t.Packets)-1].Received {
		t.Packets = t.Packets[:len(t.Packets)-1]
	}
	if len(t.Packets) == 0 {
		f.pending = 0
		f.unrepeated = false
		f.lastReport = now
		return b
	}
	out, err := t.Append(b)
	if err != nil {
		return b
	}
	end := from + int64(len(t.Packets))
	f.unrepeated = end > f.base
	f.base = max(f.base, end)
	f.count++
	f.lastReport = now
	f.pending = 0
	for p := f.base; p < f.top; p++ {
		if f.arrivals[p&(arrivalSlots-1)].key == p+1 {
			f.pending++
		}
	}
	return out
}

func (c *Conn) appendRR(now clock.Time, b []byte) []byte {
	f := &c.rcv.fb
	expected, received := c.window.Expected(), c.window.Received()
	expInt, rcvInt := expected-f.priorExpected, received-f.priorRcv
	f.priorExpected, f.priorRcv = expected, received
	f.priorMedia = c.stats.MediaPacketsReceived
	f.lastRR = now
	var fraction uint8
	if lostInt := expInt - rcvInt; expInt > 0 && lostInt > 0 {
		fraction = uint8(min(lostInt*256/expInt, 255))
	}
	rr := wire.ReceiverReport{Reports: c.rcv.rrScratch[:1]}
	rr.Reports[0] = wire.ReceptionReport{
		FractionLost: fraction,
		TotalLost:    uint32(min(c.window.Lost(), 1<<23-1)),
		LastSequence: uint32(c.window.Largest()),
		Jitter:       uint32(c.rcv.jitter / wire.TimestampUnit),
	}
	out, err := rr.Append(b)
	if err != nil {
		return b
	}
	return out
}

// appendAnnounce appends the state of every stream the peer has not
// acknowledged.
func (s *sender) appendAnnounce(b []byte) []byte {
	var data [4 * wire.MaxStreams]byte
	n := 0
	for _, st := range s.streams {
		if st == nil || st.acked {
			continue
		}
		flags := st.gen << streamGenShift
		if st.open {
			flags |= streamFlagOpen
		}
		data[n], data[n+1], data[n+2], data[n+3] = st.id, byte(st.cfg.Kind), byte(st.cfg.Priority), flags
		n += 4
	}
	if n == 0 {
		s.announceDue = false
		return b
	}
	app := wire.App{Subtype: appSubStreams, Name: appStreamName, Data: data[:n]}
	out, err := app.Append(b)
	if err != nil {
		return b
	}
	return out
}

func (r *receiver) appendStreamAck(b []byte) []byte {
	var open, closed uint16
	var data [streamAckLen]byte
	for _, st := range r.streams {
		if st == nil || !st.announced {
			continue
		}
		if st.open {
			open |= 1 << st.id
		} else {
			closed |= 1 << st.id
		}
		data[4+int(st.id)] = st.gen
	}
	data[0], data[1], data[2], data[3] = byte(open>>8), byte(open), byte(closed>>8), byte(closed)
	app := wire.App{Subtype: appSubStreamAck, Name: appStreamName, Data: data[:]}
	out, err := app.Append(b)
	if err != nil {
		return b
	}
	return out
}

// parseFeedback decodes a feedback packet's RTCP into the reused struct.
func (r *receiver) parseFeedback(rtcp []byte) bool {
	return wire.ParseFeedback(rtcp, &r.fb.parsed) == nil
}

// handleFeedback acts on the feedback packet parseFeedback decoded.
func (c *Conn) handleFeedback(now clock.Time) {
	fb := &c.rcv.fb.parsed
	c.stats.FeedbackReceived++
	for i := range fb.TWCCs {
		c.handleTWCC(now, &fb.TWCCs[i])
	}
	for i := range fb.RRs {
		for _, rep := range fb.RRs[i].Reports {
			c.stats.RemoteFractionLost = float64(rep.FractionLost) / 256
			c.stats.RemotePacketsLost = int64(rep.TotalLost)
			c.stats.RemoteJitter = time.Duration(rep.Jitter) * wire.TimestampUnit
		}
	}
	for i := range fb.NACKs {
		c.snd.handleNACK(now, &fb.NACKs[i])
	}
	for _, p := range fb.PLIs {
		st := c.snd.stream(uint8(min(p.MediaSSRC, 255)))
		if st == nil {
			c.stats.ProtocolErrors++
			continue
		}
		c.stats.KeyFrameRequests++
		// A receiver asks at most once per round trip (requestKey); more
		// often, as many PLIs in one datagram, would have the encoder make
		// every frame a key frame. Half a round trip leaves room for
		// requests bunched by the reverse path's jitter.
		if st.peerKeyAt != 0 && now.Sub(st.peerKeyAt) < max(c.rtt.Smoothed()/2, minPLIInterval) {
			c.stats.KeyFrameRequestsMerged++
			continue
		}
		st.peerKeyAt = now
		c.ep.pushEvent(Event{Type: EventKeyFrameRequest, Conn: c, Stream: st.id, Kind: st.cfg.Kind})
	}
	for i := range fb.Apps {
		a := &fb.Apps[i]
		switch {
		case a.Name == appStreamName && a.Subtype == appSubStreams:
			c.rcv.handleAnnounce(now, a.Data)
		case a.Name == appStreamName && a.Subtype == appSubStreamAck:
			c.snd.handleStreamAck(a.Data)
		case a.Name == appDropName && a.Subtype == appSubDrops:
			c.rcv.handleDropNotices(now, a.Data)
		case a.Name == appDropName && a.Subtype == appSubDropAck:
			c.snd.handleDropAck(a.Data)
		case a.Name == appPlayoutName && a.Subtype == appSubPlayout:
			c.snd.handlePlayout(a.Data)
		case a.Name == appPlayoutName && a.Subtype == appSubHorizon:
			c.rcv.handleHorizon(now, a.Data)
		}
	}
}

func (c *Conn) handleTWCC(now clock.Time, t *wire.TWCC) {
	s := &c.snd
	base := unwrap16(c.nextPN-1, t.BaseSeq)
	rep := &c.rcv.fb.ccReport
	rep.ReceivedAt = now
	rep.Packets = rep.Packets[:0]
	s.twccRef, s.twccRefSet = unwrapTWCCRef(s.twccRef, s.twccRefSet, t.RefTime), true
	at := clock.Time(s.twccRef * int64(wire.TWCCRefTimeUnit))
	for i, p := range t.Packets {
		pn := base + int64(i)
		if p.Received {
			at = at.Add(time.Duration(p.Delta) * wire.TWCCDeltaUnit)
		}
		sp := &s.history[pn&(historySize-1)]
		if sp.key != pn+1 || !sp.media {
			continue
		}
		// Reports repeat the last 100 ms: what was heard already is
		// skipped. A packet reported lost that arrives after all was
		// reordered: the retransmission it may need is not, but its loss
		// stays counted (the estimator has judged it).
		switch {
		case sp.fb == fbReceived, sp.fb == fbLost && !p.Received:
			continue
		case sp.fb == fbLost:
			sp.fb = fbReceived
			if s.hist != nil {
				s.hist.Acked(pn)
			}
			continue
		}
		if p.Received {
			sp.fb = fbReceived
		} else {
			sp.fb = fbLost
		}
		s.leaveFlight(sp)
		s.loss.OnPacket(sp.at, !p.Received)
		s.lossTally.add(!p.Received)
		if p.Received && s.hist != nil {
			s.hist.Acked(pn)
		}
		rep.Packets = append(rep.Packets, cc.PacketResult{PacketNumber: pn, Size: int(sp.size), SendTime: sp.at, Received: p.Received,
			ArrivalTime: at, ProbeID: int(sp.probe)})
	}
	s.path.lossP, _ = s.lossTally.rate.settled()
	s.path.onFeedback(now, rep.Packets)
	if s.path.measured {
		s.path.anchor(now, s.sentAfter(s.path.measAt))
	}
	s.updateConditions(now)
	// Application limited: using markedly less than the target lately
	// (cc.ALR), not merely an empty queue, which a paced sender whose
	// encoder follows the target has most of the time.
	s.estimator.OnFeedback(now, rep, c.ccRTT(), s.alr.Update(now, s.estimator.Target()))
	s.feedbackAt, s.feedbackSeen = now, true
	if !s.fixedTarget() {
		s.updateRate()
	}
}

// ccRTT is the round-trip picture the estimator is given.
func (c *Conn) ccRTT() cc.RTT {
	return cc.RTT{Min: c.rtt.Min(), Smoothed: c.rtt.Smoothed(), Variation: c.rtt.Variation(), Latest: c.rtt.Latest()}
}

// unwrap16 returns the packet number closest to near whose low 16 bits are v.
// unwrapTWCCRef returns the reference time (TWCC reference units) a
// report's 24-bit one stands for: the nearest to the last report's (last,
// if set) with the same low 24 bits. The receiver sends its clock's
// reference time modulo 2^24 units (12.4 days); read as it is, arrival
// times jumped back 12.4 days once its clock passed 6.2 days, and the
// estimator's receive rate and the path's least delay lost their footing.
func unwrapTWCCRef(last int64, set bool, ref int32) int64 {
	if !set {
		return int64(ref)
	}
	d := (int64(ref) - last) & (1<<24 - 1)
	if d >= 1<<23 {
		d -= 1 << 24
	}
	return last + d
}

func unwrap16(near int64, v uint16) int64 {
	candidate := near&^0xffff | int64(v)
	switch {
	case candidate > near+0x8000 && candidate >= 0x10000:
		candidate -= 0x10000
	case candidate <= near-0x8000:
		candidate += 0x10000
	}
	return candidate
}

func (r *receiver) handleAnnounce(now clock.Time, data []byte) {
	c := r.c
	// Only the last entry for each stream counts: a message cannot make a
	// stream flip open and closed over and over.
	var last [wire.MaxStreams][4]byte
	var seen uint16
	if len(data) < 4 {
		c.stats.ProtocolErrors++ // an announcement of nothing
	}
	for ; len(data) >= 4; data = data[4:] {
		id, kind, prio := data[0], Kind(data[1]), Priority(data[2])
		if id >= wire.MaxStreams || kind > KindVideo || prio > PriorityHigh {
			c.stats.ProtocolErrors++
			continue
		}
		copy(last[id][:], data[:4])
		seen |= 1 << id
	}
	// An acknowledgement answers an announcement of a stream: one of
	// nothing (empty, or every entry skipped) buys no 20-byte reply.
	r.fb.ackPending = r.fb.ackPending || seen != 0
	for id := range uint8(wire.MaxStreams) {
		if seen&(1<<id) == 0 {
			continue
		}
		kind, prio, open := Kind(last[id][1]), Priority(last[id][2]), last[id][3]&streamFlagOpen != 0
		gen := last[id][3] >> streamGenShift
		st := r.stream(id)
		newer := false
		if st.reused {
			// Its state was reset for the stream reusing the id: the old
			// stream's entries are stale, the new one's start it afresh
			// with the frames it holds.
			if !genNewer(gen, st.gen) {
				continue
			}
			st.reused = false
		} else if st.announced {
			switch {
			case genNewer(gen, st.gen):
				newer = true
			case gen != st.gen:
				continue // an earlier stream's, reordered or repeated
			case open && !st.open:
				continue // this stream reopened: a stale open (reuse takes a new generation)
			}
		}
		if newer {
			// The id is reused: end the old stream first, delivering what
			// it completed (its close may have been lost or overtaken).
			if st.open || st.closeAt != clock.Never {
				r.finishStream(now, st)
			}
			r.resetStream(now, st)
			st.announced, st.open = false, false
		}
		st.gen = gen
		switch {
		case open && st.announced:
			// a repeat
		case open:
			st.kind, st.priority, st.announced, st.open = kind, prio, true, true
			st.jb.SetVideo(kind == KindVideo)
			c.ep.pushEvent(Event{Type: EventStreamOpened, Conn: c, Stream: id, Kind: kind, Priority: prio})
		case !st.announced || st.open:
			if !st.announced {
				// Closed before we heard it open: its frames still get a track.
				st.kind, st.priority, st.announced = kind, prio, true
				st.jb.SetVideo(kind == KindVideo)
				c.ep.pushEvent(Event{Type: EventStreamOpened, Conn: c, Stream: id, Kind: kind, Priority: prio})
			}
			// Frames sent before the close may still be on their way: the
			// stream ends once they are complete or past their deadline.
			st.open = false
			st.closeAt = now.Add(max(r.peerLatency, r.playoutDelay))
		}
	}
}

// resetStream starts a reused stream id afresh.
func (r *receiver) resetStream(now clock.Time, st *recvStream) {
	for len(st.active) > 0 {
		r.giveUp(now, st, &st.slots[st.active[0]], "stream reset")
	}
	r.discardHeld(st)
	clear(st.slots)
	st.jb.Reset()
	st.jb.Expect(0)
	st.highest = -1
	st.closeAt = clock.Never
	st.drops = recvDrops{}
	st.stats = StreamRecvStats{}
	// The old stream's key frames and requests are not the new one's: its
	// first delta without a key frame asks for one at once.
	st.firstAt, st.sawKey, st.keyBegan, st.earlyKey, st.broken, st.keyAbove, st.reused = 0, false, 0, 0, false, 0, false
	st.unsent, st.caughtUp = 0, 0
	if st.stalling {
		r.group.Resume(now)
		st.stalling = false
	}
}

func (s *sender) handleStreamAck(data []byte) {
	if len(data) != streamAckLen {
		s.c.stats.ProtocolErrors++
		return
	}
	open := uint16(data[0])<<8 | uint16(data[1])
	closed := uint16(data[2])<<8 | uint16(data[3])
	due := false
	for _, st := range s.streams {
		if st == nil {
			continue
		}
		bit := uint16(1) << st.id
		if data[4+int(st.id)]&streamGenMask != st.gen {
			// About an earlier stream on the id (a reordered ack).
		} else if (st.open && open&bit != 0) || (!st.open && closed&bit != 0) {
			st.acked = true
		}
		if !st.acked {
			due = true
		}
	}
	s.announceDue = due
}

// RequestKeyFrame asks the peer for a key frame on a stream it sends (a
// PLI), at most once per smoothed RTT per stream: the application's own
// request (a decoder that lost its state).
func (c *Conn) RequestKeyFrame(now clock.Time, stream uint8) error {
	return c.requestKey(now, stream, false)
}

// autoKeyFrame is the session's own key-frame request (a reference frame
// lost, no key frame yet, the NACK list overflowed): as RequestKeyFrame,
// and while no key frame has begun to arrive since the last request, not
// again before two smoothed RTTs and keyFrameWait (the key frame asked for
// may be on its way). A key frame is several times a delta frame: asking
// every RTT on a lossy path, where key frames lose packets most, fed a
// storm of them that filled the bottleneck (seed 1 of the bench's
// arq-rtt100-loss20 asked 394 times in a minute, and on time fell to 0.57).
func (c *Conn) autoKeyFrame(now clock.Time, stream uint8) {
	_ = c.requestKey(now, stream, true)
}

func (c *Conn) requestKey(now clock.Time, stream uint8, auto bool) error {
	if c.state != stateEstablished {
		return c.errClosed()
	}
	if stream >= wire.MaxStreams || c.rcv.streams[stream] == nil {
		return ErrUnknownStream
	}
	f := &c.rcv.fb
	wait := max(c.rtt.Smoothed(), minPLIInterval)
	if auto && c.rcv.streams[stream].keyBegan < f.lastPLI[stream] {
		wait = max(wait, 2*c.rtt.Smoothed()+keyFrameWait)
	}
	if now.Sub(f.lastPLI[stream]) < wait {
		return nil
	}
	f.lastPLI[stream] = now
	f.pli |= 1 << stream
	return nil
}
