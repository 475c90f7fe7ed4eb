package wire

import (
	"encoding/binary"
	"fmt"
)

// App is an application-defined RTCP packet (PT 204), RFC 3550 §6.7.
// Spillway's uses of it (the drop notice, the playout offset) are named in
// docs/PROTOCOL.md.
type App struct {
	Subtype uint8   // 5 bits
	SSRC    uint32  // SSRC/CSRC
	Name    [4]byte // four ASCII characters naming the application
	// Data is the application-dependent data: a multiple of 4 bytes
	// (RFC 3550 §6.7). After Unmarshal it aliases the parsed packet.
	Data []byte
}

// Append appends a as one RTCP packet to b. It fails, leaving b as it was,
// when Subtype does not fit 5 bits, when Data is not a multiple of 4 bytes
// or when the packet would be longer than RTCP's length field allows.
func (a *App) Append(b []byte) ([]byte, error) {
	if a.Subtype > 0x1f {
		return b, fmt.Errorf("%w: APP subtype %d does not fit 5 bits", ErrRange, a.Subtype)
	}
	if len(a.Data)%4 != 0 || len(a.Data) > rtcpMaxLen-12 {
		return b, fmt.Errorf("%w: APP data of %d bytes (a multiple of 4, at most %d)", ErrRange, len(a.Data), rtcpMaxLen-12)
	}
	b, start := rtcpStart(b)
	b = binary.BigEndian.AppendUint32(b, a.SSRC)
	b = append(b, a.Name[:]...)
	b = append(b, a.Data...)
	return rtcpFinish(b, start, a.Subtype, RTCPTypeAPP)
}

// Unmarshal decodes the APP packet pkt (exactly one RTCP packet, as NextRTCP
// returns it) into a; a.Data aliases pkt. RFC 3550 padding is removed, and
// what remains of the data must be a multiple of 4 bytes (pion/rtcp's way of
// padding odd-length data with the padding bit is rejected).
func (a *App) Unmarshal(pkt []byte) error {
	h, body, err := rtcpBody(pkt, RTCPTypeAPP, -1)
	if err != nil {
		return err
	}
	if len(body) < 8 {
		return errRTCPFixedShort
	}
	if len(body)%4 != 0 {
		return errAPPDataLen
	}
	a.Subtype = h.Count
	a.SSRC = binary.BigEndian.Uint32(body)
	copy(a.Name[:], body[4:8])
	a.Data = body[8:]
	return nil
}
