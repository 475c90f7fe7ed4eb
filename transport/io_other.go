//go:build !linux

package transport

import "net"

// newBatchIO: batched system calls are used on Linux only.
func newBatchIO(net.PacketConn) packetIO { return nil }

const ioPathBatchAvailable = false
