package netem_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/spillway-rt/spillway/clock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	addrA = netip.MustParseAddrPort("10.0.0.1:1000")
	addrB = netip.MustParseAddrPort("10.0.0.2:2000")
	addrC = netip.MustParseAddrPort("10.0.0.3:3000")
)

// source sends left datagrams of size bytes to `to`, one every interval,
// starting at next. Each carries its sequence number in its first 4 bytes
// (when it has them). It allocates nothing.
type source struct {
	to       netip.AddrPort
	interval time.Duration
	size     int
	left     int
	next     clock.Time
	due      int
	seq      uint32
	received int
}

func (s *source) HandleDatagram(clock.Time, netip.AddrPort, []byte) { s.received++ }

func (s *source) HandleTimeout(now clock.Time) {
	for s.left > 0 && s.next <= now {
		s.due++
		s.left--
		s.next = s.next.Add(s.interval)
	}
}

func (s *source) PollTransmit(_ clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if s.due == 0 {
		return 0, netip.AddrPort{}, false
	}
	s.due--
	if s.size >= 4 {
		binary.BigEndian.PutUint32(dst, s.seq)
	}
	s.seq++
	return s.size, s.to, true
}

func (s *source) NextTimeout() clock.Time {
	if s.left == 0 {
		return clock.Never
	}
	return s.next
}

// sendTime is when datagram seq was sent.
func (s *source) sendTime(start clock.Time, seq uint32) clock.Time {
	return start.Add(time.Duration(seq) * s.interval)
}

type arrival struct {
	at   clock.Time
	from netip.AddrPort
	seq  uint32
	n    int
}

// sink records what it receives (unless count is set: then it only counts).
type sink struct {
	count    bool
	n        int
	bytes    int
	arrivals []arrival
}

func (k *sink) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	k.n++
	k.bytes += len(b)
	if k.count {
		return
	}
	a := arrival{at: now, from: from, n: len(b)}
	if len(b) >= 4 {
		a.seq = binary.BigEndian.Uint32(b)
	}
	k.arrivals = append(k.arrivals, a)
}

func (k *sink) HandleTimeout(clock.Time) {}
func (k *sink) PollTransmit(clock.Time, []byte) (int, netip.AddrPort, bool) {
	return 0, netip.AddrPort{}, false
}
func (k *sink) NextTimeout() clock.Time { return clock.Never }

// ms is a virtual instant n milliseconds after 0.
func ms(n float64) clock.Time { return clock.Time(n * float64(time.Millisecond)) }
