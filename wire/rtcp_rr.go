package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxReceptionReports is the most report blocks a receiver report can carry:
// the 5-bit RC field's maximum.
const MaxReceptionReports = 31

const rtcpReportLen = 24

// ReceiverReport is an RTCP receiver report (PT 201), RFC 3550 §6.4.2.
type ReceiverReport struct {
	SSRC    uint32            // sender of the report
	Reports []ReceptionReport // 0 to MaxReceptionReports
}

// ReceptionReport is one report block, RFC 3550 §6.4.1.
type ReceptionReport struct {
	SSRC             uint32 // source the block reports on
	FractionLost     uint8  // fraction lost since the previous report, in 1/256
	TotalLost        uint32 // cumulative number of packets lost: the raw 24-bit field (RFC 3550 reads it as signed)
	LastSequence     uint32 // extended highest sequence number received
	Jitter           uint32 // interarrival jitter, in timestamp units
	LastSenderReport uint32 // LSR: middle 32 bits of the last SR's NTP timestamp
	Delay            uint32 // DLSR: delay since that SR, in 1/65536 s
}

// Append appends r as one RTCP packet to b. It fails, leaving b as it was,
// when Reports is longer than MaxReceptionReports or a TotalLost does not fit
// 24 bits.
func (r *ReceiverReport) Append(b []byte) ([]byte, error) {
	if len(r.Reports) > MaxReceptionReports {
		return b, fmt.Errorf("%w: receiver report with %d report blocks (max %d)", ErrRange, len(r.Reports), MaxReceptionReports)
	}
	for i := range r.Reports {
		if r.Reports[i].TotalLost > 0xffffff {
			return b, fmt.Errorf("%w: report block %d: total lost %d does not fit 24 bits", ErrRange, i, r.Reports[i].TotalLost)
		}
	}
	b, start := rtcpStart(b)
	b = binary.BigEndian.AppendUint32(b, r.SSRC)
	for i := range r.Reports {
		rr := &r.Reports[i]
		b = binary.BigEndian.AppendUint32(b, rr.SSRC)
		b = binary.BigEndian.AppendUint32(b, uint32(rr.FractionLost)<<24|rr.TotalLost)
		b = binary.BigEndian.AppendUint32(b, rr.LastSequence)
		b = binary.BigEndian.AppendUint32(b, rr.Jitter)
		b = binary.BigEndian.AppendUint32(b, rr.LastSenderReport)
		b = binary.BigEndian.AppendUint32(b, rr.Delay)
	}
	return rtcpFinish(b, start, uint8(len(r.Reports)), RTCPTypeRR)
}

// Unmarshal decodes the receiver report pkt (exactly one RTCP packet, as
// NextRTCP returns it) into r, reusing the capacity of r.Reports. Profile-
// specific extensions after the report blocks are ignored. It rejects a
// packet too short for the report count it announces. On error r's contents
// are unspecified.
func (r *ReceiverReport) Unmarshal(pkt []byte) error {
	h, body, err := rtcpBody(pkt, RTCPTypeRR, -1)
	if err != nil {
		return err
	}
	if len(body) < 4 {
		return errRTCPFixedShort
	}
	if len(body) < 4+int(h.Count)*rtcpReportLen {
		return errRRReports
	}
	r.SSRC = binary.BigEndian.Uint32(body)
	r.Reports = r.Reports[:0]
	for blk := body[4:]; len(r.Reports) < int(h.Count); blk = blk[rtcpReportLen:] {
		lost := binary.BigEndian.Uint32(blk[4:])
		r.Reports = append(r.Reports, ReceptionReport{
			SSRC:             binary.BigEndian.Uint32(blk),
			FractionLost:     uint8(lost >> 24),
			TotalLost:        lost & 0xffffff,
			LastSequence:     binary.BigEndian.Uint32(blk[8:]),
			Jitter:           binary.BigEndian.Uint32(blk[12:]),
			LastSenderReport: binary.BigEndian.Uint32(blk[16:]),
			Delay:            binary.BigEndian.Uint32(blk[20:]),
		})
	}
	return nil
}
