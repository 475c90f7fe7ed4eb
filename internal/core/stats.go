package core

import (
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/jitterbuffer"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/fec"
)

// ConnStats are a connection's counters. Names follow W3C webrtc-stats where
// it has one (packetsSent, packetsLost, jitter, currentRoundTripTime,
// availableOutgoingBitrate, framesDropped ...); the rest are ours.
type ConnStats struct {
	// Sent.
	PacketsSent         int64 // every datagram after the handshake
	BytesSent           int64 // UDP payload bytes
	MediaPacketsSent    int64 // data packets
	MediaBytesSent      int64 // frame bytes (prefix included) in data packets
	FramesSent          int64 // frames whose every fragment left
	FramesDroppedOnSend int64 // frames this sender dropped (SendDrops says why)
	PingsSent           int64
	FeedbackSent        int64 // feedback packets

	// Retransmission, sending side (webrtc-stats names).
	RetransmittedPacketsSent int64 // retransmissions sent
	RetransmittedBytesSent   int64 // fragment bytes in them
	NACKsReceived            int64 // NACK messages received
	PacketsNACKedByPeer      int64 // packet numbers those NACKs named
	SendBacklog              int   // bytes queued to send
	// RecoveryBacklog: retransmissions and FEC repair packets waiting to
	// leave (they go ahead of key frames and other video), and their bytes
	// on the wire; some may still be skipped as too late when they leave.
	RecoveryBacklogPackets int
	RecoveryBacklog        int64

	// The pacer (ours; DESIGN §5): the queue's delay at the drain rate now
	// and its largest right after a frame joined it, the limit it is held
	// to, how often key frames or audio stretched the drain rate to fit,
	// frames and bytes dropped on send by reason and class, and the key
	// frames asked of the application after a reference frame was dropped.
	PacerQueueDelay       time.Duration
	PacerQueueDelayMax    time.Duration
	PacerQueueLimit       time.Duration
	PacerStretches        int64
	SendDrops             SendDropStats
	KeyFrameRequestsLocal int64
	ProbeClusters         int64           // probe clusters the estimator asked for and that went out
	ProbePaddingSent      int64           // padding packets (copies of recent packets) sent in them
	DropNotices           DropNoticeStats // drop notices sent to the peer
	// PacerWait: time in the pacer queue by class (cc.ClassAudio ...):
	// frames from WriteFrame until their last fragment left,
	// retransmissions from the NACK until they left.
	PacerWait [cc.NumClasses]WaitStats
	// RetransmissionsBehindFrames counts retransmissions that left after
	// video or data frame bytes sent since their NACK came (strict
	// priority keeps it 0 but for a packet already leaving).
	RetransmissionsBehindFrames int64
	// BytesInFlight: media bytes sent and not yet reported by feedback;
	// Window: the most allowed (transport target x (smoothed RTT +
	// allowance); 0 without a measured target); WindowBlocked: the times
	// a full window held packets back.
	BytesInFlight int64
	Window        int64
	WindowBlocked int64

	// Received.
	PacketsReceived       int64 // distinct packets accepted
	BytesReceived         int64
	PacketsDuplicated     int64 // duplicates and replays dropped
	PacketsDropped        int64 // packets arriving before the handshake completed or after close
	PacketsLost           int64 // expected minus received (RFC 3550 §6.4.1)
	MediaPacketsReceived  int64
	FragmentsRejected     int64 // fragments inconsistent with their frame, too old, or over a limit
	FragmentsDuplicated   int64
	FramesDuplicated      int64 // frames completed again after their delivery (the jitter buffer refused them)
	PacketsRecovered      int64 // data packets FEC rebuilt
	RecoveredRejected     int64 // rebuilt packets that did not parse (a hostile or broken repair)
	ReceiveBufferFull     int64 // fragments dropped because MaxReceiveBuffer was reached
	FramesReceived        int64 // frames complete
	FramesDelivered       int64 // frames released to the application at their playout time
	FramesGivenUp         int64 // frames incomplete at their deadline
	FramesSkipped         int64 // frame ids passed over in playout (lost by any cause, or dropped by the sender)
	FramesDroppedBySender int64 // of those, frames the sender declared dropped (drop notices)
	FragmentsDropped      int64 // fragments of frames the sender had declared dropped
	DropNoticesReceived   int64 // drop notices received (each once)
	Jitter                time.Duration
	// The receive side's playout (jitterbuffer): the offset from capture
	// to playout of the last frame released, the offset the peer reported
	// for what we send, and the clock drift estimated from arrivals
	// (receiver's clock rate minus the sender's, ppm).
	PlayoutDelay     time.Duration
	PeerPlayoutDelay time.Duration
	PlayoutDriftPPM  float64
	// The A/V offset (the sync group's, Config.Playout adaptive): at each
	// video frame released at its playout time, its capture-to-playout
	// offset minus that of the audio frame playing (the last released at
	// its playout time, within an audio frame interval of it); positive
	// when video plays later than the audio captured with it. The latest,
	// the largest in size so far (0 without both), and the video frames
	// it was measured at.
	AVOffset                time.Duration
	AVOffsetMax             time.Duration
	AVOffsetFrames          int64
	FeedbackReceived        int64
	KeyFrameRequests        int64 // PLIs received (pliCount is what we sent: PLIsSent)
	KeyFrameRequestsMerged  int64 // of those, not passed on: within half a smoothed RTT (at least 20 ms) of the stream's last one
	PLIsSent                int64
	NACKsSent               int64 // NACK messages sent (nackCount)
	PacketsNACKed           int64 // packet numbers they named
	RetransmissionsReceived int64
	ProtocolErrors          int64
	EventsDropped           int64 // events dropped because this connection had too many queued
	// RepliesWithheld: NACK messages cut short or not sent, and pongs not
	// sent, because the peer's packets had not brought the bytes (the
	// reply credit, which keeps a peer from gaining by amplification).
	RepliesWithheld int64

	// What the peer reports about what we sent (RTCP receiver reports).
	RemotePacketsLost  int64
	RemoteFractionLost float64 // 0-1, over the peer's last report interval
	RemoteJitter       time.Duration

	CurrentRoundTripTime     time.Duration // smoothed
	MinRoundTripTime         time.Duration
	AvailableOutgoingBitrate int64 // the estimator's target, bit/s
	PacingRate               int64 // bit/s
	// AppLimited: the sender used markedly less than the target lately
	// (cc.ALR), as the estimator was last told.
	AppLimited bool
	// Congestion: the estimator's own counters when it keeps them
	// (cc.GCC, the default: overuse signals, cuts by kind, probes and
	// what became of them); zero for another estimator.
	Congestion cc.GCCStats
	// PathOverBudget: the path's one-way delay alone exceeds Latency, or
	// did within the last 5 s behind another flow's queue (EventPathDelay);
	// PathOverBudgetEvents counts the times it came to.
	PathOverBudget       bool
	PathOverBudgetEvents int64

	// FEC: the encoder's half of fec.Stats (fecPacketsSent ...) and the
	// decoder's (fecPacketsReceived, fecPacketsDiscarded, packets recovered,
	// loss before recovery). Zero until recovery starts or when disabled.
	FECSent     fec.Stats
	FECReceived fec.Stats

	// Retransmission machinery's own counters: the sender's history
	// (spurious and too-late retransmissions ...) and the receiver's NACK
	// generator (given up, arrived late, reorder allowance ...).
	RTXSender   arq.SenderStats
	RTXReceiver arq.ReceiverStats
}

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	s := c.stats
	s.SendBacklog = c.snd.queued
	s.RecoveryBacklogPackets, s.RecoveryBacklog = c.snd.recoveryBacklog()
	s.PacketsLost = c.window.Lost()
	s.Jitter = c.rcv.jitter
	s.PlayoutDelay = c.rcv.playoutDelay
	s.PeerPlayoutDelay = c.snd.peerPlayout
	if g := c.rcv.group; g != nil {
		s.PlayoutDriftPPM = g.DriftPPM()
	}
	s.AVOffset, s.AVOffsetMax, s.AVOffsetFrames = c.rcv.av.last, c.rcv.av.max, c.rcv.av.n
	s.CurrentRoundTripTime = c.rtt.Smoothed()
	s.MinRoundTripTime = c.rtt.Min()
	s.AvailableOutgoingBitrate = c.snd.estimator.Target()
	if r, ok := c.snd.estimator.(interface{ Stats() cc.GCCStats }); ok {
		s.Congestion = r.Stats()
	}
	s.PacingRate = c.snd.pacer.Rate()
	s.AppLimited = c.snd.alr.Limited()
	s.BytesInFlight = int64(c.snd.inflight)
	if !c.snd.fixedTarget() {
		s.Window = int64(c.snd.window())
	}
	s.PathOverBudget = c.snd.pathOver
	ps := c.snd.pacer.Stats()
	s.PacerQueueDelay = c.snd.pacer.QueueDelay()
	s.PacerQueueDelayMax = ps.QueueDelayMax
	s.PacerQueueLimit = c.snd.pacer.QueueLimit()
	s.PacerStretches = ps.Stretches
	s.SendDrops = c.snd.drops
	s.DropNotices = c.snd.notices.stats
	s.RetransmissionsBehindFrames = c.snd.rtxBehind
	for i := range s.PacerWait {
		s.PacerWait[i] = c.snd.wait[i].stats()
	}
	if c.snd.fec != nil {
		s.FECSent = c.snd.fec.Stats()
	}
	if c.rcv.fecDec != nil {
		s.FECReceived = c.rcv.fecDec.Stats()
	}
	if c.snd.hist != nil {
		s.RTXSender = c.snd.hist.Stats()
	}
	if c.rcv.nack != nil {
		s.RTXReceiver = c.rcv.nack.Stats()
	}
	return s
}

// PlayoutStats returns the jitter-buffer figures of a stream the peer
// sends, at now.
func (c *Conn) PlayoutStats(now clock.Time, id uint8) (jitterbuffer.Stats, bool) {
	if int(id) >= len(c.rcv.streams) || c.rcv.streams[id] == nil {
		return jitterbuffer.Stats{}, false
	}
	return c.rcv.streams[id].jb.Stats(now), true
}

// RecvStreamStats returns the counters of a stream the peer sends.
func (c *Conn) RecvStreamStats(id uint8) (StreamRecvStats, bool) {
	if int(id) >= len(c.rcv.streams) || c.rcv.streams[id] == nil {
		return StreamRecvStats{}, false
	}
	return c.rcv.streams[id].stats, true
}

// SendDropStats counts the frames (and their bytes not yet sent) this
// sender dropped, by reason and by pacer class (cc.ClassAudio ...).
type SendDropStats struct {
	Frames [NumDropReasons][cc.NumClasses]int64
	Bytes  [NumDropReasons][cc.NumClasses]int64
}

// Total returns the frames and bytes dropped for one reason, every class.
func (d *SendDropStats) Total(r DropReason) (frames, bytes int64) {
	for c := range d.Frames[r] {
		frames += d.Frames[r][c]
		bytes += d.Bytes[r][c]
	}
	return frames, bytes
}

// ProbePaddingSent returns ConnStats.ProbePaddingSent without copying the
// whole ConnStats (the bench asks after every packet).
func (c *Conn) ProbePaddingSent() int64 { return c.stats.ProbePaddingSent }

// TransportTarget returns ConnStats.AvailableOutgoingBitrate, the
// estimator's transport target in bit/s, without copying the whole
// ConnStats (the bench reads it after every call).
func (c *Conn) TransportTarget() int64 { return c.snd.estimator.Target() }
