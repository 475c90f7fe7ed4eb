package pcap

import (
	"errors"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/spillway-rt/spillway/wire"
)

// LayerTypeNumber is the number LayerTypeSpillway is registered under, in
// gopacket's range for application-specific layers (1000-1999).
const LayerTypeNumber = 1742

// LayerTypeSpillway is the gopacket layer type of a Spillway packet.
var LayerTypeSpillway = gopacket.RegisterLayerType(LayerTypeNumber, gopacket.LayerTypeMetadata{
	Name:    "Spillway",
	Decoder: gopacket.DecodeFunc(decodeSpillway),
})

// Spillway is a Spillway packet (docs/PROTOCOL.md) as a gopacket layer. It
// implements gopacket.DecodingLayer and gopacket.ApplicationLayer, and
// decodes with the wire package's parsers, so it accepts exactly what a
// Spillway endpoint accepts. Contents is the packet's header; Payload is
// what follows it (a data fragment, a repair symbol, RTCP messages, a close
// reason...).
//
// Type, DstConnID and, for every type but the handshake, PacketNumber are set
// for every packet; the field for the packet's type holds the rest: Data for
// data and retransmission packets, Repair for FEC repair packets, Handshake,
// Close or Ping. Byte fields alias the decoded bytes.
type Spillway struct {
	layers.BaseLayer

	Type         wire.Type
	Flags        uint8  // byte 0's three flag bits
	DstConnID    uint32 // the receiver's connection ID (0 in a first Hello)
	PacketNumber uint32 // low 24 bits; 0 for a handshake

	Data      wire.DataHeader   // TypeData and TypeRetransmit
	Repair    wire.RepairHeader // TypeRepair
	Handshake wire.Handshake    // TypeHandshake
	Close     wire.Close        // TypeClose
	Ping      wire.Ping         // TypePing
	// Feedback (TypeFeedback) is the packet's RTCP messages, parsed as an
	// endpoint parses them (an endpoint drops a feedback packet whose
	// messages do not parse, and so does the layer). Its slices are reused
	// from one DecodeFromBytes to the next.
	Feedback wire.Feedback
}

var (
	_ gopacket.DecodingLayer    = (*Spillway)(nil)
	_ gopacket.ApplicationLayer = (*Spillway)(nil)
)

// LayerType returns LayerTypeSpillway.
func (s *Spillway) LayerType() gopacket.LayerType { return LayerTypeSpillway }

// CanDecode returns LayerTypeSpillway.
func (s *Spillway) CanDecode() gopacket.LayerClass { return LayerTypeSpillway }

// NextLayerType returns gopacket.LayerTypeZero: a Spillway packet is an
// application layer, its payload is not decoded further.
func (s *Spillway) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// Payload returns the bytes after the header (gopacket.ApplicationLayer).
func (s *Spillway) Payload() []byte { return s.BaseLayer.Payload }

// IsData reports whether the packet is a data or retransmission packet, whose
// header is in Data.
func (s *Spillway) IsData() bool { return s.Type == wire.TypeData || s.Type == wire.TypeRetransmit }

// String summarises the packet, for people.
func (s *Spillway) String() string {
	switch s.Type {
	case wire.TypeHandshake:
		return fmt.Sprintf("Spillway handshake %v dcid=%08x scid=%08x version=%08x",
			s.Handshake.Msg, s.Handshake.DstConnID, s.Handshake.SrcConnID, s.Handshake.Version)
	case wire.TypeData, wire.TypeRetransmit:
		d := &s.Data
		str := fmt.Sprintf("Spillway %v dcid=%08x pn=%d stream=%d frame=%d frag=%d/%d key=%t droppable=%t ts=%d len=%d",
			s.Type, s.DstConnID, s.PacketNumber, d.Stream, d.FrameID, d.FragIndex, d.FragCount, d.Key, d.Droppable, d.SendTime, len(s.BaseLayer.Payload))
		if d.Retransmit {
			str += fmt.Sprintf(" original=%d", d.Original)
		}
		return str
	default:
		return fmt.Sprintf("Spillway %v dcid=%08x pn=%d len=%d", s.Type, s.DstConnID, s.PacketNumber, len(s.BaseLayer.Payload))
	}
}

// errEmpty is DecodeFromBytes's error for an empty datagram, which no
// Spillway parser accepts.
var errEmpty = fmt.Errorf("%w: empty datagram", wire.ErrMalformed)

// DecodeFromBytes decodes a UDP payload as a Spillway packet. It returns the
// wire package's error (wrapping wire.ErrMalformed or
// wire.ErrUnsupportedVersion) for bytes a Spillway endpoint would drop. It
// never panics and, on success, allocates nothing.
func (s *Spillway) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	*s = Spillway{}
	if len(data) == 0 {
		return errEmpty
	}
	t, flags, dcid, err := wire.Peek(data)
	if err != nil {
		return err
	}
	s.Type, s.Flags, s.DstConnID = t, flags, dcid
	hdr := len(data) // header length: what Contents covers
	switch t {
	case wire.TypeHandshake:
		if err := s.Handshake.Parse(data); err != nil {
			return err
		}
	case wire.TypeData, wire.TypeRetransmit:
		payload, err := s.Data.Parse(data)
		if err != nil {
			return err
		}
		s.PacketNumber = s.Data.PacketNumber
		hdr = len(data) - len(payload)
	case wire.TypeRepair:
		payload, err := s.Repair.Parse(data)
		if err != nil {
			return err
		}
		s.PacketNumber = s.Repair.PacketNumber
		hdr = len(data) - len(payload)
	case wire.TypeFeedback:
		var sh wire.ShortHeader
		rtcp, err := wire.ParseFeedbackHeader(data, &sh)
		if err != nil {
			return err
		}
		if err := wire.ParseFeedback(rtcp, &s.Feedback); err != nil {
			return err
		}
		s.PacketNumber = sh.PacketNumber
		hdr = wire.FeedbackHeaderLen
	case wire.TypeClose:
		if err := s.Close.Parse(data); err != nil {
			return err
		}
		s.PacketNumber = s.Close.PacketNumber
		hdr = len(data) - len(s.Close.Reason)
	case wire.TypePing:
		if err := s.Ping.Parse(data); err != nil {
			return err
		}
		s.PacketNumber = s.Ping.PacketNumber
	default:
		// wire.Peek rejects the reserved type; nothing else is left.
		return fmt.Errorf("%w: packet type %d", wire.ErrMalformed, t)
	}
	s.BaseLayer = layers.BaseLayer{Contents: data[:hdr:hdr], Payload: data[hdr:]}
	return nil
}

// decodeSpillway is LayerTypeSpillway's gopacket.Decoder.
func decodeSpillway(data []byte, p gopacket.PacketBuilder) error {
	s := &Spillway{}
	if err := s.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(s)
	p.SetApplicationLayer(s)
	return nil
}

// DecodeUDPPayload decodes a UDP payload (a datagram as a socket sees it)
// into s, whatever the port it was sent on. It is DecodeFromBytes without
// the gopacket plumbing.
func (s *Spillway) DecodeUDPPayload(b []byte) error {
	return s.DecodeFromBytes(b, gopacket.NilDecodeFeedback)
}

// RegisterUDPPorts makes gopacket decode the payload of UDP datagrams from
// or to each of ports as Spillway (layers.RegisterUDPPortLayerType, which
// is global to the process). Without it, gopacket shows Spillway datagrams
// as an opaque payload; ReadRecords and DecodeUDPPayload need no port.
func RegisterUDPPorts(ports ...uint16) {
	for _, p := range ports {
		layers.RegisterUDPPortLayerType(layers.UDPPort(p), LayerTypeSpillway)
	}
}

// ErrNotUDP is the error of a record that is not an IPv4 or IPv6 packet
// holding a UDP datagram.
var ErrNotUDP = errors.New("pcap: not an IP/UDP packet")
