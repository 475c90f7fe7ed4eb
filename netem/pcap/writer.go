package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/spillway-rt/spillway/clock"
)

// VirtualEpoch is the wall-clock time at which virtual time 0 is written:
// the Unix epoch. A simulator capture's packet at virtual time t carries the
// timestamp 1970-01-01T00:00:00Z + t, so a capture tool's "seconds since the
// epoch" column is the simulator's clock, in nanoseconds.
var VirtualEpoch = time.Unix(0, 0).UTC()

// LinkType is the pcap link type the Writer uses: raw IP (LINKTYPE_RAW,
// 101), each record an IPv4 or IPv6 packet holding one UDP datagram.
const LinkType = layers.LinkTypeRaw

// Snaplen is the snapshot length in the file header: every record is whole.
const Snaplen = 262144

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8

	// MaxPayloadIPv4 and MaxPayloadIPv6 are the largest UDP payloads an
	// IPv4 or IPv6 packet can describe (without IPv6 jumbograms). Larger
	// datagrams (netem carries up to 65535 bytes) are not written and are
	// counted by Writer.Skipped.
	MaxPayloadIPv4 = 65535 - ipv4HeaderLen - udpHeaderLen
	MaxPayloadIPv6 = 65535 - udpHeaderLen

	bufSize = 64 << 10
)

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("pcap: writer closed")

// Writer writes datagrams to a pcap file (nanosecond timestamps, LinkType
// raw IP), each as an IPv4 or IPv6 packet with a UDP header, correct lengths
// and checksums (IPv4 header checksum, UDP checksum over the pseudo-header).
// IPv4 packets carry TTL 64, the DF flag and IP ID 0; IPv6 packets hop limit
// 64; a datagram between an IPv4 and an IPv6 address is written as IPv6 with
// the IPv4 address mapped (::ffff:a.b.c.d).
//
// Output goes through a bufio.Writer, so memory stays bounded whatever the
// traffic; a packet is built in a reused scratch buffer, so writing one
// allocates nothing. The first error (from the underlying io.Writer) is
// sticky: every later write is a no-op, and Err, Flush and Close report it.
// A Writer is safe for concurrent use; the capture hooks of the simulator,
// the Network and the Proxy call it from their own goroutines.
type Writer struct {
	mu      sync.Mutex
	bw      *bufio.Writer
	pw      *pcapgo.Writer
	closer  io.Closer // the file Create opened; nil for NewWriter
	scratch []byte
	err     error
	closed  bool
	packets uint64
	skipped uint64
}

// NewWriter writes a pcap file header to w and returns a Writer appending
// records to it. Close flushes but does not close w.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(w, bufSize)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(Snaplen, LinkType); err != nil {
		return nil, fmt.Errorf("pcap: write file header: %w", err)
	}
	return &Writer{bw: bw, pw: pw, scratch: make([]byte, ipv6HeaderLen+udpHeaderLen+MaxPayloadIPv6)}, nil
}

// Create creates (or truncates) the file at path and returns a Writer on it.
// Close flushes and closes the file.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	w, err := NewWriter(f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	w.closer = f
	return w, nil
}

// WritePacket writes the datagram b from one address to another with
// timestamp ts. It returns the Writer's sticky error, if any. A datagram too
// long for its IP version is skipped (see Skipped), not an error.
func (w *Writer) WritePacket(ts time.Time, from, to netip.AddrPort, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	n, ok := buildPacket(w.scratch, from, to, b)
	if !ok {
		w.skipped++
		return nil
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n}
	if err := w.pw.WritePacket(ci, w.scratch[:n]); err != nil {
		w.err = fmt.Errorf("pcap: write packet: %w", err)
		return w.err
	}
	w.packets++
	return nil
}

// CaptureFunc returns a capture hook for a face whose clock counts from
// epoch: it writes each datagram with timestamp epoch + at. The result has
// the signature of netem.CaptureFunc, so it plugs into
// Simulator.SetCapture (with VirtualEpoch: see Virtual), Network.SetCapture
// (with Network.Epoch) and ProxyConfig's captures (with Proxy.Epoch).
// Errors are sticky and reported by Err and Close.
func (w *Writer) CaptureFunc(epoch time.Time) func(at clock.Time, from, to netip.AddrPort, b []byte) {
	return func(at clock.Time, from, to netip.AddrPort, b []byte) {
		_ = w.WritePacket(epoch.Add(time.Duration(at)), from, to, b)
	}
}

// Virtual returns the capture hook for the simulator: virtual time t is
// written as VirtualEpoch + t.
func (w *Writer) Virtual() func(at clock.Time, from, to netip.AddrPort, b []byte) {
	return w.CaptureFunc(VirtualEpoch)
}

// Packets returns the number of records written.
func (w *Writer) Packets() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.packets
}

// Skipped returns the number of datagrams not written because they were too
// long for an IP packet (see MaxPayloadIPv4, MaxPayloadIPv6).
func (w *Writer) Skipped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.skipped
}

// Err returns the first error a write met, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err == nil && !w.closed {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("pcap: flush: %w", err)
		}
	}
	return w.err
}

// Close flushes the buffered records, closes the file Create opened, and
// returns the first error the Writer met. Writes after Close fail with
// ErrClosed; Close is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.flushLocked()
	w.closed = true
	if w.closer != nil {
		if err := w.closer.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("pcap: close: %w", err)
		}
	}
	return w.err
}

// buildPacket writes an IP+UDP packet carrying payload into dst and returns
// its length, or false if payload does not fit.
func buildPacket(dst []byte, from, to netip.AddrPort, payload []byte) (int, bool) {
	src, dstIP := from.Addr().Unmap(), to.Addr().Unmap()
	if src.Is4() && dstIP.Is4() {
		if len(payload) > MaxPayloadIPv4 {
			return 0, false
		}
		n := ipv4HeaderLen + udpHeaderLen + len(payload)
		ip := dst[:ipv4HeaderLen]
		ip[0] = 0x45 // version 4, IHL 5
		ip[1] = 0    // DSCP, ECN
		binary.BigEndian.PutUint16(ip[2:], uint16(n))
		binary.BigEndian.PutUint16(ip[4:], 0)      // ID
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8] = 64                                 // TTL
		ip[9] = byte(layers.IPProtocolUDP)
		ip[10], ip[11] = 0, 0
		s4, d4 := src.As4(), dstIP.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip)))

		udp := dst[ipv4HeaderLen:n]
		writeUDP(udp, from.Port(), to.Port(), payload)
		// Pseudo-header: addresses, zero, protocol, UDP length.
		s := sum(0, ip[12:20])
		s += uint64(layers.IPProtocolUDP) + uint64(len(udp))
		putUDPChecksum(udp, s)
		return n, true
	}
	if len(payload) > MaxPayloadIPv6 {
		return 0, false
	}
	n := ipv6HeaderLen + udpHeaderLen + len(payload)
	ip := dst[:ipv6HeaderLen]
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0 // version 6, no class or flow label
	binary.BigEndian.PutUint16(ip[4:], uint16(udpHeaderLen+len(payload)))
	ip[6] = byte(layers.IPProtocolUDP) // next header
	ip[7] = 64                         // hop limit
	s16, d16 := from.Addr().As16(), to.Addr().As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])

	udp := dst[ipv6HeaderLen:n]
	writeUDP(udp, from.Port(), to.Port(), payload)
	s := sum(0, ip[8:40])
	s += uint64(len(udp)) + uint64(layers.IPProtocolUDP)
	putUDPChecksum(udp, s)
	return n, true
}

func writeUDP(udp []byte, sport, dport uint16, payload []byte) {
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	udp[6], udp[7] = 0, 0
	copy(udp[udpHeaderLen:], payload)
}

// putUDPChecksum completes the UDP checksum from the pseudo-header's sum.
func putUDPChecksum(udp []byte, pseudo uint64) {
	c := ^fold(sum(pseudo, udp))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

// sum adds b to s as big-endian 16-bit words (the Internet checksum's
// one's-complement sum, folded later).
func sum(s uint64, b []byte) uint64 {
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint16(b)) + uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) + uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
