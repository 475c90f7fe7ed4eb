package core

import (
	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
)

// Probing: an estimator that implements cc.Prober asks for clusters of
// packets at a rate above the target; the pacer sends them at that rate
// (cc.Pacer.SetProbe), media first, padded with copies of recent packets
// (arq.History.PollPadding, sent as retransmissions: useful if the
// original was lost, discarded as duplicates otherwise). Each packet sent
// meanwhile is tagged with the cluster (sentPacket.probe), and feedback
// carries the tag back to the estimator. Audio-only sessions do not probe.

// probeWanted reports whether a cluster may start: the estimator probes,
// none is going out, a stream other than audio is open, and the history
// holds a packet to pad with (a cluster asked for before the first packet
// left would end at once, unsent).
func (s *sender) probeWanted() bool {
	if s.prober == nil || s.probe.ID != 0 || s.hist == nil || s.hist.Len() == 0 {
		return false
	}
	for _, st := range s.order {
		if st.open && st.cfg.Kind != KindAudio {
			return true
		}
	}
	return false
}

// startProbe takes the next cluster the estimator asks for.
func (s *sender) startProbe(now clock.Time) {
	if !s.probeWanted() {
		return
	}
	c, ok := s.prober.PollProbe(now)
	if !ok || c.ID <= 0 || c.Rate <= 0 {
		return
	}
	s.probe, s.probeLeft, s.probePkts = c, c.Bytes, c.MinPackets
	s.pacer.SetProbe(min(c.Rate, s.c.cfg.MaxBitrate))
	s.c.stats.ProbeClusters++
}

// probeSent tags the media packet just sent (the newest packet number)
// with the cluster going out and ends the cluster once its bytes and
// packets have left.
func (s *sender) probeSent(now clock.Time, size int) {
	if s.probe.ID == 0 {
		return
	}
	pn := s.c.nextPN - 1
	if p := &s.history[pn&(historySize-1)]; p.key == pn+1 {
		p.probe = int32(s.probe.ID)
	}
	s.probeLeft -= size
	s.probePkts--
	if s.probeLeft <= 0 && s.probePkts <= 0 {
		s.endProbe()
	}
}

func (s *sender) endProbe() {
	s.probe = cc.ProbeCluster{}
	s.pacer.SetProbe(0)
}

// pollPadding sends a copy of a recent packet as padding for the cluster
// going out; with nothing to copy, the cluster ends short.
func (s *sender) pollPadding(now clock.Time, dst []byte) (int, bool) {
	orig, n, ok := s.hist.PollPadding(now, s.oneWay(now), s.prot[:cap(s.prot)])
	if !ok {
		s.endProbe()
		return 0, false
	}
	b, _, ok := s.sendCopy(now, orig, s.prot[:n], dst)
	if !ok {
		s.endProbe() // cannot happen: the history holds what protect stored
		return 0, false
	}
	s.c.stats.ProbePaddingSent++
	s.padding = true
	s.c.sent(now, b, classMedia)
	s.padding = false
	return b, true
}
