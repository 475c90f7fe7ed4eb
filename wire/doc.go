// Package wire encodes and parses Spillway's packets: the version-1 wire
// format that docs/PROTOCOL.md specifies, byte for byte.
//
// Encoders are append-style (Append(b []byte) ([]byte, error)) so callers
// own the buffers and reserve headroom; they return ErrRange rather than
// truncate a value that does not fit its field. Parsers never panic on any
// input, return errors wrapping ErrMalformed (or ErrUnsupportedVersion), and
// do not allocate: a datagram that fails to parse costs nothing but the
// check. Parsed byte fields (cookies, close reasons, RTCP APP data) alias the
// input.
//
// Feedback packets carry RTCP (RFC 3550, RFC 4585, transport-wide CC):
// TWCC, NACK, RR, PLI and APP messages are encoded and parsed here into
// reused structs with zero allocations, and checked against pion/rtcp in the
// tests; pion/rtcp allocates about one object per reported packet when it
// unmarshals, which is why it stays off the hot path.
//
// Every parser has a fuzz target (FuzzPacket, FuzzDataHeader,
// FuzzHandshake, FuzzRTCPFeedback, FuzzRTCPTWCC) with a seed corpus under
// testdata/fuzz and a round-trip property.
//
// Like every core package, wire is sans-I/O: no sockets, goroutines or
// clocks.
package wire
