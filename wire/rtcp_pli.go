package wire

import "encoding/binary"

// PLI is a picture loss indication (PSFB, FMT 1), RFC 4585 §6.3.1: a
// key-frame request.
type PLI struct {
	SenderSSRC, MediaSSRC uint32
}

// Append appends p as one RTCP packet to b. It never fails; the error is
// there for the shape every message shares.
func (p *PLI) Append(b []byte) ([]byte, error) {
	b, start := rtcpStart(b)
	b = binary.BigEndian.AppendUint32(b, p.SenderSSRC)
	b = binary.BigEndian.AppendUint32(b, p.MediaSSRC)
	return rtcpFinish(b, start, RTCPFmtPLI, RTCPTypePSFB)
}

// Unmarshal decodes the PLI pkt (exactly one RTCP packet, as NextRTCP returns
// it) into p. RFC 4585 §6.3.1 fixes its length field at 2: a PLI with
// feedback control information is rejected.
func (p *PLI) Unmarshal(pkt []byte) error {
	_, body, err := rtcpBody(pkt, RTCPTypePSFB, RTCPFmtPLI)
	if err != nil {
		return err
	}
	if len(body) != 8 {
		return errPLILen
	}
	p.SenderSSRC = binary.BigEndian.Uint32(body)
	p.MediaSSRC = binary.BigEndian.Uint32(body[4:])
	return nil
}
