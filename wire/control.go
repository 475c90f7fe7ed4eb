package wire

import (
	"encoding/binary"
	"math/bits"
)

// Close packet flags.
const (
	// FlagCloseReply marks a Close sent in answer to the peer's Close; it is
	// never answered itself, so two closing sides cannot ping-pong.
	FlagCloseReply = 1 << 0
)

// MaxReasonLen is the longest close reason on the wire.
const MaxReasonLen = 255

// Close is a close packet: the sender is done with the connection.
type Close struct {
	DstConnID    uint32
	PacketNumber uint32 // low 24 bits
	Reply        bool
	Code         uint16
	Reason       []byte // UTF-8 text for people; aliases the input on Parse
}

// Append appends the close packet to b.
func (c *Close) Append(b []byte) ([]byte, error) {
	if len(c.Reason) > MaxReasonLen {
		return b, ErrRange
	}
	var flags uint8
	if c.Reply {
		flags = FlagCloseReply
	}
	sh := ShortHeader{Type: TypeClose, Flags: flags, DstConnID: c.DstConnID, PacketNumber: c.PacketNumber}
	b, err := sh.Append(b)
	if err != nil {
		return b, err
	}
	b = append16(b, c.Code)
	b = append(b, byte(len(c.Reason)))
	return append(b, c.Reason...), nil
}

// Parse reads a close packet from b.
func (c *Close) Parse(b []byte) error {
	var sh ShortHeader
	rest, err := sh.Parse(b)
	if err != nil {
		return err
	}
	if sh.Type != TypeClose {
		return errType
	}
	if sh.Flags&^FlagCloseReply != 0 {
		return errFlags
	}
	if len(rest) < 3 {
		return errShort
	}
	rl := int(rest[2])
	if len(rest)-3 != rl {
		return errReasonLen
	}
	*c = Close{
		DstConnID:    sh.DstConnID,
		PacketNumber: sh.PacketNumber,
		Reply:        sh.Flags&FlagCloseReply != 0,
		Code:         be16(rest),
	}
	if rl > 0 {
		c.Reason = rest[3 : 3+rl : 3+rl]
	}
	return nil
}

// Ping packet flags.
const (
	FlagPong = 1 << 0 // an answer to a ping, echoing its value
)

// PingLen and PongLen are the lengths of ping and pong packets.
const (
	PingLen = ShortHeaderLen + 8
	PongLen = ShortHeaderLen + 8 + 3 + 8
)

// MaxHoldMicros is the largest hold time a pong can report (24 bits of µs).
const MaxHoldMicros = mask24

// Ping is a keepalive and round-trip probe; a pong answers it.
type Ping struct {
	DstConnID    uint32
	PacketNumber uint32 // low 24 bits
	Pong         bool
	Echo         uint64 // opaque to the answering side: it is echoed back
	HoldMicros   uint32 // in a pong: µs between the ping's arrival and the pong's send
	// ArrivalMicros (in a pong) is when the ping arrived, on the answering
	// side's clock: µs since its connection epoch. With the echo (the
	// ping's send time on the pinging side's clock) it is a one-way
	// transit sample of the reverse path, from which the pinging side
	// estimates the clocks' drift (docs/PROTOCOL.md §8).
	ArrivalMicros uint64
}

// Append appends the ping or pong to b.
func (p *Ping) Append(b []byte) ([]byte, error) {
	if p.HoldMicros > MaxHoldMicros || (!p.Pong && (p.HoldMicros != 0 || p.ArrivalMicros != 0)) {
		return b, ErrRange
	}
	var flags uint8
	if p.Pong {
		flags = FlagPong
	}
	sh := ShortHeader{Type: TypePing, Flags: flags, DstConnID: p.DstConnID, PacketNumber: p.PacketNumber}
	b, err := sh.Append(b)
	if err != nil {
		return b, err
	}
	b = append64(b, p.Echo)
	if p.Pong {
		b = append24(b, p.HoldMicros)
		b = append64(b, p.ArrivalMicros)
	}
	return b, nil
}

// Parse reads a ping or pong from b.
func (p *Ping) Parse(b []byte) error {
	var sh ShortHeader
	rest, err := sh.Parse(b)
	if err != nil {
		return err
	}
	if sh.Type != TypePing {
		return errType
	}
	if sh.Flags&^FlagPong != 0 {
		return errFlags
	}
	pong := sh.Flags&FlagPong != 0
	want := PingLen - ShortHeaderLen
	if pong {
		want = PongLen - ShortHeaderLen
	}
	if len(rest) < want {
		return errShort
	}
	if len(rest) > want {
		return errTrailing
	}
	*p = Ping{DstConnID: sh.DstConnID, PacketNumber: sh.PacketNumber, Pong: pong, Echo: be64(rest)}
	if pong {
		p.HoldMicros = be24(rest[8:])
		p.ArrivalMicros = be64(rest[11:])
	}
	return nil
}

// FeedbackHeaderLen is the length of a feedback packet's header; RTCP
// messages follow it (docs/PROTOCOL.md §6).
const FeedbackHeaderLen = ShortHeaderLen

// AppendFeedbackHeader appends a feedback packet's header to b; the caller
// appends RTCP messages after it.
func AppendFeedbackHeader(b []byte, dstConnID, packetNumber uint32) ([]byte, error) {
	sh := ShortHeader{Type: TypeFeedback, DstConnID: dstConnID, PacketNumber: packetNumber}
	return sh.Append(b)
}

// ParseFeedbackHeader reads a feedback packet's header and returns the RTCP
// messages that follow it (a sub-slice of b).
func ParseFeedbackHeader(b []byte, sh *ShortHeader) (rtcp []byte, err error) {
	rest, err := sh.Parse(b)
	if err != nil {
		return nil, err
	}
	if sh.Type != TypeFeedback {
		return nil, errType
	}
	if sh.Flags != 0 {
		return nil, errFlags
	}
	return rest, nil
}

// RepairHeaderLen is the length of a repair packet's header.
const RepairHeaderLen = ShortHeaderLen + 16

// RepairSymbolOverhead is what a repair symbol adds to the longest
// protected form it covers: the 0x80 end marker (docs/PROTOCOL.md §5.2).
const RepairSymbolOverhead = 1

// MaxPacketOverhead is the most a packet adds to a fragment: a repair
// packet protecting a full fragment (RepairHeaderLen + ProtectedHeaderLen +
// RepairSymbolOverhead = 31 bytes) is the largest packet a side sends, so
// a fragment size plus this must fit the peer's max_datagram_size.
const MaxPacketOverhead = RepairHeaderLen + ProtectedHeaderLen + RepairSymbolOverhead

// MaxRepairSpan is how many packet numbers one FEC block can span: the bits
// of RepairHeader.Mask.
const MaxRepairSpan = 64

// RepairHeader is the header of an FEC repair packet (docs/PROTOCOL.md §5):
// repair symbol Index of M protecting the media packets numbered
// BasePacketNumber+i for every bit i set in Mask. Bit 0 is always set (the
// base is a member); the members need not be consecutive, so other packets
// and interleaved blocks may sit between them. The fec package defines the
// symbol.
type RepairHeader struct {
	DstConnID        uint32
	PacketNumber     uint32 // low 24 bits
	SendTime         uint32 // 24-bit timestamp, TimestampUnit units
	BasePacketNumber uint32 // low 24 bits of the block's first media packet number
	Mask             uint64 // members: bit i is packet number base+i; bit 0 set
	M                uint8  // repair packets in the block (>= 1)
	Index            uint8  // 0 to M-1
}

// K returns the number of media packets in the block.
func (h *RepairHeader) K() int { return bits.OnesCount64(h.Mask) }

func (h *RepairHeader) valid() bool {
	return h.Mask&1 != 0 && h.M != 0 && h.Index < h.M
}

// Append appends the repair header to b.
func (h *RepairHeader) Append(b []byte) ([]byte, error) {
	if h.SendTime > mask24 || h.BasePacketNumber > mask24 || !h.valid() {
		return b, ErrRange
	}
	sh := ShortHeader{Type: TypeRepair, DstConnID: h.DstConnID, PacketNumber: h.PacketNumber}
	b, err := sh.Append(b)
	if err != nil {
		return b, err
	}
	b = append24(b, h.SendTime)
	b = append24(b, h.BasePacketNumber)
	b = binary.BigEndian.AppendUint64(b, h.Mask)
	return append(b, h.M, h.Index), nil
}

// Parse reads a repair header from b and returns the repair payload.
func (h *RepairHeader) Parse(b []byte) (payload []byte, err error) {
	var sh ShortHeader
	rest, err := sh.Parse(b)
	if err != nil {
		return nil, err
	}
	if sh.Type != TypeRepair {
		return nil, errType
	}
	if sh.Flags != 0 {
		return nil, errFlags
	}
	if len(rest) < RepairHeaderLen-ShortHeaderLen {
		return nil, errShort
	}
	*h = RepairHeader{
		DstConnID:        sh.DstConnID,
		PacketNumber:     sh.PacketNumber,
		SendTime:         be24(rest),
		BasePacketNumber: be24(rest[3:]),
		Mask:             binary.BigEndian.Uint64(rest[6:]),
		M:                rest[14],
		Index:            rest[15],
	}
	if !h.valid() {
		return nil, errRepairShape
	}
	return rest[RepairHeaderLen-ShortHeaderLen:], nil
}
