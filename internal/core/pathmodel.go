package core

import (
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
)

// pathModel predicts the queueing delay a packet sent now meets on the
// path, so that a retransmission is only sent when it can still arrive in
// time (arq.History.PollRetransmit's oneWay). It keeps a virtual queue of
// this connection's bytes, drained at the path's capacity as measured: the
// highest delivery rate transport-wide feedback showed over the last
// pathRateWindow (a windowed maximum, as BBR estimates its bottleneck
// bandwidth, RFC 9406-draft §4.5.2 / Linux tcp_bbr.c). Until a rate is
// measured it predicts no queue, but keeps the bytes sent meanwhile: they
// drain at the first rate measured, from when they were sent. Capacity never measured (the path was
// never filled) reads low, which predicts more queue than there is: the
// error is on the side of not sending a retransmission that might be late.
//
// This is the transport's interim view of the path; the cc issue's
// estimator supersedes it.
type pathModel struct {
	rates [pathRateSlots]rateSlot
	vq    float64 // bytes in the virtual queue
	vqAt  clock.Time
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
)

// onSent adds a datagram to the virtual queue.
func (m *pathModel) onSent(now clock.Time, size int) {
	m.drain(now)
	m.vq += float64(size)
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
		if m.vq == 0 {
			m.vqAt = now
		}
		return
	}
	m.vq = max(0, m.vq-r/8*now.Sub(m.vqAt).Seconds())
	m.vqAt = now
}

// rate returns the windowed maximum delivery rate in bit/s, 0 if none.
func (m *pathModel) rate(now clock.Time) float64 {
	best := 0.0
	for _, s := range m.rates {
		if s.bps > best && now.Sub(s.start) < pathRateSlots*pathRateSlotLen {
			best = s.bps
		}
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
	m.drain(now)
	r := m.rate(now)
	if r <= 0 {
		return 0
	}
	d := time.Duration(m.vq * 8 / r * float64(time.Second))
	return d + max(pathMinMargin, time.Duration(float64(d)*pathMargin))
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
}
