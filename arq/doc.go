// Package arq is Spillway's selective, deadline-aware retransmission
// (DESIGN §2, ARQ; docs/PROTOCOL.md §3.3 and §6.1 Generic NACK): a packet
// lost on the way is asked for again only while a retransmission can still
// arrive before its frame's deadline, and sent again only then.
//
// # Parts
//
//   - Receiver (receiving side): gap detection over packet numbers, with a
//     reorder allowance learned from measured reordering; NACK timing
//     (first, repeats against NACK loss, re-NACKs); give-up at the
//     deadline; FEC holds; tail-loss detection; a bounded NACK list that
//     asks for a key frame when it overflows.
//   - History (sending side): the packets sent, in a fixed byte arena,
//     until their deadline; NACKs queue retransmissions by priority class;
//     PollRetransmit hands back only those that can still arrive in time.
//   - RTT: the round-trip estimator both sides read (minimum, windowed
//     minimum, smoothed, variation), and ReceiveWindow, the receiver's
//     duplicate filter and loss count.
//
// # Usage
//
// The session core owns one Receiver and one History per connection and
// calls them from its loop. Receiving: OnPacket for every original packet
// (media or not), OnRetransmission for every retransmission, Recovered when
// FEC rebuilds one, Forget for packets the sender dropped, ExpectTail after
// a fragment that leaves a frame's last fragments missing; when NextTimeout
// comes, PollNACK gives the packet numbers for a NACK message (and whether to
// send a PLI). Sending: Put for every media packet sent, OnNACK for every
// packet number a NACK names, Acked for every original that transport-wide
// feedback reports received, and PollRetransmit whenever the pacer lets a
// packet go and HasRetransmit says one waits (NextCopy is when a spaced
// copy will). After each RTT sample, SetRTT on both.
//
// # Rules and their sources
//
//   - First NACK after a reorder allowance in time, not packets: RACK's
//     reordering window (RFC 8985 §6.2 step 4) raised by observed
//     reordering and decayed when none is seen; libwebrtc's NackRequester learns the same
//     from a histogram of reordering distances in packets and NACKs
//     immediately by default. Start 5 ms, bounds 1-100 ms.
//   - Re-NACK at most once per smoothed RTT + min(4 x variation, RTT/2) +
//     reorder allowance (libwebrtc: once per RTT; the variation term is
//     after RFC 6298's RTO margin), so a retransmission delayed by the
//     pacer or jitter is not asked for twice; each round repeated twice, 5 ms
//     apart (a sixth of an RTT at most), against NACK loss (DESIGN §2); at most
//     MaxNACKs rounds, default 10 (libwebrtc's old kMaxNackRetries; the
//     session core allows one per 50 ms of its budget: 60 in Live). Two exceptions, both so a second
//     round fits a real-time budget: when waiting that long would leave the
//     next retransmission no time, the re-NACK comes at the last useful
//     moment instead; and when a packet the sender sent after the round's
//     retransmission arrives first (Sent), the retransmission was lost and
//     the re-NACK goes at once (RACK's time rule, RFC 8985 §6.2, as §5.2
//     applies it to retransmissions).
//   - Give up when a retransmission requested now could no longer arrive
//     before the deadline (pion NACKs on a fixed ticker with no limit;
//     libwebrtc by retry count only). HopelessUntil reports the latest
//     deadline given up, for gaps later packets showed (not the tail-loss
//     timer's guesses, which may only be late), so the caller can ask for
//     a key frame before the frame's playout time.
//   - At most 1000 packets listed (libwebrtc's kMaxNackPackets): beyond,
//     clear the list and ask for a key frame, as libwebrtc does.
//   - A gap credit (ours; docs/PROTOCOL.md §3.3, No amplification): gaps
//     and tail losses list at most 8 numbers per packet received (64 to
//     start, 1000 at most); the older numbers of a larger gap are lost
//     unasked (ReceiverStats.Unlisted), so a packet number spoofed far
//     ahead cannot buy a flood of NACKs. Honest loss needs 89 % sustained
//     to meet it.
//   - Retransmit only if now + one-way delay is before the deadline, at
//     most once per half smoothed RTT per packet (KCP resends up to its
//     dead-link limit whatever the data's age; SRT keeps packets at least
//     1 s whatever its latency). The last useful retransmission goes twice
//     for the classes HistoryConfig.DuplicateLastChance names (the
//     caller may change them, SetDuplicateLastChance) and the
//     packets MarkLastChance names (the FEC policy's choice for delta
//     frames whose two plain rounds miss their target, DESIGN §2). The
//     first retransmission goes twice for the classes
//     HistoryConfig.DuplicateFirst names (SetDuplicateFirst): the session
//     core's choice while losses are frequent, short and the budget holds
//     about one round. A packet gets one such copy in all. With
//     HistoryConfig.DuplicateAfter n, every round after a packet's n-th
//     goes twice as well (the session core's choice for Live's budget,
//     whose many rounds a rare chain of losses could still outlast). On a path
//     that loses in bursts, CopySpacing holds the copy back
//     (SetCopySpacing) so the burst that took the first does not take it
//     too.
//   - RTT: RFC 6298 §2 smoothing; windowed minimum over 10 s with Linux's
//     minmax filter (lib/minmax.c, BBR's min_rtt).
//
// # Limits
//
// A missing packet's deadline is estimated from the media packets around
// it (the latest deadline up to its later media neighbour), so it errs late;
// the sender's check is exact. Tail-loss detection guesses the missing
// fragments' packet numbers as the next ones, which may belong to packets
// that are not media (harmless NACKs). One frame's tail is tracked at a time.
// Its timer cannot tell a lost tail from one held back by other flows'
// packets on a shared bottleneck, so fragments that come after it fired
// lengthen it, as reordering lengthens the gap allowance (TailWait).
// Memory: Receiver 96 KiB for the default 1000-packet list (48 bytes x
// twice the bound, rounded up to a power of two); History MaxBytes plus 104
// bytes per MaxPackets slot (1.41 MiB by default). Neither allocates after
// construction (PollNACK appends to the caller's slice).
//
// Like every core package, arq never reads a clock: every call takes `now`.
// Nothing here is safe for concurrent use.
package arq
