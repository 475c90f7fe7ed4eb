package wire

import "time"

// HandshakeMsg is the handshake message kind, carried in the flag bits of a
// handshake packet's first byte.
type HandshakeMsg uint8

// Handshake messages (docs/PROTOCOL.md §4).
const (
	MsgHello  HandshakeMsg = 0 // client -> server, first without and then with a cookie
	MsgRetry  HandshakeMsg = 1 // server -> client: a stateless cookie to echo
	MsgAccept HandshakeMsg = 2 // server -> client: the connection exists
	MsgReject HandshakeMsg = 3 // server -> client: refused (Params.RejectReason says why)
)

var msgNames = [...]string{"hello", "retry", "accept", "reject"}

func (m HandshakeMsg) String() string {
	if int(m) < len(msgNames) {
		return msgNames[m]
	}
	return "invalid"
}

// handshakeFixedLen: byte 0, version, destination and source connection IDs.
const handshakeFixedLen = 13

// MaxCookieLen is the longest cookie a handshake may carry.
const MaxCookieLen = 64

// MinHelloSize is the size a client pads every Hello to. A server never
// answers an unverified address with more bytes than it received, and a Hello
// this large also shows the path carries full-size datagrams (RFC 9000 §8.1,
// §14.1 make the same two uses of a 1200-byte Initial).
const MinHelloSize = 1200

// Reject reasons.
const (
	RejectNone        = 0
	RejectVersion     = 1 // the server does not speak the Hello's version; Version holds the one it does
	RejectRefused     = 2 // the server accepts no connections (not listening, or at its limit)
	RejectParams      = 3 // the Hello's transport parameters are unacceptable
	RejectServerError = 4
)

// Handshake is a handshake packet. On Parse, Cookie aliases the input.
type Handshake struct {
	Msg       HandshakeMsg
	Version   uint32
	DstConnID uint32 // 0 in a client's Hello (it knows no server ID yet)
	SrcConnID uint32 // the sender's connection ID; 0 in a stateless Retry or Reject
	Cookie    []byte
	Params    TransportParams
}

// TransportParams are what each side announces in its Hello or Accept about
// itself; each is optional on the wire (zero means absent).
type TransportParams struct {
	FragmentSize    uint16        // bytes of frame prefix + frame data in every non-last fragment this side sends
	MaxDatagramSize uint16        // largest datagram this side accepts
	IdleTimeout     time.Duration // this side closes after this long without a packet (ms on the wire)
	MaxFrameSize    uint32        // largest frame this side accepts
	Latency         time.Duration // this side's transport budget for the frames it sends (ms on the wire)
	RejectReason    uint8         // in a Reject: why
}

// Transport parameter ids and their value lengths.
const (
	paramFragmentSize    = 1
	paramMaxDatagramSize = 2
	paramIdleTimeout     = 3
	paramMaxFrameSize    = 4
	paramLatency         = 5
	paramRejectReason    = 6
)

// MinFragmentSize bounds FragmentSize from below so that a frame's prefix
// always fits its first fragment and a peer cannot make us track a frame in
// absurdly many pieces.
const MinFragmentSize = 64

// Append appends the handshake packet to b, zero-padded so the packet is at
// least padTo bytes long (pass MinHelloSize for a Hello, 0 otherwise).
func (h *Handshake) Append(b []byte, padTo int) ([]byte, error) {
	if h.Msg > MsgReject || len(h.Cookie) > MaxCookieLen {
		return b, ErrRange
	}
	if f := h.Params.FragmentSize; f != 0 && f < MinFragmentSize {
		return b, ErrRange
	}
	if d := h.Params.MaxDatagramSize; d != 0 && d < MinFragmentSize+RetransmitHeaderLen {
		return b, ErrRange
	}
	start := len(b)
	b = append(b, byte0(TypeHandshake, uint8(h.Msg)))
	b = append32(b, h.Version)
	b = append32(b, h.DstConnID)
	b = append32(b, h.SrcConnID)
	b = append(b, byte(len(h.Cookie)))
	b = append(b, h.Cookie...)
	lenAt := len(b)
	b = append16(b, 0)
	p := &h.Params
	if p.FragmentSize != 0 {
		b = append(b, paramFragmentSize, 2)
		b = append16(b, p.FragmentSize)
	}
	if p.MaxDatagramSize != 0 {
		b = append(b, paramMaxDatagramSize, 2)
		b = append16(b, p.MaxDatagramSize)
	}
	if p.IdleTimeout != 0 {
		ms, ok := durationMS(p.IdleTimeout)
		if !ok {
			return b[:start], ErrRange
		}
		b = append(b, paramIdleTimeout, 4)
		b = append32(b, ms)
	}
	if p.MaxFrameSize != 0 {
		b = append(b, paramMaxFrameSize, 4)
		b = append32(b, p.MaxFrameSize)
	}
	if p.Latency != 0 {
		ms, ok := durationMS(p.Latency)
		if !ok {
			return b[:start], ErrRange
		}
		b = append(b, paramLatency, 4)
		b = append32(b, ms)
	}
	if p.RejectReason != 0 {
		b = append(b, paramRejectReason, 1, p.RejectReason)
	}
	plen := len(b) - lenAt - 2
	b[lenAt], b[lenAt+1] = byte(plen>>8), byte(plen)
	for len(b)-start < padTo {
		b = append(b, 0)
	}
	return b, nil
}

func durationMS(d time.Duration) (uint32, bool) {
	if d < 0 {
		return 0, false
	}
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++ // round up, so a non-zero value never becomes 0 (absent)
	}
	if ms > 1<<32-1 { // checked after rounding: 2^32 ms wrapped to 0
		return 0, false
	}
	return uint32(ms), true
}

// Parse reads a handshake packet from b. Cookie aliases b. Padding after the
// parameters must be zeros. It never panics.
func (h *Handshake) Parse(b []byte) error {
	t, flags, _, err := Peek(b)
	if err != nil {
		return err
	}
	if t != TypeHandshake {
		return errType
	}
	if flags > uint8(MsgReject) {
		return errFlags
	}
	*h = Handshake{
		Msg:       HandshakeMsg(flags),
		Version:   be32(b[1:]),
		DstConnID: be32(b[5:]),
		SrcConnID: be32(b[9:]),
	}
	rest := b[handshakeFixedLen:]
	if len(rest) < 1 {
		return errShort
	}
	cl := int(rest[0])
	rest = rest[1:]
	if cl > MaxCookieLen {
		return errCookieLen
	}
	if len(rest) < cl+2 {
		return errShort
	}
	if cl > 0 {
		h.Cookie = rest[:cl:cl]
	}
	rest = rest[cl:]
	plen := int(be16(rest))
	rest = rest[2:]
	if len(rest) < plen {
		return errShort
	}
	if err := h.Params.parse(rest[:plen]); err != nil {
		return err
	}
	for _, c := range rest[plen:] {
		if c != 0 {
			return errPadding
		}
	}
	return nil
}

func (p *TransportParams) parse(b []byte) error {
	var seen uint8
	for len(b) > 0 {
		if len(b) < 2 {
			return errParams
		}
		id, l := b[0], int(b[1])
		b = b[2:]
		if len(b) < l {
			return errShort
		}
		v := b[:l]
		b = b[l:]
		if id >= paramFragmentSize && id <= paramRejectReason { // a known id: at most once
			bit := uint8(1) << (id - 1)
			if seen&bit != 0 {
				return errParamDup
			}
			seen |= bit
		}
		switch id {
		case paramFragmentSize:
			if l != 2 {
				return errParamLen
			}
			p.FragmentSize = be16(v)
			if p.FragmentSize < MinFragmentSize {
				return errParamValue
			}
		case paramMaxDatagramSize:
			if l != 2 {
				return errParamLen
			}
			p.MaxDatagramSize = be16(v)
			if p.MaxDatagramSize < MinFragmentSize+RetransmitHeaderLen {
				return errParamValue
			}
		case paramIdleTimeout:
			if l != 4 {
				return errParamLen
			}
			p.IdleTimeout = time.Duration(be32(v)) * time.Millisecond
		case paramMaxFrameSize:
			if l != 4 {
				return errParamLen
			}
			p.MaxFrameSize = be32(v)
		case paramLatency:
			if l != 4 {
				return errParamLen
			}
			p.Latency = time.Duration(be32(v)) * time.Millisecond
		case paramRejectReason:
			if l != 1 {
				return errParamLen
			}
			p.RejectReason = v[0]
		default:
			// Unknown parameters are ignored so later versions can add some.
		}
	}
	return nil
}
