package wire

// Data packet flags (byte 0, low 3 bits).
const (
	FlagKey       = 1 << 2 // the fragment belongs to a key frame
	FlagDroppable = 1 << 1 // no other frame references this one
	FlagLast      = 1 << 0 // the fragment is its frame's last (index == count-1)
)

// Limits of the data header's fields.
const (
	MaxStreams   = 16   // stream ids 0-15 (4 bits)
	MaxFragments = 4096 // fragments per frame (12 bits of count-1)
	FrameIDMask  = mask12
)

// DataHeader is the header of a data packet (TypeData) or, when Retransmit
// is set, of a retransmission (TypeRetransmit), which also names the packet
// number its fragment was first sent with. docs/PROTOCOL.md §3 gives the
// layout.
type DataHeader struct {
	DstConnID    uint32
	PacketNumber uint32 // low 24 bits
	Key          bool
	Droppable    bool
	Stream       uint8  // 0-15
	FrameID      uint16 // low 12 bits of the stream's frame id
	FragIndex    uint16 // 0 to FragCount-1
	FragCount    uint16 // 1 to 4096
	SendTime     uint32 // 24-bit timestamp, TimestampUnit units
	Retransmit   bool
	Original     uint32 // low 24 bits of the original packet number, if Retransmit
}

// Len returns the encoded header length.
func (h *DataHeader) Len() int {
	if h.Retransmit {
		return RetransmitHeaderLen
	}
	return DataHeaderLen
}

// Last reports whether the fragment is its frame's last.
func (h *DataHeader) Last() bool { return h.FragIndex+1 == h.FragCount }

// Append appends the header to b. The last-fragment flag is derived from
// FragIndex and FragCount.
func (h *DataHeader) Append(b []byte) ([]byte, error) {
	if h.DstConnID == 0 || h.PacketNumber > mask24 || h.Stream >= MaxStreams || h.FrameID > mask12 ||
		h.FragCount == 0 || h.FragCount > MaxFragments || h.FragIndex >= h.FragCount ||
		h.SendTime > mask24 || h.Original > mask24 {
		return b, ErrRange
	}
	var flags uint8
	if h.Key {
		flags |= FlagKey
	}
	if h.Droppable {
		flags |= FlagDroppable
	}
	if h.Last() {
		flags |= FlagLast
	}
	t := TypeData
	if h.Retransmit {
		t = TypeRetransmit
	}
	b = append(b, byte0(t, flags))
	b = append32(b, h.DstConnID)
	b = append24(b, h.PacketNumber)
	b = append16(b, uint16(h.Stream)<<12|h.FrameID)
	b = append24(b, uint32(h.FragIndex)<<12|uint32(h.FragCount-1))
	b = append24(b, h.SendTime)
	if h.Retransmit {
		b = append24(b, h.Original)
	}
	return b, nil
}

// Parse reads a data or retransmission header from b and returns the
// payload (a sub-slice of b). It never panics.
func (h *DataHeader) Parse(b []byte) (payload []byte, err error) {
	var sh ShortHeader
	rest, err := sh.Parse(b)
	if err != nil {
		return nil, err
	}
	var retransmit bool
	switch sh.Type {
	case TypeData:
	case TypeRetransmit:
		retransmit = true
	default:
		return nil, errType
	}
	need := DataHeaderLen - ShortHeaderLen
	if retransmit {
		need = RetransmitHeaderLen - ShortHeaderLen
	}
	if len(rest) < need {
		return nil, errShort
	}
	sf := be16(rest)
	frag := be24(rest[2:])
	*h = DataHeader{
		DstConnID:    sh.DstConnID,
		PacketNumber: sh.PacketNumber,
		Key:          sh.Flags&FlagKey != 0,
		Droppable:    sh.Flags&FlagDroppable != 0,
		Stream:       uint8(sf >> 12),
		FrameID:      sf & mask12,
		FragIndex:    uint16(frag >> 12),
		FragCount:    uint16(frag&mask12) + 1,
		SendTime:     be24(rest[5:]),
		Retransmit:   retransmit,
	}
	if retransmit {
		h.Original = be24(rest[8:])
	}
	if h.FragIndex >= h.FragCount {
		return nil, errFragment
	}
	if (sh.Flags&FlagLast != 0) != h.Last() {
		return nil, errLastFlag
	}
	return rest[need:], nil
}

// FramePrefixLen is the length of the prefix a frame's bytes carry in its
// first fragment: the 24-bit capture timestamp (docs/PROTOCOL.md §3.2).
const FramePrefixLen = 3

// AppendFramePrefix appends a frame's prefix (its capture timestamp) to b.
func AppendFramePrefix(b []byte, captureTS uint32) ([]byte, error) {
	if captureTS > mask24 {
		return b, ErrRange
	}
	return append24(b, captureTS), nil
}

// ParseFramePrefix reads the frame prefix from the start of a frame's first
// fragment and returns the capture timestamp and the rest of the fragment.
func ParseFramePrefix(b []byte) (captureTS uint32, rest []byte, err error) {
	if len(b) < FramePrefixLen {
		return 0, nil, errShort
	}
	return be24(b), b[FramePrefixLen:], nil
}

// ProtectedHeaderLen is the length of a data packet's protected form's
// header (docs/PROTOCOL.md §5.1).
const ProtectedHeaderLen = 6

// AppendProtected appends the protected form of a data packet to b: what FEC
// repair symbols protect and what the sender's history keeps for
// retransmission. It is the data header without the connection id, packet
// number and send time (a recovered packet has no send time of its own, a
// retransmission has its own), followed by the fragment:
//
//	flags (1: FlagKey | FlagDroppable) | stream<<12|frame id (2) |
//	fragment index<<12|count-1 (3) | fragment bytes
//
// h.PacketNumber, h.SendTime and the retransmission fields are ignored.
func AppendProtected(b []byte, h *DataHeader, payload []byte) ([]byte, error) {
	if h.Stream >= MaxStreams || h.FrameID > mask12 || h.FragCount == 0 || h.FragCount > MaxFragments || h.FragIndex >= h.FragCount {
		return b, ErrRange
	}
	var flags uint8
	if h.Key {
		flags |= FlagKey
	}
	if h.Droppable {
		flags |= FlagDroppable
	}
	b = append(b, flags)
	b = append16(b, uint16(h.Stream)<<12|h.FrameID)
	b = append24(b, uint32(h.FragIndex)<<12|uint32(h.FragCount-1))
	return append(b, payload...), nil
}

// ParseProtected reads a data packet's protected form (AppendProtected) into
// h's frame fields and returns the fragment bytes. h's connection id, packet
// number, send time and retransmission fields are zeroed: the caller knows
// them. Recovered bytes come from repair packets, so they are network input
// like any other and are checked as strictly.
func ParseProtected(b []byte, h *DataHeader) (payload []byte, err error) {
	if len(b) < ProtectedHeaderLen {
		return nil, errShort
	}
	if b[0]&^(FlagKey|FlagDroppable) != 0 {
		return nil, errFlags
	}
	sf := be16(b[1:])
	frag := be24(b[3:])
	*h = DataHeader{
		Key:       b[0]&FlagKey != 0,
		Droppable: b[0]&FlagDroppable != 0,
		Stream:    uint8(sf >> 12),
		FrameID:   sf & mask12,
		FragIndex: uint16(frag >> 12),
		FragCount: uint16(frag&mask12) + 1,
	}
	if h.FragIndex >= h.FragCount {
		return nil, errFragment
	}
	return b[ProtectedHeaderLen:], nil
}
