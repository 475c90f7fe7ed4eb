// Package pcap writes netem's captures as pcap files and decodes Spillway
// packets with gopacket.
//
// # Writing
//
// A Writer (NewWriter, Create) writes each datagram a link delivers as a raw
// IPv4 or IPv6 packet (LinkType, LINKTYPE_RAW) with a UDP header, correct
// lengths and checksums, and a nanosecond timestamp, through a bounded
// bufio.Writer, allocating nothing per packet. Its capture hooks plug into
// every netem face:
//
//	w, _ := pcap.Create("fwd.pcap")
//	sim.SetCapture(a, b, w.Virtual())             // simulator: VirtualEpoch + virtual time
//	network.SetCapture(a, b, w.CaptureFunc(network.Epoch())) // real time
//	netem.ProxyConfig{CaptureForward: w.CaptureFunc(...)}    // see netem.Proxy.Epoch
//	defer w.Close()                               // flushes; reports the first error
//
// Simulator captures carry virtual time mapped to the Unix epoch
// (VirtualEpoch + t: a packet delivered 1.5 s into a run is stamped
// 1970-01-01T00:00:01.5Z); real-time faces carry wall-clock time. The
// addresses are the link's endpoints as netem sees them (for a proxy, the
// client and the target), not a real socket's.
//
// # Decoding
//
// Spillway is a gopacket layer (LayerTypeSpillway) that implements
// gopacket.DecodingLayer with the wire package's parsers: type, connection
// ID, packet number, and for data packets stream, frame and fragment fields.
// Spillway runs on any UDP port, so nothing is registered on a port by
// default: DecodeUDPPayload decodes a datagram, ReadRecords and ReadFile
// decode a whole capture whatever its ports, a Decoder does it frame by frame
// without allocating, and RegisterUDPPorts makes gopacket's own packet
// decoding recognise Spillway on chosen ports.
package pcap
