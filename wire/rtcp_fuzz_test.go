package wire

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/require"
)

// rtcpWriteCorpus rewrites the committed seed corpora of the RTCP fuzz
// targets: go test -run TestRTCPFuzzCorpus ./wire/ -args -rtcp.writecorpus
var rtcpWriteCorpus = flag.Bool("rtcp.writecorpus", false, "write the RTCP fuzz seed corpora under testdata/fuzz")

type rtcpSeed struct {
	name string
	data []byte
}

// rtcpFeedbackSeeds are compounds and single messages of every kind, ours
// and pion-marshalled, padded and not, with packets we skip.
func rtcpFeedbackSeeds(tb testing.TB) []rtcpSeed {
	f := newRTCPRealistic()
	compound, err := f.append(nil)
	require.NoError(tb, err)
	seeds := []rtcpSeed{{"compound", compound}}
	for _, m := range rtcpSamples() {
		pkt := rtcpMust(tb, m.msg)
		seeds = append(seeds,
			rtcpSeed{"msg-" + m.name, pkt},
			rtcpSeed{"padded-" + m.name, rtcpWithPadding(pkt, 4)})
	}
	theirs, err := rtcp.Unmarshal(compound)
	require.NoError(tb, err)
	pion, err := rtcp.Marshal(append([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2, TotalLost: 3}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "spillway"}}}}},
		&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1e6, SSRCs: []uint32{1}},
		&rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1}}},
		&rtcp.Goodbye{Sources: []uint32{1}},
		&rtcp.ApplicationDefined{SubType: 3, SSRC: 5, Name: "SPWY", Data: []byte{1, 2, 3, 4}},
		&rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: 8}}, ProfileExtensions: []byte{9, 9, 9, 9}},
		&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{65535, 0, 1, 40})},
		&rtcp.PictureLossIndication{MediaSSRC: 2},
	}, theirs...))
	require.NoError(tb, err)
	seeds = append(seeds, rtcpSeed{"pion-compound", pion})

	r := rand.New(rand.NewPCG(7, 8))
	for i := range 6 {
		m := rtcpRandTWCC(r)
		if len(m.Packets) > 100 {
			m.Packets = m.Packets[:100]
		}
		pkt := rtcpMust(tb, &m)
		raw, err := rtcpToPionTWCC(&m, r).Marshal()
		require.NoError(tb, err)
		seeds = append(seeds, rtcpSeed{fmt.Sprintf("twcc-%d", i), append(pkt, compound...)},
			rtcpSeed{fmt.Sprintf("pion-twcc-%d", i), append(raw, compound...)})
	}
	many := NACK{MediaSSRC: 3}
	for s := range uint16(300) {
		many.AddSeq(s * 20)
	}
	many.Pairs = many.Pairs[:MaxNACKPairs]
	seeds = append(seeds, rtcpSeed{"nack-max", rtcpMust(tb, &many)})
	return seeds
}

// rtcpTWCCSeeds are single TWCC messages: ours, pion's with other chunk
// layouts and padding, and edge cases.
func rtcpTWCCSeeds(tb testing.TB) []rtcpSeed {
	var seeds []rtcpSeed
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 12 {
		m := rtcpRandTWCC(r)
		// Small seeds: the minimizer is quadratic in an input's length.
		if len(m.Packets) > 200 {
			m.Packets = m.Packets[:200]
		}
		raw, err := rtcpToPionTWCC(&m, r).Marshal()
		require.NoError(tb, err)
		seeds = append(seeds,
			rtcpSeed{fmt.Sprintf("ours-%d", i), rtcpMust(tb, &m)},
			rtcpSeed{fmt.Sprintf("pion-%d", i), raw})
	}
	f := newRTCPRealistic()
	seeds = append(seeds,
		rtcpSeed{"realistic", rtcpMust(tb, &f.twcc)},
		rtcpSeed{"realistic-padded", rtcpWithPadding(rtcpMust(tb, &f.twcc), 4)},
		rtcpSeed{"cap-lost", rtcpMust(tb, &TWCC{Packets: make([]TWCCPacket, MaxTWCCPackets)})},
		rtcpSeed{"one-large", rtcpMust(tb, &TWCC{RefTime: -1, Packets: []TWCCPacket{{Received: true, Delta: -32768}}})},
		// Status count 4097 in one run: over the cap.
		rtcpSeed{"over-cap", []byte{0x8f, 205, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 0, 0x10, 0x01, 0, 0}},
	)
	return seeds
}

func TestRTCPFuzzCorpus(t *testing.T) {
	if !*rtcpWriteCorpus {
		t.Skip("run with -args -rtcp.writecorpus to rewrite the seed corpora")
	}
	for target, seeds := range map[string][]rtcpSeed{
		"FuzzRTCPFeedback": rtcpFeedbackSeeds(t),
		"FuzzRTCPTWCC":     rtcpTWCCSeeds(t),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for _, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.data)) + ")\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(body), 0o644))
		}
	}
}

// rtcpReused is decoded into by every FuzzRTCPFeedback input, so that stale
// state left by one input would show in the next.
var rtcpReused Feedback

func FuzzRTCPFeedback(f *testing.F) {
	for _, s := range rtcpFeedbackSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fb Feedback
		err := ParseFeedback(data, &fb)
		reusedErr := ParseFeedback(data, &rtcpReused)
		require.Equal(t, err == nil, reusedErr == nil)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		rtcpRequireSameFeedback(t, rtcpView(&fb), rtcpView(&rtcpReused), "reused Feedback")

		// Whatever parses re-encodes, and parses again to the same values;
		// the re-encoding is canonical.
		b, err := rtcpAppendFeedback(nil, &fb)
		require.NoError(t, err)
		if len(b) == 0 {
			require.Positive(t, fb.Unknown)
			return
		}
		var again Feedback
		require.NoError(t, ParseFeedback(b, &again))
		want := rtcpView(&fb)
		want.Unknown = 0
		rtcpRequireSameFeedback(t, want, rtcpView(&again), "round trip")
		b2, err := rtcpAppendFeedback(nil, &again)
		require.NoError(t, err)
		require.Equal(t, b, b2)
	})
}

// rtcpPionAccepts runs pion's parser, counting a panic as a rejection.
func rtcpPionAccepts(parse func() error) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return parse() == nil
}

// Reused by every FuzzRTCPTWCC input: a fresh 4096-entry slice per input
// made the minimizer crawl.
var (
	rtcpFuzzTWCC, rtcpFuzzAgain TWCC
	rtcpFuzzBuf                 []byte
)

func FuzzRTCPTWCC(f *testing.F) {
	for _, s := range rtcpTWCCSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &rtcpFuzzTWCC
		if err := m.Unmarshal(data); err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.NotEmpty(t, m.Packets)
		require.LessOrEqual(t, len(m.Packets), MaxTWCCPackets)

		var err error
		rtcpFuzzBuf, err = m.Append(rtcpFuzzBuf[:0])
		require.NoError(t, err)
		require.NoError(t, rtcpFuzzAgain.Unmarshal(rtcpFuzzBuf))
		rtcpRequireSameTWCC(t, m, &rtcpFuzzAgain, "round trip")

		var p rtcp.TransportLayerCC
		if rtcpPionAccepts(func() error { return p.Unmarshal(data) }) {
			theirs := rtcpFromPionTWCC(&p)
			rtcpRequireSameTWCC(t, m, &theirs, "pion reads other packets or deltas")
		}
	})
}

// rtcpRequireSameFeedback compares two parsed compounds, TWCC messages with
// rtcpRequireSameTWCC.
func rtcpRequireSameFeedback(t *testing.T, want, got rtcpFeedbackView, msg string) {
	t.Helper()
	require.Len(t, got.TWCCs, len(want.TWCCs), msg)
	for i := range want.TWCCs {
		rtcpRequireSameTWCC(t, &want.TWCCs[i], &got.TWCCs[i], fmt.Sprintf("%s: TWCC %d", msg, i))
	}
	want.TWCCs, got.TWCCs = nil, nil
	require.Equal(t, want, got, msg)
}

// rtcpRequireSameTWCC compares two TWCC messages and names the first
// difference (testify's diff of thousands of packets takes minutes).
func rtcpRequireSameTWCC(t *testing.T, want, got *TWCC, msg string) {
	t.Helper()
	w, g := *want, *got
	w.Packets, g.Packets = nil, nil
	require.Equal(t, w, g, msg)
	require.Equal(t, len(want.Packets), len(got.Packets), msg)
	for i := range want.Packets {
		if want.Packets[i] != got.Packets[i] {
			t.Fatalf("%s: packet %d of %d: want %+v, got %+v", msg, i, len(want.Packets), want.Packets[i], got.Packets[i])
		}
	}
}
