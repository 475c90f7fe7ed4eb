package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxNACKPairs is the most NACK pairs one generic NACK message may carry
// (up to 17 sequence numbers each): NACK.Append rejects more and
// NACK.Unmarshal rejects a message holding more. 256 pairs take 1,036 bytes.
const MaxNACKPairs = 256

// NACK is a generic NACK (RTPFB, FMT 1), RFC 4585 §6.2.1.
type NACK struct {
	SenderSSRC, MediaSSRC uint32
	Pairs                 []NACKPair // 1 to MaxNACKPairs
}

// NACKPair is one generic NACK FCI entry: PacketID is lost, and so is
// PacketID+i+1 for every bit i (least significant first) set in LostBitmap.
type NACKPair struct {
	PacketID   uint16
	LostBitmap uint16
}

// Range calls fn with every sequence number n reports lost, pair by pair and
// in increasing order within a pair, until fn returns false.
func (n *NACK) Range(fn func(seq uint16) bool) {
	for _, p := range n.Pairs {
		if !fn(p.PacketID) {
			return
		}
		for i := range 16 {
			if p.LostBitmap&(1<<i) != 0 && !fn(p.PacketID+uint16(i)+1) {
				return
			}
		}
	}
}

// AddSeq adds the lost sequence number seq to n. Sequence numbers must be
// added in increasing order (modulo 2^16): seq goes into the bitmap of the
// last pair when it is 1 to 16 after that pair's PacketID, and starts a new
// pair otherwise; adding the last pair's PacketID again does nothing. AddSeq
// does not enforce MaxNACKPairs; Append does.
func (n *NACK) AddSeq(seq uint16) {
	if k := len(n.Pairs); k > 0 {
		p := &n.Pairs[k-1]
		d := seq - p.PacketID
		if d == 0 {
			return
		}
		if d <= 16 {
			p.LostBitmap |= 1 << (d - 1)
			return
		}
	}
	n.Pairs = append(n.Pairs, NACKPair{PacketID: seq})
}

// Append appends n as one RTCP packet to b. It fails, leaving b as it was,
// when Pairs is empty or longer than MaxNACKPairs.
func (n *NACK) Append(b []byte) ([]byte, error) {
	if k := len(n.Pairs); k == 0 || k > MaxNACKPairs {
		return b, fmt.Errorf("%w: NACK with %d pairs (1 to %d)", ErrRange, k, MaxNACKPairs)
	}
	b, start := rtcpStart(b)
	b = binary.BigEndian.AppendUint32(b, n.SenderSSRC)
	b = binary.BigEndian.AppendUint32(b, n.MediaSSRC)
	for _, p := range n.Pairs {
		b = binary.BigEndian.AppendUint16(b, p.PacketID)
		b = binary.BigEndian.AppendUint16(b, p.LostBitmap)
	}
	return rtcpFinish(b, start, RTCPFmtNACK, RTCPTypeRTPFB)
}

// Unmarshal decodes the generic NACK pkt (exactly one RTCP packet, as
// NextRTCP returns it) into n, reusing the capacity of n.Pairs. It rejects a
// message with no pair, with more than MaxNACKPairs, or whose length (padding
// removed) is not a whole number of pairs. On error n's contents are
// unspecified.
func (n *NACK) Unmarshal(pkt []byte) error {
	_, body, err := rtcpBody(pkt, RTCPTypeRTPFB, RTCPFmtNACK)
	if err != nil {
		return err
	}
	if len(body) < 8 {
		return errRTCPFixedShort
	}
	fci := body[8:]
	switch {
	case len(fci)%4 != 0:
		return errNACKLen
	case len(fci) == 0:
		return errNACKEmpty
	case len(fci)/4 > MaxNACKPairs:
		return errNACKCount
	}
	n.SenderSSRC = binary.BigEndian.Uint32(body)
	n.MediaSSRC = binary.BigEndian.Uint32(body[4:])
	n.Pairs = n.Pairs[:0]
	for ; len(fci) >= 4; fci = fci[4:] {
		n.Pairs = append(n.Pairs, NACKPair{
			PacketID:   binary.BigEndian.Uint16(fci),
			LostBitmap: binary.BigEndian.Uint16(fci[2:]),
		})
	}
	return nil
}
