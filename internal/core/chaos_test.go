package core

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spillway-rt/spillway/wire"
)

// chaos plays a hostile peer against a server connection: data, repair,
// feedback (NACKs, TWCC, PLIs, announcements, drop notices and their acks,
// playout and horizon reports, receiver reports) and pings, well-formed
// and not, with packet numbers, frame ids, fragment counts and timestamps
// that jump, wrap and step back.
type chaos struct {
	t           *testing.T
	rng         *rand.Rand
	p           *pipe
	pn          int64
	fid         [16]int64
	in, out     int64
	serverMedia bool
}

func (c *chaos) send(b []byte) {
	c.in += int64(len(b))
	c.p.server.HandleDatagram(c.p.now, clientAddr, b)
}

func (c *chaos) nextPN() uint32 {
	switch c.rng.IntN(20) {
	case 0:
		c.pn += int64(c.rng.IntN(3000))
	case 1:
		return uint32(c.rng.Uint32()) & 0xffffff
	case 2:
		return uint32(c.pn-int64(c.rng.IntN(100))) & 0xffffff
	}
	c.pn++
	return uint32(c.pn) & 0xffffff
}

func (c *chaos) ts() uint32 {
	d := time.Duration(c.p.now) - time.Duration(c.p.cc.epoch)
	switch c.rng.IntN(10) {
	case 0:
		d += time.Duration(c.rng.Int64N(int64(60*time.Second))) - 30*time.Second
	case 1:
		return c.rng.Uint32() & 0xffffff
	}
	return uint32(d/wire.TimestampUnit) & 0xffffff
}

func (c *chaos) data() {
	st := uint8(c.rng.IntN(4))
	if c.rng.IntN(10) == 0 {
		st = uint8(c.rng.IntN(16))
	}
	if c.rng.IntN(5) == 0 {
		c.fid[st]++
	}
	if c.rng.IntN(50) == 0 {
		c.fid[st] += int64(c.rng.IntN(4096))
	}
	count := uint16(1 + c.rng.IntN(4))
	if c.rng.IntN(20) == 0 {
		count = uint16(1 + c.rng.IntN(4096))
	}
	idx := uint16(c.rng.IntN(int(count)))
	fs := c.p.sc.rcv.peerFragSize
	n := fs
	if idx == count-1 {
		n = 3 + c.rng.IntN(fs-2)
	}
	if c.rng.IntN(30) == 0 {
		n = c.rng.IntN(fs + 10)
	}
	h := wire.DataHeader{DstConnID: c.p.sc.localCID, PacketNumber: c.nextPN(), Key: c.rng.IntN(4) == 0, Droppable: c.rng.IntN(4) == 0,
		Stream: st, FrameID: uint16(c.fid[st]) & 0xfff, FragIndex: idx, FragCount: count, SendTime: c.ts()}
	if c.rng.IntN(6) == 0 {
		h.Retransmit = true
		h.Original = uint32(c.pn-int64(c.rng.IntN(200))) & 0xffffff
	}
	b, err := h.Append(nil)
	if err != nil {
		return
	}
	pl := make([]byte, n)
	for i := range pl {
		pl[i] = byte(c.rng.Uint32())
	}
	c.send(append(b, pl...))
}

func (c *chaos) repair() {
	h := wire.RepairHeader{DstConnID: c.p.sc.localCID, PacketNumber: c.nextPN(), SendTime: c.ts(),
		BasePacketNumber: uint32(c.pn-int64(c.rng.IntN(80))) & 0xffffff, Mask: c.rng.Uint64() | 1, M: uint8(1 + c.rng.IntN(4))}
	if c.rng.IntN(2) == 0 {
		h.Mask = uint64(1)<<c.rng.IntN(8) - 1 | 1
	}
	h.Index = uint8(c.rng.IntN(int(h.M)))
	b, err := h.Append(nil)
	if err != nil {
		return
	}
	n := 1 + c.rng.IntN(c.p.sc.rcv.peerFragSize+8)
	pl := make([]byte, n)
	for i := range pl {
		pl[i] = byte(c.rng.Uint32())
	}
	c.send(append(b, pl...))
}

func (c *chaos) feedback() {
	b, _ := wire.AppendFeedbackHeader(nil, c.p.sc.localCID, c.nextPN())
	start := len(b)
	for k := 1 + c.rng.IntN(3); k > 0; k-- {
		switch c.rng.IntN(9) {
		case 0: // NACK
			var n wire.NACK
			base := uint16(c.p.sc.nextPN - int64(c.rng.IntN(300)))
			for j := 1 + c.rng.IntN(250); j > 0; j-- {
				n.Pairs = append(n.Pairs, wire.NACKPair{PacketID: base + uint16(j*17), LostBitmap: 0xffff})
			}
			b, _ = n.Append(b)
		case 1: // TWCC
			var tw wire.TWCC
			tw.BaseSeq = uint16(c.p.sc.nextPN - int64(c.rng.IntN(500)))
			tw.RefTime = int32(c.rng.IntN(1 << 20))
			for j := 1 + c.rng.IntN(300); j > 0; j-- {
				tw.Packets = append(tw.Packets, wire.TWCCPacket{Received: c.rng.IntN(3) > 0, Delta: int32(c.rng.IntN(600) - 300)})
			}
			b, _ = tw.Append(b)
		case 2:
			pli := wire.PLI{MediaSSRC: uint32(c.rng.IntN(20))}
			b, _ = pli.Append(b)
		case 3: // announce
			var d []byte
			for j := 1 + c.rng.IntN(4); j > 0; j-- {
				d = append(d, byte(c.rng.IntN(17)), byte(c.rng.IntN(3)), byte(c.rng.IntN(3)), byte(c.rng.IntN(2)|c.rng.IntN(4)<<streamGenShift))
			}
			b, _ = (&wire.App{Subtype: appSubStreams, Name: appStreamName, Data: d}).Append(b)
		case 4: // drop notices
			var d []byte
			for j := 1 + c.rng.IntN(4); j > 0; j-- {
				e := make([]byte, dropNoticeLen)
				binary.BigEndian.PutUint16(e, uint16(c.rng.IntN(70000)))
				e[2] = byte(c.rng.IntN(5))
				e[3] = byte(c.rng.IntN(2))
				binary.BigEndian.PutUint16(e[4:], uint16(c.fid[e[2]]-int64(c.rng.IntN(300)))&0xfff)
				binary.BigEndian.PutUint16(e[6:], uint16(c.rng.IntN(10)))
				if e[3] != 0 {
					binary.BigEndian.PutUint32(e[8:], uint32(c.pn-int64(c.rng.IntN(300)))<<8|uint32(1+c.rng.IntN(255)))
				}
				d = append(d, e...)
			}
			b, _ = (&wire.App{Subtype: appSubDrops, Name: appDropName, Data: d}).Append(b)
		case 5:
			d := make([]byte, dropAckLen)
			binary.BigEndian.PutUint16(d, uint16(c.rng.IntN(200)))
			binary.BigEndian.PutUint64(d[4:], c.rng.Uint64())
			b, _ = (&wire.App{Subtype: appSubDropAck, Name: appDropName, Data: d}).Append(b)
		case 6:
			d := make([]byte, 4)
			binary.BigEndian.PutUint32(d, c.rng.Uint32())
			b, _ = (&wire.App{Subtype: uint8(c.rng.IntN(2)), Name: appPlayoutName, Data: d}).Append(b)
		case 7:
			d := make([]byte, streamAckLen)
			if c.rng.IntN(8) == 0 {
				d = d[:4] // the wrong length
			}
			binary.BigEndian.PutUint16(d, uint16(c.rng.Uint32()))
			binary.BigEndian.PutUint16(d[2:], uint16(c.rng.Uint32()))
			for i := 4; i < len(d); i++ {
				d[i] = byte(c.rng.IntN(3))
			}
			b, _ = (&wire.App{Subtype: appSubStreamAck, Name: appStreamName, Data: d}).Append(b)
		case 8:
			rr := wire.ReceiverReport{Reports: []wire.ReceptionReport{{FractionLost: uint8(c.rng.Uint32()), TotalLost: c.rng.Uint32() & 0xffffff, Jitter: c.rng.Uint32()}}}
			b, _ = rr.Append(b)
		}
	}
	if len(b) > start {
		c.send(b)
	}
}

func (c *chaos) ping() {
	p := wire.Ping{DstConnID: c.p.sc.localCID, PacketNumber: c.nextPN(), Pong: c.rng.IntN(2) == 0, Echo: c.rng.Uint64()}
	if c.rng.IntN(2) == 0 {
		p.Echo = uint64(c.p.sc.pings[c.rng.IntN(4)])
	}
	if p.Pong {
		p.HoldMicros = c.rng.Uint32() & 0xffffff
	}
	b, _ := p.Append(nil)
	c.send(b)
}

func (c *chaos) drainServer() {
	for i := 0; ; i++ {
		n, _, ok := c.p.server.PollTransmit(c.p.now, c.p.buf)
		if !ok {
			return
		}
		c.out += int64(n)
		if i > 100_000 {
			c.t.Fatal("PollTransmit never ends")
		}
	}
}

// settle runs the timeouts due, as a driver does; a NextTimeout that stays
// at or before now after HandleTimeout would spin a driver.
func (c *chaos) settle(seed uint64) {
	for i := 0; c.p.server.NextTimeout() <= c.p.now; i++ {
		if i > 1000 {
			c.t.Fatalf("seed %d: NextTimeout %v stays at or before now %v: a driver spins", seed, c.p.server.NextTimeout(), c.p.now)
		}
		c.p.server.HandleTimeout(c.p.now)
		c.drainServer()
		c.p.drainEvents()
	}
}

func runChaos(t *testing.T, seed uint64, steps int, cfg Config) *chaos {
	p := newPipe(t, cfg)
	c := &chaos{t: t, rng: rand.New(rand.NewPCG(seed, 7)), p: p, pn: p.cc.nextPN}
	for i := range c.fid {
		c.fid[i] = int64(c.rng.IntN(100))
	}
	var sid uint8
	if c.rng.IntN(2) == 0 {
		c.serverMedia = true
		sid, _ = p.sc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	}
	for range steps {
		switch k := c.rng.IntN(20); {
		case k < 10:
			c.data()
		case k < 12:
			c.repair()
		case k < 17:
			c.feedback()
		case k < 19:
			c.ping()
		}
		if c.rng.IntN(3) == 0 {
			p.now = p.now.Add(time.Duration(c.rng.IntN(30)) * time.Millisecond)
		}
		if c.serverMedia && c.rng.IntN(5) == 0 {
			_ = p.sc.WriteFrame(p.now, sid, make([]byte, 1+c.rng.IntN(5000)), FrameInfo{Capture: p.now, Key: c.rng.IntN(10) == 0})
		}
		c.drainServer()
		c.settle(seed)
		p.drainEvents()
		if p.sc.state == stateClosed {
			break
		}
		if p.sc.recvBytes > p.server.cfg.MaxReceiveBuffer {
			t.Fatalf("seed %d: %d bytes held, MaxReceiveBuffer %d", seed, p.sc.recvBytes, p.server.cfg.MaxReceiveBuffer)
		}
	}
	return c
}

// TestHostilePeer runs the chaos peer against ten receiver configurations
// (seed i uses configuration i mod 10): no panic, no timeout that spins a
// driver, never more held than MaxReceiveBuffer, and a server that sends no
// media of its own answers with less than half the bytes it is sent.
func TestHostilePeer(t *testing.T) {
	cfgs := []Config{
		{},
		{PlayoutStallTogether: true},
		{PlayoutCatchUp: true, PlayoutKeyAllowanceAlways: true},
		{Playout: PlayoutPassThrough},
		{Playout: PlayoutFixed},
		{MaxPendingFrames: 16, MaxReceiveBuffer: 8 << 20},
		{Latency: 60 * time.Second},
		{Latency: 3 * time.Second, PlayoutCatchUp: true, MaxPlayoutDelay: 5 * time.Second},
		{DisableRetransmission: true},
		{DisableFEC: true, FragmentSize: 200, MaxFrameSize: 500000, MaxReceiveBuffer: 1 << 20},
	}
	seeds := 120
	if testing.Short() {
		seeds = 20
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		c := runChaos(t, seed, 1500, cfgs[seed%uint64(len(cfgs))])
		if !c.serverMedia && c.in > 0 {
			if c.out*2 > c.in {
				t.Errorf("seed %d: sent %d bytes for %d received", seed, c.out, c.in)
			}
		}
	}
}
