package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNextRTCP(t *testing.T) {
	pli := rtcpMust(t, &PLI{SenderSSRC: 1, MediaSSRC: 2})
	padded := rtcpWithPadding(pli, 4)
	tests := []struct {
		name    string
		in      []byte
		want    RTCPHeader
		pktLen  int
		restLen int
		err     bool
	}{
		{name: "empty", in: nil, err: true},
		{name: "short header", in: []byte{0x81, 206, 0}, err: true},
		{name: "version 0", in: append([]byte{0x01}, pli[1:]...), err: true},
		{name: "version 1", in: append([]byte{0x41}, pli[1:]...), err: true},
		{name: "version 3", in: append([]byte{0xc1}, pli[1:]...), err: true},
		{name: "length beyond buffer", in: pli[:11], err: true},
		{name: "header only", in: []byte{0x80, 201, 0, 0}, want: RTCPHeader{Type: 201, Length: 4}, pktLen: 4},
		{name: "pli", in: pli, want: RTCPHeader{Count: 1, Type: 206, Length: 12}, pktLen: 12},
		{name: "pli then more", in: append(append([]byte(nil), pli...), 1, 2, 3), want: RTCPHeader{Count: 1, Type: 206, Length: 12}, pktLen: 12, restLen: 3},
		{name: "padded", in: padded, want: RTCPHeader{Padding: true, Count: 1, Type: 206, Length: 16}, pktLen: 16},
		{name: "padding count 0", in: func() []byte { b := rtcpWithPadding(pli, 4); b[15] = 0; return b }(), err: true},
		{name: "padding count beyond packet", in: func() []byte { b := rtcpWithPadding(pli, 4); b[15] = 13; return b }(), err: true},
		{name: "padding count whole body", in: func() []byte { b := rtcpWithPadding(pli, 4); b[15] = 12; return b }(), want: RTCPHeader{Padding: true, Count: 1, Type: 206, Length: 16}, pktLen: 16},
		{name: "padding bit on header-only packet", in: []byte{0xa0, 201, 0, 0}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, pkt, rest, err := NextRTCP(tc.in)
			if tc.err {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrMalformed)
				assert.Nil(t, pkt)
				assert.Nil(t, rest)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, h)
			assert.Len(t, pkt, tc.pktLen)
			assert.Len(t, rest, tc.restLen)
			assert.Equal(t, len(pkt), cap(pkt), "pkt's capacity must end with it")
		})
	}
}

func rtcpMust(t testing.TB, m interface{ Append([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Append(nil)
	require.NoError(t, err)
	return b
}

// rtcpMessage is what every message type implements.
type rtcpMessage interface {
	Append([]byte) ([]byte, error)
	Unmarshal([]byte) error
}

// rtcpSamples returns one valid value of each message kind, with a fresh
// zero value to decode into.
func rtcpSamples() []struct {
	name      string
	msg, into rtcpMessage
} {
	f := newRTCPRealistic()
	return []struct {
		name      string
		msg, into rtcpMessage
	}{
		{"RR", &f.rr, &ReceiverReport{}},
		{"RR empty", &ReceiverReport{SSRC: 9}, &ReceiverReport{}},
		{"TWCC", &f.twcc, &TWCC{}},
		{"TWCC one lost", &TWCC{Packets: []TWCCPacket{{}}}, &TWCC{}},
		{"NACK", &f.nack, &NACK{}},
		{"PLI", &f.pli, &PLI{}},
		{"APP", &f.app, &App{}},
		{"APP no data", &App{Name: [4]byte{'a', 'b', 'c', 'd'}, Subtype: 31}, &App{}},
	}
}

func TestRTCPMessageRoundTrip(t *testing.T) {
	for _, tc := range rtcpSamples() {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{0xde, 0xad}
			b, err := tc.msg.Append(prefix)
			require.NoError(t, err)
			require.Equal(t, prefix, b[:2], "Append must keep what b held")
			pkt := b[2:]
			require.Zero(t, len(pkt)%4)
			assert.Zero(t, pkt[0]&0x20, "our encoders never set the padding bit")

			h, p, rest, err := NextRTCP(pkt)
			require.NoError(t, err)
			assert.Equal(t, len(pkt), h.Length)
			assert.Empty(t, rest)

			require.NoError(t, tc.into.Unmarshal(p))
			rtcpAssertSame(t, tc.msg, tc.into)

			// RFC 3550 padding is stripped.
			for _, n := range []int{4, 8} {
				require.NoError(t, tc.into.Unmarshal(rtcpWithPadding(pkt, n)))
				rtcpAssertSame(t, tc.msg, tc.into)
			}
		})
	}
}

// rtcpAssertSame compares two messages of one kind, empty and nil slices
// alike.
func rtcpAssertSame(t *testing.T, want, got rtcpMessage) {
	t.Helper()
	var a, b Feedback
	for _, x := range []struct {
		fb *Feedback
		m  rtcpMessage
	}{{&a, want}, {&b, got}} {
		switch m := x.m.(type) {
		case *ReceiverReport:
			x.fb.RRs = append(x.fb.RRs, *m)
		case *TWCC:
			x.fb.TWCCs = append(x.fb.TWCCs, *m)
		case *NACK:
			x.fb.NACKs = append(x.fb.NACKs, *m)
		case *PLI:
			x.fb.PLIs = append(x.fb.PLIs, *m)
		case *App:
			x.fb.Apps = append(x.fb.Apps, *m)
		}
	}
	assert.Equal(t, rtcpView(&a), rtcpView(&b))
}

func TestRTCPMessageTruncated(t *testing.T) {
	for _, tc := range rtcpSamples() {
		t.Run(tc.name, func(t *testing.T) {
			pkt := rtcpMust(t, tc.msg)
			// Cut anywhere, length field as it was: never fits.
			for n := range len(pkt) {
				err := tc.into.Unmarshal(pkt[:n])
				require.Error(t, err, "cut at %d", n)
				require.ErrorIs(t, err, ErrMalformed)
			}
			// Bytes after the packet are not part of it.
			require.ErrorIs(t, tc.into.Unmarshal(append(append([]byte(nil), pkt...), 0, 0, 0, 0)), ErrMalformed)
			// Bad version.
			for _, v := range []byte{0, 1, 3} {
				bad := append([]byte(nil), pkt...)
				bad[0] = bad[0]&0x3f | v<<6
				require.ErrorIs(t, tc.into.Unmarshal(bad), ErrMalformed)
			}
			// Wrong type or format.
			bad := append([]byte(nil), pkt...)
			bad[1]++
			require.ErrorIs(t, tc.into.Unmarshal(bad), ErrMalformed)
		})
	}
}

// rtcpShorten cuts the RTCP packet pkt to n bytes (a multiple of 4) and rewrites
// its length field to match.
func rtcpShorten(pkt []byte, n int) []byte {
	out := append([]byte(nil), pkt[:n]...)
	binary.BigEndian.PutUint16(out[2:], uint16(n/4-1))
	return out
}

func TestRTCPMessageShortened(t *testing.T) {
	f := newRTCPRealistic()
	// Messages whose every 4-byte shortening, length field rewritten, is
	// malformed: fixed layouts and the TWCC message (at most 3 bytes of its
	// own padding).
	for _, tc := range []struct {
		name string
		msg  rtcpMessage
		into rtcpMessage
		// shortest valid length (0: none shorter is valid)
		minValid int
	}{
		{"TWCC", &f.twcc, &TWCC{}, 0},
		{"TWCC one packet", &TWCC{Packets: []TWCCPacket{{Received: true, Delta: 300}}}, &TWCC{}, 0},
		{"PLI", &f.pli, &PLI{}, 0},
		{"RR", &f.rr, &ReceiverReport{}, 0},
		{"NACK", &f.nack, &NACK{}, 16},
		{"APP", &f.app, &App{}, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := rtcpMust(t, tc.msg)
			for n := 4; n < len(pkt); n += 4 {
				err := tc.into.Unmarshal(rtcpShorten(pkt, n))
				if tc.minValid != 0 && n >= tc.minValid {
					require.NoError(t, err, "length %d", n)
					continue
				}
				require.ErrorIs(t, err, ErrMalformed, "length %d", n)
			}
		})
	}
}

func TestTWCCChunks(t *testing.T) {
	rx := func(d int32) TWCCPacket { return TWCCPacket{Received: true, Delta: d} }
	lost := TWCCPacket{}
	rep := func(p TWCCPacket, n int) []TWCCPacket {
		s := make([]TWCCPacket, n)
		for i := range s {
			s[i] = p
		}
		return s
	}
	cat := func(ss ...[]TWCCPacket) []TWCCPacket {
		var out []TWCCPacket
		for _, s := range ss {
			out = append(out, s...)
		}
		return out
	}
	alt := make([]TWCCPacket, 14)
	for i := range alt {
		if i%2 == 0 {
			alt[i] = rx(1)
		}
	}
	tests := []struct {
		name   string
		pkts   []TWCCPacket
		chunks []uint16
	}{
		{"one received", []TWCCPacket{rx(5)}, []uint16{0x2001}},
		{"one lost", []TWCCPacket{lost}, []uint16{0x0001}},
		{"100 received small", rep(rx(4), 100), []uint16{0x2064}},
		{"4096 lost", rep(lost, 4096), []uint16{0x1000}},
		{"100 large", rep(rx(-1), 100), []uint16{0x4064}},
		{"lost x3 then small", cat(rep(lost, 3), []TWCCPacket{rx(1)}), []uint16{0xc000 | 1<<6}},
		{"14 alternating", alt, []uint16{0xaaaa}},
		{"15 alternating", append(append([]TWCCPacket(nil), alt...), rx(1)), []uint16{0xaaaa, 0x2001}},
		{"large among 7", cat([]TWCCPacket{rx(1000)}, rep(lost, 3), rep(rx(1), 3)), []uint16{0xc000 | 2<<12 | 1<<4 | 1<<2 | 1}},
		{"large after 10 mixed", cat(alt[:10], []TWCCPacket{rx(1000)}), []uint16{
			0xc000 | 1<<12 | 1<<8 | 1<<4 | 1, // the first 7 as two-bit
			0xc000 | 1<<10 | 2<<6,            // lost, small, lost, large
		}},
		{"run then vector", cat(rep(rx(1), 20), []TWCCPacket{lost, rx(2)}), []uint16{0x2014, 0xc000 | 1<<10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := TWCC{Packets: tc.pkts}
			pkt := rtcpMust(t, &m)
			var got []uint16
			for i := range tc.chunks {
				got = append(got, binary.BigEndian.Uint16(pkt[20+2*i:]))
			}
			assert.Equal(t, tc.chunks, got)
			var back TWCC
			require.NoError(t, back.Unmarshal(pkt))
			assert.Equal(t, tc.pkts, back.Packets)
		})
	}
}

func TestTWCCUnmarshalEdges(t *testing.T) {
	// build returns a TWCC packet with the given status count, chunks and
	// delta bytes, zero-padded.
	build := func(count uint16, chunks []uint16, deltas ...byte) []byte {
		b := []byte{0x8f, 205, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xfe}
		b = binary.BigEndian.AppendUint16(b, count)
		b = append(b, 0x80, 0, 1, 9) // reference time -2^23+1, fb count 9
		for _, c := range chunks {
			b = binary.BigEndian.AppendUint16(b, c)
		}
		b = append(b, deltas...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
		return b
	}
	tests := []struct {
		name string
		pkt  []byte
		want []TWCCPacket // nil: malformed
	}{
		{"count 0", build(0, nil), nil},
		{"count 0 with a chunk", build(0, []uint16{0x2001}, 1), nil},
		{"count over cap", build(MaxTWCCPackets+1, []uint16{MaxTWCCPackets + 1}), nil},
		{"count at cap", build(MaxTWCCPackets, []uint16{MaxTWCCPackets}), make([]TWCCPacket, MaxTWCCPackets)},
		{"count 65535", build(0xffff, []uint16{0x1fff}), nil},
		{"run symbol 3", build(1, []uint16{0x6001}, 0, 0), nil},
		{"two-bit symbol 3", build(1, []uint16{0xf000}, 0, 0), nil},
		{"two-bit symbol 3 unused", build(1, []uint16{0xc000 | 1<<12 | 3}, 7), []TWCCPacket{{Received: true, Delta: 7}}},
		{"one-bit unused set", build(2, []uint16{0x8000 | 1<<13 | 0xff}, 7), []TWCCPacket{{Received: true, Delta: 7}, {}}},
		{"run longer than count", build(2, []uint16{0x2000 | 100}, 1, 2), []TWCCPacket{{true, 1}, {true, 2}}},
		{"zero run then run", build(1, []uint16{0x2000, 0x4001}, 0xff, 0xfe), []TWCCPacket{{true, -2}}},
		{"chunks missing", build(20, []uint16{0x2005}, 1, 2, 3, 4, 5), nil},
		{"small deltas missing", build(6, []uint16{0x2006}, 1), nil},
		{"large deltas cut", build(3, []uint16{0x4003}, 0x01), nil},
		{"large delta", build(1, []uint16{0x4001}, 0x80, 0x00), []TWCCPacket{{true, -32768}}},
		{"trailing bytes", build(1, []uint16{0x2001}, 1, 0, 0, 0, 0, 0, 0), []TWCCPacket{{true, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m TWCC
			err := m.Unmarshal(tc.pkt)
			if tc.want == nil {
				require.ErrorIs(t, err, ErrMalformed)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, m.Packets)
			assert.Equal(t, uint32(1), m.MediaSSRC)
			assert.Equal(t, uint16(0xfffe), m.BaseSeq)
			assert.Equal(t, int32(-1<<23+1), m.RefTime)
			assert.Equal(t, uint8(9), m.FeedbackCount)
		})
	}
}

func TestTWCCUnmarshalReuses(t *testing.T) {
	big := TWCC{Packets: make([]TWCCPacket, 500)}
	small := TWCC{Packets: []TWCCPacket{{Received: true, Delta: 3}}}
	var m TWCC
	require.NoError(t, m.Unmarshal(rtcpMust(t, &big)))
	p := &m.Packets[0]
	require.NoError(t, m.Unmarshal(rtcpMust(t, &small)))
	assert.Same(t, p, &m.Packets[0])
	assert.Equal(t, small.Packets, m.Packets)
}

func TestRTCPAppendErrors(t *testing.T) {
	tooManyReports := ReceiverReport{Reports: make([]ReceptionReport, MaxReceptionReports+1)}
	tests := []struct {
		name string
		msg  rtcpMessage
	}{
		{"TWCC no packets", &TWCC{}},
		{"TWCC too many packets", &TWCC{Packets: make([]TWCCPacket, MaxTWCCPackets+1)}},
		{"TWCC ref time high", &TWCC{RefTime: 1 << 23, Packets: []TWCCPacket{{}}}},
		{"TWCC ref time low", &TWCC{RefTime: -1<<23 - 1, Packets: []TWCCPacket{{}}}},
		{"TWCC delta high", &TWCC{Packets: []TWCCPacket{{Received: true, Delta: 1 << 15}}}},
		{"TWCC delta low", &TWCC{Packets: []TWCCPacket{{Received: true, Delta: -1<<15 - 1}}}},
		{"NACK no pairs", &NACK{}},
		{"NACK too many pairs", &NACK{Pairs: make([]NACKPair, MaxNACKPairs+1)}},
		{"RR too many reports", &tooManyReports},
		{"RR total lost", &ReceiverReport{Reports: []ReceptionReport{{TotalLost: 1 << 24}}}},
		{"APP subtype", &App{Subtype: 32}},
		{"APP data not aligned", &App{Data: []byte{1, 2, 3}}},
		{"APP data too long", &App{Data: make([]byte, rtcpMaxLen-8)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte{1, 2, 3}
			out, err := tc.msg.Append(b)
			require.ErrorIs(t, err, ErrRange)
			assert.Equal(t, []byte{1, 2, 3}, out)
		})
	}
	// The limits themselves are fine.
	for _, m := range []rtcpMessage{
		&TWCC{RefTime: 1<<23 - 1, Packets: []TWCCPacket{{Received: true, Delta: 1<<15 - 1}, {Received: true, Delta: -1 << 15}, {Delta: 1 << 20}}},
		&TWCC{RefTime: -1 << 23, Packets: make([]TWCCPacket, MaxTWCCPackets)},
		&NACK{Pairs: make([]NACKPair, MaxNACKPairs)},
		&ReceiverReport{Reports: make([]ReceptionReport, MaxReceptionReports)},
		&App{Subtype: 31, Data: make([]byte, rtcpMaxLen-12)},
	} {
		_, err := m.Append(nil)
		assert.NoError(t, err)
	}
}

func TestNACKAddSeqRange(t *testing.T) {
	tests := []struct {
		name  string
		seqs  []uint16
		pairs []NACKPair
		lost  []uint16 // what Range reports, if not seqs
	}{
		{"one", []uint16{7}, []NACKPair{{7, 0}}, nil},
		{"bitmap", []uint16{7, 8, 23}, []NACKPair{{7, 1 | 1<<15}}, nil},
		{"17 apart", []uint16{7, 24}, []NACKPair{{7, 0}, {24, 0}}, nil},
		{"wrap", []uint16{65534, 65535, 0, 14}, []NACKPair{{65534, 1 | 1<<1 | 1<<15}}, nil},
		{"duplicate", []uint16{5, 5, 6, 6}, []NACKPair{{5, 1}}, []uint16{5, 6}},
		{"going back starts a pair", []uint16{100, 90}, []NACKPair{{100, 0}, {90, 0}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n NACK
			for _, s := range tc.seqs {
				n.AddSeq(s)
			}
			assert.Equal(t, tc.pairs, n.Pairs)
			var got []uint16
			n.Range(func(s uint16) bool { got = append(got, s); return true })
			want := tc.lost
			if want == nil {
				want = tc.seqs
			}
			assert.Equal(t, want, got)
		})
	}
	// Range stops when told to.
	n := NACK{Pairs: []NACKPair{{1, 0xffff}, {100, 0xffff}}}
	calls := 0
	n.Range(func(uint16) bool { calls++; return calls < 20 })
	assert.Equal(t, 20, calls)
}

func TestNACKUnmarshalLimits(t *testing.T) {
	n := NACK{Pairs: make([]NACKPair, MaxNACKPairs)}
	pkt := rtcpMust(t, &n)
	var got NACK
	require.NoError(t, got.Unmarshal(pkt))
	assert.Len(t, got.Pairs, MaxNACKPairs)

	over := append(append([]byte(nil), pkt...), 0, 1, 0, 0)
	binary.BigEndian.PutUint16(over[2:], uint16(len(over)/4-1))
	require.ErrorIs(t, got.Unmarshal(over), ErrMalformed)

	// A pair cut by the padding.
	odd := rtcpWithPadding(rtcpMust(t, &NACK{Pairs: []NACKPair{{1, 2}}}), 4)
	odd[len(odd)-1] = 2 // 2 bytes of padding leave half a pair
	require.ErrorIs(t, got.Unmarshal(odd), ErrMalformed)
}

func TestRRExtensionsIgnored(t *testing.T) {
	rr := ReceiverReport{SSRC: 3, Reports: []ReceptionReport{{SSRC: 4, TotalLost: 0xffffff, FractionLost: 255}}}
	pkt := append(rtcpMust(t, &rr), 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4)
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)/4-1))
	var got ReceiverReport
	require.NoError(t, got.Unmarshal(pkt))
	assert.Equal(t, rr, got)

	// RC announces more blocks than the packet holds.
	pkt[0] = pkt[0]&^0x1f | 2
	require.ErrorIs(t, got.Unmarshal(pkt), ErrMalformed)
}

func TestPLIRejectsFCI(t *testing.T) {
	pkt := append(rtcpMust(t, &PLI{}), 0, 0, 0, 0)
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)/4-1))
	var p PLI
	require.ErrorIs(t, p.Unmarshal(pkt), ErrMalformed)
}

func TestAppUnmarshal(t *testing.T) {
	a := App{Subtype: 5, SSRC: 6, Name: [4]byte{'S', 'P', 'W', 'Y'}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	pkt := rtcpMust(t, &a)
	var got App
	require.NoError(t, got.Unmarshal(pkt))
	assert.Equal(t, a, got)
	assert.Same(t, &pkt[12], &got.Data[0], "Data aliases the packet")

	// Padding that leaves data not a multiple of 4 bytes.
	odd := rtcpWithPadding(pkt, 4)
	odd[len(odd)-1] = 3
	require.ErrorIs(t, got.Unmarshal(odd), ErrMalformed)
}

func TestRTCPErrorsAreSentinels(t *testing.T) {
	var m TWCC
	err := m.Unmarshal([]byte{0x8f, 205, 0, 1, 0, 0, 0, 0})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrMalformed))
	assert.False(t, errors.Is(err, ErrRange))
}
