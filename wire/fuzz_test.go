package wire

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/fuzzseed"
)

// seedPackets are valid packets of every kind: the fuzz targets' seeds, and
// what `go test -run TestWriteSeedCorpus -write-corpus ./wire/` writes under
// testdata/fuzz.
func seedPackets(t testing.TB) [][]byte {
	var out [][]byte
	add := func(b []byte, err error) {
		require.NoError(t, err)
		out = append(out, b)
	}
	for _, h := range []DataHeader{
		{DstConnID: 1, PacketNumber: 7, FragCount: 1, SendTime: 5},
		{DstConnID: 0xdeadbeef, PacketNumber: mask24, Key: true, Stream: 15, FrameID: 4095, FragCount: 4096, SendTime: mask24},
		{DstConnID: 9, Droppable: true, Stream: 3, FrameID: 77, FragIndex: 2, FragCount: 3},
		{DstConnID: 9, PacketNumber: 100, Stream: 1, FrameID: 2, FragIndex: 1, FragCount: 3, Retransmit: true, Original: 42},
	} {
		b, err := h.Append(nil)
		add(append(b, "frame bytes"...), err)
	}
	for _, h := range []Handshake{
		{Msg: MsgHello, Version: Version1, SrcConnID: 5, Params: TransportParams{FragmentSize: 1200, MaxDatagramSize: 1452, IdleTimeout: time.Minute, MaxFrameSize: 4 << 20, Latency: 300 * time.Millisecond}},
		{Msg: MsgRetry, Version: Version1, DstConnID: 5, Cookie: bytes.Repeat([]byte{9}, 24)},
		{Msg: MsgAccept, Version: Version1, DstConnID: 5, SrcConnID: 6, Params: TransportParams{FragmentSize: 1200}},
		{Msg: MsgReject, Version: Version1, DstConnID: 5, Params: TransportParams{RejectReason: RejectRefused}},
	} {
		add(h.Append(nil, 0))
	}
	add((&Close{DstConnID: 3, PacketNumber: 9, Code: 2, Reason: []byte("bye")}).Append(nil))
	add((&Close{DstConnID: 3, Reply: true}).Append(nil))
	add((&Ping{DstConnID: 1, Echo: 42}).Append(nil))
	add((&Ping{DstConnID: 1, Pong: true, Echo: 42, HoldMicros: 1000, ArrivalMicros: 123456}).Append(nil))
	b, err := (&RepairHeader{DstConnID: 1, PacketNumber: 2, SendTime: 3, BasePacketNumber: 4, Mask: 0x3ff, M: 3, Index: 1}).Append(nil)
	add(append(b, 0, 5, 1, 2, 3, 4, 5), err)
	fb, err := AppendFeedbackHeader(nil, 7, 8)
	add(append(fb, 0x80, 201, 0, 1, 0, 0, 0, 0), err)
	return out
}

var writeCorpus = flag.Bool("write-corpus", false, "write the wire fuzz targets' seed corpora under testdata/fuzz")

// TestWriteSeedCorpus regenerates the committed seed corpora when run with
// -write-corpus; otherwise it checks that every committed corpus exists.
func TestWriteSeedCorpus(t *testing.T) {
	for _, target := range []string{"FuzzPacket", "FuzzDataHeader", "FuzzHandshake", "FuzzProtected"} {
		if *writeCorpus {
			seeds := seedPackets(t)
			if target == "FuzzProtected" {
				seeds = seedProtected(t)
			}
			fuzzseed.Write(t, target, seeds)
		}
		fuzzseed.Check(t, target)
	}
}

// FuzzPacket runs every parser over the input: none may panic, and whatever
// one accepts must re-encode to bytes it accepts again as the same value.
func FuzzPacket(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, _, dcid, err := Peek(b)
		if err != nil {
			return
		}
		switch typ {
		case TypeData, TypeRetransmit:
			checkData(t, b)
		case TypeHandshake:
			checkHandshake(t, b)
		case TypeClose:
			var c, c2 Close
			if c.Parse(b) != nil {
				return
			}
			out, err := c.Append(nil)
			require.NoError(t, err)
			require.Equal(t, b, out, "close encoding is canonical")
			require.NoError(t, c2.Parse(out))
			require.Equal(t, c, c2)
		case TypePing:
			var p, p2 Ping
			if p.Parse(b) != nil {
				return
			}
			out, err := p.Append(nil)
			require.NoError(t, err)
			require.Equal(t, b, out, "ping encoding is canonical")
			require.NoError(t, p2.Parse(out))
			require.Equal(t, p, p2)
		case TypeRepair:
			var h, h2 RepairHeader
			payload, err := h.Parse(b)
			if err != nil {
				return
			}
			out, err := h.Append(nil)
			require.NoError(t, err)
			out = append(out, payload...)
			require.Equal(t, b, out)
			_, err = h2.Parse(out)
			require.NoError(t, err)
			require.Equal(t, h, h2)
		case TypeFeedback:
			var sh ShortHeader
			rest, err := ParseFeedbackHeader(b, &sh)
			if err != nil {
				return
			}
			require.Equal(t, dcid, sh.DstConnID)
			out, err := AppendFeedbackHeader(nil, sh.DstConnID, sh.PacketNumber)
			require.NoError(t, err)
			require.Equal(t, b, append(out, rest...))
		}
	})
}

// FuzzDataHeader focuses on the data and retransmission header.
func FuzzDataHeader(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	f.Fuzz(checkData)
}

// seedProtected are protected forms of data packets (the seeds of
// FuzzProtected).
func seedProtected(t testing.TB) [][]byte {
	var out [][]byte
	for _, h := range []DataHeader{
		{FragCount: 1},
		{Key: true, Stream: 15, FrameID: 4095, FragIndex: 4095, FragCount: 4096},
		{Droppable: true, Stream: 3, FrameID: 77, FragIndex: 2, FragCount: 3},
	} {
		b, err := AppendProtected(nil, &h, []byte("fragment"))
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// FuzzProtected checks the protected form of a data packet, which FEC
// recovery rebuilds from repair packets: it parses without panicking and
// re-encodes to the same bytes.
func FuzzProtected(f *testing.F) {
	for _, p := range seedProtected(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h, h2 DataHeader
		payload, err := ParseProtected(b, &h)
		if err != nil {
			return
		}
		out, err := AppendProtected(nil, &h, payload)
		require.NoError(t, err)
		require.Equal(t, b, out, "the protected form is canonical")
		_, err = ParseProtected(out, &h2)
		require.NoError(t, err)
		require.Equal(t, h, h2)
	})
}

// FuzzHandshake focuses on handshake packets and transport parameters.
func FuzzHandshake(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	f.Fuzz(checkHandshake)
}

func checkData(t *testing.T, b []byte) {
	var h, h2 DataHeader
	payload, err := h.Parse(b)
	if err != nil {
		return
	}
	require.LessOrEqual(t, len(payload), len(b))
	out, err := h.Append(nil)
	require.NoError(t, err)
	require.Equal(t, b, append(out, payload...), "data header encoding is canonical")
	_, err = h2.Parse(out)
	require.NoError(t, err)
	require.Equal(t, h, h2)
}

func checkHandshake(t *testing.T, b []byte) {
	var h, h2 Handshake
	if h.Parse(b) != nil {
		return
	}
	out, err := h.Append(nil, 0)
	require.NoError(t, err)
	require.LessOrEqual(t, len(out), len(b), "re-encoding never grows a handshake (unknown parameters and padding drop)")
	require.NoError(t, h2.Parse(out))
	require.Equal(t, h, h2)
}
