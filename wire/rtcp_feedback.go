package wire

import "encoding/binary"

// MaxFeedbackMessages is the most RTCP packets ParseFeedback accepts in one
// compound, unknown ones included; a compound with more is rejected whole.
const MaxFeedbackMessages = 64

// Feedback holds the messages of one parsed RTCP compound, by kind, each kind
// in the order the compound carries it. It is scratch space meant to be
// reused: ParseFeedback truncates its slices and decodes into the elements
// (and their slices) left by earlier calls, so once it has seen a compound of
// each shape it parses without allocating. Keep one per goroutine that
// parses, not one per session.
//
// Its memory is bounded whatever the input: the packet statuses of all TWCC
// messages share one buffer of at most MaxTWCCPackets entries (32 KiB), and
// each kind keeps at most MaxFeedbackMessages elements, each NACK at most
// MaxNACKPairs pairs (1 KiB) and each receiver report at most
// MaxReceptionReports blocks (868 B): about 160 KiB in the worst case, a few
// KiB for ordinary feedback.
type Feedback struct {
	RRs   []ReceiverReport
	TWCCs []TWCC
	NACKs []NACK
	PLIs  []PLI
	Apps  []App // Data aliases the parsed buffer
	// Unknown counts the RTCP packets skipped: types and formats Spillway
	// does not use (SR, SDES, BYE, XR, REMB, FIR, ...).
	Unknown int

	twcc []TWCCPacket // backing array of every TWCCs[i].Packets
}

// Reset empties fb, keeping the capacity of its slices for reuse.
func (fb *Feedback) Reset() {
	fb.RRs = fb.RRs[:0]
	fb.TWCCs = fb.TWCCs[:0]
	fb.NACKs = fb.NACKs[:0]
	fb.PLIs = fb.PLIs[:0]
	fb.Apps = fb.Apps[:0]
	fb.Unknown = 0
}

// ParseFeedback resets fb and decodes the RTCP compound b into it: receiver
// reports, TWCC feedback, generic NACKs, PLIs and APP packets; packets of
// other types or formats are checked for framing (NextRTCP), skipped and
// counted in fb.Unknown. It fails, and the caller drops the whole datagram,
// when b is empty, when any packet is malformed, when the compound holds more
// than MaxFeedbackMessages packets, or when its TWCC messages together report
// more than MaxTWCCPackets packets. Every error wraps ErrMalformed. On error
// fb's contents are unspecified.
func ParseFeedback(b []byte, fb *Feedback) error {
	fb.Reset()
	if len(b) == 0 {
		return errRTCPEmpty
	}
	twccUsed := 0
	for n := 0; len(b) > 0; n++ {
		if n == MaxFeedbackMessages {
			return errRTCPTooMany
		}
		h, pkt, rest, err := NextRTCP(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case h.Type == RTCPTypeRR:
			var m *ReceiverReport
			fb.RRs, m = rtcpSlot(fb.RRs)
			err = m.Unmarshal(pkt)
		case h.Type == RTCPTypeRTPFB && h.Count == RTCPFmtTWCC:
			var m *TWCC
			fb.TWCCs, m = rtcpSlot(fb.TWCCs)
			err = fb.parseTWCC(m, pkt, &twccUsed)
		case h.Type == RTCPTypeRTPFB && h.Count == RTCPFmtNACK:
			var m *NACK
			fb.NACKs, m = rtcpSlot(fb.NACKs)
			err = m.Unmarshal(pkt)
		case h.Type == RTCPTypePSFB && h.Count == RTCPFmtPLI:
			var m *PLI
			fb.PLIs, m = rtcpSlot(fb.PLIs)
			err = m.Unmarshal(pkt)
		case h.Type == RTCPTypeAPP:
			var m *App
			fb.Apps, m = rtcpSlot(fb.Apps)
			err = m.Unmarshal(pkt)
		default:
			fb.Unknown++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseTWCC decodes pkt into m with m.Packets carved from fb's shared status
// buffer, after *used statuses taken by earlier messages of the compound.
func (fb *Feedback) parseTWCC(m *TWCC, pkt []byte, used *int) error {
	m.Packets = nil
	if len(pkt) >= rtcpHeaderLen+twccFixedLen {
		// The status count, peeked so that the buffer never grows past
		// MaxTWCCPackets; Unmarshal checks everything else.
		count := int(binary.BigEndian.Uint16(pkt[rtcpHeaderLen+10:]))
		if count <= MaxTWCCPackets {
			need := *used + count
			if need > MaxTWCCPackets {
				return errTWCCTotal
			}
			if cap(fb.twcc) < need {
				// Earlier messages keep the old array; the next parse
				// carves everything from the new one.
				fb.twcc = make([]TWCCPacket, min(max(need, 2*cap(fb.twcc)), MaxTWCCPackets))
			}
			fb.twcc = fb.twcc[:cap(fb.twcc)]
			m.Packets = fb.twcc[*used:need:need]
		}
	}
	if err := m.Unmarshal(pkt); err != nil {
		return err
	}
	*used += len(m.Packets)
	return nil
}
