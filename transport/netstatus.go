package transport

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// NetStatus is a session's periodic network report (every
// Config.StatsInterval): rates over the interval just ended, as the seed
// product's net-status event carries them, beside the session's current
// picture.
type NetStatus struct {
	Interval time.Duration // the interval the rates cover

	SendBitrate    int64 // bit/s of UDP payload sent
	ReceiveBitrate int64 // bit/s of UDP payload received

	PacketsReceived int64   // in the interval
	PacketsLost     int64   // in the interval (expected minus received; may be negative after reordering)
	FractionLost    float64 // PacketsLost / expected, in [0, 1]

	FramesSent            int64 // in the interval: frames all of whose fragments left
	FramesDroppedOnSend   int64 // in the interval
	FramesDelivered       int64 // in the interval: frames released to ReadFrame
	FramesSkipped         int64 // in the interval: frames lost by any cause, or dropped by the sender
	FramesDroppedBySender int64 // in the interval: of the frames skipped, those the peer's sender dropped

	RoundTripTime            time.Duration // smoothed
	Jitter                   time.Duration
	SendBacklog              int           // bytes queued to send
	AvailableOutgoingBitrate int64         // bit/s
	PacerQueueDelay          time.Duration // the send queue at the pacing rate, now
	PathOverBudget           bool          // the path's one-way delay alone exceeds Latency, held 5 s behind another flow's queue (Session.OnPathDelay)
}

// OnNetStatus sets a function called every Config.StatsInterval with the
// session's NetStatus, on the callback goroutine (see OnKeyFrameRequest);
// nil stops the reports.
func (s *Session) OnNetStatus(fn func(NetStatus)) {
	s.statusMu.Lock()
	s.onStatus = fn
	s.statusMu.Unlock()
}

// reportStatus computes and delivers one NetStatus (loop goroutine).
func (s *Session) reportStatus(now clock.Time) {
	s.statusMu.Lock()
	fn := s.onStatus
	s.statusMu.Unlock()
	cur := s.conn.Stats()
	prev, since := s.lastStats, s.lastStatsAt
	s.lastStats, s.lastStatsAt = cur, now
	if fn == nil {
		return
	}
	d := now.Sub(since)
	if d <= 0 {
		return
	}
	rate := func(bytes int64) int64 { return int64(float64(bytes*8) / d.Seconds()) }
	st := NetStatus{
		Interval:                 d,
		SendBitrate:              rate(cur.BytesSent - prev.BytesSent),
		ReceiveBitrate:           rate(cur.BytesReceived - prev.BytesReceived),
		PacketsReceived:          cur.PacketsReceived - prev.PacketsReceived,
		PacketsLost:              cur.PacketsLost - prev.PacketsLost,
		FramesSent:               cur.FramesSent - prev.FramesSent,
		FramesDroppedOnSend:      cur.FramesDroppedOnSend - prev.FramesDroppedOnSend,
		FramesDelivered:          cur.FramesDelivered - prev.FramesDelivered,
		FramesSkipped:            cur.FramesSkipped - prev.FramesSkipped,
		FramesDroppedBySender:    cur.FramesDroppedBySender - prev.FramesDroppedBySender,
		RoundTripTime:            cur.CurrentRoundTripTime,
		Jitter:                   cur.Jitter,
		SendBacklog:              cur.SendBacklog,
		AvailableOutgoingBitrate: cur.AvailableOutgoingBitrate,
		PacerQueueDelay:          cur.PacerQueueDelay,
		PathOverBudget:           cur.PathOverBudget,
	}
	if expected := st.PacketsReceived + st.PacketsLost; expected > 0 && st.PacketsLost > 0 {
		st.FractionLost = float64(st.PacketsLost) / float64(expected)
	}
	s.t.callback(func() { fn(st) })
}
