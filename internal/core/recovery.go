package core

import (
	"fmt"
	"math"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/fec"
	"github.com/spillway-rt/spillway/wire"
)

// Loss recovery glue: FEC (fec.Encoder, fec.Decoder) and selective
// retransmission (arq.History, arq.Receiver) on the connection's packets.
// The sender's machinery is created when its first stream opens and the
// receiver's when the first media packet arrives, so a side that only
// receives, or only sends, pays for half.

const (
	// minHistoryBytes and maxHistoryBytes bound the retransmission arena:
	// MaxBitrate x Latency, within these.
	minHistoryBytes = 256 << 10
	maxHistoryBytes = 8 << 20

	// maxTailGuess bounds the packet numbers the tail-loss timer lists after
	// a frame's last fragment seen: a frame announcing thousands of
	// fragments (a hostile peer's, or a huge key frame cut off) must not
	// overflow the NACK list; later arrivals reveal any longer gap.
	maxTailGuess = 32

	// conditionsInterval is how often the FEC policy's inputs are refreshed
	// besides each transport-wide report.
	conditionsInterval = 100 * time.Millisecond
)

// fecClass is the FEC class of a frame.
func fecClass(k Kind, key, droppable bool) fec.Class {
	switch {
	case k == KindAudio:
		return fec.ClassAudio
	case k == KindData:
		return fec.ClassData
	case key:
		return fec.ClassKey
	case droppable:
		return fec.ClassDroppable
	}
	return fec.ClassDelta
}

// rtxClass is the retransmission priority (arq.History's prio, 0 first):
// audio, key frames, other video and data, droppable frames.
func rtxClass(k Kind, key, droppable bool) uint8 {
	switch {
	case k == KindAudio:
		return 0
	case key:
		return 1
	case droppable:
		return 3
	}
	return 2
}

// duplicateLastChance names the retransmission classes (rtxClass) whose
// last useful retransmission goes twice (arq.HistoryConfig): audio, as
// DESIGN §2 advises. Seeds 1-10 of the bench's arq rows: on time at 10 %
// loss 0.9962 mean, 2 seeds under 0.995, without it; 0.9971, none under,
// with it (audio 0.9987 -> 0.9997), for 0.15 more retransmissions per loss
// (1.466 -> 1.621). Key frames too cost on time at 20 % loss
// (arq-rtt100-loss20 0.9927 -> 0.9879 with audio, key and delta frames)
// and are left out. Delta frames join while the loss rate is at least
// dupDeltaLoss (dupClasses).
const duplicateLastChance = 1 << 0

// dupDeltaLoss is the loss rate from which delta frames' last useful
// retransmission goes twice too. Delta frames otherwise get it packet by
// packet, when the FEC policy asks (fec.Encoder.AddMedia). Since the
// playout offset keeps the rounds the losses need, a delta whose last
// round fails freezes the picture until a key frame: with deltas always
// in the class, seeds 1-5 of e2e-rtc-rtt200-ge10b3 froze 2.7 s [2.1..8.7]
// against 8.5 s [4.2..9.0]; but on lossless paths with jitter, where the
// tail-loss timer's spurious retransmissions are last chances too, the
// copies cost 2-3 % of wire overhead (jb-accumulate-rtc 1.058 -> 1.088). At
// 5 % loss a failed last round is no longer rare (p^2 = 2.5e-3 of the
// packets that needed one).
const dupDeltaLoss = 0.05

// First retransmissions go twice (arq.HistoryConfig.DuplicateFirst: audio
// and delta frames, the classes whose misses the playout offset's rounds
// count) while dupFirst holds: losses from dupFirstLoss to under
// dupFirstMaxLoss, in bursts shorter than dupFirstBurst (a copy right
// behind its retransmission is lost with it in a burst), for a budget
// under dupFirstLatency. The receiver's recovery allowance then counts a
// first round that fails with about 2p^2 instead of p (firstRoundLoss),
// so one round can be enough where two were.
//
// Seeds 1-5 of the bench, medians without -> with: e2e-rtc-rtt100-loss5
// (RTT 100 ms, 5 % loss, 30 ms jitter) p95 capture to playout 510 ->
// 383 ms, wire overhead 1.401 -> 1.438. At 10 % and 20 % loss
// (rtc-rtt200-loss10, arq-rtt100-loss10 and -loss20) the one round fewer
// froze the picture more (arq-rtt100-loss20: 0 -> 2 freezes, 0 -> 4.5 s
// frozen in its minute): the first round fails more often than 2p^2
// there, and the copies cost 8-14 % of the wire. Live's budget holds many
// rounds, and at its 20 % loss the copies would cost 15 % of the wire: it
// keeps single copies.
const (
	dupFirstLoss    = 0.03
	dupFirstMaxLoss = 0.075
	dupFirstBurst   = 1.5
	dupFirstLatency = time.Second
	dupFirstClasses = 1<<0 | 1<<2 // rtxClass: audio, delta frames
)

// lateRoundsAfter is arq.HistoryConfig.DuplicateAfter for a budget of
// lateRoundsLatency or more (Live's): from a packet's third retransmission
// on, every round goes twice. A budget that long holds 8-9 rounds at RTT
// 300 ms, and at 20 % loss a packet lost 9 times in a row (0.2^9 = 5e-7)
// came once in 10 min of e2e-live-rtt300-loss20 (seed 5's 0.29 s freeze,
// with the offset its 8 rounds kept). Doubled from the third round, the
// copies cost 0.8 % more packets there (0.2^3 of those sent), the chain
// fails with about 2p^2 = 0.08 a round from then on, and the allowance
// needs 7 rounds instead of 9 (recoveryRounds; p95 capture to playout
// 2.73 -> 2.41 s, seeds 1-10 without a freeze). Under RTC's budget a
// third round is rare and the copies compete for a narrow path (seeds 1-5
// of e2e-rtc-rtt200-ge10b3 froze 2.8 -> 5.0 s median with them): off.
// Losses in bursts (a drop-tail queue overflowing behind TCP) take a copy
// with its round and add load where the queue is full: with them doubled
// as well, rfc8867-5.6-q1000-live seed 6 froze 11.8 -> 20.1 s; off there
// too (lateRounds).
const (
	lateRoundsAfter   = 2
	lateRoundsLatency = time.Second
)

// lateRounds returns arq.HistoryConfig.DuplicateAfter for a sender whose
// Latency is latency on a path losing in bursts of mean burst (the slow
// estimate dupFirst reads, lossRate.settled): lateRoundsAfter from
// lateRoundsLatency while the bursts are shorter than dupFirstBurst, else
// 0.
func lateRounds(latency time.Duration, burst float64) int {
	if latency >= lateRoundsLatency && burst < dupFirstBurst {
		return lateRoundsAfter
	}
	return 0
}

// copySpacing is how far behind its retransmission a second copy goes
// (arq.HistoryConfig.CopySpacing) on a path losing in bursts of burst
// packets (at least dupFirstBurst) while we send rate bit/s in packets of
// size bytes: copySpacingBursts mean bursts of our packets, at most
// maxCopySpacing; 0 (right behind) for shorter bursts. In a Gilbert chain
// with mean burst b the loss of the packet n behind a lost one stays
// correlated as (1 - 1/b)^n: e^-3 after 3b. The burst is the slow
// estimate's (lossTally, as dupFirst's): with the FEC policy's 5 s one,
// seed 4 of arq-rtt100-loss20 (random loss, whose bursts average 1.25)
// spaced its copies for a while and fell from 0.9935 to 0.9831 on time.
func copySpacing(burst float64, rate int64, size int) time.Duration {
	if burst < dupFirstBurst || rate <= 0 {
		return 0
	}
	perPacket := float64(size*8) / float64(rate) // s
	d := time.Duration(copySpacingBursts * burst * perPacket * float64(time.Second))
	return min(d, maxCopySpacing)
}

const (
	copySpacingBursts = 3
	maxCopySpacing    = 50 * time.Millisecond
)

// dupFirst reports whether first retransmissions go twice at loss rate
// loss in bursts of mean burst, for a sender whose Latency is latency. The
// sender (from feedback, lossTally) and the receiver (from its receive
// window, for the recovery allowance) ask it of the same estimator
// (lossRate.settled): slow, about 2000 packets, so the two agree and the
// copies do not come and go with a second's losses.
func dupFirst(loss, burst float64, latency time.Duration) bool {
	return loss >= dupFirstLoss && loss < dupFirstMaxLoss && burst < dupFirstBurst && latency < dupFirstLatency
}

// dupClasses is the classes whose last useful retransmission goes twice
// at loss rate loss.
func dupClasses(loss float64) uint8 {
	if loss >= dupDeltaLoss {
		return duplicateLastChance | 1<<2 // rtxClass 2: delta frames
	}
	return duplicateLastChance
}

// startRecovery creates the sender's FEC encoder and history.
func (s *sender) startRecovery() error {
	c := s.c
	if s.prot == nil {
		s.prot = make([]byte, 0, c.cfg.MaxDatagramSize)
	}
	if s.fec == nil && !c.cfg.DisableFEC {
		enc, err := fec.NewEncoder(fec.EncoderConfig{MaxSymbol: wire.ProtectedHeaderLen + c.fragSize(), MaxOverhead: c.cfg.MaxFECOverhead})
		if err != nil {
			return fmt.Errorf("spillway: fec encoder: %w", err)
		}
		s.fec = enc
		s.updateConditions(0)
	}
	if s.hist == nil && !c.cfg.DisableRetransmission {
		size := int64(float64(c.cfg.MaxBitrate) / 8 * c.cfg.Latency.Seconds())
		size = min(max(size, minHistoryBytes), maxHistoryBytes)
		_, burst := s.lossTally.rate.settled()
		h, err := arq.NewHistory(arq.HistoryConfig{MaxBytes: int(size), DuplicateLastChance: duplicateLastChance, DuplicateAfter: lateRounds(c.cfg.Latency, burst)})
		if err != nil {
			return fmt.Errorf("spillway: send history: %w", err)
		}
		s.hist = h
	}
	return nil
}

// updateConditions feeds the FEC policy the path as measured now, and sets
// the send history's doubled last chances for the loss rate (dupClasses).
func (s *sender) updateConditions(now clock.Time) {
	c := s.c
	loss, burst := s.loss.Estimate(now)
	if s.hist != nil {
		s.hist.SetDuplicateLastChance(dupClasses(loss))
		p, b := s.lossTally.rate.settled()
		var first uint8
		if dupFirst(p, b, c.cfg.Latency) {
			first = dupFirstClasses
		}
		s.hist.SetDuplicateFirst(first)
		s.hist.SetDuplicateAfter(lateRounds(c.cfg.Latency, b))
		s.hist.SetCopySpacing(copySpacing(b, s.frameRate(), c.fragSize()))
	}
	if s.fec == nil {
		return
	}
	s.fec.SetConditions(now, fec.Conditions{
		Loss:      loss,
		MeanBurst: burst,
		RTT:       c.rtt.WindowedMin(),
		OneWay:    s.oneWay(now),
		ARQ:       s.hist != nil,
	})
	s.conditionsAt = now
}

// oneWay predicts the one-way delay of a packet sent now: half the minimum
// RTT (the path without queues; Conn.owd) plus the queue our own packets built on it
// and the packet's own serialisation (pathModel), rounded up to 5 ms so the
// FEC policy, which recomputes when its inputs change, sees a steady value.
// The retransmission check uses the same value: seeds 1-5 of the bench's
// arq rows sent 3 retransmissions that arrived after their deadline
// without the rounding, 2 with it (before the path model kept the bytes
// sent before its first rate sample; none since). (Half the smoothed RTT, from pings
// every second, lags the queue a key frame builds and was never the larger
// in the bench's arq rows.)
func (s *sender) oneWay(now clock.Time) time.Duration {
	c := s.c
	d := c.owd() + s.path.queueDelay(now)
	const step = 5 * time.Millisecond
	return (d + step - 1) / step * step
}

// frameOneWay predicts the one-way delay of a frame's packet sent now,
// for the proactive drop: half the minimum RTT plus the path model's best
// guess of the queue (pathModel.fitQueueDelay) and the least margin.
func (s *sender) frameOneWay(now clock.Time) time.Duration {
	return s.c.owd() + s.path.fitQueueDelay(now) + pathMinMargin
}

// fecDeadline is the deadline FEC protects a frame's packet sent now to:
// capture + Latency while its repairs can still arrive by then (the
// bench's on-time ratio counts against Latency, and at RTT 200 ms only FEC
// makes it), else capture + the budget, the receiver's playout offset when
// that is longer, as retransmissions are held to. A key frame's tail, or
// a packet behind a queue, past Latency's reach went unprotected before:
// in the bench's random-loss-5 (seeds 2, 3, 5, a temporary print of the
// frames given up) nearly every key frame the receiver gave up on lacked
// one or two of its 20-39 fragments, the rest of the freeze spiral.
func (s *sender) fecDeadline(now clock.Time, f *outFrame) clock.Time {
	if s.fec.Reaches(now, f.deadline) {
		return f.deadline
	}
	return f.capture.Add(s.c.budget()) // f.deadline is capture + Latency, never more
}

// protect records a media packet just sent with FEC and the history.
func (s *sender) protect(now clock.Time, pn int64, h *wire.DataHeader, payload []byte, f *outFrame, kind Kind) {
	if s.fec == nil && s.hist == nil {
		return
	}
	prot, err := wire.AppendProtected(s.prot[:0], h, payload)
	if err != nil {
		return // every field was checked when the frame was queued
	}
	dup := false
	if s.fec != nil {
		dup = s.fec.AddMedia(now, pn, prot, fecClass(kind, f.key, f.droppable), s.fecDeadline(now, f), f.next == f.count)
	}
	if s.hist != nil {
		s.hist.Put(now, pn, prot, f.capture.Add(s.c.budget()), rtxClass(kind, f.key, f.droppable))
		if dup {
			s.hist.MarkLastChance(pn)
		}
	}
}

// recoveryDue reports whether a retransmission or a repair packet waits
// (a spaced copy once it is due).
func (s *sender) recoveryDue(now clock.Time) bool {
	return (s.hist != nil && s.hist.HasRetransmit(now)) || (s.fec != nil && s.fec.RepairsDue() > 0)
}

// recoveryBacklog returns the retransmissions and repair packets waiting
// to leave and their bytes on the wire (ConnStats.RecoveryBacklog).
func (s *sender) recoveryBacklog() (packets int, bytes int64) {
	if s.hist != nil {
		// History holds each packet's protected form (protect): its
		// retransmission carries the payload behind a longer header.
		k, b := s.hist.Queued()
		packets += k
		bytes += b + int64(k*(wire.RetransmitHeaderLen-wire.ProtectedHeaderLen))
	}
	if s.fec != nil {
		k := s.fec.RepairsDue()
		packets += k
		bytes += s.fec.RepairBytesDue() + int64(k*wire.RepairHeaderLen)
	}
	return packets, bytes
}

// recoveryReadyAt returns when the next retransmission or repair packet
// may go, pacing aside: at once (the least time) when one waits, when the
// next spaced copy is due (arq.History.NextCopy), or clock.Never.
func (s *sender) recoveryReadyAt() clock.Time {
	if s.recoveryDue(clock.Time(math.MinInt64)) {
		return clock.Time(math.MinInt64)
	}
	if s.hist != nil {
		return s.hist.NextCopy()
	}
	return clock.Never
}

// pollRetransmit sends the next retransmission that can still arrive in
// time (arq.History decides; docs/PROTOCOL.md §3.3 says how it looks).
func (s *sender) pollRetransmit(now clock.Time, dst []byte) (int, bool) {
	if s.hist == nil || !s.hist.HasRetransmit(now) {
		return 0, false
	}
	c := s.c
	// When would it arrive: retransmissions go ahead of everything in the
	// pacer but audio, so after the path's delay and its queue.
	oneWay := s.oneWay(now)
	for s.hist.HasRetransmit(now) {
		orig, n, _, ok := s.hist.PollRetransmit(now, oneWay, s.prot[:cap(s.prot)])
		if !ok {
			return 0, false
		}
		if p, ok := s.lookupSent(orig); ok && p.nacked != 0 {
			s.wait[cc.ClassRetransmission].add(now.Sub(p.nacked))
			if s.frameBytes > p.nackedFrames {
				s.rtxBehind++
			}
			// Measured once per NACK: a spaced copy (DESIGN §2's doubled
			// last chance) waits up to 50 ms on purpose, behind frames.
			s.history[orig&(historySize-1)].nacked = 0
		}
		audio := s.isAudio(orig) // before sendCopy records the copy, perhaps in orig's slot
		b, payload, ok := s.sendCopy(now, orig, s.prot[:n], dst)
		if !ok {
			continue // cannot happen: the history holds what protect stored
		}
		c.stats.RetransmittedPacketsSent++
		c.stats.RetransmittedBytesSent += int64(payload)
		if audio {
			s.audioWire += int64(b)
		}
		c.sent(now, b, classMedia)
		return b, true
	}
	return 0, false
}

// sendCopy writes into dst a retransmission (docs/PROTOCOL.md §3.3) of the
// fragment whose protected form is prot, originally packet orig, takes a
// packet number for it and records it as sent; the caller counts it and
// calls Conn.sent. It returns the datagram's length and the fragment's.
func (s *sender) sendCopy(now clock.Time, orig int64, prot, dst []byte) (n, payloadLen int, ok bool) {
	c := s.c
	var h wire.DataHeader
	payload, err := wire.ParseProtected(prot, &h)
	if err != nil {
		return 0, 0, false
	}
	h.DstConnID = c.remoteCID
	h.PacketNumber = c.pnTrunc()
	h.SendTime = wire.Timestamp(now, c.epoch)
	h.Retransmit = true
	h.Original = uint32(orig) & (1<<24 - 1)
	b, err := h.Append(dst[:0])
	if err != nil {
		return 0, 0, false
	}
	b = append(b, payload...)
	pn := c.consumePN()
	s.record(pn, sentPacket{key: pn + 1, at: now, size: int32(len(b)), media: true})
	return len(b), len(payload), true
}

// pollRepair sends the next due FEC repair packet (docs/PROTOCOL.md §5).
func (s *sender) pollRepair(now clock.Time, dst []byte) (int, bool) {
	if s.fec == nil || s.fec.RepairsDue() == 0 {
		return 0, false
	}
	c := s.c
	blk, _, n, ok := s.fec.PollRepair(now, dst[wire.RepairHeaderLen:])
	if !ok {
		return 0, false
	}
	h := wire.RepairHeader{
		DstConnID:        c.remoteCID,
		PacketNumber:     c.pnTrunc(),
		SendTime:         wire.Timestamp(now, c.epoch),
		BasePacketNumber: uint32(blk.Base) & (1<<24 - 1),
		Mask:             blk.Mask,
		M:                uint8(blk.M),
		Index:            uint8(blk.Index),
	}
	if _, err := h.Append(dst[:0]); err != nil {
		return 0, false // the encoder's blocks always fit the header
	}
	size := wire.RepairHeaderLen + n
	if s.isAudio(blk.Base) {
		// Audio has its own FEC lane: its repair is the audio's cost.
		s.audioWire += int64(size)
	}
	pn := c.consumePN()
	s.record(pn, sentPacket{key: pn + 1, at: now, size: int32(size), media: true})
	c.sent(now, size, classMedia)
	return size, true
}

// isAudio reports whether packet pn, still in the sent history, carried a
// fragment of an audio stream's frame.
func (s *sender) isAudio(pn int64) bool {
	p, ok := s.lookupSent(pn)
	if !ok || p.frame == 0 {
		return false
	}
	st := s.stream(p.stream)
	return st != nil && st.cfg.Kind == KindAudio
}

// handleNACK queues retransmissions for a NACK's packet numbers.
func (s *sender) handleNACK(now clock.Time, n *wire.NACK) {
	c := s.c
	c.stats.NACKsReceived++
	n.Range(func(seq uint16) bool {
		pn := unwrap16(c.nextPN-1, seq)
		c.stats.PacketsNACKedByPeer++
		if s.hist != nil && pn < c.nextPN {
			if s.hist.OnNACK(now, pn) {
				if p := &s.history[pn&(historySize-1)]; p.key == pn+1 {
					p.nacked, p.nackedFrames = now, s.frameBytes
				}
			}
		}
		return true
	})
}

// startRecovery creates the receiver's FEC decoder and NACK generator when
// the first media or repair packet, pn, arrives (it is already in the
// connection's receive window).
func (r *receiver) startRecovery(now clock.Time, pn int64) {
	c := r.c
	if r.fecDec == nil {
		// The peer's fragments are known by now (data before the
		// handshake completed is dropped): size the copies for them.
		sym := wire.ProtectedHeaderLen + r.peerFragSize
		d, err := fec.NewDecoder(fec.DecoderConfig{MaxSymbol: sym})
		if err == nil {
			r.fecDec = d
			r.recovered = make([]byte, sym+fec.SymbolOverhead)
		}
	}
	if r.nack == nil && !c.cfg.DisableRetransmission {
		n, err := arq.NewReceiver(arq.ReceiverConfig{MaxNACKs: nackRounds(max(c.cfg.Latency, r.peerLatency))})
		if err == nil {
			r.nack = n
			r.nack.SetRTT(&c.rtt)
			r.expectFromStart(now, pn)
			if r.fecDec != nil {
				r.nack.SetHoldFunc(r.fecHold)
			}
			r.nackScratch = make([]int64, 0, 1024) // the generator lists at most MaxMissing (1000)
		}
	}
}

// nackRoundFloor is the shortest NACK round counted on when the rounds a
// packet may take are sized to the budget (nackRounds): about one RTT on a
// short path.
const nackRoundFloor = 50 * time.Millisecond

// nackRounds is how many NACK rounds a lost packet may take: enough to
// span the budget at nackRoundFloor a round (the deadline still ends them
// first), and never fewer than arq's default. Live's 3 s takes 60; ten
// rounds at RTT 100 ms gave up after about a second, with two left
// (TestNACKRoundsLastTheBudget).
func nackRounds(budget time.Duration) int {
	return min(max(int(budget/nackRoundFloor), arq.DefaultMaxNACKs), 255)
}

// expectFromStart lets the NACK generator request packets lost before the
// first media packet: the peer's packet numbers start at 0, so while pn is
// still near the start (within the NACK list and the receive window) the
// generator starts at 0 and is told which of the packets before pn came
// (feedback, pings: not media). Without it a lost first frame was never
// requested.
func (r *receiver) expectFromStart(now clock.Time, pn int64) {
	if pn <= 0 || pn > arq.DefaultMaxMissing || pn >= arq.WindowSize {
		return
	}
	r.nack.Expect(now, 0)
	for q := range pn {
		if r.c.window.Contains(q) {
			r.nack.OnPacket(now, q, clock.Never)
		}
	}
}

// fecHold tells the NACK generator until when FEC may still rebuild pn:
// once a repair packet of pn's block has come, the decoder knows. (Holding
// every gap briefly for a repair that might follow it cost frames on time
// in the arq bench rows and saved few retransmissions, so a gap whose block
// is not yet known is NACKed at once.)
func (r *receiver) fecHold(pn int64) clock.Time {
	until, wait := r.fecDec.PendingUntil(pn)
	if !wait {
		return 0
	}
	return until
}

// drainRecovered processes the packets FEC rebuilt.
func (r *receiver) drainRecovered(now clock.Time) {
	if r.fecDec == nil {
		return
	}
	for {
		pn, n, ok := r.fecDec.PollRecovered(r.recovered)
		if !ok {
			return
		}
		if r.nack != nil {
			r.nack.Recovered(now, pn)
		}
		r.handleRecovered(now, pn, r.recovered[:n])
	}
}

// packetDeadline is when a media packet sent at sendTS stops being useful
// here: its send time (at or after its frame's capture) mapped to our clock,
// plus the budget. The sender checks its frame's real deadline again.
func (r *receiver) packetDeadline(sendTS int64) clock.Time {
	return r.localTime(sendTS).Add(max(r.peerLatency, r.playoutDelay))
}

// notePacket tells the NACK generator a packet that is not media arrived.
func (r *receiver) notePacket(now clock.Time, pn int64) {
	if r.nack != nil {
		r.nack.OnPacket(now, pn, clock.Never)
	}
}

// appendNACKs adds a NACK message for what the generator asks now, and
// PLIs when its list overflowed. The message takes as many (PID, BLP)
// pairs as budget has room for (4 bytes each after a 12-byte header, at most
// wire.MaxNACKPairs); numbers that do not fit are asked again at their
// next round (with a max_datagram_size of at least 1200 that takes over
// 240 pairs, 240 to 4000 numbers, at once).
func (c *Conn) appendNACKs(now clock.Time, b []byte, budget int) []byte {
	r := &c.rcv
	if r.nack == nil {
		return b
	}
	// The reply credit pays for the message and the datagram's header (a
	// NACK may be all a feedback packet carries).
	credit := c.replyCredit - wire.FeedbackHeaderLen
	maxPairs := min((min(budget, credit)-12)/4, wire.MaxNACKPairs)
	pns, keyFrame := r.nack.PollNACK(now, r.nackScratch[:0])
	if h := r.nack.HopelessUntil(); h > r.hopeless {
		r.hopeless = h
		r.askKeysForHopeless(now, h)
	}
	r.askKeysForUnreachable(now)
	if keyFrame {
		// Through RequestKeyFrame: at most one PLI per stream per RTT.
		for _, st := range r.streams {
			if st != nil && st.kind == KindVideo {
				c.autoKeyFrame(now, st.id)
			}
		}
	}
	if len(pns) == 0 {
		return b
	}
	if maxPairs <= 0 {
		if credit < budget {
			c.stats.RepliesWithheld++ // the reply credit, not the room
		}
		return b
	}
	n := &r.fb.nackMsg
	n.Pairs = n.Pairs[:0]
	sent := 0
	for _, pn := range pns {
		n.AddSeq(uint16(pn))
		if len(n.Pairs) > maxPairs {
			n.Pairs = n.Pairs[:maxPairs]
			break
		}
		sent++
	}
	out, err := n.Append(b)
	if err != nil {
		return b
	}
	if sent < len(pns) && credit < budget {
		c.stats.RepliesWithheld++
	}
	c.replyCredit -= len(out) - len(b) + wire.FeedbackHeaderLen
	c.stats.NACKsSent++
	c.stats.PacketsNACKed += int64(sent)
	return out
}
