// Package fec is Spillway's forward error correction: Reed-Solomon repair
// packets (github.com/klauspost/reedsolomon) over blocks of media packets,
// with protection chosen per block from the measured loss rate and
// burstiness, the RTT and the slack to the frame's deadline. FEC carries
// recovery where a retransmission cannot arrive in time and steps aside
// where one can.
//
// Like every core package, fec never reads a clock, starts no goroutine
// and touches no socket: every call takes `now`. Nothing here is safe for
// concurrent use.
//
// # Usage
//
// The sender tells its Encoder about every media packet as it leaves
// (AddMedia) and polls repair packets after each call (PollRepair); it
// wakes at NextTimeout to call HandleTimeout, and feeds path measurements
// with SetConditions every 100 ms to 1 s. The receiver gives its Decoder
// every media packet (OnMedia, first transmissions and retransmissions)
// and repair packet (OnRepair), polls rebuilt packets (PollRecovered),
// asks Pending before NACKing a packet, and calls Expire as frames are
// given up. A Block names a repair packet's block on the wire: the base
// packet number, a 64-bit member mask, M and the repair's index.
//
// # The scheme
//
// A block is up to MaxK media packets of one class (audio, key-frame
// video, delta video, droppable video, data) whose packet numbers lie
// within MaxSpan (64) of the first, so other packets and interleaved
// blocks may sit between members. It closes, and its M repair packets are
// due at once, at the first of: its planned k reached; the end of a frame
// of two or more packets; its time bound, the earliest member's deadline
// less the one-way delay less RepairMargin (so the repairs still arrive
// in time); or its span. A packet already past that bound opens no
// block, though it joins one its lane has open (Reaches says so
// beforehand, for a sender with a later deadline worth protecting to). Single-packet frames (audio) are grouped across
// frames up to k or the time bound, since a block per audio packet would be
// plain replication. Parity is computed as each member arrives
// (EncodeIdx), so nothing is held back waiting for more data, and a block
// that closes early simply has fewer members.
//
// All blocks share one parity matrix: the Cauchy rows of
// klauspost/reedsolomon's Cauchy matrix for 64 data and 32 parity shards,
// read out of the library. A row depends neither on k nor on M, so repair j
// of a block of k members is the same whatever M the block ends with, and
// every square submatrix of a Cauchy matrix is invertible: any k of the
// block's k+M packets rebuild all of it (the code is MDS).
//
// # Symbol layout
//
// Member i of a block contributes the shard
//
//	[ protected bytes ][ 0x80 ][ zeros ... ]
//
// zero-padded to the block's symbol length S = 1 + the largest member (the
// end marker is ISO/IEC 7816-4 padding). Repair symbol j is
// sum_i C[j][i] x shard_i over GF(2^8), S bytes long, sent as the repair
// packet's payload; a repair packet is therefore one byte longer than the
// block's largest member (SymbolOverhead). A rebuilt member's length is
// the offset of its shard's last non-zero byte, which must be the marker:
// lengths come back exact without a length field, and a shard that does
// not end in a marker is rejected (RecoveredInvalid). The protected bytes
// are the data packet after its short header (20 to about 1,400 bytes;
// MaxSymbol bounds them). Both ends code shards padded with zeros to a
// multiple of 64 bytes, the SIMD kernels' stride; the padding is zero in
// every symbol and never sent.
//
// # Policy
//
// Loss follows a two-state Markov chain (Gilbert-Elliott, every packet lost
// in the bad state): stationary loss p and mean burst B give P(bad->good)
// = 1/B and P(good->bad) = p/((1-p)B); B = 1/(1-p) is Bernoulli loss.
// For a block of k members spaced gm packets apart on the link, followed
// by m repairs spaced gr apart, the policy computes exactly, by dynamic
// programming over the chain (Yee & Weldon 1995; Frossard 2001), the
// probability F that the block is not fully rebuilt and the probability Q
// that a given member is lost after recovery. R = floor(slack / (RTT +
// ARQMargin)) retransmission rounds fit in a member's slack (deadline less
// send time less one-way delay); each fails with probability p, which
// multiplies into F and Q. The rules:
//
//   - m is the smallest number of repairs with F (video, data) or Q (audio)
//     under the class's target (audio 5e-4, key 1e-3, delta 3e-3,
//     droppable 1e-2, data 1e-3), within MaxM and MaxOverhead x k (0.5,
//     libwebrtc's cap); if none reaches the target, the largest allowed.
//   - Delta and droppable video get none once a retransmission round fits
//     (R >= 1) and retransmission keeps the block low enough: ARQ alone
//     under the class's target (1 - (1 - p^(R+1))^k); else, with two
//     rounds or more, ARQ with the last retransmission sent twice under
//     the target (p^(R+2) per member; AddMedia reports these packets so
//     the caller's send history doubles the copy, arq.History.
//     MarkLastChance); else ARQ alone under ARQCeiling (1 %). ARQ repairs
//     them at about the loss rate in bytes, as libwebrtc's hybrid NACK/FEC
//     turns FEC off at low RTT (modules/video_coding/media_opt_util.cc).
//     Past those bars (20 % loss, two rounds) they get FEC toward their
//     target. The core passes
//     the minimum RTT as the round's RTT (the queue is in the one-way
//     delay) and ARQMargin is 5 ms, so at RTT 100 ms in a 300 ms budget
//     two rounds count, as two fit in the simulator. Audio, key frames and data
//     keep FEC only while ARQ alone misses their target: at RTT 100 ms
//     under a 300 ms budget that is key frames (one round fits for a
//     40-packet key frame, leaving it lost 1 - (1 - p^2)^40 of the time)
//     and, at 10 % loss, audio (two rounds leave p^3 = 1e-3).
//   - A clean network (p = 0) gets no FEC.
//   - A multi-packet frame's blocks are sized from the lane's measured
//     frame size, so a frame splits into equal blocks of at most MaxK.
//     Grouped single-packet frames get the k, up to what fits before the
//     time bound at the lane's packet interval, with the least overhead
//     meeting the target (or the least Q).
//   - When bursts are long (B > 1.5) and frames need several blocks anyway,
//     a lane fills up to ceil(B) blocks in turn, members that many packets
//     apart, if that meets the target with less overhead than consecutive
//     blocks. Members of different streams are already apart on the link;
//     the measured spacing goes into the chain.
//
// Worked numbers at 5 % Bernoulli loss (see TestAudioArithmetic): a member
// is lost after recovery with Q = p P(Bin(k+m-1, p) >= m). (4,1), 25 %:
// 0.93 %; (8,2), 25 %: 0.36 %; (10,3), 30 %: 0.098 %; (9,3), 33 %:
// 0.076 %. So audio within 25 % redundancy is (8,2), under the issue's
// 0.5 %; within 50 % and the 180 ms a 300 ms budget leaves at RTT 200 ms,
// (9,3) reaches 1e-3. Five-packet delta frames get (5,2), 40 %, lost
// 0.38 % of the time (on time 0.996).
//
// # Loss estimate
//
// The policy trusts Conditions.Loss as the current rate: an underestimate
// takes protection away (an empty or short window reads as no loss), an
// overestimate that lingers keeps FEC on after loss stops. LossEstimator
// does what the policy expects: the rate over 5 s (or the last second,
// if higher), and 0 once no packet has been lost for about 4/rate packets
// (1-2 s), so FEC stops within 2 s of loss stopping. Blocks already open
// keep at most the protection they opened with; new blocks follow new
// conditions at once.
//
// # State and limits
//
// Memory is bounded by the configs. An Encoder holds at most 5 x
// MaxInterleave open blocks and MaxPending closed ones, and parity buffers
// up to MaxBufferBytes (allocated as first needed, then reused). A Decoder
// keeps a copy of the last History media packets (History x (MaxSymbol +
// 1, rounded up to 64) bytes, 352 KiB by default: a repair names packets
// sent before it),
// at most MaxBlocks blocks with missing members and MaxRepairs repair
// symbols; the library's matrix-inversion caches are dropped after about
// 1 MiB of reconstructions. Steady state (encoding, and decoding without
// loss) allocates nothing; the library's reconstruction allocates (about
// 5 objects per rebuilt block in v1.14.2).
//
// Limits: a block protects at most 64 packet numbers' span, so at high
// packet rates audio blocks close on their span before their time bound;
// M is at most 32. Encoding uses EncodeIdx one member at a time (the only
// allocation-free path in v1.14.2), which on CPUs with GFNI runs slower
// than the library's one-shot Encode over a whole block; see the
// benchmarks. The analysis assumes losses of retransmissions are
// independent of the original's (an RTT apart); the simulation tests
// measure what the package decides on its own, not the session with its
// pacer and ARQ.
//
// # Security
//
// Repair packets are hostile input. OnRepair checks the block's shape
// (mask, M, index, symbol length), its consistency with what the decoder
// already holds of that block, and its place in the packet-number window,
// and counts whatever it discards (Stats). A forged repair can at worst
// rebuild garbage for a packet that was lost: rebuilt lengths are checked
// against the symbol. Version 1 of the protocol authenticates nothing
// (docs/PROTOCOL.md: protection is to come), so whoever sees a
// connection's ID and can spoof its peer's address can send repairs.
// Reconstructions are paid for by the packets that arrive (4 members of
// work per media packet, 1 per repair; a rebuild of k members spends k),
// so forged repairs that make a rebuild fail cannot each buy a whole one
// (Stats.RebuildsDeferred). FuzzDecoder drives the decoder with arbitrary
// call sequences.
package fec
