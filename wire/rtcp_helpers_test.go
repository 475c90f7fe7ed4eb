package wire

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/pion/rtcp"
)

// Test helpers shared by the RTCP tests, benchmarks and fuzz targets.

// rtcpRandTWCC returns a TWCC message with a random packet pattern built from
// segments: long received runs, long lost runs, small/lost mixes, mixes with
// large and negative deltas, runs of large deltas, alternations.
func rtcpRandTWCC(r *rand.Rand) TWCC {
	var n int
	switch r.IntN(10) {
	case 0:
		n = 1
	case 1:
		n = MaxTWCCPackets
	case 2, 3, 4:
		n = 1 + r.IntN(20)
	case 5, 6, 7:
		n = 20 + r.IntN(300)
	default:
		n = 300 + r.IntN(MaxTWCCPackets-300)
	}
	t := TWCC{
		SenderSSRC:    r.Uint32(),
		MediaSSRC:     r.Uint32(),
		BaseSeq:       uint16(r.Uint32()),
		FeedbackCount: uint8(r.Uint32()),
		RefTime:       twccRefTimeMin + r.Int32N(1<<24),
	}
	switch r.IntN(8) {
	case 0:
		t.BaseSeq = 0xffff - uint16(r.IntN(16)) // wraps within the message
	case 1:
		t.RefTime = twccRefTimeMin
	case 2:
		t.RefTime = twccRefTimeMax
	}
	small := func() int32 { return r.Int32N(256) }
	large := func() int32 {
		if r.IntN(2) == 0 {
			return -1<<15 + r.Int32N(1<<15) // negative
		}
		return 256 + r.Int32N(1<<15-256)
	}
	for len(t.Packets) < n {
		seg := 1 + r.IntN(min(n-len(t.Packets), []int{2000, 3000, 50, 50, 30, 40}[r.IntN(6)]))
		kind := r.IntN(6)
		for i := range seg {
			var p TWCCPacket
			switch kind {
			case 0: // received, small
				p = TWCCPacket{Received: true, Delta: small()}
			case 1: // lost
			case 2: // small and lost
				if r.IntN(3) > 0 {
					p = TWCCPacket{Received: true, Delta: small()}
				}
			case 3: // everything
				switch r.IntN(4) {
				case 0:
				case 1:
					p = TWCCPacket{Received: true, Delta: large()}
				default:
					p = TWCCPacket{Received: true, Delta: small()}
				}
			case 4: // large
				p = TWCCPacket{Received: true, Delta: large()}
			case 5: // alternate
				if i%2 == 0 {
					p = TWCCPacket{Received: true, Delta: small()}
				}
			}
			t.Packets = append(t.Packets, p)
		}
	}
	t.Packets = t.Packets[:n]
	return t
}

// rtcpToPionTWCC converts t into pion's representation with an independent chunk
// layout picked at random among the valid ones (run-length chunks of any
// length, one-bit vectors where the symbols allow, two-bit vectors, unused
// symbols after the last packet, large deltas for small values), so that our
// parser meets layouts our encoder never produces.
func rtcpToPionTWCC(t *TWCC, r *rand.Rand) *rtcp.TransportLayerCC {
	n := len(t.Packets)
	syms := make([]uint16, n)
	p := &rtcp.TransportLayerCC{
		SenderSSRC:         t.SenderSSRC,
		MediaSSRC:          t.MediaSSRC,
		BaseSequenceNumber: t.BaseSeq,
		PacketStatusCount:  uint16(n),
		ReferenceTime:      uint32(t.RefTime) & 0xffffff,
		FbPktCount:         t.FeedbackCount,
	}
	deltaBytes := 0
	for i, pk := range t.Packets {
		switch s := twccDeltaSize(pk); {
		case s == twccSmall && r.IntN(8) == 0:
			syms[i] = twccLarge
		default:
			syms[i] = uint16(s)
		}
		if syms[i] != twccNotReceived {
			p.RecvDeltas = append(p.RecvDeltas, &rtcp.RecvDelta{Type: syms[i], Delta: int64(pk.Delta) * rtcp.TypeTCCDeltaScaleFactor})
			deltaBytes += int(syms[i])
		}
	}
	for i := 0; i < n; {
		run := 1
		for i+run < n && syms[i+run] == syms[i] && run < twccRunMax {
			run++
		}
		oneBitOK := true
		for _, s := range syms[i:min(n, i+twccOneBitCap)] {
			oneBitOK = oneBitOK && s <= twccSmall
		}
		switch c := r.IntN(3); {
		case c == 0 || (c == 1 && !oneBitOK):
			k := run
			if r.IntN(2) == 0 {
				k = 1 + r.IntN(run)
			}
			rl := uint16(k)
			if i+k == n && r.IntN(4) == 0 {
				rl = uint16(min(twccRunMax, k+r.IntN(100))) // longer than needed
			}
			p.PacketChunks = append(p.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: syms[i], RunLength: rl})
			i += k
		case c == 1:
			list := make([]uint16, twccOneBitCap)
			copy(list, syms[i:min(n, i+twccOneBitCap)])
			p.PacketChunks = append(p.PacketChunks, &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeOneBit, SymbolList: list})
			i += twccOneBitCap
		default:
			list := make([]uint16, twccTwoBitCap)
			copy(list, syms[i:min(n, i+twccTwoBitCap)])
			p.PacketChunks = append(p.PacketChunks, &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: list})
			i += twccTwoBitCap
		}
	}
	unpadded := 20 + 2*len(p.PacketChunks) + deltaBytes
	size := p.MarshalSize()
	p.Header = rtcp.Header{
		Count:  rtcp.FormatTCC,
		Type:   rtcp.TypeTransportSpecificFeedback,
		Length: uint16(size/4 - 1),
		// Pion writes the RFC 3550 padding count only when told to, and
		// overwrites the last delta if there is no padding.
		Padding: size != unpadded && r.IntN(2) == 0,
	}
	return p
}

// rtcpFromPionTWCC reads pion's decoded chunks and deltas back into our per-packet
// form (Delta in TWCCDeltaUnit units).
func rtcpFromPionTWCC(p *rtcp.TransportLayerCC) TWCC {
	t := TWCC{
		SenderSSRC:    p.SenderSSRC,
		MediaSSRC:     p.MediaSSRC,
		BaseSeq:       p.BaseSequenceNumber,
		FeedbackCount: p.FbPktCount,
		RefTime:       int32(p.ReferenceTime<<8) >> 8,
		Packets:       make([]TWCCPacket, 0, p.PacketStatusCount),
	}
	d := 0
	add := func(sym uint16) {
		if len(t.Packets) == int(p.PacketStatusCount) {
			return
		}
		var pk TWCCPacket
		if (sym == twccSmall || sym == twccLarge) && d < len(p.RecvDeltas) {
			pk = TWCCPacket{Received: true, Delta: int32(p.RecvDeltas[d].Delta / rtcp.TypeTCCDeltaScaleFactor)}
			d++
		}
		t.Packets = append(t.Packets, pk)
	}
	for _, c := range p.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(c.RunLength), int(p.PacketStatusCount)) {
				add(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				add(s)
			}
		}
	}
	return t
}

// rtcpWithPadding returns a copy of the RTCP packet pkt with n (a multiple of 4)
// bytes of RFC 3550 padding added and the padding bit set.
func rtcpWithPadding(pkt []byte, n int) []byte {
	out := append([]byte(nil), pkt...)
	for range n - 1 {
		out = append(out, 0)
	}
	out = append(out, byte(n))
	out[0] |= 0x20
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)/4-1))
	return out
}

// rtcpFeedbackView is a Feedback with nil and empty slices made alike, for
// comparisons.
type rtcpFeedbackView struct {
	RRs     []ReceiverReport
	TWCCs   []TWCC
	NACKs   []NACK
	PLIs    []PLI
	Apps    []App
	Unknown int
}

func rtcpNilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

func rtcpView(fb *Feedback) rtcpFeedbackView {
	v := rtcpFeedbackView{PLIs: rtcpNilIfEmpty(fb.PLIs), Unknown: fb.Unknown}
	for _, m := range fb.RRs {
		m.Reports = rtcpNilIfEmpty(m.Reports)
		v.RRs = append(v.RRs, m)
	}
	for _, m := range fb.TWCCs {
		m.Packets = rtcpNilIfEmpty(m.Packets)
		v.TWCCs = append(v.TWCCs, m)
	}
	for _, m := range fb.NACKs {
		m.Pairs = rtcpNilIfEmpty(m.Pairs)
		v.NACKs = append(v.NACKs, m)
	}
	for _, m := range fb.Apps {
		m.Data = rtcpNilIfEmpty(m.Data)
		v.Apps = append(v.Apps, m)
	}
	return v
}

// rtcpAppendFeedback re-encodes every message of fb, kind by kind.
func rtcpAppendFeedback(b []byte, fb *Feedback) ([]byte, error) {
	var err error
	for i := range fb.RRs {
		if b, err = fb.RRs[i].Append(b); err != nil {
			return b, err
		}
	}
	for i := range fb.TWCCs {
		if b, err = fb.TWCCs[i].Append(b); err != nil {
			return b, err
		}
	}
	for i := range fb.NACKs {
		if b, err = fb.NACKs[i].Append(b); err != nil {
			return b, err
		}
	}
	for i := range fb.PLIs {
		if b, err = fb.PLIs[i].Append(b); err != nil {
			return b, err
		}
	}
	for i := range fb.Apps {
		if b, err = fb.Apps[i].Append(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// rtcpRealistic is the compound a receiver sends about every 50 ms: a
// receiver report on two streams, TWCC feedback on 100 packets (a few lost,
// a few large deltas), a NACK, a PLI and an APP.
type rtcpRealistic struct {
	rr   ReceiverReport
	twcc TWCC
	nack NACK
	pli  PLI
	app  App
}

func newRTCPRealistic() *rtcpRealistic {
	r := rand.New(rand.NewPCG(1, 2))
	f := &rtcpRealistic{
		rr: ReceiverReport{Reports: []ReceptionReport{
			{SSRC: 0, FractionLost: 5, TotalLost: 17, LastSequence: 70000, Jitter: 30, LastSenderReport: 1 << 20, Delay: 1 << 12},
			{SSRC: 1, FractionLost: 0, TotalLost: 2, LastSequence: 9000, Jitter: 12},
		}},
		twcc: TWCC{BaseSeq: 65500, FeedbackCount: 7, RefTime: 123456},
		pli:  PLI{MediaSSRC: 1},
		app:  App{Subtype: 1, Name: [4]byte{'S', 'P', 'W', 'Y'}, Data: []byte{0, 1, 0, 0, 0, 0, 0x0a, 0x20}},
	}
	for i := range 100 {
		switch {
		case i%23 == 5:
			f.twcc.Packets = append(f.twcc.Packets, TWCCPacket{})
		case i%31 == 7:
			f.twcc.Packets = append(f.twcc.Packets, TWCCPacket{Received: true, Delta: -40})
		case i%37 == 3:
			f.twcc.Packets = append(f.twcc.Packets, TWCCPacket{Received: true, Delta: 300 + r.Int32N(200)})
		default:
			f.twcc.Packets = append(f.twcc.Packets, TWCCPacket{Received: true, Delta: r.Int32N(40)})
		}
	}
	for _, s := range []uint16{65501, 65503, 65504, 65530, 2, 3} {
		f.nack.AddSeq(s)
	}
	return f
}

func (f *rtcpRealistic) append(b []byte) ([]byte, error) {
	var err error
	if b, err = f.rr.Append(b); err != nil {
		return b, err
	}
	if b, err = f.twcc.Append(b); err != nil {
		return b, err
	}
	if b, err = f.nack.Append(b); err != nil {
		return b, err
	}
	if b, err = f.pli.Append(b); err != nil {
		return b, err
	}
	return f.app.Append(b)
}
