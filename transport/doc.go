// Package transport is Spillway's UDP driver and public API: sessions
// carrying tracks of frames between a pusher and a player, over any
// net.PacketConn.
//
// # Usage
//
//	l, _ := transport.Listen(":7000", &transport.Config{Profile: transport.RTC})
//	sess, _ := transport.Dial(ctx, "relay:7000", nil)
//	v, _ := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindVideo})
//	err := v.WriteFrame(ctx, transport.Frame{Data: au, CaptureTime: t, Keyframe: true})
//	in, _ := l.Accept(ctx)
//	rt, _ := in.AcceptTrack(ctx)
//	n, info, err := rt.ReadFrame(ctx, buf)
//
// A Transport over a caller's net.PacketConn (a UDP socket, or netem's
// in-memory PacketConn for tests) carries many sessions on one socket.
//
// # Goroutines
//
// A Transport starts three goroutines on first use and stops them in Close:
// the loop, which owns every session's state (the sans-I/O core in
// internal/core) and reads the clock once per turn; a reader, which only
// reads datagrams and hands them over through a bounded queue (Config.
// ReceiveQueue) that drops and counts when the loop falls behind; and one
// that runs the application's callbacks in order, off the loop, so that a
// callback may call any method, Close included (Close does not wait for
// callbacks: those still queued run after it, and their calls fail with
// ErrClosed). Calls from other goroutines run on the loop as closures. On Linux UDP sockets the
// driver reads and writes in batches (recvmmsg/sendmmsg through x/net);
// elsewhere, one datagram per call without allocating.
//
// # Cancellation
//
// Every blocking call takes a context.Context and returns the context's
// error when it ends before the call took effect; a call that took effect
// (a track opened, a frame queued) returns its own result. Close and CloseWithError are orderly: frames
// already written still go within their deadlines, then the peer is told.
//
// # Deadlines
//
// A frame's deadline is its CaptureTime plus Config.Latency. The sender
// predicts when each frame would arrive (the send queue ahead of it, its
// own bytes at the target rate, the path's delay): WriteFrame refuses a
// frame that cannot make it (ErrFrameDropped), and a queued frame predicted
// late is dropped whole before any of it leaves, or cut short. The send
// queue is also bounded in time (Config.PacerQueueLimit). A dropped frame
// that later frames reference takes them with it until the next key frame,
// and the track asks for one at once (OnKeyFrameRequest); OnFrameDropped
// says what was dropped and why, and OnTargetBitrate gives the rate to
// encode at so that frames need not be dropped. The receiver is told of
// every drop: ReadFrame reports the frames skipped before each one as lost
// (FrameInfo.LostBefore) or dropped by the sender (DroppedBefore).
//
// # Security
//
// The handshake proves the client's address with a stateless cookie before
// the server keeps any state or sends anything larger than it received.
// Version 1 does not encrypt or authenticate packets: do not carry secrets
// over it on untrusted networks yet.
//
// # Rate and recovery
//
// A delay-based congestion controller (Config.CongestionControl: GCC by
// default) sets the sending rate from transport-wide feedback, starting at
// Config.StartBitrate and probing above it; OnTargetBitrate gives each
// track the rate to encode at (the transport's target less FEC,
// retransmission and header overhead, audio first, within the track's
// MinBitrate and MaxBitrate), and frames that can no longer arrive in
// time are dropped before they are sent (OnFrameDropped). Lost packets
// are recovered by FEC and selective retransmission within each frame's
// deadline (Config.DisableFEC and DisableRetransmission turn them off);
// playout adapts to the path's jitter and recovery time. OnPathDelay
// tells when the path's delay alone exceeds Latency.
package transport
