package wire

import (
	"encoding/binary"
	"fmt"
)

// RTCP inside feedback packets.
//
// A feedback packet's payload is an RTCP compound: one or more RTCP packets
// back to back (RFC 3550 §6.1). The messages Spillway sends and accepts, and
// the meaning it gives their fields, are in docs/PROTOCOL.md ("Feedback
// payloads (RTCP)"). Encoders here append to the caller's buffer; parsers
// decode into caller-owned values whose slices are reused, so a warmed-up
// receiver parses feedback without allocating.

// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
const (
	RTCPTypeSR    = 200 // sender report, RFC 3550 §6.4.1
	RTCPTypeRR    = 201 // receiver report, RFC 3550 §6.4.2
	RTCPTypeSDES  = 202 // source description, RFC 3550 §6.5
	RTCPTypeBYE   = 203 // goodbye, RFC 3550 §6.6
	RTCPTypeAPP   = 204 // application-defined, RFC 3550 §6.7
	RTCPTypeRTPFB = 205 // transport-layer feedback, RFC 4585 §6.2
	RTCPTypePSFB  = 206 // payload-specific feedback, RFC 4585 §6.3
)

// Feedback message types (FMT, the header's count field) of RTPFB and PSFB.
const (
	RTCPFmtNACK = 1  // RTPFB: generic NACK, RFC 4585 §6.2.1
	RTCPFmtTWCC = 15 // RTPFB: transport-wide CC, draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1
	RTCPFmtPLI  = 1  // PSFB: picture loss indication, RFC 4585 §6.3.1
)

const (
	rtcpVersion   = 2
	rtcpHeaderLen = 4
	// rtcpMaxLen is the longest RTCP packet the 16-bit length field can
	// describe: (65535 + 1) 32-bit words.
	rtcpMaxLen = (0xffff + 1) * 4
)

// Pre-built parse errors: parsers run on hostile input, and fmt.Errorf per
// bad datagram would allocate on that path.
var (
	errRTCPShort      = fmt.Errorf("%w: RTCP: truncated", ErrMalformed)
	errRTCPVersion    = fmt.Errorf("%w: RTCP: version is not 2", ErrMalformed)
	errRTCPLength     = fmt.Errorf("%w: RTCP: length field beyond the buffer", ErrMalformed)
	errRTCPPadding    = fmt.Errorf("%w: RTCP: bad padding count", ErrMalformed)
	errRTCPTrailing   = fmt.Errorf("%w: RTCP: bytes after the packet", ErrMalformed)
	errRTCPType       = fmt.Errorf("%w: RTCP: unexpected packet type", ErrMalformed)
	errRTCPEmpty      = fmt.Errorf("%w: RTCP: empty compound", ErrMalformed)
	errRTCPTooMany    = fmt.Errorf("%w: RTCP: more than MaxFeedbackMessages messages", ErrMalformed)
	errTWCCEmpty      = fmt.Errorf("%w: TWCC: zero packet status count", ErrMalformed)
	errTWCCCount      = fmt.Errorf("%w: TWCC: packet status count over MaxTWCCPackets", ErrMalformed)
	errTWCCTotal      = fmt.Errorf("%w: TWCC: compound reports more than MaxTWCCPackets packets", ErrMalformed)
	errTWCCSymbol     = fmt.Errorf("%w: TWCC: reserved status symbol", ErrMalformed)
	errTWCCChunks     = fmt.Errorf("%w: TWCC: status chunks truncated", ErrMalformed)
	errTWCCDeltas     = fmt.Errorf("%w: TWCC: receive deltas truncated", ErrMalformed)
	errNACKEmpty      = fmt.Errorf("%w: NACK: no NACK pair", ErrMalformed)
	errNACKCount      = fmt.Errorf("%w: NACK: more than MaxNACKPairs pairs", ErrMalformed)
	errNACKLen        = fmt.Errorf("%w: NACK: length not a whole number of pairs", ErrMalformed)
	errRRReports      = fmt.Errorf("%w: RR: report count beyond the packet", ErrMalformed)
	errPLILen         = fmt.Errorf("%w: PLI: length is not 2", ErrMalformed)
	errAPPDataLen     = fmt.Errorf("%w: APP: data not a multiple of 4 bytes", ErrMalformed)
	errRTCPFixedShort = fmt.Errorf("%w: RTCP: shorter than its fixed fields", ErrMalformed)
)

// RTCPHeader is the common header of an RTCP packet (RFC 3550 §6.4.1).
type RTCPHeader struct {
	Padding bool  // P: the packet ends with padding whose last octet counts it
	Count   uint8 // RC, SC or, for RTPFB and PSFB, FMT (5 bits)
	Type    uint8 // PT
	Length  int   // whole packet length in bytes, header and padding included
}

// NextRTCP splits the first RTCP packet off the compound b: pkt is that
// packet (header and padding included, len(pkt) == h.Length) and rest is what
// follows it. It checks the version (2), that the length field stays within
// b and, when the padding bit is set, that the padding count is between 1 and
// the packet's length after the header (RFC 3550 §6.4.1). It never panics; on
// error pkt and rest are nil.
//
// Iterate a compound with
//
//	for len(b) > 0 {
//		h, pkt, rest, err := wire.NextRTCP(b)
//		if err != nil { ... drop the datagram ... }
//		... switch h.Type ...
//		b = rest
//	}
func NextRTCP(b []byte) (h RTCPHeader, pkt, rest []byte, err error) {
	if len(b) < rtcpHeaderLen {
		return RTCPHeader{}, nil, nil, errRTCPShort
	}
	if b[0]>>6 != rtcpVersion {
		return RTCPHeader{}, nil, nil, errRTCPVersion
	}
	h = RTCPHeader{
		Padding: b[0]&0x20 != 0,
		Count:   b[0] & 0x1f,
		Type:    b[1],
		Length:  (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4,
	}
	if h.Length > len(b) {
		return RTCPHeader{}, nil, nil, errRTCPLength
	}
	pkt = b[:h.Length:h.Length]
	if h.Padding {
		if p := int(pkt[h.Length-1]); p == 0 || p > h.Length-rtcpHeaderLen {
			return RTCPHeader{}, nil, nil, errRTCPPadding
		}
	}
	return h, pkt, b[h.Length:], nil
}

// rtcpBody checks that pkt is exactly one RTCP packet of type typ (and, for
// typ RTPFB or PSFB, of format fmt; fmt < 0 accepts any count) and returns its
// header and its body: the bytes after the header, padding removed.
func rtcpBody(pkt []byte, typ uint8, fmtOrAny int) (RTCPHeader, []byte, error) {
	h, p, rest, err := NextRTCP(pkt)
	if err != nil {
		return h, nil, err
	}
	if len(rest) != 0 {
		return h, nil, errRTCPTrailing
	}
	if h.Type != typ || (fmtOrAny >= 0 && int(h.Count) != fmtOrAny) {
		return h, nil, errRTCPType
	}
	end := len(p)
	if h.Padding {
		end -= int(p[end-1])
	}
	return h, p[rtcpHeaderLen:end], nil
}

// rtcpStart appends a placeholder header to b, to be completed by rtcpFinish
// once the body is appended.
func rtcpStart(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// rtcpFinish completes the header of the packet that starts at b[start],
// whose body (a multiple of 4 bytes, no padding) has been appended to b. On
// error it returns b[:start].
func rtcpFinish(b []byte, start int, count, typ uint8) ([]byte, error) {
	n := len(b) - start
	if n%4 != 0 || n > rtcpMaxLen {
		return b[:start], fmt.Errorf("%w: RTCP packet of %d bytes", ErrRange, n)
	}
	b[start] = rtcpVersion<<6 | count&0x1f
	b[start+1] = typ
	binary.BigEndian.PutUint16(b[start+2:], uint16(n/4-1))
	return b, nil
}

// rtcpSlot extends s by one element, reusing the element (and the capacity of
// its slices) left beyond len(s) by an earlier truncation, and returns a
// pointer to it.
func rtcpSlot[T any](s []T) ([]T, *T) {
	if n := len(s); n < cap(s) {
		s = s[:n+1]
		return s, &s[n]
	}
	var zero T
	s = append(s, zero)
	return s, &s[len(s)-1]
}
