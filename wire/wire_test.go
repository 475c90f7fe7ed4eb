package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

func TestDataHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    DataHeader
		len  int
	}{
		{"single fragment", DataHeader{DstConnID: 1, PacketNumber: 7, Stream: 0, FrameID: 0, FragIndex: 0, FragCount: 1, SendTime: 5}, 16},
		{"key first of many", DataHeader{DstConnID: 0xdeadbeef, PacketNumber: mask24, Key: true, Stream: 15, FrameID: 4095, FragIndex: 0, FragCount: 4096, SendTime: mask24}, 16},
		{"droppable last", DataHeader{DstConnID: 9, PacketNumber: 1 << 20, Droppable: true, Stream: 3, FrameID: 77, FragIndex: 4095, FragCount: 4096, SendTime: 1}, 16},
		{"retransmission", DataHeader{DstConnID: 9, PacketNumber: 100, Stream: 1, FrameID: 2, FragIndex: 1, FragCount: 3, SendTime: 4, Retransmit: true, Original: 42}, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.h.Append(nil)
			require.NoError(t, err)
			require.Len(t, b, tt.len)
			assert.Equal(t, tt.len, tt.h.Len())
			b = append(b, "payload"...)
			var got DataHeader
			payload, err := got.Parse(b)
			require.NoError(t, err)
			assert.Equal(t, tt.h, got)
			assert.Equal(t, []byte("payload"), payload)
			typ, flags, dcid, err := Peek(b)
			require.NoError(t, err)
			assert.Equal(t, tt.h.DstConnID, dcid)
			if tt.h.Retransmit {
				assert.Equal(t, TypeRetransmit, typ)
			} else {
				assert.Equal(t, TypeData, typ)
			}
			assert.Equal(t, tt.h.Last(), flags&FlagLast != 0)
		})
	}
}

func TestDataHeaderRejects(t *testing.T) {
	good := DataHeader{DstConnID: 1, FragCount: 2}
	b, err := good.Append(nil)
	require.NoError(t, err)

	bad := map[string]func([]byte) []byte{
		"empty":             func(b []byte) []byte { return nil },
		"truncated":         func(b []byte) []byte { return b[:15] },
		"header version 0":  func(b []byte) []byte { b[0] &^= 0xc0; return b },
		"header version 2":  func(b []byte) []byte { b[0] = b[0]&^0xc0 | 2<<6; return b },
		"reserved type":     func(b []byte) []byte { b[0] |= 7 << 3; return b },
		"wrong type":        func(b []byte) []byte { b[0] = byte0(TypePing, 0); return b },
		"zero conn id":      func(b []byte) []byte { copy(b[1:5], []byte{0, 0, 0, 0}); return b },
		"index past count":  func(b []byte) []byte { b[10], b[11], b[12] = 0x00, 0x20, 0x01; return b }, // index 2, count 2
		"last flag missing": func(b []byte) []byte { b[10], b[11], b[12] = 0x00, 0x10, 0x01; return b }, // index 1 of 2, no flag
		"last flag wrong":   func(b []byte) []byte { b[0] |= FlagLast; return b },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			var h DataHeader
			_, err := h.Parse(mut(bytes.Clone(b)))
			assert.Error(t, err)
		})
	}

	outOfRange := []DataHeader{
		{DstConnID: 0, FragCount: 1},
		{DstConnID: 1, FragCount: 0},
		{DstConnID: 1, FragCount: 4097},
		{DstConnID: 1, FragCount: 2, FragIndex: 2},
		{DstConnID: 1, FragCount: 1, Stream: 16},
		{DstConnID: 1, FragCount: 1, FrameID: 4096},
		{DstConnID: 1, FragCount: 1, PacketNumber: 1 << 24},
		{DstConnID: 1, FragCount: 1, SendTime: 1 << 24},
	}
	for _, h := range outOfRange {
		out, err := h.Append([]byte{1})
		assert.ErrorIs(t, err, ErrRange, "%+v", h)
		assert.Equal(t, []byte{1}, out, "a failed Append leaves b as it was")
	}
}

func TestHandshakeRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		h     Handshake
		padTo int
	}{
		{"hello", Handshake{Msg: MsgHello, Version: Version1, SrcConnID: 5, Params: TransportParams{
			FragmentSize: 1200, MaxDatagramSize: 1452, IdleTimeout: 30 * time.Second, MaxFrameSize: 4 << 20, Latency: 300 * time.Millisecond,
		}}, MinHelloSize},
		{"hello with cookie", Handshake{Msg: MsgHello, Version: Version1, SrcConnID: 5, Cookie: bytes.Repeat([]byte{7}, 24)}, MinHelloSize},
		{"retry", Handshake{Msg: MsgRetry, Version: Version1, DstConnID: 5, Cookie: bytes.Repeat([]byte{9}, MaxCookieLen)}, 0},
		{"accept", Handshake{Msg: MsgAccept, Version: Version1, DstConnID: 5, SrcConnID: 6, Params: TransportParams{FragmentSize: 64}}, 0},
		{"reject", Handshake{Msg: MsgReject, Version: Version1, DstConnID: 5, Params: TransportParams{RejectReason: RejectVersion}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.h.Append(nil, tt.padTo)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, len(b), tt.padTo)
			var got Handshake
			require.NoError(t, got.Parse(b))
			assert.Equal(t, tt.h, got)
		})
	}
}

func TestHandshakeRejects(t *testing.T) {
	h := Handshake{Msg: MsgHello, Version: Version1, SrcConnID: 1, Params: TransportParams{FragmentSize: 1000}}
	b, err := h.Append(nil, 64)
	require.NoError(t, err)
	for n := 0; n < 20; n++ { // every truncation before the padding (13 fixed + 1 + 2 + 4 bytes) fails
		var got Handshake
		assert.Error(t, got.Parse(b[:n]), "len %d", n)
	}
	bad := map[string]func([]byte) []byte{
		"msg 4":             func(b []byte) []byte { b[0] |= 4; return b },
		"cookie too long":   func(b []byte) []byte { b[13] = MaxCookieLen + 1; return b },
		"non-zero padding":  func(b []byte) []byte { b[len(b)-1] = 1; return b },
		"param length":      func(b []byte) []byte { b[17] = 3; return b },
		"fragment too tiny": func(b []byte) []byte { b[18], b[19] = 0, 10; return b },
		"params past end":   func(b []byte) []byte { b[14], b[15] = 0xff, 0xff; return b },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			var got Handshake
			assert.ErrorIs(t, got.Parse(mut(bytes.Clone(b))), ErrMalformed)
		})
	}
	dup := []byte{byte0(TypeHandshake, 0), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 8, 1, 2, 4, 0, 1, 2, 4, 0}
	var got Handshake
	assert.ErrorIs(t, got.Parse(dup), ErrMalformed, "duplicate parameter")
	unknown := []byte{byte0(TypeHandshake, 0), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 3, 200, 1, 9}
	require.NoError(t, got.Parse(unknown), "unknown parameters are ignored")
	// An unknown id may repeat (a later version's parameter): 7 and 8, the
	// next ids, were refused as duplicates.
	for _, id := range []byte{7, 8, 9, 200} {
		rep := []byte{byte0(TypeHandshake, 0), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 6, id, 1, 0, id, 1, 0}
		assert.NoError(t, got.Parse(rep), "unknown id %d repeated", id)
	}

	_, err = (&Handshake{Cookie: make([]byte, MaxCookieLen+1)}).Append(nil, 0)
	assert.ErrorIs(t, err, ErrRange)
	_, err = (&Handshake{Params: TransportParams{FragmentSize: 10}}).Append(nil, 0)
	assert.ErrorIs(t, err, ErrRange)
	_, err = (&Handshake{Params: TransportParams{Latency: -time.Second}}).Append(nil, 0)
	assert.ErrorIs(t, err, ErrRange)
}

func TestDurationRoundsUp(t *testing.T) {
	h := Handshake{Params: TransportParams{Latency: time.Microsecond}}
	b, err := h.Append(nil, 0)
	require.NoError(t, err)
	var got Handshake
	require.NoError(t, got.Parse(b))
	assert.Equal(t, time.Millisecond, got.Params.Latency)
}

func TestControlRoundTrip(t *testing.T) {
	closes := []Close{
		{DstConnID: 3, PacketNumber: 9, Code: 0},
		{DstConnID: 3, PacketNumber: mask24, Reply: true, Code: 0xffff, Reason: []byte("idle timeout")},
		{DstConnID: 3, Reason: bytes.Repeat([]byte{'x'}, MaxReasonLen)},
	}
	for _, c := range closes {
		b, err := c.Append(nil)
		require.NoError(t, err)
		var got Close
		require.NoError(t, got.Parse(b))
		assert.Equal(t, c, got)
		assert.Error(t, got.Parse(b[:len(b)-1]))
		assert.Error(t, got.Parse(append(b, 0)))
	}
	_, err := (&Close{DstConnID: 1, Reason: make([]byte, 256)}).Append(nil)
	assert.ErrorIs(t, err, ErrRange)

	pings := []Ping{
		{DstConnID: 1, PacketNumber: 2, Echo: 0x0102030405060708},
		{DstConnID: 1, PacketNumber: 3, Pong: true, Echo: 99, HoldMicros: MaxHoldMicros, ArrivalMicros: 0x1122334455667788},
	}
	for _, p := range pings {
		b, err := p.Append(nil)
		require.NoError(t, err)
		var got Ping
		require.NoError(t, got.Parse(b))
		assert.Equal(t, p, got)
		assert.Error(t, got.Parse(b[:len(b)-1]))
		assert.Error(t, got.Parse(append(b, 0)))
	}
	_, err = (&Ping{DstConnID: 1, HoldMicros: 5}).Append(nil)
	assert.ErrorIs(t, err, ErrRange, "a ping carries no hold time")
	_, err = (&Ping{DstConnID: 1, ArrivalMicros: 5}).Append(nil)
	assert.ErrorIs(t, err, ErrRange, "a ping carries no arrival time")

	rh := RepairHeader{DstConnID: 1, PacketNumber: 2, SendTime: 3, BasePacketNumber: 4, Mask: 0x3ff, M: 3, Index: 2}
	b, err := rh.Append(nil)
	require.NoError(t, err)
	require.Len(t, b, RepairHeaderLen)
	var got RepairHeader
	payload, err := got.Parse(append(b, 1, 2))
	require.NoError(t, err)
	assert.Equal(t, rh, got)
	assert.Equal(t, 10, got.K())
	assert.Equal(t, []byte{1, 2}, payload)
	noBase := rh
	noBase.Mask = 0x3fe
	_, err = noBase.Append(nil)
	assert.ErrorIs(t, err, ErrRange, "the base packet is always a member")
	b[len(b)-1] = 3 // index == M
	_, err = got.Parse(b)
	assert.ErrorIs(t, err, ErrMalformed)

	fb, err := AppendFeedbackHeader(nil, 7, 8)
	require.NoError(t, err)
	var sh ShortHeader
	rest, err := ParseFeedbackHeader(append(fb, 0xaa), &sh)
	require.NoError(t, err)
	assert.Equal(t, ShortHeader{Type: TypeFeedback, DstConnID: 7, PacketNumber: 8}, sh)
	assert.Equal(t, []byte{0xaa}, rest)
}

func TestDecodePacketNumber(t *testing.T) {
	// RFC 9000 appendix A.3's example, in a 16-bit window.
	assert.Equal(t, int64(0xa82f9b32), unwrap(0xa82f30ea+1, 0x9b32, 16))
	tests := []struct {
		largest   int64
		truncated uint32
		want      int64
	}{
		{-1, 0, 0},
		{-1, 5, 5},
		{0, 1, 1},
		{mask24, 0, 1 << 24},
		{mask24 - 10, mask24 - 20, mask24 - 20}, // late packet, same epoch
		{1<<24 + 5, mask24, mask24},             // late packet from the previous epoch
		{-1, mask24, mask24},                    // never negative
		{10, 1 << 23, 1 << 23},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, DecodePacketNumber(tt.largest, tt.truncated), "largest %d truncated %d", tt.largest, tt.truncated)
	}
	assert.Equal(t, int64(4096+3), DecodeFrameID(4095, 3))
	assert.Equal(t, int64(4094), DecodeFrameID(4097, 4094))
}

func TestTimestamps(t *testing.T) {
	epoch := clock.Time(1000)
	at := epoch.Add(70 * time.Second) // past one wrap
	ts := Timestamp(at, epoch)
	full := int64(70 * time.Second / TimestampUnit)
	assert.Equal(t, uint32(full)&mask24, ts)
	assert.Equal(t, full, UnwrapTimestamp(full-1000, ts))
	assert.Equal(t, full, UnwrapTimestamp(full+1000, ts))
	before := Timestamp(epoch.Add(-time.Millisecond), epoch)
	assert.Equal(t, int64(-250), UnwrapTimestamp(0, before), "capture times before the epoch unwrap negative")
	assert.Equal(t, 67108864*time.Microsecond, TimestampWrap)
}

func TestFramePrefix(t *testing.T) {
	b, err := AppendFramePrefix(nil, 0x123456)
	require.NoError(t, err)
	ts, rest, err := ParseFramePrefix(append(b, 'a'))
	require.NoError(t, err)
	assert.Equal(t, uint32(0x123456), ts)
	assert.Equal(t, []byte("a"), rest)
	_, _, err = ParseFramePrefix(b[:2])
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = AppendFramePrefix(nil, 1<<24)
	assert.ErrorIs(t, err, ErrRange)
}

func TestTypeString(t *testing.T) {
	assert.Equal(t, "data", TypeData.String())
	assert.Equal(t, "invalid", Type(9).String())
	assert.Equal(t, "retry", MsgRetry.String())
	assert.Equal(t, "invalid", HandshakeMsg(9).String())
}

func TestProtectedForm(t *testing.T) {
	tests := []struct {
		name string
		h    DataHeader
	}{
		{"plain", DataHeader{Stream: 2, FrameID: 300, FragIndex: 1, FragCount: 3}},
		{"key, largest fields", DataHeader{Key: true, Stream: 15, FrameID: 4095, FragIndex: 4095, FragCount: 4096}},
		{"droppable", DataHeader{Droppable: true, FragCount: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.h
			in.DstConnID, in.PacketNumber, in.SendTime = 9, 77, 1234 // not part of the protected form
			b, err := AppendProtected(nil, &in, []byte("abc"))
			require.NoError(t, err)
			require.Len(t, b, ProtectedHeaderLen+3)
			var got DataHeader
			payload, err := ParseProtected(b, &got)
			require.NoError(t, err)
			assert.Equal(t, tc.h, got)
			assert.Equal(t, []byte("abc"), payload)
		})
	}
	var h DataHeader
	_, err := ParseProtected([]byte{0, 0, 0, 0, 0}, &h)
	assert.ErrorIs(t, err, ErrMalformed, "short")
	_, err = ParseProtected([]byte{FlagLast, 0, 0, 0, 0, 0}, &h)
	assert.ErrorIs(t, err, ErrMalformed, "reserved flag")
	_, err = ParseProtected([]byte{0, 0, 0, 0x00, 0x10, 0x00}, &h)
	assert.ErrorIs(t, err, ErrMalformed, "index 1 of a 1-fragment frame")
	_, err = AppendProtected(nil, &DataHeader{Stream: 16, FragCount: 1}, nil)
	assert.ErrorIs(t, err, ErrRange)
}

// Durations go on the wire in whole milliseconds, rounded up so a non-zero
// value never reads as absent; one a hair under 2^32 ms rounded up to
// 2^32 and wrapped to 0 ("none") after passing the range check.
func TestHandshakeDurationEdges(t *testing.T) {
	const most = time.Duration(1<<32-1) * time.Millisecond
	for _, tc := range []struct {
		name string
		d    time.Duration
		want time.Duration // 0: refused with ErrRange
	}{
		{"1 ns", time.Nanosecond, time.Millisecond},
		{"1.5 ms", 1500 * time.Microsecond, 2 * time.Millisecond},
		{"the largest", most, most},
		{"a hair under the next ms", most - time.Nanosecond, most},
		{"a hair over", most + time.Nanosecond, 0},
		{"2^32 ms", most + time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []TransportParams{{IdleTimeout: tc.d}, {Latency: tc.d}} {
				h := Handshake{Msg: MsgAccept, Version: Version1, DstConnID: 5, SrcConnID: 6, Params: p}
				b, err := h.Append(nil, 0)
				if tc.want == 0 {
					assert.ErrorIs(t, err, ErrRange)
					continue
				}
				require.NoError(t, err)
				var got Handshake
				require.NoError(t, got.Parse(b))
				assert.Equal(t, tc.want, got.Params.IdleTimeout+got.Params.Latency)
			}
		})
	}
}
