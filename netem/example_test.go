package netem_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

// pinger sends a numbered ping every 100 ms and prints the pongs it gets.
type pinger struct {
	peer     netip.AddrPort
	left     int
	next     clock.Time
	due      bool
	seq      byte
	sentAt   [256]clock.Time
	received int
}

func (p *pinger) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	p.received++
	fmt.Printf("%v: pong %d from %v, rtt %v\n", now, b[0], from, now.Sub(p.sentAt[b[0]]))
}

func (p *pinger) HandleTimeout(now clock.Time) {
	if p.left > 0 && now >= p.next {
		p.due, p.left = true, p.left-1
		p.next = now.Add(100 * time.Millisecond)
	}
}

func (p *pinger) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if !p.due {
		return 0, netip.AddrPort{}, false
	}
	p.due = false
	p.seq++
	p.sentAt[p.seq] = now
	dst[0] = p.seq
	return 1 + copy(dst[1:], "ping"), p.peer, true
}

func (p *pinger) NextTimeout() clock.Time {
	if p.left == 0 {
		return clock.Never
	}
	return p.next
}

// ponger answers every ping with a pong carrying the same number.
type ponger struct {
	to      netip.AddrPort
	pending []byte
}

func (p *ponger) HandleDatagram(_ clock.Time, from netip.AddrPort, b []byte) {
	p.to = from
	p.pending = append(p.pending, b[0]) // b is only valid during the call: copy what we keep
}

func (p *ponger) HandleTimeout(clock.Time) {}

func (p *ponger) PollTransmit(_ clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if len(p.pending) == 0 {
		return 0, netip.AddrPort{}, false
	}
	dst[0] = p.pending[0]
	p.pending = p.pending[1:]
	return 1 + copy(dst[1:], "pong"), p.to, true
}

func (p *ponger) NextTimeout() clock.Time { return clock.Never }

// Two nodes over an asymmetric link: 20 ms and a 1 Mbit/s rate limit one
// way, 30 ms and 10 % loss the other.
func Example() {
	client := netip.MustParseAddrPort("192.0.2.1:5000")
	server := netip.MustParseAddrPort("192.0.2.2:6000")

	sim := netem.New(1)
	p := &pinger{peer: server, left: 5}
	if err := sim.AddNode(client, p); err != nil {
		panic(err)
	}
	if err := sim.AddNode(server, &ponger{}); err != nil {
		panic(err)
	}
	up := netem.LinkConfig{Delay: 20 * time.Millisecond, Rate: 1_000_000, Overhead: netem.OverheadIPv4UDP}
	down := netem.LinkConfig{Delay: 30 * time.Millisecond, Loss: 0.1}
	if err := sim.Connect(client, server, up, down); err != nil {
		panic(err)
	}

	sim.RunUntil(clock.Time(time.Second))

	st := sim.Link(server, client).Stats()
	fmt.Printf("%d pongs, %d lost on the way back; now %v\n", p.received, st.PacketsLost, sim.Now())
	// Output:
	// 50.264ms: pong 1 from 192.0.2.2:6000, rtt 50.264ms
	// 150.264ms: pong 2 from 192.0.2.2:6000, rtt 50.264ms
	// 250.264ms: pong 3 from 192.0.2.2:6000, rtt 50.264ms
	// 450.264ms: pong 5 from 192.0.2.2:6000, rtt 50.264ms
	// 4 pongs, 1 lost on the way back; now 1s
}
