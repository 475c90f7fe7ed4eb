package fec

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/klauspost/reedsolomon"
)

// Limits of the block shape: what a repair packet can name.
const (
	// MaxSpan is how many packet numbers one block can span: the bits of
	// Block.Mask. A block therefore has at most MaxSpan members.
	MaxSpan = 64
	// MaxParity is the most repair packets one block can have (Block.M).
	MaxParity = 32
	// SymbolOverhead is what a repair symbol adds to the largest member it
	// protects: the end marker that makes rebuilt lengths exact.
	SymbolOverhead = 1
	// endMarker ends every member's shard (ISO/IEC 7816-4 padding): a
	// rebuilt member's length is the offset of its last non-zero byte.
	endMarker = 0x80
)

// ErrInvalidConfig is returned by NewEncoder and NewDecoder for a config
// they cannot use; the message names the field.
var ErrInvalidConfig = errors.New("fec: invalid config")

// Block says which media packets a repair packet protects: packet numbers
// Base+i for every bit i set in Mask. Bit 0 is always set (the base is a
// member) and a block spans at most MaxSpan packet numbers, so members need
// not be consecutive: other packet types and interleaved blocks may sit
// between them. M is the number of repair packets of the block and Index
// this repair packet's index, 0 to M-1.
type Block struct {
	Base  int64
	Mask  uint64
	M     int
	Index int
}

// K returns the number of media packets in the block.
func (b Block) K() int { return bits.OnesCount64(b.Mask) }

// valid reports whether the block's shape is one an encoder could send.
func (b Block) valid() bool {
	return b.Base >= 0 && b.Mask&1 != 0 && b.M >= 1 && b.M <= MaxParity && b.Index >= 0 && b.Index < b.M
}

func (b Block) String() string {
	return fmt.Sprintf("block{base %d, k %d, span %d, m %d, index %d}", b.Base, b.K(), 64-bits.LeadingZeros64(b.Mask), b.M, b.Index)
}

// Class is what a media packet carries; protection is unequal across
// classes (audio and key frames get more than delta frames).
type Class uint8

// The classes, most protected first.
const (
	ClassAudio     Class = iota // audio: every packet is its own frame
	ClassKey                    // key-frame video
	ClassDelta                  // other video
	ClassDroppable              // video no other frame references
	ClassData                   // anything else the application sends
	numClasses
)

func (c Class) String() string {
	switch c {
	case ClassAudio:
		return "audio"
	case ClassKey:
		return "key"
	case ClassDelta:
		return "delta"
	case ClassDroppable:
		return "droppable"
	case ClassData:
		return "data"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Conditions are the path measurements the policy reads. The caller owns
// the estimators; see the package documentation for what they should be.
type Conditions struct {
	Loss      float64       // measured packet loss rate, 0 to 1
	MeanBurst float64       // mean loss burst length in packets, >= 1 (0 reads as 1)
	RTT       time.Duration // round trip of a retransmission round: the path's minimum RTT (queueing is in OneWay)
	OneWay    time.Duration // one-way delay estimate (sender to receiver)
	ARQ       bool          // retransmission is enabled
}

// Stats are the FEC counters. Names follow W3C webrtc-stats where it has
// one: fecPacketsSent, fecPacketsReceived, fecPacketsDiscarded, fecBytesSent
// (our FECBytesSent counts repair symbol bytes, without packet headers), and
// packetsRepaired (our PacketsRecovered). An Encoder fills the sending half,
// a Decoder the receiving half.
type Stats struct {
	// Sending side.
	FECPacketsSent   int64 // repair packets handed out by PollRepair
	FECBytesSent     int64 // repair symbol bytes handed out by PollRepair
	MediaProtected   int64 // media packets placed in a block with repair packets
	MediaUnprotected int64 // media packets sent without protection (policy chose none)
	MediaLastChance  int64 // ... of which left to ARQ with the last retransmission sent twice (AddMedia's dupLastChance)
	BlocksClosed     int64 // blocks closed with at least one repair packet
	ClosedFull       int64 // ... of which at k members
	ClosedEndOfFrame int64 // ... of which at the end of a frame
	ClosedTimeBound  int64 // ... of which on their time bound (or span limit)
	RepairsDropped   int64 // repair packets never handed out: too late, queue full, no buffer

	// Receiving side.
	FECPacketsReceived  int64 // repair packets given to OnRepair
	FECBytesReceived    int64 // their symbol bytes
	FECPacketsUsed      int64 // repair packets a reconstruction used
	FECPacketsDiscarded int64 // repair packets not used: the sum of the three below
	DiscardedInvalid    int64 // ... malformed, absurd, or inconsistent with their block
	DiscardedUnneeded   int64 // ... no loss left to repair (duplicates, complete blocks, extras), or too old
	DiscardedExpired    int64 // ... held by a block forgotten before it could recover
	PacketsRecovered    int64 // media packets rebuilt (webrtc-stats packetsRepaired)
	BlocksRecovered     int64 // blocks on which a reconstruction ran
	PacketsUnrecovered  int64 // members still missing when their block was forgotten
	BlocksUnrecovered   int64 // blocks forgotten with members missing
	RecoveredInvalid    int64 // rebuilt members whose length was impossible (forged repairs)
	RecoveredDropped    int64 // rebuilt members never polled before the queue overflowed
	RebuildsDeferred    int64 // reconstructions put off until the packets arriving had paid for them (forged repairs)
}

// LossBeforeRecovery returns the members of known blocks that were missing
// (recovered or not): loss before FEC, counted over the blocks a repair
// packet announced.
func (s Stats) LossBeforeRecovery() int64 { return s.PacketsRecovered + s.PacketsUnrecovered }

// coeff is the fixed parity matrix every block uses: repair symbol j of a
// block is sum over members i of coeff[j][i] * member i, in GF(2^8). It is
// the Cauchy part of klauspost/reedsolomon's Cauchy matrix for MaxSpan data
// and MaxParity parity shards (element 1/((MaxSpan+j) xor i)), read out of
// the library by encoding unit vectors, so no GF(2^8) arithmetic is written
// here. Because a row depends neither on k nor on m, a block of any k and m
// uses the top-left m x k corner, the encoder can add members one at a time
// before it knows k, and repair j means the same thing whatever M is. Every
// square submatrix of a Cauchy matrix is invertible, so any k of a block's
// k+m packets recover it (the code is MDS).
var coeff = buildCoeff()

func buildCoeff() [][]byte {
	rs, err := reedsolomon.New(MaxSpan, MaxParity, reedsolomon.WithCauchyMatrix())
	if err != nil {
		panic(err)
	}
	out := make([][]byte, MaxParity)
	for j := range out {
		out[j] = make([]byte, MaxSpan)
	}
	unit := []byte{1}
	par := make([][]byte, MaxParity)
	for i := range MaxSpan {
		for j := range par {
			par[j] = []byte{0}
		}
		if err := rs.EncodeIdx(unit, i, par); err != nil {
			panic(err)
		}
		for j := range par {
			out[j][i] = par[j][0]
		}
	}
	return out
}

// newCodec returns a codec for k data shards and m parity shards over
// coeff. The inversion cache is the library's; the decoder bounds it by
// replacing codecs (see Decoder).
func newCodec(k, m int) (reedsolomon.Encoder, error) {
	return reedsolomon.New(k, m, reedsolomon.WithCustomMatrix(coeff))
}

// roundUp64 rounds n up to a multiple of 64: the SIMD kernels' stride, so
// no shard ends in a scalar tail.
func roundUp64(n int) int { return (n + 63) &^ 63 }

// durationOr returns d, or def when d is zero.
func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
