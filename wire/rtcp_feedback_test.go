package wire

import (
	"fmt"
	"testing"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/allocs"
)

func TestParseFeedbackRoundTrip(t *testing.T) {
	f := newRTCPRealistic()
	nack2 := NACK{SenderSSRC: 2, MediaSSRC: 3, Pairs: []NACKPair{{9, 0}}}
	pli2 := PLI{MediaSSRC: 0}
	app2 := App{Subtype: 2, Name: [4]byte{'S', 'P', 'W', 'Y'}}
	twcc2 := TWCC{BaseSeq: 65535, Packets: []TWCCPacket{{}, {Received: true, Delta: 3}}}
	b, err := f.append(nil)
	require.NoError(t, err)
	for _, m := range []rtcpMessage{&nack2, &pli2, &app2, &twcc2} {
		b, err = m.Append(b)
		require.NoError(t, err)
	}
	var fb Feedback
	require.NoError(t, ParseFeedback(b, &fb))
	want := Feedback{
		RRs:   []ReceiverReport{f.rr},
		TWCCs: []TWCC{f.twcc, twcc2},
		NACKs: []NACK{f.nack, nack2},
		PLIs:  []PLI{f.pli, pli2},
		Apps:  []App{f.app, app2},
	}
	assert.Equal(t, rtcpView(&want), rtcpView(&fb))

	// Parsing again into the same value replaces, never accumulates.
	require.NoError(t, ParseFeedback(b, &fb))
	assert.Equal(t, rtcpView(&want), rtcpView(&fb))

	fb.Reset()
	assert.Equal(t, rtcpFeedbackView{}, rtcpView(&fb))
	assert.Positive(t, cap(fb.TWCCs))
}

func TestParseFeedbackUnknown(t *testing.T) {
	pli := rtcpMust(t, &PLI{MediaSSRC: 4})
	unknown := [][]byte{
		{0x80, RTCPTypeSR, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // SR, no blocks
		{0x81, RTCPTypeSDES, 0, 2, 0, 0, 0, 1, 1, 1, 'x', 0},                                             // SDES CNAME
		{0x81, RTCPTypeBYE, 0, 1, 0, 0, 0, 1},                                                            // BYE
		{0x83, RTCPTypeRTPFB, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1},                                              // RTPFB FMT 3 (TMMBR's number, no FCI)
		{0x8f, RTCPTypePSFB, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0},                                               // PSFB FMT 15 (REMB), cut
		{0x80, 207, 0, 1, 0, 0, 0, 1},                                                                    // XR
		{0x80, 72, 0, 0},                                                                                 // unassigned type
	}
	b := append([]byte(nil), pli...)
	for _, u := range unknown {
		b = append(b, u...)
		b = append(b, pli...)
	}
	var fb Feedback
	require.NoError(t, ParseFeedback(b, &fb))
	assert.Equal(t, len(unknown), fb.Unknown)
	assert.Len(t, fb.PLIs, len(unknown)+1)

	// Framing is checked for unknown packets too.
	bad := append(append([]byte(nil), pli...), 0x40, 200, 0, 0)
	assert.ErrorIs(t, ParseFeedback(bad, &fb), ErrMalformed)
}

func TestParseFeedbackLimits(t *testing.T) {
	pli := rtcpMust(t, &PLI{})
	compound := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, pli...)
		}
		return b
	}
	var fb Feedback
	require.NoError(t, ParseFeedback(compound(MaxFeedbackMessages), &fb))
	assert.Len(t, fb.PLIs, MaxFeedbackMessages)
	assert.ErrorIs(t, ParseFeedback(compound(MaxFeedbackMessages+1), &fb), ErrMalformed)
	assert.ErrorIs(t, ParseFeedback(append(compound(MaxFeedbackMessages), 0x80, 72, 0, 0), &fb), ErrMalformed, "unknown packets count too")

	// TWCC statuses summed over a compound.
	half := rtcpMust(t, &TWCC{Packets: make([]TWCCPacket, MaxTWCCPackets/2)})
	one := rtcpMust(t, &TWCC{Packets: make([]TWCCPacket, 1)})
	both := append(append([]byte(nil), half...), half...)
	require.NoError(t, ParseFeedback(both, &fb))
	assert.Len(t, fb.TWCCs, 2)
	assert.ErrorIs(t, ParseFeedback(append(both, one...), &fb), ErrMalformed)

	assert.ErrorIs(t, ParseFeedback(nil, &fb), ErrMalformed)
	assert.ErrorIs(t, ParseFeedback([]byte{}, &fb), ErrMalformed)
}

func TestParseFeedbackTruncated(t *testing.T) {
	f := newRTCPRealistic()
	b, err := f.append(nil)
	require.NoError(t, err)
	boundaries := map[int]int{} // prefix length -> messages in it
	for rest, n := b, 0; len(rest) > 0; {
		_, _, r, err := NextRTCP(rest)
		require.NoError(t, err)
		rest = r
		n++
		boundaries[len(b)-len(rest)] = n
	}
	var fb Feedback
	for n := range len(b) {
		err := ParseFeedback(b[:n], &fb)
		if k, ok := boundaries[n]; ok {
			require.NoError(t, err, "prefix %d", n)
			assert.Equal(t, k, len(fb.RRs)+len(fb.TWCCs)+len(fb.NACKs)+len(fb.PLIs)+len(fb.Apps))
			continue
		}
		require.ErrorIs(t, err, ErrMalformed, "prefix %d", n)
	}
}

func TestParseFeedbackMemoryBound(t *testing.T) {
	// A hostile peer sends compounds of 64 TWCC messages of 64 lost packets
	// each, then compounds with a message of almost MaxTWCCPackets statuses
	// in every slot: the statuses of all messages share one buffer that never
	// exceeds MaxTWCCPackets.
	var fb Feedback
	small := rtcpMust(t, &TWCC{Packets: make([]TWCCPacket, 64)})
	tiny := rtcpMust(t, &TWCC{Packets: make([]TWCCPacket, 1)})
	big := rtcpMust(t, &TWCC{Packets: make([]TWCCPacket, MaxTWCCPackets-MaxFeedbackMessages+1)})
	var many []byte
	for range MaxFeedbackMessages {
		many = append(many, small...)
	}
	require.NoError(t, ParseFeedback(many, &fb))
	for i := range MaxFeedbackMessages {
		var b []byte
		for range i {
			b = append(b, tiny...)
		}
		b = append(b, big...)
		require.NoError(t, ParseFeedback(b, &fb))
		require.Len(t, fb.TWCCs, i+1)
		require.ErrorIs(t, ParseFeedback(append(b, small...), &fb), ErrMalformed)
	}
	assert.LessOrEqual(t, cap(fb.twcc), MaxTWCCPackets)
	for _, m := range fb.TWCCs[:cap(fb.TWCCs)] {
		assert.LessOrEqual(t, cap(m.Packets), MaxTWCCPackets)
	}
}

// rtcpAssertNoMallocs runs fn 10,000 times and asserts that the heap's malloc
// count did not move (internal/allocs says how it measures: the runtime's
// own allocations under -race on a loaded machine were seen here, some
// 2,000 objects about once in five runs).
func rtcpAssertNoMallocs(t *testing.T, fn func()) {
	t.Helper()
	fn() // warm up
	got := allocs.Mallocs(3, func() {
		for range 10_000 {
			fn()
		}
	})
	assert.Zero(t, got, "fewest mallocs during 10,000 calls in 3 attempts")
}

// TestFeedbackZeroAlloc checks the promise the hot path relies on: once
// warmed up, encoding a realistic compound and parsing it allocate nothing.
func TestFeedbackZeroAlloc(t *testing.T) {
	f := newRTCPRealistic()
	buf := make([]byte, 0, 1500)
	var fb Feedback
	rtcpAssertNoMallocs(t, func() {
		var err error
		buf, err = f.append(buf[:0])
		if err != nil {
			panic(err)
		}
		if err := ParseFeedback(buf, &fb); err != nil {
			panic(err)
		}
	})
	require.Len(t, fb.TWCCs, 1)
	assert.Equal(t, f.twcc, fb.TWCCs[0])
}

func TestTWCCUnmarshalZeroAlloc(t *testing.T) {
	f := newRTCPRealistic()
	pkt := rtcpMust(t, &f.twcc)
	var m TWCC
	rtcpAssertNoMallocs(t, func() {
		if err := m.Unmarshal(pkt); err != nil {
			panic(err)
		}
	})
}

func BenchmarkTWCCAppend(b *testing.B) {
	f := newRTCPRealistic()
	buf, err := f.twcc.Append(nil)
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf, err = f.twcc.Append(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTWCCUnmarshal(b *testing.B) {
	f := newRTCPRealistic()
	pkt := rtcpMust(b, &f.twcc)
	var m TWCC
	require.NoError(b, m.Unmarshal(pkt))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if err := m.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFeedback(b *testing.B) {
	f := newRTCPRealistic()
	buf, err := f.append(nil)
	require.NoError(b, err)
	var fb Feedback
	require.NoError(b, ParseFeedback(buf, &fb))
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := ParseFeedback(buf, &fb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPionTWCCUnmarshal decodes the same TWCC message as
// BenchmarkTWCCUnmarshal with pion/rtcp, as a peer would: into a fresh value
// (pion's Unmarshal appends to the slices it finds).
func BenchmarkPionTWCCUnmarshal(b *testing.B) {
	f := newRTCPRealistic()
	pkt := rtcpMust(b, &f.twcc)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		var p rtcp.TransportLayerCC
		if err := p.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPionTWCCMarshal encodes the same message with pion/rtcp, from its
// own representation (built once, outside the loop).
func BenchmarkPionTWCCMarshal(b *testing.B) {
	f := newRTCPRealistic()
	var p rtcp.TransportLayerCC
	require.NoError(b, p.Unmarshal(rtcpMust(b, &f.twcc)))
	b.ReportAllocs()
	b.SetBytes(int64(p.MarshalSize()))
	for b.Loop() {
		if _, err := p.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPionParseFeedback decodes the compound of BenchmarkParseFeedback
// with rtcp.Unmarshal.
func BenchmarkPionParseFeedback(b *testing.B) {
	f := newRTCPRealistic()
	buf, err := f.append(nil)
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := rtcp.Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleParseFeedback() {
	// The receiver builds a compound...
	var twcc TWCC
	twcc.BaseSeq = 1000
	twcc.Packets = append(twcc.Packets,
		TWCCPacket{Received: true, Delta: 4}, // 1 ms after RefTime
		TWCCPacket{},                         // lost
		TWCCPacket{Received: true, Delta: 8})
	var nack NACK
	nack.AddSeq(1001)
	b, _ := twcc.Append(nil)
	b, _ = nack.Append(b)

	// ...and the sender parses it into a reused Feedback.
	var fb Feedback
	if err := ParseFeedback(b, &fb); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range fb.TWCCs {
		for i, p := range m.Packets {
			fmt.Println(m.BaseSeq+uint16(i), p.Received, p.Delta)
		}
	}
	for i := range fb.NACKs {
		fb.NACKs[i].Range(func(seq uint16) bool {
			fmt.Println("nack", seq)
			return true
		})
	}
	// Output:
	// 1000 true 4
	// 1001 false 0
	// 1002 true 8
	// nack 1001
}
