package pcap

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/spillway-rt/spillway/clock"
)

// Record is one packet of a capture, decoded.
type Record struct {
	// Time is the record's timestamp. For a simulator capture, Virtual
	// gives it back as virtual time.
	Time time.Time
	// Src and Dst are the UDP datagram's endpoints.
	Src, Dst netip.AddrPort
	// Datagram is the UDP payload (it aliases nothing the reader reuses).
	Datagram []byte
	// Spillway is the datagram decoded, valid when Err is nil.
	Spillway Spillway
	// Err says why the record is not a Spillway packet: ErrNotUDP for a
	// record that is no IP/UDP packet, else the Spillway decoder's error.
	Err error
}

// Virtual returns the record's time as a simulator's virtual time (the
// inverse of Writer.Virtual: Time - VirtualEpoch).
func (r *Record) Virtual() clock.Time { return clock.Since(VirtualEpoch, r.Time) }

// ReadFile reads the pcap file at path (see ReadRecords).
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	defer f.Close()
	return ReadRecords(f)
}

// ReadRecords reads a pcap capture (raw IP, Ethernet, Linux SLL or loopback
// link types) and decodes each record's UDP payload as Spillway, whatever its
// ports. A record that cannot be decoded is returned with Err set; only a
// broken file is an error.
func ReadRecords(r io.Reader) ([]Record, error) {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	d := NewDecoder(pr.LinkType())
	var out []Record
	for {
		data, ci, err := pr.ReadPacketData() // a fresh slice per record
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("pcap: record %d: %w", len(out)+1, err)
		}
		rec := Record{Time: ci.Timestamp}
		rec.Src, rec.Dst, rec.Datagram, rec.Err = d.Decode(data, &rec.Spillway)
		out = append(out, rec)
	}
}

// Decoder decodes captured frames (of one link type) down to their Spillway
// packet, whatever the UDP ports. It reuses its layers, so it allocates
// nothing per frame; it is not safe for concurrent use.
type Decoder struct {
	link    *gopacket.DecodingLayerParser // nil for raw IP
	raw4    *gopacket.DecodingLayerParser
	raw6    *gopacket.DecodingLayerParser
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	lo      layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	decoded []gopacket.LayerType
}

// NewDecoder returns a Decoder of frames of the given link type
// (layers.LinkTypeRaw, LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeNull or
// LinkTypeLoop; anything else is read as raw IP).
func NewDecoder(lt layers.LinkType) *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 4)}
	parser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.sll, &d.lo, &d.ip4, &d.ip6, &d.udp)
		p.IgnoreUnsupported = true
		return p
	}
	d.raw4, d.raw6 = parser(layers.LayerTypeIPv4), parser(layers.LayerTypeIPv6)
	switch lt {
	case layers.LinkTypeEthernet:
		d.link = parser(layers.LayerTypeEthernet)
	case layers.LinkTypeLinuxSLL:
		d.link = parser(layers.LayerTypeLinuxSLL)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		d.link = parser(layers.LayerTypeLoopback)
	}
	return d
}

// Decode decodes frame into s and returns the datagram's endpoints and its
// UDP payload (aliasing frame). err is ErrNotUDP for a frame holding no
// IP/UDP packet, the Spillway decoder's error for a payload that is not a
// Spillway packet, else nil. It never panics.
func (d *Decoder) Decode(frame []byte, s *Spillway) (src, dst netip.AddrPort, payload []byte, err error) {
	*s = Spillway{}
	p := d.link
	if p == nil {
		p = d.raw4
		if len(frame) > 0 && frame[0]>>4 == 6 {
			p = d.raw6
		}
	}
	d.decoded = d.decoded[:0]
	if perr := p.DecodeLayers(frame, &d.decoded); perr != nil {
		return src, dst, nil, fmt.Errorf("%w: %v", ErrNotUDP, perr)
	}
	var srcIP, dstIP netip.Addr
	sawUDP := false
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			srcIP, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			dstIP, _ = netip.AddrFromSlice(d.ip4.DstIP)
		case layers.LayerTypeIPv6:
			srcIP, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			dstIP, _ = netip.AddrFromSlice(d.ip6.DstIP)
		case layers.LayerTypeUDP:
			sawUDP = true
		}
	}
	if !sawUDP || !srcIP.IsValid() {
		return src, dst, nil, ErrNotUDP
	}
	src = netip.AddrPortFrom(srcIP.Unmap(), uint16(d.udp.SrcPort))
	dst = netip.AddrPortFrom(dstIP.Unmap(), uint16(d.udp.DstPort))
	payload = d.udp.Payload
	return src, dst, payload, s.DecodeUDPPayload(payload)
}
