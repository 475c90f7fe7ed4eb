package core

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Kind is what a stream carries.
type Kind uint8

// Stream kinds.
const (
	KindData  Kind = 0
	KindAudio Kind = 1
	KindVideo Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	case KindData:
		return "data"
	}
	return "unknown"
}

// rank orders kinds for sending: audio first (DESIGN §2).
func (k Kind) rank() int {
	switch k {
	case KindAudio:
		return 0
	case KindVideo:
		return 1
	}
	return 2
}

// Priority orders streams of one kind; higher goes first.
type Priority uint8

// Priorities.
const (
	PriorityLow    Priority = 0
	PriorityMedium Priority = 1
	PriorityHigh   Priority = 2
)

// StreamConfig describes a stream this side sends.
type StreamConfig struct {
	Kind     Kind
	Priority Priority
	// Bitrate is the stream's nominal media rate in bit/s, which sizes the
	// version-1 pacer. Default: 64 kbit/s for audio, 2 Mbit/s for video,
	// 1 Mbit/s for data.
	Bitrate int64
	// MinBitrate and MaxBitrate clamp the stream's target
	// (EventTargetRate): never reported under MinBitrate (an encoder's
	// least; while the path carries less the sender drops frames instead),
	// nor over MaxBitrate (default: Bitrate). 0 means unset.
	MinBitrate, MaxBitrate int64
}

// maxBitrate is the most the stream's target is set to.
func (s StreamConfig) maxBitrate() int64 {
	if s.MaxBitrate > 0 {
		return s.MaxBitrate
	}
	return s.bitrate()
}

func (s StreamConfig) bitrate() int64 {
	if s.Bitrate > 0 {
		return s.Bitrate
	}
	switch s.Kind {
	case KindAudio:
		return 64_000
	case KindVideo:
		return 2_000_000
	}
	return 1_000_000
}

// FrameInfo is what the sender says about a frame besides its bytes.
type FrameInfo struct {
	Capture   clock.Time // capture time on the sender's clock, at most now (later is taken as now); the deadline is Capture + Latency
	Key       bool       // a key frame (decodable alone)
	Droppable bool       // no other frame references it
}

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	EventNone EventType = iota
	// EventConnected: the handshake completed (Conn.Incoming tells which side).
	EventConnected
	// EventStreamOpened: the peer announced a stream (Stream, Kind, Priority).
	EventStreamOpened
	// EventStreamClosed: the peer closed a stream it sent.
	EventStreamClosed
	// EventFrame: a received frame reached its playout time (Frame, Data).
	EventFrame
	// EventFrameLost: a received frame was given up at its deadline (Frame.ID).
	EventFrameLost
	// EventFrameDropped: the sender dropped one of its own frames before it
	// was all sent, because it could no longer arrive in time (Frame.ID).
	EventFrameDropped
	// EventKeyFrameRequest: a stream we send needs a key frame: the peer
	// asked (a PLI), or, with Local set, this sender dropped a frame later
	// frames reference (no round trip: the request comes as the frame goes).
	EventKeyFrameRequest
	// EventClosed: the connection is gone (Err says why; nil for a local
	// orderly close).
	EventClosed
	// EventTargetRate: the media rate the application should encode a
	// stream at changed (Bitrate, bit/s): the transport target less what
	// FEC, retransmissions and headers take, audio first, less more while
	// the send queue or the path's queue grows (pushback).
	EventTargetRate
	// EventPathDelay: the path's one-way delay alone (half the least RTT
	// of the last 10 s; while the estimator says a standing queue is
	// another flow's, as behind a TCP flow filling a deep buffer, which
	// we cannot drain, that queue too: the smoothed RTT's half, or what
	// the path model sees now) came to exceed Latency (Over set), or fell
	// back under it (Over clear: once the other flow's queue has stayed
	// under for 5 s, or at once when it is gone); Delay is that one-way
	// delay. While it
	// exceeds Latency the sender judges frames against capture + that
	// delay + Latency instead of dropping them all, and tells the receiver
	// (APP SPPO subtype 1), which keeps assembling frames that long.
	EventPathDelay
)

var eventNames = [...]string{"none", "connected", "stream-opened", "stream-closed", "frame", "frame-lost", "frame-dropped", "keyframe-request", "closed", "target-rate", "path-delay"}

func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "invalid"
}

// FrameMeta describes a frame in an event.
type FrameMeta struct {
	ID         int64
	Capture    clock.Time // on this side's clock (mapped for received frames)
	Completed  clock.Time // when the last fragment arrived (received frames)
	Playout    clock.Time // when it was released (received frames)
	Key        bool
	Droppable  bool
	Size       int
	LostBefore int64 // frames skipped in this stream just before this one, lost on the way
	// Reordered (EventFrame, PlayoutPassThrough, which delivers frames as
	// they complete): an earlier frame's LostBefore counted this one, which
	// came after all; it is taken back from the FramesSkipped stats.
	Reordered bool
	// DroppedBefore: frames skipped just before this one that the sender
	// declared dropped (a drop notice); not counted in LostBefore.
	DroppedBefore int64
	// CaughtUpBefore (EventFrame): frames skipped just before this one to
	// catch up after a freeze (Config.PlayoutCatchUp): they came and were
	// not played; not counted in LostBefore.
	CaughtUpBefore int64
	// DroppedBySender (EventFrameLost): the sender declared the frame
	// dropped (cut short while sending); it is not a loss.
	DroppedBySender bool
	// PlayedLate (EventFrame): completed after its playout time, released
	// at once; the playout offset rose to it (jitterbuffer).
	PlayedLate bool
	// Undecodable (EventFrame, video): a frame it references was never
	// released since the last key frame; a key frame has been asked for.
	Undecodable bool
	Fragments   int           // for lost frames: fragments expected
	Received    int           // for lost frames: fragments that arrived
	Reason      string        // for lost and dropped frames
	DropReason  DropReason    // for dropped frames
	Late        time.Duration // for dropped frames: how far past the deadline (predicted, for DropPredictedLate)
}

// DropReason says why this sender dropped a frame (EventFrameDropped).
type DropReason uint8

// Reasons a sender drops a frame.
const (
	// DropLateOnArrival: WriteFrame refused it (ErrFrameDropped): past its
	// deadline already, or predicted to arrive after it.
	DropLateOnArrival DropReason = iota
	// DropPredictedLate: queued, then predicted to miss its deadline when
	// its turn came (dropped whole) or while it was leaving (cut short).
	DropPredictedLate
	// DropQueueLimit: the pacer queue was at its limit in time
	// (Config.PacerQueueLimit) and the frame mattered least.
	DropQueueLimit
	// DropReference: a frame it references was dropped.
	DropReference
	// DropSendBuffer: the send buffer was full in bytes (MaxSendBuffer).
	DropSendBuffer
	// DropClosing: the connection closed with the frame queued.
	DropClosing
	NumDropReasons
)

var dropReasonNames = [NumDropReasons]string{"late-on-arrival", "predicted-late", "queue-limit", "reference-dropped", "send-buffer-full", "closing"}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropReasonNames[r]
	}
	return "invalid"
}

// Event is something the application should know. Data (EventFrame only)
// is valid until the next PollEvent call on the endpoint.
type Event struct {
	Type     EventType
	Conn     *Conn
	Stream   uint8
	Kind     Kind
	Priority Priority
	Frame    FrameMeta
	Data     []byte
	Err      error
	// Local (EventKeyFrameRequest): the request is this sender's own,
	// after it dropped a reference frame.
	Local bool
	// Bitrate (EventTargetRate): the stream's new target, bit/s.
	Bitrate int64
	// Over and Delay (EventPathDelay): whether the path's one-way delay
	// exceeds Latency now, and that delay.
	Over  bool
	Delay time.Duration

	buf []byte // the pooled buffer Data lies in, recycled after delivery
}
