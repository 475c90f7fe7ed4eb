package wire

import (
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// HeaderVersion is the 2-bit version carried in the first byte of every
// packet. Zero is never valid, so an all-zero datagram is rejected at once.
const HeaderVersion = 1

// Version1 is the 32-bit protocol version a handshake carries ("SP", 0, 1).
const Version1 uint32 = 0x53500001

// Type is a packet type: the 3 bits after the header version in byte 0.
type Type uint8

// Packet types (docs/PROTOCOL.md §2).
const (
	TypeHandshake  Type = 0
	TypeData       Type = 1
	TypeRepair     Type = 2
	TypeFeedback   Type = 3
	TypeClose      Type = 4
	TypePing       Type = 5
	TypeRetransmit Type = 6
	typeReserved   Type = 7
)

var typeNames = [...]string{"handshake", "data", "repair", "feedback", "close", "ping", "retransmit", "reserved"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// ShortHeaderLen is the length of the header every post-handshake packet
// starts with: byte 0, the destination connection ID and the packet number.
const ShortHeaderLen = 8

// DataHeaderLen is the length of a data packet's header; a retransmission's
// is RetransmitHeaderLen. Neither includes an AEAD tag (v1 sends none; the
// tag, when packet protection comes, follows the payload).
const (
	DataHeaderLen       = 16
	RetransmitHeaderLen = 19
)

// MaxDatagramSize is the largest datagram any parser accepts (the largest
// UDP payload over IPv4).
const MaxDatagramSize = 65507

// byte0 builds the first byte of a packet.
func byte0(t Type, flags uint8) byte {
	return HeaderVersion<<6 | byte(t)<<3 | flags&0x7
}

// Peek reads what every packet's first byte and destination connection ID
// say, which is all an endpoint needs to route a datagram. It checks the
// header version and rejects the reserved type; it does not validate the
// rest of the packet.
func Peek(b []byte) (t Type, flags uint8, dstConnID uint32, err error) {
	if len(b) < 1 {
		return 0, 0, 0, errShort
	}
	if b[0]>>6 != HeaderVersion {
		return 0, 0, 0, errHeaderVersion
	}
	t = Type(b[0] >> 3 & 0x7)
	flags = b[0] & 0x7
	switch t {
	case typeReserved:
		return 0, 0, 0, errReservedType
	case TypeHandshake:
		if len(b) < handshakeFixedLen {
			return 0, 0, 0, errShort
		}
		return t, flags, be32(b[5:]), nil
	default:
		if len(b) < ShortHeaderLen {
			return 0, 0, 0, errShort
		}
		return t, flags, be32(b[1:]), nil
	}
}

// ShortHeader is the header shared by every packet type but the handshake.
type ShortHeader struct {
	Type         Type
	Flags        uint8  // the type's 3 flag bits
	DstConnID    uint32 // the receiver's connection ID (never 0)
	PacketNumber uint32 // the low 24 bits of the packet number; see DecodePacketNumber
}

// Append appends the 8-byte short header to b.
func (h *ShortHeader) Append(b []byte) ([]byte, error) {
	if h.Type == TypeHandshake || h.Type >= typeReserved || h.Flags > 7 || h.PacketNumber > mask24 || h.DstConnID == 0 {
		return b, ErrRange
	}
	b = append(b, byte0(h.Type, h.Flags))
	b = append32(b, h.DstConnID)
	return append24(b, h.PacketNumber), nil
}

// Parse reads a short header from b and returns the rest of the packet.
func (h *ShortHeader) Parse(b []byte) (rest []byte, err error) {
	t, flags, dcid, err := Peek(b)
	if err != nil {
		return nil, err
	}
	if t == TypeHandshake {
		return nil, errType
	}
	if dcid == 0 {
		return nil, errConnID
	}
	*h = ShortHeader{Type: t, Flags: flags, DstConnID: dcid, PacketNumber: be24(b[5:])}
	return b[ShortHeaderLen:], nil
}

const (
	mask12 = 1<<12 - 1
	mask24 = 1<<24 - 1
)

// DecodePacketNumber reconstructs a full packet number from its low 24 bits,
// given the largest packet number received so far (-1 before any), choosing
// the candidate closest to largest+1 (RFC 9000 appendix A.3).
func DecodePacketNumber(largest int64, truncated uint32) int64 {
	return unwrap(largest+1, int64(truncated), 24)
}

// DecodeFrameID reconstructs a full frame id from its 12 wire bits, given
// the frame id expected next in the stream (RFC 9000 appendix A.3's rule,
// applied to a 12-bit space).
func DecodeFrameID(expected int64, truncated uint16) int64 {
	return unwrap(expected, int64(truncated), 12)
}

// unwrap returns the value congruent to truncated modulo 2^bits that is
// closest to expected, never negative.
func unwrap(expected, truncated int64, bits uint) int64 {
	win := int64(1) << bits
	half := win / 2
	mask := win - 1
	candidate := (expected &^ mask) | truncated
	switch {
	case candidate <= expected-half && candidate < (1<<62)-win:
		return candidate + win
	case candidate > expected+half && candidate >= win:
		return candidate - win
	}
	return candidate
}

// TimestampUnit is the resolution of the 24-bit send and capture timestamps:
// 4 µs, so they wrap every 2^24 x 4 µs = 67.1 s.
const TimestampUnit = 4 * time.Microsecond

// TimestampWrap is the period after which 24-bit timestamps repeat.
const TimestampWrap = (1 << 24) * TimestampUnit

// Timestamp returns the 24-bit wire timestamp of t (in the sender's clock,
// counted from the connection's epoch).
func Timestamp(t, epoch clock.Time) uint32 {
	units := int64(t.Sub(epoch) / TimestampUnit)
	return uint32(units) & mask24
}

// UnwrapTimestamp returns the full timestamp (in TimestampUnits since the
// sender's epoch) closest to ref (also in TimestampUnits) whose low 24 bits
// are ts. It is how a receiver turns wire timestamps into a monotonic count.
func UnwrapTimestamp(ref int64, ts uint32) int64 {
	return unwrapSigned(ref, int64(ts&mask24), 24)
}

// unwrapSigned is unwrap without the lower bound, for timestamps that may
// legitimately be negative (a capture time before the connection started).
func unwrapSigned(expected, truncated int64, bits uint) int64 {
	win := int64(1) << bits
	half := win / 2
	mask := win - 1
	candidate := (expected &^ mask) | truncated
	switch {
	case candidate <= expected-half:
		return candidate + win
	case candidate > expected+half:
		return candidate - win
	}
	return candidate
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

func append16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
func append24(b []byte, v uint32) []byte { return append(b, byte(v>>16), byte(v>>8), byte(v)) }
func append32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func append64(b []byte, v uint64) []byte { return append32(append32(b, uint32(v>>32)), uint32(v)) }
