package wire

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cross-checks against github.com/pion/rtcp, the reference: our Append read
// by pion gives the same field values, and pion's Marshal read by us too.

func TestTWCCAgainstPion(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 26))
	for i := range 2000 {
		want := rtcpRandTWCC(r)
		name := fmt.Sprintf("%d/n=%d", i, len(want.Packets))

		// Ours -> pion.
		pkt, err := want.Append(nil)
		require.NoError(t, err, name)
		var p rtcp.TransportLayerCC
		require.NoError(t, p.Unmarshal(pkt), name)
		require.Equal(t, uint16(len(want.Packets)), p.PacketStatusCount, name)
		require.Equal(t, want, rtcpFromPionTWCC(&p), name)
		// Pion keeps our chunks as they are: its Marshal gives our bytes back.
		again, err := p.Marshal()
		require.NoError(t, err, name)
		require.Equal(t, pkt, again, name)

		// Pion (another chunk layout, large deltas for small values, both
		// kinds of padding) -> ours.
		pp := rtcpToPionTWCC(&want, r)
		raw, err := pp.Marshal()
		require.NoError(t, err, name)
		var got TWCC
		require.NoError(t, got.Unmarshal(raw), name)
		require.Equal(t, want, got, name)

		// Pion reads its own bytes back, except when the chunks end the
		// packet (no delta, no padding): it wants bytes after the last chunk.
		var back rtcp.TransportLayerCC
		if err := back.Unmarshal(raw); err != nil {
			require.Len(t, raw, 20+2*len(pp.PacketChunks), name)
			require.Zero(t, len(pp.RecvDeltas), name)
			continue
		}
		// And through rtcp.Unmarshal, as a peer would read a compound.
		pkts, err := rtcp.Unmarshal(append(pkt, raw...))
		require.NoError(t, err, name)
		require.Len(t, pkts, 2)
	}
}

func TestTWCCPionRejectsWhatWeReject(t *testing.T) {
	// Documented differences, so that nobody mistakes them for bugs.
	var ours TWCC
	var theirs rtcp.TransportLayerCC
	zero := []byte{0x8f, 205, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	assert.ErrorIs(t, ours.Unmarshal(zero), ErrMalformed, "status count 0 (libwebrtc rejects it too)")
	assert.NoError(t, theirs.Unmarshal(zero), "pion accepts status count 0")

	// Two run-length chunks of losses and nothing after them: valid, but pion
	// wants bytes after the last chunk.
	noTail := []byte{0x8f, 205, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 1, 0, 1}
	assert.NoError(t, ours.Unmarshal(noTail))
	assert.Equal(t, []TWCCPacket{{}, {}}, ours.Packets)
	assert.Error(t, theirs.Unmarshal(noTail))
}

func TestNACKAgainstPion(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		// Increasing lost sequence numbers, wrapping.
		seq := uint16(r.Uint32())
		var seqs []uint16
		for range 1 + r.IntN(200) {
			seq += uint16(1 + r.IntN([]int{2, 20, 3000}[r.IntN(3)]))
			seqs = append(seqs, seq)
		}
		want := NACK{SenderSSRC: r.Uint32(), MediaSSRC: r.Uint32()}
		for _, s := range seqs {
			want.AddSeq(s)
		}
		name := fmt.Sprint(i)
		pionPairs := rtcp.NackPairsFromSequenceNumbers(seqs)
		require.Len(t, want.Pairs, len(pionPairs), name)
		for j, pp := range pionPairs {
			require.Equal(t, NACKPair{pp.PacketID, uint16(pp.LostPackets)}, want.Pairs[j], name)
		}
		var lost []uint16
		want.Range(func(s uint16) bool { lost = append(lost, s); return true })
		require.Equal(t, seqs, lost, name)

		pkt, err := want.Append(nil)
		require.NoError(t, err)
		var p rtcp.TransportLayerNack
		require.NoError(t, p.Unmarshal(pkt), name)
		require.Equal(t, rtcp.TransportLayerNack{SenderSSRC: want.SenderSSRC, MediaSSRC: want.MediaSSRC, Nacks: pionPairs}, p, name)

		raw, err := p.Marshal()
		require.NoError(t, err)
		var got NACK
		require.NoError(t, got.Unmarshal(raw))
		require.Equal(t, want, got, name)
	}
}

func TestReceiverReportAgainstPion(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		want := ReceiverReport{SSRC: r.Uint32()}
		theirs := rtcp.ReceiverReport{SSRC: want.SSRC}
		for range r.IntN(MaxReceptionReports + 1) {
			rr := ReceptionReport{
				SSRC: r.Uint32(), FractionLost: uint8(r.Uint32()), TotalLost: r.Uint32N(1 << 24),
				LastSequence: r.Uint32(), Jitter: r.Uint32(), LastSenderReport: r.Uint32(), Delay: r.Uint32(),
			}
			want.Reports = append(want.Reports, rr)
			theirs.Reports = append(theirs.Reports, rtcp.ReceptionReport{
				SSRC: rr.SSRC, FractionLost: rr.FractionLost, TotalLost: rr.TotalLost,
				LastSequenceNumber: rr.LastSequence, Jitter: rr.Jitter, LastSenderReport: rr.LastSenderReport, Delay: rr.Delay,
			})
		}
		name := fmt.Sprint(i)
		pkt, err := want.Append(nil)
		require.NoError(t, err)
		var p rtcp.ReceiverReport
		require.NoError(t, p.Unmarshal(pkt), name)
		assert.Empty(t, p.ProfileExtensions)
		p.ProfileExtensions = nil
		require.Equal(t, theirs, p, name)

		// Pion with profile-specific extensions, which we skip.
		if i%2 == 0 {
			theirs.ProfileExtensions = []byte{1, 2, 3, 4, 5, 6, 7, 8}
		}
		raw, err := theirs.Marshal()
		require.NoError(t, err)
		var got ReceiverReport
		require.NoError(t, got.Unmarshal(raw), name)
		rtcpAssertSame(t, &want, &got)
	}
}

func TestPLIAgainstPion(t *testing.T) {
	want := PLI{SenderSSRC: 0xdeadbeef, MediaSSRC: 3}
	pkt, err := want.Append(nil)
	require.NoError(t, err)
	var p rtcp.PictureLossIndication
	require.NoError(t, p.Unmarshal(pkt))
	assert.Equal(t, rtcp.PictureLossIndication{SenderSSRC: 0xdeadbeef, MediaSSRC: 3}, p)
	raw, err := p.Marshal()
	require.NoError(t, err)
	var got PLI
	require.NoError(t, got.Unmarshal(raw))
	assert.Equal(t, want, got)
}

func TestAppAgainstPion(t *testing.T) {
	for _, n := range []int{0, 4, 8, 100, 1200} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		want := App{Subtype: uint8(n % 32), SSRC: uint32(n), Name: [4]byte{'S', 'P', 'W', 'Y'}, Data: data}
		pkt, err := want.Append(nil)
		require.NoError(t, err)
		var p rtcp.ApplicationDefined
		require.NoError(t, p.Unmarshal(pkt))
		assert.Equal(t, want.Subtype, p.SubType)
		assert.Equal(t, want.SSRC, p.SSRC)
		assert.Equal(t, "SPWY", p.Name)
		assert.Equal(t, want.Data, []byte(p.Data))

		raw, err := p.Marshal()
		require.NoError(t, err)
		var got App
		require.NoError(t, got.Unmarshal(raw))
		rtcpAssertSame(t, &want, &got)
	}
	// Pion pads data that is not a multiple of 4 bytes with the padding
	// bit; RFC 3550 §6.7 requires a multiple of 4, and we reject it.
	raw, err := rtcp.ApplicationDefined{Name: "SPWY", Data: []byte{1, 2, 3, 4, 5}}.Marshal()
	require.NoError(t, err)
	var got App
	assert.ErrorIs(t, got.Unmarshal(raw), ErrMalformed)
}

func TestFeedbackAgainstPion(t *testing.T) {
	f := newRTCPRealistic()
	b, err := f.append(nil)
	require.NoError(t, err)

	// Ours -> pion, as one compound.
	pkts, err := rtcp.Unmarshal(b)
	require.NoError(t, err)
	require.Len(t, pkts, 5)
	require.IsType(t, &rtcp.ReceiverReport{}, pkts[0])
	require.IsType(t, &rtcp.TransportLayerCC{}, pkts[1])
	assert.Equal(t, f.twcc, rtcpFromPionTWCC(pkts[1].(*rtcp.TransportLayerCC)))
	require.IsType(t, &rtcp.TransportLayerNack{}, pkts[2])
	require.IsType(t, &rtcp.PictureLossIndication{}, pkts[3])
	require.IsType(t, &rtcp.ApplicationDefined{}, pkts[4])

	// Pion -> ours, with packets we skip among them.
	raw, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1},
		pkts[0],
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}}}}},
		pkts[1],
		&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1e6, SSRCs: []uint32{1}},
		pkts[2],
		&rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1}}},
		pkts[3],
		pkts[4],
		&rtcp.Goodbye{Sources: []uint32{1}},
	})
	require.NoError(t, err)
	var fb Feedback
	require.NoError(t, ParseFeedback(raw, &fb))
	assert.Equal(t, 5, fb.Unknown)
	assert.Equal(t, rtcpView(&Feedback{
		RRs:   []ReceiverReport{f.rr},
		TWCCs: []TWCC{f.twcc},
		NACKs: []NACK{f.nack},
		PLIs:  []PLI{f.pli},
		Apps:  []App{f.app},
	}), rtcpView(&Feedback{RRs: fb.RRs, TWCCs: fb.TWCCs, NACKs: fb.NACKs, PLIs: fb.PLIs, Apps: fb.Apps}))
}
