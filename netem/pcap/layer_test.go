package pcap_test

import (
	"bytes"
	"flag"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/fuzzseed"
	"github.com/spillway-rt/spillway/netem/pcap"
	"github.com/spillway-rt/spillway/wire"
)

// seedPackets is one valid packet of every kind, and a few invalid ones: the
// fuzz target's seeds.
func seedPackets(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	add := func(b []byte, err error) {
		require.NoError(t, err)
		out = append(out, b)
	}
	for _, h := range []wire.DataHeader{
		{DstConnID: 1, PacketNumber: 7, FragCount: 1, SendTime: 5},
		{DstConnID: 0xdeadbeef, PacketNumber: 1<<24 - 1, Key: true, Stream: 15, FrameID: 4095, FragIndex: 4095, FragCount: 4096, SendTime: 1<<24 - 1},
		{DstConnID: 9, PacketNumber: 100, Stream: 1, FrameID: 2, FragIndex: 1, FragCount: 3, Droppable: true, Retransmit: true, Original: 42},
	} {
		b, err := h.Append(nil)
		add(append(b, "fragment"...), err)
	}
	add((&wire.Handshake{Msg: wire.MsgHello, Version: wire.Version1, SrcConnID: 5,
		Params: wire.TransportParams{FragmentSize: 1200, Latency: 300 * time.Millisecond}}).Append(nil, 64))
	add((&wire.Handshake{Msg: wire.MsgRetry, Version: wire.Version1, DstConnID: 5, Cookie: bytes.Repeat([]byte{9}, 24)}).Append(nil, 0))
	add((&wire.Close{DstConnID: 3, PacketNumber: 9, Code: 2, Reason: []byte("bye")}).Append(nil))
	add((&wire.Ping{DstConnID: 1, PacketNumber: 3, Echo: 42}).Append(nil))
	add((&wire.Ping{DstConnID: 1, Pong: true, Echo: 42, HoldMicros: 1000, ArrivalMicros: 123456}).Append(nil))
	b, err := (&wire.RepairHeader{DstConnID: 1, PacketNumber: 2, SendTime: 3, BasePacketNumber: 4, Mask: 1<<10 - 1, M: 3, Index: 1}).Append(nil)
	add(append(b, 1, 2, 3, 4), err)
	fb, err := wire.AppendFeedbackHeader(nil, 7, 8)
	add(append(fb, 0x80, 201, 0, 1, 0, 0, 0, 0), err)
	out = append(out, nil, []byte{0x48}, []byte{0x78, 1, 2, 3, 4, 5, 6, 7}) // invalid: empty, short, reserved type
	return out
}

var writeCorpus = flag.Bool("write-corpus", false, "write FuzzSpillwayLayer's seed corpus under testdata/fuzz")

// TestSeedCorpus regenerates FuzzSpillwayLayer's committed seed corpus when
// run with -write-corpus; otherwise it checks that it exists.
func TestSeedCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzSpillwayLayer", seedPackets(t))
	}
	fuzzseed.Check(t, "FuzzSpillwayLayer")
}

func decode(t *testing.T, b []byte) *pcap.Spillway {
	t.Helper()
	var s pcap.Spillway
	require.NoError(t, s.DecodeUDPPayload(b))
	return &s
}

func TestSpillwayLayerDecodesEveryType(t *testing.T) {
	seeds := seedPackets(t)

	s := decode(t, seeds[1])
	assert.Equal(t, wire.TypeData, s.Type)
	assert.True(t, s.IsData())
	assert.EqualValues(t, 0xdeadbeef, s.DstConnID)
	assert.EqualValues(t, 1<<24-1, s.PacketNumber)
	assert.EqualValues(t, 15, s.Data.Stream)
	assert.EqualValues(t, 4095, s.Data.FrameID)
	assert.EqualValues(t, 4095, s.Data.FragIndex)
	assert.EqualValues(t, 4096, s.Data.FragCount)
	assert.True(t, s.Data.Key)
	assert.True(t, s.Data.Last())
	assert.Equal(t, "fragment", string(s.Payload()))
	assert.Len(t, s.LayerContents(), wire.DataHeaderLen)
	assert.Contains(t, s.String(), "stream=15 frame=4095 frag=4095/4096")

	s = decode(t, seeds[2])
	assert.Equal(t, wire.TypeRetransmit, s.Type)
	assert.True(t, s.Data.Retransmit)
	assert.EqualValues(t, 42, s.Data.Original)
	assert.Len(t, s.LayerContents(), wire.RetransmitHeaderLen)
	assert.Contains(t, s.String(), "original=42")

	s = decode(t, seeds[3])
	assert.Equal(t, wire.TypeHandshake, s.Type)
	assert.Equal(t, wire.MsgHello, s.Handshake.Msg)
	assert.EqualValues(t, 5, s.Handshake.SrcConnID)
	assert.Empty(t, s.Payload())
	assert.Contains(t, s.String(), "hello")

	s = decode(t, seeds[5])
	assert.Equal(t, wire.TypeClose, s.Type)
	assert.EqualValues(t, 9, s.PacketNumber)
	assert.Equal(t, "bye", string(s.Payload()))

	s = decode(t, seeds[7])
	assert.Equal(t, wire.TypePing, s.Type)
	assert.True(t, s.Ping.Pong)

	s = decode(t, seeds[8])
	assert.Equal(t, wire.TypeRepair, s.Type)
	assert.Equal(t, 10, s.Repair.K())
	assert.Equal(t, []byte{1, 2, 3, 4}, s.Payload())

	s = decode(t, seeds[9])
	assert.Equal(t, wire.TypeFeedback, s.Type)
	assert.EqualValues(t, 8, s.PacketNumber)
	assert.Len(t, s.Payload(), 8, "the RTCP messages")
	require.Len(t, s.Feedback.RRs, 1, "parsed as the endpoint parses them")
	// Feedback whose RTCP an endpoint drops: the layer refuses it too (it
	// once checked the header only).
	hdr, err := wire.AppendFeedbackHeader(nil, 7, 8)
	require.NoError(t, err)
	for _, bad := range [][]byte{hdr, append(append([]byte(nil), hdr...), 0x40, 201, 0, 1, 0, 0, 0, 0)} {
		var f pcap.Spillway
		assert.ErrorIs(t, f.DecodeUDPPayload(bad), wire.ErrMalformed, "%x", bad)
	}

	for _, bad := range seeds[10:] {
		var s pcap.Spillway
		assert.ErrorIs(t, s.DecodeUDPPayload(bad), wire.ErrMalformed, "%x", bad)
	}
	var v pcap.Spillway
	assert.ErrorIs(t, v.DecodeUDPPayload([]byte{0xc8, 0, 0, 0, 1, 0, 0, 0}), wire.ErrUnsupportedVersion)
}

func TestSpillwayLayerWithGopacket(t *testing.T) {
	b := seedPackets(t)[0]
	p := gopacket.NewPacket(b, pcap.LayerTypeSpillway, gopacket.Default)
	require.Nil(t, p.ErrorLayer())
	l, ok := p.Layer(pcap.LayerTypeSpillway).(*pcap.Spillway)
	require.True(t, ok)
	assert.EqualValues(t, 7, l.PacketNumber)
	assert.Equal(t, l, p.ApplicationLayer())

	// A DecodingLayerParser over a UDP payload.
	var s pcap.Spillway
	parser := gopacket.NewDecodingLayerParser(pcap.LayerTypeSpillway, &s)
	var decoded []gopacket.LayerType
	require.NoError(t, parser.DecodeLayers(b, &decoded))
	assert.Equal(t, []gopacket.LayerType{pcap.LayerTypeSpillway}, decoded)
	assert.Equal(t, gopacket.LayerTypeZero, s.NextLayerType())
	assert.Equal(t, gopacket.LayerClass(pcap.LayerTypeSpillway), s.CanDecode())

	// A whole IP packet, once the port is registered.
	var out bytes.Buffer
	w, err := pcap.NewWriter(&out)
	require.NoError(t, err)
	require.NoError(t, w.WritePacket(time.Unix(0, 0), v4a, netip.AddrPortFrom(v4b.Addr().Next(), 47999), b))
	require.NoError(t, w.Close())
	raw := out.Bytes()[24+16:]
	pcap.RegisterUDPPorts(47999) // global: no other test uses the port
	p = gopacket.NewPacket(raw, layers.LinkTypeRaw, gopacket.Default)
	require.NotNil(t, p.Layer(pcap.LayerTypeSpillway))
	assert.EqualValues(t, 7, p.Layer(pcap.LayerTypeSpillway).(*pcap.Spillway).PacketNumber)
}

func TestDecoderReadsOtherLinkTypes(t *testing.T) {
	b := seedPackets(t)[0]
	ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: v4a.Addr().AsSlice(), DstIP: v4b.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	require.NoError(t, udp.SetNetworkLayerForChecksum(ip4))
	eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	require.NoError(t, gopacket.SerializeLayers(buf, opts, eth, ip4, udp, gopacket.Payload(b)))

	d := pcap.NewDecoder(layers.LinkTypeEthernet)
	var s pcap.Spillway
	src, dst, payload, err := d.Decode(buf.Bytes(), &s)
	require.NoError(t, err)
	assert.Equal(t, v4a.Addr(), src.Addr())
	assert.EqualValues(t, 2, dst.Port())
	assert.Equal(t, b, payload)
	assert.EqualValues(t, 7, s.PacketNumber)

	_, _, _, err = d.Decode([]byte{1, 2, 3}, &s)
	assert.ErrorIs(t, err, pcap.ErrNotUDP)
	assert.Zero(t, s, "a failed decode leaves nothing behind")

	allocs := testing.AllocsPerRun(100, func() { _, _, _, _ = d.Decode(buf.Bytes(), &s) })
	assert.Zero(t, allocs, "decoding a frame allocates nothing")
}

func TestDecodeAllocatesNothing(t *testing.T) {
	b := seedPackets(t)[0]
	var s pcap.Spillway
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = s.DecodeUDPPayload(b) }))
}

// FuzzSpillwayLayer decodes arbitrary bytes as a UDP payload (with the layer
// alone, through gopacket and a DecodingLayerParser) and as a raw IP frame:
// nothing may panic, and a data packet the layer accepts re-encodes to its
// header bytes.
func FuzzSpillwayLayer(f *testing.F) {
	for _, s := range seedPackets(f) {
		f.Add(s)
	}
	d := pcap.NewDecoder(pcap.LinkType)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s pcap.Spillway
		err := s.DecodeUDPPayload(b)
		p := gopacket.NewPacket(b, pcap.LayerTypeSpillway, gopacket.DecodeOptions{NoCopy: true})
		if (err == nil) != (p.ErrorLayer() == nil) {
			t.Fatalf("the layer (err %v) and gopacket (%v) disagree", err, p.ErrorLayer())
		}
		_ = s.String()
		var frame pcap.Spillway
		_, _, _, _ = d.Decode(b, &frame)
		if err != nil {
			return
		}
		if got := len(s.LayerContents()) + len(s.Payload()); got != len(b) {
			t.Fatalf("contents and payload cover %d of %d bytes", got, len(b))
		}
		if s.IsData() {
			again, err := s.Data.Append(nil)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", s.Data, err)
			}
			if !bytes.Equal(again, s.LayerContents()) {
				t.Fatalf("re-encoded header %x, decoded from %x", again, s.LayerContents())
			}
		}
	})
}
