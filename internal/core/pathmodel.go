package core

import (
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
)

// pathModel predicts the queueing delay a packet sent now meets on the
// path, so that a retransmission is only sent when it can still arrive in
// time (arq.History.PollRetransmit's oneWay). It keeps a virtual queue of
// this connection's media bytes, drained at the path's capacity as
// measured: the highest delivery rate transport-wide feedback showed over
// the last pathRateWindow (a windowed maximum, as BBR estimates its
// bottleneck bandwidth, RFC 9406-draft §4.5.2 / Linux tcp_bbr.c), capped
// at the transport target, or the recent delivery rate with the lasting
// loss added back when that is higher (vqRate). Until a rate is
// measured it predicts no queue, but keeps the bytes sent meanwhile: they
// drain at the first rate measured, from when they were sent. Capacity never measured (the path was
// never filled) reads low, which predicts more queue than there is: the
// error is on the side of not sending a retransmission that might be late.
//
// This is the transport's interim view of the path; the cc issue's
// estimator supersedes it.
type pathModel struct {
	// ceiling bounds the measured capacity, bit/s (0: none): a measured
	// transport target, once an estimator gives one, since the delivery
	// rate seen before a capacity drop is not the path's any more.
	ceiling float64
	rates   [pathRateSlots]rateSlot
	// rate's cache.
	rateAt   clock.Time
	rateVal  float64
	rateCeil float64
	rateOK   bool
	vq       float64 // bytes in the virtual queue, never corrected down (for retransmissions)
	fit      float64 // the same, corrected both ways by measurement (for frames)
	vqAt     clock.Time
	// deliv is the rate our bytes arrived at over the last few reports,
	// fading by 1/delivReports a report (noteDelivery). What arrived is
	// never more than the path carries, so the retransmissions' queue
	// drains at it when it is above the ceiling: a sender above its
	// transport target on a path with room (random loss keeps the target
	// low) queues nothing, and the ceiling alone read that as a queue
	// growing without end.
	deliv     fadingRate
	delivArr  clock.Time // the latest arrival deliv counted (if delivSet)
	delivSet  bool
	delivPend int64 // bytes reported whose span has not come yet
	// lossP is the path's lasting loss rate (the sender's lossTally, over
	// about 2000 packets: a queue's brief overflow moves it less than
	// random loss that lasts).
	lossP float64

	// The queue feedback measured: a received packet's arrival minus send
	// time (clocks apart by an unknown constant) over the least such value
	// of the last pathRateSlots seconds is the queue it met. The latest
	// report's is kept with its packet's send time; anchor raises the
	// virtual queue to match, so a queue the virtual one missed (another
	// flow's, or ours before a capacity drop was known) counts.
	owdMin   [pathRateSlots]owdSlot
	measQ    time.Duration
	measAt   clock.Time
	measured bool // measQ and measAt hold a measurement
	// maxQ is the largest queue measured over the last 10 s. Bytes sent
	// into a full drop-tail queue are dropped, not queued: the queue for
	// frames is believed no longer than 5/4 of it (and 50 ms more).
	maxQ time.Duration
	// busyRate is our delivery rate over the latest reports while a queue
	// grows on the path (0: the last report did not show one growing):
	// the path was busy, so our bytes left it at that rate. After a
	// capacity drop the windowed maximum still remembers the rate before;
	// the queue for frames drains at this instead (fitRate).
	busyRate float64
	busy     fadingRate // what arrived over the busy reports
	busyFrom clock.Time // the send time of the busy reports' first packet
	lastArr  clock.Time // the latest arrival reported
	// sent tells what we sent, for the busy rate's test that the queue is
	// ours: the sender's own history.
	sent sentLog
	// leastQ is the least queue the latest report's packets met: jitter
	// after the bottleneck lifts some of them, rarely all.
	leastQ, prevLeastQ time.Duration
}

type owdSlot struct {
	start clock.Time
	min   time.Duration
	maxD  time.Duration // the largest arrival - send seen (its queue is maxD - the base)
	set   bool
}

type rateSlot struct {
	start clock.Time
	bps   float64
}

const (
	pathRateSlots   = 10
	pathRateSlotLen = time.Second // pathRateWindow = 10 s

	// A delivery-rate sample needs this many packets arriving over at least
	// this long: two packets landing together say nothing about capacity.
	minRatePackets = 5
	minRateSpan    = 5 * time.Millisecond

	// The prediction's margin: a fraction of the predicted delay and at
	// least pathMinMargin. In the bench's arq rows (4 Mbit/s bottleneck)
	// the prediction without them fell short of the truth by up to 4 ms.
	pathMargin    = 0.25
	pathMinMargin = 4 * time.Millisecond

	// busyRate (noteBusy): reports whose every packet met at least
	// pathBusyQueue of queue, more by busyGrowth than the report before,
	// measure the rate the path drains our bytes at, once their arrivals
	// span busyMinSpan (30 ms of jitter after the bottleneck moves a
	// span's ends); each report's weight fades by 1/busyReports a report.
	// The queue for frames drains at it while it is under busyDrop of the
	// windowed maximum: a capacity drop the maximum still hides.
	pathBusyQueue = 20 * time.Millisecond
	busyGrowth    = 10 * time.Millisecond
	busyMinSpan   = 100 * time.Millisecond
	busyReports   = 4
	busyDrop      = 0.25
	// ... and only while we send at least busyOurs x that (over the busy
	// reports' time, by our own send log): the queue is ours. A loss-based
	// flow's burst fills a shared queue too, and then our bytes wait
	// behind its, not behind ours.
	busyOurs = 2

	// deliv's memory, in reports (50-100 ms apart: a report's weight is
	// 1/e after about 2.5 reports, 125-250 ms). It must forget the rate
	// before a capacity drop: a drain faster than the path sends retransmissions
	// into a queue that holds them past their deadline. Over seeds 1-20
	// of the bench's random-loss-5, collapse-av-live and rfc8867-5.1, 2
	// and 3 did best; 5 and 10 froze longer.
	delivReports = 3
	// maxLossP bounds lossP's correction (at most 2 x what arrived).
	maxLossP = 0.5
	// delivReset: arrivals this far before the latest counted restart
	// deliv's spans (noteDelivery).
	delivReset = time.Second
)

// onSent adds a datagram to the virtual queue.
func (m *pathModel) onSent(now clock.Time, size int) {
	m.drain(now)
	m.vq += float64(size)
	m.fit += float64(size)
}

func (m *pathModel) drain(now clock.Time) {
	if now <= m.vqAt {
		return
	}
	r := m.rate(now)
	if r <= 0 {
		// No rate yet: keep the bytes, and drain them from when they
		// started queueing once one is measured. (Dropping them lost the
		// first key frame's queue: two retransmissions at 0.4 s on seed 2
		// of the bench's arq-rtt100-ge10b3 arrived 6-7 ms after their
		// deadline, the model seeing a 52 ms queue as 30 ms.)
		if m.vq == 0 && m.fit == 0 {
			m.vqAt = now
		}
		return
	}
	dt := now.Sub(m.vqAt).Seconds()
	m.vq = max(0, m.vq-m.vqRate(r)/8*dt)
	m.fit = max(0, m.fit-m.fitRate(r)/8*dt)
	m.vqAt = now
}

// vqRate is the rate the retransmissions' queue drains at, given the
// capped windowed maximum r: the recent delivery rate when above it, with
// the path's lasting loss rate added back (lost bytes leave the queue as
// much as delivered ones; with them left out, 5 % random loss grew it by
// 5 % of what was sent, 50 ms a second at 1.6 Mbit/s).
func (m *pathModel) vqRate(r float64) float64 {
	return max(r, m.deliv.rate()/(1-min(m.lossP, maxLossP)))
}

// fitRate is the rate the queue for frames drains at, given the windowed
// maximum r: the busy path's delivery rate when under busyDrop of it.
func (m *pathModel) fitRate(r float64) float64 {
	if m.busyRate > 0 && m.busyRate < r*busyDrop {
		return m.busyRate
	}
	return r
}

// rate returns the windowed maximum delivery rate in bit/s, 0 if none,
// capped at the ceiling. It is asked several times per packet sent at one
// instant: the answer is kept until the time, the samples or the ceiling
// change.
func (m *pathModel) rate(now clock.Time) float64 {
	if m.rateOK && now == m.rateAt && m.rateCeil == m.ceiling {
		return m.rateVal
	}
	m.rateAt, m.rateCeil, m.rateOK = now, m.ceiling, true
	m.rateVal = m.computeRate(now)
	return m.rateVal
}

func (m *pathModel) computeRate(now clock.Time) float64 {
	best := 0.0
	for _, s := range m.rates {
		if s.bps > best && now.Sub(s.start) < pathRateSlots*pathRateSlotLen {
			best = s.bps
		}
	}
	if m.ceiling > 0 && best > m.ceiling {
		best = m.ceiling
	}
	return best
}

// queueDelay predicts how long a packet sent now waits in the path's
// queue: the bytes ahead of it at the measured rate, with a margin for the
// rate's error and the packet's own serialisation (pathMargin of the delay,
// at least pathMinMargin). Its own size is not charged at the measured
// rate: on an app-limited path that rate is ours, not the path's, and a
// 1200-byte packet at an audio stream's 100 kbit/s would read as 100 ms.
func (m *pathModel) queueDelay(now clock.Time) time.Duration {
	d, ok := m.delayOf(now, false)
	if !ok {
		return 0
	}
	return d + max(pathMinMargin, time.Duration(float64(d)*pathMargin))
}

// delayOf drains the virtual queues to now and returns one of them (fit,
// or the one only raised) at the measured rate; false before a rate is
// measured.
func (m *pathModel) delayOf(now clock.Time, fit bool) (time.Duration, bool) {
	m.drain(now)
	r := m.rate(now)
	if r <= 0 {
		return 0, false
	}
	var q, rate float64
	if fit {
		q, rate = m.fit, m.fitRate(r)
	} else {
		q, rate = m.vq, m.vqRate(r)
	}
	return time.Duration(q * 8 / rate * float64(time.Second)), true
}

// fitQueueDelay is the queue the latest measurement implies (corrected
// down as well as up), without margin: the sender's best guess, for
// predicting when a frame arrives and for pushback. Retransmissions use
// queueDelay, which errs on the side of not sending one that may be late.
func (m *pathModel) fitQueueDelay(now clock.Time) time.Duration {
	d, ok := m.delayOf(now, true)
	if !ok {
		return 0
	}
	if m.measured {
		d = min(d, m.maxQ+m.maxQ/4+50*time.Millisecond)
	}
	return d
}

// onFeedback takes a transport-wide report's packets (in packet-number
// order) and samples the delivery rate: bytes that arrived after the first
// received packet, over the time they took.
func (m *pathModel) onFeedback(now clock.Time, pkts []cc.PacketResult) {
	var first, last clock.Time
	var bytes int64
	n := 0
	for i := range pkts {
		p := &pkts[i]
		if !p.Received {
			continue
		}
		if n == 0 {
			first, last = p.ArrivalTime, p.ArrivalTime
		} else {
			bytes += int64(p.Size)
			first = clock.Min(first, p.ArrivalTime)
			last = clock.Max(last, p.ArrivalTime)
		}
		n++
	}
	m.measure(now, pkts)
	m.noteBusy(now, pkts)
	m.noteDelivery(pkts)
	span := last.Sub(first)
	if n < minRatePackets || span < minRateSpan {
		return
	}
	bps := float64(bytes) * 8 / span.Seconds()
	// Times may be negative (only differences mean anything): floor them.
	k := int64(now) / int64(pathRateSlotLen)
	if int64(now)%int64(pathRateSlotLen) < 0 {
		k--
	}
	slot := &m.rates[(k%pathRateSlots+pathRateSlots)%pathRateSlots]
	if start := clock.Time(k * int64(pathRateSlotLen)); slot.start != start || slot.bps == 0 {
		*slot = rateSlot{start: start}
	}
	slot.bps = max(slot.bps, bps)
	m.rateOK = false
}

// noteBusy keeps busyRate after a report (measure first): while the queue
// grows (the constants' comment), the bytes that arrived since the last
// arrival of the report before, over that time (the spans tile, so jitter
// moves only their ends). A busy path delivers back to back, so even the
// two or three packets a collapsed path delivers per report tell its rate.
// The queue is ours while we send at least busyOurs x that rate: what we
// sent (the sender's history, sent) from the busy reports' first packet to
// now, over that time. (The reported packets' own send span says nothing of it: a
// collapsed path reports two or three packets of one burst.) A queue that
// stands without growing (another flow's: a loss-based TCP keeps it full)
// drains at the path's rate, not at our share of it, and is not counted.
func (m *pathModel) noteBusy(now clock.Time, pkts []cc.PacketResult) {
	var bytes, firstSize int64
	var first, last, firstSend clock.Time
	n := 0
	for i := range pkts {
		p := &pkts[i]
		if i == 0 || p.SendTime < firstSend {
			firstSend = p.SendTime
		}
		if !p.Received {
			continue
		}
		bytes += int64(p.Size)
		if n == 0 || p.ArrivalTime < first {
			first, firstSize = p.ArrivalTime, int64(p.Size)
		}
		if n == 0 || p.ArrivalTime > last {
			last = p.ArrivalTime
		}
		n++
	}
	if n == 0 {
		return
	}
	wasBusy, prev := m.busy.span > 0, m.lastArr
	if prev != 0 && last < prev.Add(-delivReset) {
		// The receiver's reference time wrapped or restarted
		// (noteDelivery): the spans start over from this report.
		wasBusy, prev, m.lastArr = false, 0, last
	}
	m.lastArr = clock.Max(m.lastArr, last)
	if !m.measured || m.leastQ < pathBusyQueue || m.leastQ < m.prevLeastQ+busyGrowth {
		m.busyRate, m.busy = 0, fadingRate{}
		return
	}
	if !wasBusy || prev == 0 || !last.After(prev) {
		// The first busy report: its own packets after the first.
		if n < 2 || !last.After(first) {
			return
		}
		m.busy = fadingRate{float64(bytes - firstSize), last.Sub(first).Seconds()}
		m.busyFrom = firstSend
	} else {
		m.busy.add(float64(bytes), last.Sub(prev).Seconds())
	}
	m.busyRate = 0
	if span := now.Sub(m.busyFrom); m.busy.span >= busyMinSpan.Seconds() && span > 0 && m.sent != nil &&
		float64(m.sent.sentAfter(m.busyFrom-1))*8/span.Seconds() >= busyOurs*m.busy.rate() {
		m.busyRate = m.busy.rate()
	}
}

// sentLog is what the path model asks of the sender: the bytes of the
// media packets sent after a time (sender.sentAfter).
type sentLog interface {
	sentAfter(at clock.Time) int64
}

// noteDelivery adds a report's received bytes to deliv, over the time
// since the latest arrival counted before. Reports list each packet once
// (the repeats are skipped before), so the bytes tile; arrivals reordered
// before that latest one add their bytes to the next span. Arrivals more
// than delivReset before it mean the receiver's reference time wrapped
// (every 12 days) or restarted: the spans start over from the report.
func (m *pathModel) noteDelivery(pkts []cc.PacketResult) {
	var bytes int64
	var newest clock.Time
	n := 0
	for i := range pkts {
		p := &pkts[i]
		if !p.Received {
			continue
		}
		if n == 0 || p.ArrivalTime > newest {
			newest = p.ArrivalTime
		}
		bytes += int64(p.Size)
		n++
	}
	switch {
	case n == 0:
		return
	case !m.delivSet || newest < m.delivArr.Add(-delivReset):
		// The first arrival counted starts the span: the bytes of this
		// report came before it.
		m.delivArr, m.delivSet, m.delivPend = newest, true, 0
		return
	case !newest.After(m.delivArr):
		m.delivPend += bytes
		return
	}
	m.deliv.addKeep(float64(m.delivPend+bytes), newest.Sub(m.delivArr).Seconds(), 1-1.0/delivReports)
	m.delivArr, m.delivPend = newest, 0
}

// fadingRate is bytes over seconds, each report's share fading by
// 1/busyReports a report.
type fadingRate struct{ bytes, span float64 }

func (f *fadingRate) add(bytes, span float64) {
	f.addKeep(bytes, span, 1-1.0/busyReports)
}

// addKeep adds a report's bytes and span, keeping keep of what was there.
func (f *fadingRate) addKeep(bytes, span, keep float64) {
	f.bytes = f.bytes*keep + bytes
	f.span = f.span*keep + span
}

// rate is in bit/s (0 without a span).
func (f fadingRate) rate() float64 {
	if f.span <= 0 {
		return 0
	}
	return f.bytes * 8 / f.span
}

// measure updates the windowed least one-way delay (on the two clocks) and
// the queue the report's last received packet met.
func (m *pathModel) measure(now clock.Time, pkts []cc.PacketResult) {
	k := int64(now) / int64(pathRateSlotLen)
	if int64(now)%int64(pathRateSlotLen) < 0 {
		k--
	}
	slot := &m.owdMin[(k%pathRateSlots+pathRateSlots)%pathRateSlots]
	if start := clock.Time(k * int64(pathRateSlotLen)); slot.start != start || !slot.set {
		*slot = owdSlot{start: start}
	}
	var lastD, leastD time.Duration
	var lastAt clock.Time
	got := false
	for i := range pkts {
		p := &pkts[i]
		if !p.Received {
			continue
		}
		d := p.ArrivalTime.Sub(p.SendTime)
		if !got || d < leastD {
			leastD = d
		}
		if !slot.set || d < slot.min {
			slot.min, slot.set = d, true
		}
		slot.maxD = max(slot.maxD, d)
		if !got || p.SendTime >= lastAt {
			lastD, lastAt, got = d, p.SendTime, true
		}
	}
	if !got {
		return
	}
	base := slot.min
	for _, s := range m.owdMin {
		if s.set && now.Sub(s.start) < pathRateSlots*pathRateSlotLen && s.min < base {
			base = s.min
		}
	}
	m.measQ, m.measAt, m.measured = lastD-base, lastAt, true
	m.prevLeastQ, m.leastQ = m.leastQ, leastD-base
	maxD := slot.maxD
	for _, s := range m.owdMin {
		if s.set && now.Sub(s.start) < pathRateSlots*pathRateSlotLen {
			maxD = max(maxD, s.maxD)
		}
	}
	m.maxQ = maxD - base
}

// anchor sets the virtual queue to what the last measurement implies now:
// the queue the measured packet met, plus the bytes sent after it
// (sentAfter), less what drained since, at the measured rate. The queue
// for frames (fit) follows it both ways: up when a queue built that the
// model missed (another flow's, or ours before a capacity drop was
// known), down when bytes the model counted never queued (the bottleneck
// dropped them). The queue for retransmissions (vq) only goes up: with it
// corrected down, seeds 1-5 of the bench's arq rows sent 49
// retransmissions that arrived after their deadline, against none.
func (m *pathModel) anchor(now clock.Time, sentAfter int64) {
	m.drain(now)
	r := m.rate(now)
	if r <= 0 {
		return
	}
	at := func(r float64) float64 {
		return max(r/8*m.measQ.Seconds()+float64(sentAfter)-r/8*now.Sub(m.measAt).Seconds(), 0)
	}
	m.fit = at(m.fitRate(r))
	m.vq = max(m.vq, at(m.vqRate(r)))
}
