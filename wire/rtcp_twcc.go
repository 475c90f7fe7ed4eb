package wire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Transport-wide congestion control feedback (RTPFB, FMT 15),
// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|V=2|P|  FMT=15 |    PT=205     |           length              |
//	|                     SSRC of packet sender                     |
//	|                      SSRC of media source                     |
//	|      base sequence number     |      packet status count      |
//	|                 reference time                | fb pkt. count |
//	|          packet chunk         |         packet chunk          |
//	.                              ...                              .
//	|         packet chunk          |  recv delta   |  recv delta   |
//	.                              ...                              .
//	|           recv delta          |  recv delta   | zero padding  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

const (
	// MaxTWCCPackets is the largest packet status count a TWCC message may
	// carry: TWCC.Append rejects more and TWCC.Unmarshal rejects a message
	// announcing more, so hostile input cannot make a parser hold more than
	// MaxTWCCPackets * 8 bytes of packet statuses. ParseFeedback also caps the
	// sum over all TWCC messages of one compound at MaxTWCCPackets.
	MaxTWCCPackets = 4096

	// TWCCDeltaUnit is the unit of TWCCPacket.Delta (§3.1.5).
	TWCCDeltaUnit = 250 * time.Microsecond
	// TWCCRefTimeUnit is the unit of TWCC.RefTime (§3.1).
	TWCCRefTimeUnit = 64 * time.Millisecond
)

const (
	twccFixedLen = 16 // the FCI's fixed part: SSRCs, base, count, reference time, fb count

	// Delta sizes, which are also the 2-bit status symbols (§3.1.1).
	twccNotReceived = 0
	twccSmall       = 1 // received, 1-byte delta in 0..255
	twccLarge       = 2 // received, 2-byte signed delta
	twccReserved    = 3

	twccRunMax    = 1<<13 - 1 // run length chunk: 13-bit run
	twccOneBitCap = 14        // one-bit status vector chunk: 14 symbols
	twccTwoBitCap = 7         // two-bit status vector chunk: 7 symbols

	twccRefTimeMin = -1 << 23
	twccRefTimeMax = 1<<23 - 1
)

// TWCC is a transport-wide congestion control feedback message.
type TWCC struct {
	SenderSSRC, MediaSSRC uint32
	BaseSeq               uint16 // transport-wide sequence number of Packets[0]
	FeedbackCount         uint8  // feedback packet count, incremented per message sent
	RefTime               int32  // signed 24-bit, in multiples of TWCCRefTimeUnit
	// Packets holds one status per reported packet, in sequence order from
	// BaseSeq (its length is the packet status count: 1 to MaxTWCCPackets).
	Packets []TWCCPacket
}

// TWCCPacket is the status of one packet in a TWCC message.
type TWCCPacket struct {
	Received bool
	// Delta is, for a received packet, its receive time minus that of the
	// previous received packet in the message (the first one's: minus
	// RefTime), in TWCCDeltaUnit units: -32768 to 32767. Deltas of 0 to 255
	// take one byte on the wire, others two. Append ignores Delta for a packet
	// not received; Unmarshal sets it to 0.
	Delta int32
}

func twccDeltaSize(p TWCCPacket) uint8 {
	switch {
	case !p.Received:
		return twccNotReceived
	case p.Delta >= 0 && p.Delta <= 0xff:
		return twccSmall
	default:
		return twccLarge
	}
}

// Append appends t as one RTCP packet to b. The status chunks are chosen as
// libwebrtc chooses them: a run-length chunk for a run of one delta size, a
// one-bit vector of 14 when only small deltas and losses are pending, a
// two-bit vector of 7 otherwise. The message is padded to a 32-bit boundary
// with zero bytes, as the draft's figure shows (the padding bit stays clear).
// It fails, leaving b as it was, when Packets is empty or longer than
// MaxTWCCPackets, when RefTime does not fit 24 signed bits, or when a
// received packet's Delta does not fit 16 signed bits.
func (t *TWCC) Append(b []byte) ([]byte, error) {
	if n := len(t.Packets); n == 0 || n > MaxTWCCPackets {
		return b, fmt.Errorf("%w: TWCC with %d packets (1 to %d)", ErrRange, n, MaxTWCCPackets)
	}
	if t.RefTime < twccRefTimeMin || t.RefTime > twccRefTimeMax {
		return b, fmt.Errorf("%w: TWCC reference time %d does not fit 24 bits", ErrRange, t.RefTime)
	}
	for i, p := range t.Packets {
		if p.Received && (p.Delta < -1<<15 || p.Delta > 1<<15-1) {
			return b, fmt.Errorf("%w: TWCC packet %d: delta %d does not fit 16 bits", ErrRange, i, p.Delta)
		}
	}
	b, start := rtcpStart(b)
	b = binary.BigEndian.AppendUint32(b, t.SenderSSRC)
	b = binary.BigEndian.AppendUint32(b, t.MediaSSRC)
	b = binary.BigEndian.AppendUint16(b, t.BaseSeq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.Packets)))
	rt := uint32(t.RefTime) & 0xffffff
	b = append(b, byte(rt>>16), byte(rt>>8), byte(rt), t.FeedbackCount)

	var c twccChunker
	for _, p := range t.Packets {
		s := twccDeltaSize(p)
		if !c.canAdd(s) {
			b = binary.BigEndian.AppendUint16(b, c.emit())
		}
		c.add(s)
	}
	b = binary.BigEndian.AppendUint16(b, c.last())

	for _, p := range t.Packets {
		switch twccDeltaSize(p) {
		case twccSmall:
			b = append(b, byte(p.Delta))
		case twccLarge:
			b = binary.BigEndian.AppendUint16(b, uint16(int16(p.Delta)))
		}
	}
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	return rtcpFinish(b, start, RTCPFmtTWCC, RTCPTypeRTPFB)
}

// twccChunker packs delta sizes into status chunks the way libwebrtc's
// TransportFeedback::LastChunk does: it keeps pending symbols while some chunk
// can still hold them all, and emits a chunk when the next symbol fits none.
type twccChunker struct {
	sizes    [twccOneBitCap]uint8 // the first pending symbols
	n        int                  // pending symbols (may exceed len(sizes) in a run)
	mixed    bool                 // not all pending symbols are equal
	hasLarge bool                 // a pending symbol is twccLarge
}

func (c *twccChunker) canAdd(s uint8) bool {
	switch {
	case c.n < twccTwoBitCap:
		return true
	case c.n < twccOneBitCap && !c.hasLarge && s != twccLarge:
		return true
	default:
		return c.n < twccRunMax && !c.mixed && c.sizes[0] == s
	}
}

func (c *twccChunker) add(s uint8) {
	if c.n < len(c.sizes) {
		c.sizes[c.n] = s
	}
	c.mixed = c.mixed || s != c.sizes[0]
	c.hasLarge = c.hasLarge || s == twccLarge
	c.n++
}

// emit returns a full chunk and keeps the symbols it does not cover.
func (c *twccChunker) emit() uint16 {
	if !c.mixed {
		chunk := c.runLength()
		*c = twccChunker{}
		return chunk
	}
	if c.n == twccOneBitCap {
		chunk := c.oneBit()
		*c = twccChunker{}
		return chunk
	}
	// 7 <= n < 14 with a large delta among them, or a symbol that does not fit
	// one bit coming: emit the first 7 as a two-bit vector.
	chunk := c.twoBit(twccTwoBitCap)
	rest := c.n - twccTwoBitCap
	var sizes [twccOneBitCap]uint8
	copy(sizes[:], c.sizes[twccTwoBitCap:c.n])
	*c = twccChunker{}
	for _, s := range sizes[:rest] {
		c.add(s)
	}
	return chunk
}

// last encodes the pending symbols (at least one) as the final chunk.
func (c *twccChunker) last() uint16 {
	switch {
	case !c.mixed:
		return c.runLength()
	case c.n <= twccTwoBitCap:
		return c.twoBit(c.n)
	default:
		return c.oneBit()
	}
}

// runLength: |0| S (2) | run length (13) |
func (c *twccChunker) runLength() uint16 {
	return uint16(c.sizes[0])<<13 | uint16(c.n)
}

// oneBit: |1|0| 14 symbols: 0 not received, 1 received with a small delta |
func (c *twccChunker) oneBit() uint16 {
	chunk := uint16(0x8000)
	for i, s := range c.sizes[:c.n] {
		chunk |= uint16(s) << (twccOneBitCap - 1 - i)
	}
	return chunk
}

// twoBit: |1|1| 7 two-bit symbols |
func (c *twccChunker) twoBit(n int) uint16 {
	chunk := uint16(0xc000)
	for i, s := range c.sizes[:n] {
		chunk |= uint16(s) << (2 * (twccTwoBitCap - 1 - i))
	}
	return chunk
}

// Unmarshal decodes the TWCC message pkt (exactly one RTCP packet, as
// NextRTCP returns it) into t, reusing the capacity of t.Packets: once it has
// grown to the largest status count seen, Unmarshal does not allocate. It
// accepts every valid chunk layout (including trailing unused symbols in the
// last vector chunk and a last run longer than needed), zero padding after
// the deltas, and RFC 3550 padding. It rejects a status count of 0 or above
// MaxTWCCPackets, the reserved status symbol 3, and chunks or deltas cut
// short (libwebrtc's feedback without receive deltas is not supported). On
// error t's contents are unspecified.
func (t *TWCC) Unmarshal(pkt []byte) error {
	_, body, err := rtcpBody(pkt, RTCPTypeRTPFB, RTCPFmtTWCC)
	if err != nil {
		return err
	}
	if len(body) < twccFixedLen {
		return errRTCPFixedShort
	}
	t.SenderSSRC = binary.BigEndian.Uint32(body)
	t.MediaSSRC = binary.BigEndian.Uint32(body[4:])
	t.BaseSeq = binary.BigEndian.Uint16(body[8:])
	count := int(binary.BigEndian.Uint16(body[10:]))
	t.RefTime = int32(binary.BigEndian.Uint32(body[12:])) >> 8 // sign-extends the 24 bits
	t.FeedbackCount = body[15]
	switch {
	case count == 0:
		return errTWCCEmpty
	case count > MaxTWCCPackets:
		return errTWCCCount
	}
	if cap(t.Packets) < count {
		t.Packets = make([]TWCCPacket, count)
	}
	ps := t.Packets[:count]
	t.Packets = ps

	// First pass: the chunks give each packet's delta size, kept in Delta
	// until the second pass reads the delta itself.
	pos := twccFixedLen
	for i := 0; i < count; {
		if pos+2 > len(body) {
			return errTWCCChunks
		}
		chunk := binary.BigEndian.Uint16(body[pos:])
		pos += 2
		switch {
		case chunk&0x8000 == 0: // run length
			s := uint8(chunk >> 13 & 3)
			if s == twccReserved {
				return errTWCCSymbol
			}
			n := min(int(chunk&twccRunMax), count-i)
			for j := range ps[i : i+n] {
				ps[i+j] = TWCCPacket{Received: s != twccNotReceived, Delta: int32(s)}
			}
			i += n
		case chunk&0x4000 == 0: // one-bit vector
			n := min(twccOneBitCap, count-i)
			for j := range n {
				s := int32(chunk >> (twccOneBitCap - 1 - j) & 1)
				ps[i+j] = TWCCPacket{Received: s != 0, Delta: s}
			}
			i += n
		default: // two-bit vector
			n := min(twccTwoBitCap, count-i)
			for j := range n {
				s := int32(chunk >> (2 * (twccTwoBitCap - 1 - j)) & 3)
				if s == twccReserved {
					return errTWCCSymbol
				}
				ps[i+j] = TWCCPacket{Received: s != 0, Delta: s}
			}
			i += n
		}
	}

	for i := range ps {
		switch ps[i].Delta {
		case twccSmall:
			if pos >= len(body) {
				return errTWCCDeltas
			}
			ps[i].Delta = int32(body[pos])
			pos++
		case twccLarge:
			if pos+2 > len(body) {
				return errTWCCDeltas
			}
			ps[i].Delta = int32(int16(binary.BigEndian.Uint16(body[pos:])))
			pos += 2
		}
	}
	return nil
}
