// Package core is Spillway's sans-I/O session core: the state machines of
// one socket (Endpoint) and its connections (Conn), driven by whoever owns
// them: the UDP driver in package transport over real sockets and the wall
// clock, or the netem simulator on virtual time. The same code runs in
// both, deterministically for a given seed and input.
//
// # Usage
//
// A driver calls HandleDatagram for every datagram received and
// HandleTimeout when NextTimeout has come, then drains PollTransmit (until
// !ok) and PollEvent (until !ok). Application commands (Connect,
// OpenStream, WriteFrame, Close, ...) are plain method calls made by the
// same goroutine. Every call takes `now`; nothing here reads a clock, starts
// a goroutine or touches a socket, and nothing is safe for concurrent use.
//
// # What it does
//
//   - Handshake with a stateless cookie: until a client proves its address
//     by echoing a cookie, the endpoint keeps no state about it and never
//     answers with more bytes than it received (docs/PROTOCOL.md §4).
//   - Streams of kind audio, video and data with priorities; frames up to
//     MaxFrameSize, split into fragments and reassembled whatever the order,
//     duplicates and losses; incomplete frames given up at their deadline
//     and reported (EventFrameLost).
//   - Loss recovery (recovery.go): FEC repair packets chosen by the fec
//     package's adaptive policy from the loss, burstiness and RTT measured
//     from transport-wide feedback (fec.LossEstimator), and rebuilt packets fed
//     back into assembly; selective retransmission driven by arq's NACK
//     generator and send history, sent only when the path model
//     (pathmodel.go: the queue this connection built, drained at the
//     measured delivery rate) says it arrives before its frame's deadline.
//     The last useful retransmission goes twice for audio, for the delta
//     frames the FEC policy leaves to a doubled last chance, and for every
//     delta frame while the loss rate is 5 % or more. Under a budget of
//     a second or more (Live), every retransmission of a packet from its
//     third round on goes twice (lateRounds).
//     Order on the wire: audio, retransmissions, repair packets, then
//     video and data.
//   - Congestion control (Config.Estimator, cc.GCC by default in the
//     transport package; cc.Fixed at the streams' nominal rates without
//     one): the pacer sends at 2.5 x the transport target with strict
//     priority and a queue bounded in time, dropping frames predicted to
//     miss their deadline (send.go); the encoders' targets
//     (EventTargetRate, target.go) are the transport target less measured
//     overhead, audio first, clamped per stream; probes (probe.go); the
//     media bytes in flight (sent, not yet reported) stay within the
//     transport target x (smoothed RTT + max(Latency, 250 ms) + two
//     feedback intervals), audio excepted (inflight.go); EventPathDelay
//     when the path's delay alone exceeds Latency.
//   - An adaptive jitterbuffer per received stream, the
//     connection's streams in one sync group (Config.Playout). While
//     losses recur, each stream's playout target keeps a recovery
//     allowance (repairloss.go): as many retransmission rounds, a smoothed
//     RTT each, as keep a frame's chance of missing playout under 6e-4
//     given the packet loss rate p and the share f of the stream's frames
//     that needed a retransmission (f p^r; doubled rounds count 2p^2
//     for p), plus the time a loss takes to
//     show; one round stays within Latency, more may take the offset to
//     MaxPlayoutDelay. A video frame that others reference asks for a key
//     frame as soon as the NACK generator gives up one of its packets
//     (arq.Receiver.HopelessUntil), not when it would have played.
//   - Feedback in RTCP: transport-wide CC every FeedbackInterval, each
//     report repeating the last 100 ms of arrivals (the sender takes each
//     packet once), receiver
//     reports every second, PLI on request; stream announcements in APP
//     messages, repeated until acknowledged.
//   - Keepalive pings, RTT from ping/pong, idle timeout, orderly close
//     (queued frames flushed within their deadlines, then Close, repeated
//     up to three times).
//
// # Memory
//
// Steady-state traffic allocates nothing (BenchmarkSteady* and the
// Mallocs-counting tests). Bounds: MaxSendBuffer bytes queued per
// connection, MaxReceiveBuffer bytes of frames being assembled or awaiting
// playout, MaxPendingFrames frames per received stream, 64 queued stateless
// answers per endpoint, MaxConns connections. A connection's fixed state is
// about 160 KiB (its send history, 112 KiB, and arrival records, 32 KiB,
// of 2048 packets each), plus 112 B per pending-frame slot (256 by
// default) of each received stream. Recovery adds, on a side that sends,
// the retransmission arena (MaxBitrate x Latency within 256 KiB-8 MiB,
// plus 416 KiB of index) and the FEC encoder's parity buffers (at most 1
// MiB); on a side that receives, the FEC decoder's copies of the last 256
// media packets (304 KiB for 1200-byte fragments) and up to 64 repair
// symbols, and the NACK list (96 KiB). Each is created when first needed.
//
// # Limitations (version 1)
//
// No packet protection yet (the header leaves room for an AEAD tag), no
// address migration (packets
// from a new address are dropped and counted). Whoever sees a connection's
// ID and can spoof its peer's address can therefore inject packets; what
// they can make this side send back is bounded by what they send (the
// reply credit and arq's gap credit: docs/PROTOCOL.md §3.3, No
// amplification); the transport-wide reports at the feedback interval
// are what any data earns (for tiny packets, up to about their size). The receiver cannot tell a
// lost packet that was not media (a lost repair packet or retransmission)
// from lost media: it NACKs those too, and the sender counts them as
// unknown.
package core
