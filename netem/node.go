package netem

import (
	"net/netip"

	"github.com/spillway-rt/spillway/clock"
)

// Node is anything the simulator can drive: a sans-I/O endpoint (the session
// core's Endpoint has exactly these methods) or a wrapper around one that
// also plays an application (the bench's hosts).
//
// The simulator calls HandleDatagram when a datagram is delivered to the
// node's address and HandleTimeout when the node's NextTimeout has come;
// after every such call it drains PollTransmit until it reports !ok and then
// asks NextTimeout again. A node must not retain b after HandleDatagram
// returns, and PollTransmit writes into the simulator's buffer dst.
type Node interface {
	HandleDatagram(now clock.Time, from netip.AddrPort, b []byte)
	HandleTimeout(now clock.Time)
	PollTransmit(now clock.Time, dst []byte) (n int, to netip.AddrPort, ok bool)
	NextTimeout() clock.Time
}
