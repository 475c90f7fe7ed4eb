package core

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

var (
	clientAddr = netip.MustParseAddrPort("192.0.2.1:1000")
	serverAddr = netip.MustParseAddrPort("192.0.2.2:2000")
)

// seeded is a deterministic io.Reader for cores under test.
type seeded struct{ r *rand.ChaCha8 }

func (s seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

func newSeeded(seed uint64) seeded {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return seeded{rand.NewChaCha8(key)}
}

// node drives an Endpoint in the simulator and records its events.
type node struct {
	ep     *Endpoint
	events []Event
	frames map[frameKey][]byte // copies of delivered frame data
	// filter, if set, decides whether an outgoing datagram is sent (tests
	// use it to lose or inspect specific packets).
	filter func(now clock.Time, b []byte) bool
	// onEvent, if set, runs for each event as it is polled.
	onEvent func(now clock.Time, ev Event)
	// inbound, if set, sees every datagram delivered to the node.
	inbound func(now clock.Time, b []byte)
}

type frameKey struct {
	stream uint8
	id     int64
}

func (n *node) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	if n.inbound != nil {
		n.inbound(now, b)
	}
	n.ep.HandleDatagram(now, from, b)
	n.drain(now)
}

func (n *node) HandleTimeout(now clock.Time) {
	n.ep.HandleTimeout(now)
	n.drain(now)
}

func (n *node) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	for {
		k, to, ok := n.ep.PollTransmit(now, dst)
		if !ok || n.filter == nil || n.filter(now, dst[:k]) {
			return k, to, ok
		}
	}
}

func (n *node) NextTimeout() clock.Time { return n.ep.NextTimeout() }

func (n *node) drain(now clock.Time) {
	for {
		ev, ok := n.ep.PollEvent()
		if !ok {
			return
		}
		if ev.Type == EventFrame {
			if n.frames == nil {
				n.frames = map[frameKey][]byte{}
			}
			n.frames[frameKey{ev.Stream, ev.Frame.ID}] = append([]byte{}, ev.Data...)
			ev.Data = nil
		}
		n.events = append(n.events, ev)
		if n.onEvent != nil {
			n.onEvent(now, ev)
		}
	}
}

func (n *node) count(t EventType) int {
	c := 0
	for _, ev := range n.events {
		if ev.Type == t {
			c++
		}
	}
	return c
}

func (n *node) find(t EventType) (Event, bool) {
	for _, ev := range n.events {
		if ev.Type == t {
			return ev, true
		}
	}
	return Event{}, false
}

// pair is a client and a server endpoint joined by a simulated link.
type pair struct {
	t      *testing.T
	sim    *netem.Simulator
	client *node
	server *node
	cc     *Conn // the client's connection
}

type pairOpts struct {
	seed         uint64
	client       Config
	server       Config
	fwd, rev     netem.LinkConfig
	noConnect    bool
	serverFilter func(now clock.Time, b []byte) bool
	clientFilter func(now clock.Time, b []byte) bool
}

func newPair(t *testing.T, o pairOpts) *pair {
	t.Helper()
	if o.seed == 0 {
		o.seed = 1
	}
	o.client.Rand = newSeeded(o.seed)
	o.server.Rand = newSeeded(o.seed + 1000)
	o.server.Accept = true
	cep, err := NewEndpoint(o.client)
	require.NoError(t, err)
	sep, err := NewEndpoint(o.server)
	require.NoError(t, err)
	p := &pair{t: t, sim: netem.New(o.seed),
		client: &node{ep: cep, filter: o.clientFilter}, server: &node{ep: sep, filter: o.serverFilter}}
	require.NoError(t, p.sim.AddNode(serverAddr, p.server))
	require.NoError(t, p.sim.AddNode(clientAddr, p.client))
	require.NoError(t, p.sim.Connect(clientAddr, serverAddr, o.fwd, o.rev))
	if !o.noConnect {
		p.cc, err = cep.Connect(p.sim.Now(), serverAddr)
		require.NoError(t, err)
	}
	return p
}

func (p *pair) run(d time.Duration) { p.sim.RunUntil(p.sim.Now().Add(d)) }

// connected runs until both sides report EventConnected.
func (p *pair) connected() *Conn {
	p.t.Helper()
	for range 1000 {
		if p.client.count(EventConnected) > 0 && p.server.count(EventConnected) > 0 {
			ev, _ := p.server.find(EventConnected)
			return ev.Conn
		}
		p.run(10 * time.Millisecond)
	}
	p.t.Fatalf("no connection after 10 s: client events %v, server events %v", p.client.events, p.server.events)
	return nil
}

// at schedules fn at now+d (on the simulator, so the endpoints see the same
// time).
func (p *pair) at(d time.Duration, fn func(now clock.Time)) { p.sim.Schedule(p.sim.Now().Add(d), fn) }

func payload(stream uint8, id int64, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(int64(i)*31 + id*7 + int64(stream))
	}
	return b
}
