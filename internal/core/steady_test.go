package core

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/allocs"
	"github.com/spillway-rt/spillway/internal/fuzzseed"
	"github.com/spillway-rt/spillway/wire"
)

// pipe joins two endpoints with a zero-delay, lossless wire and a manual
// clock: the harness of the benchmarks and the fuzz target.
type pipe struct {
	client, server *Endpoint
	cc, sc         *Conn
	now            clock.Time
	buf            []byte
	tap            func(from string, b []byte)      // sees every datagram, if set
	drop           func(from string, b []byte) bool // loses the datagrams it says, if set
}

func newPipe(tb testing.TB, cfg Config) *pipe {
	tb.Helper()
	p := newEndpoints(tb, cfg)
	p.connect(tb)
	return p
}

// connect connects the pipe's client to its server, at p.now.
func (p *pipe) connect(tb testing.TB) {
	tb.Helper()
	var err error
	p.cc, err = p.client.Connect(p.now, serverAddr)
	require.NoError(tb, err)
	for range 10 {
		p.exchange()
		p.now = p.now.Add(time.Millisecond)
	}
	for _, c := range p.server.conns {
		p.sc = c
	}
	require.True(tb, p.cc.Established())
	require.NotNil(tb, p.sc)
	p.drainEvents()
}

// newEndpoints returns a pipe whose client and server endpoints (cfg,
// the server accepting) have no connection yet, at 1 s.
func newEndpoints(tb testing.TB, cfg Config) *pipe {
	tb.Helper()
	ccfg, scfg := cfg, cfg
	ccfg.Rand, scfg.Rand = newSeeded(1), newSeeded(2)
	scfg.Accept = true
	ce, err := NewEndpoint(ccfg)
	require.NoError(tb, err)
	se, err := NewEndpoint(scfg)
	require.NoError(tb, err)
	return &pipe{client: ce, server: se, now: clock.Time(time.Second), buf: make([]byte, 2048)}
}

// exchange moves datagrams both ways until neither side has one to send.
func (p *pipe) exchange() {
	for moved := true; moved; {
		moved = false
		for {
			n, _, ok := p.client.PollTransmit(p.now, p.buf)
			if !ok {
				break
			}
			if p.tap != nil {
				p.tap("client", p.buf[:n])
			}
			if p.drop != nil && p.drop("client", p.buf[:n]) {
				moved = true
				continue
			}
			p.server.HandleDatagram(p.now, clientAddr, p.buf[:n])
			moved = true
		}
		for {
			n, _, ok := p.server.PollTransmit(p.now, p.buf)
			if !ok {
				break
			}
			if p.tap != nil {
				p.tap("server", p.buf[:n])
			}
			if p.drop != nil && p.drop("server", p.buf[:n]) {
				moved = true
				continue
			}
			p.client.HandleDatagram(p.now, serverAddr, p.buf[:n])
			moved = true
		}
	}
}

// tick runs timers due at now on both sides and exchanges what they send.
func (p *pipe) tick() {
	if p.client.NextTimeout() <= p.now {
		p.client.HandleTimeout(p.now)
	}
	if p.server.NextTimeout() <= p.now {
		p.server.HandleTimeout(p.now)
	}
	p.exchange()
}

// drainEvents drops both sides' events and returns how many frames the
// server delivered.
func (p *pipe) drainEvents() (frames int) {
	for {
		ev, ok := p.client.PollEvent()
		if !ok {
			break
		}
		_ = ev
	}
	for {
		ev, ok := p.server.PollEvent()
		if !ok {
			break
		}
		if ev.Type == EventFrame {
			frames++
		}
	}
	return frames
}

// steadySender is the sender half of BenchmarkSteadyWriteFramePollTransmit:
// one 1000-byte audio-like frame per 20 ms step.
type steadySender struct {
	p       *pipe
	sid     uint8
	payload []byte
}

func newSteadySender(tb testing.TB) *steadySender {
	p := newPipe(tb, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
	require.NoError(tb, err)
	return &steadySender{p: p, sid: sid, payload: make([]byte, 1000)}
}

// step writes a frame, sends everything the sender has, and feeds the
// receiver's feedback back; it returns the datagrams the sender sent.
func (s *steadySender) step() int {
	p := s.p
	p.now = p.now.Add(20 * time.Millisecond)
	if err := p.cc.WriteFrame(p.now, s.sid, s.payload, FrameInfo{Capture: p.now}); err != nil {
		panic(err)
	}
	sent := 0
	if p.client.NextTimeout() <= p.now {
		p.client.HandleTimeout(p.now)
	}
	for {
		n, _, ok := p.client.PollTransmit(p.now, p.buf)
		if !ok {
			break
		}
		sent++
		p.server.HandleDatagram(p.now, clientAddr, p.buf[:n])
	}
	if p.server.NextTimeout() <= p.now {
		p.server.HandleTimeout(p.now)
	}
	p.exchange()
	p.drainEvents()
	return sent
}

// steadyReceiver is the receiver half of
// BenchmarkSteadyHandleDatagramFrameReady: data packets built as the peer
// would, one 2-fragment frame per 20 ms step, each released at its playout
// time.
type steadyReceiver struct {
	p       *pipe
	pn      uint32
	frame   int64
	pkt     []byte
	payload []byte
}

func newSteadyReceiver(tb testing.TB) *steadyReceiver {
	p := newPipe(tb, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(tb, err)
	require.Zero(tb, sid)
	p.exchange() // the stream announcement
	r := &steadyReceiver{p: p, pkt: make([]byte, 0, 2048), payload: make([]byte, 1200)}
	r.pn = uint32(p.cc.nextPN) + 100 // beyond anything the real client sent
	return r
}

// step delivers one frame's two data packets and reports the frames
// released.
func (r *steadyReceiver) step() int {
	p := r.p
	p.now = p.now.Add(20 * time.Millisecond)
	epoch := p.cc.epoch
	capTS := wire.Timestamp(p.now, epoch)
	for frag := uint16(0); frag < 2; frag++ {
		h := wire.DataHeader{DstConnID: p.sc.localCID, PacketNumber: r.pn & (1<<24 - 1), Stream: 0,
			FrameID: uint16(r.frame) & wire.FrameIDMask, FragIndex: frag, FragCount: 2, SendTime: capTS}
		b, _ := h.Append(r.pkt[:0])
		if frag == 0 {
			b, _ = wire.AppendFramePrefix(b, capTS)
			b = append(b, r.payload[:1197]...)
		} else {
			b = append(b, r.payload[:300]...)
		}
		r.pn++
		p.server.HandleDatagram(p.now, clientAddr, b)
	}
	r.frame++
	if p.server.NextTimeout() <= p.now {
		p.server.HandleTimeout(p.now)
	}
	frames := 0
	for {
		ev, ok := p.server.PollEvent()
		if !ok {
			break
		}
		if ev.Type == EventFrame {
			frames++
		}
	}
	// Feedback goes out and is dropped: the benchmark measures the
	// receiving side.
	for {
		if _, _, ok := p.server.PollTransmit(p.now, p.buf); !ok {
			break
		}
	}
	return frames
}

func warm(step func() int) {
	for range 2000 {
		step()
	}
}

func TestSteadyWriteFramePollTransmitDoesNotAllocate(t *testing.T) {
	s := newSteadySender(t)
	warm(s.step)
	sent, steps := 0, 0
	got := allocs.Mallocs(3, func() {
		for range 10_000 {
			sent += s.step()
			steps++
		}
	})
	assert.Zero(t, got, "allocations in 10,000 frames")
	assert.GreaterOrEqual(t, sent, steps)
	assert.True(t, s.p.cc.Established())
	assert.Equal(t, int64(2_000+steps), s.p.sc.Stats().FramesReceived, "every frame written arrived (2,000 to warm up)")
}

func TestSteadyHandleDatagramFrameReadyDoesNotAllocate(t *testing.T) {
	r := newSteadyReceiver(t)
	warm(r.step)
	frames, steps := 0, 0
	got := allocs.Mallocs(3, func() {
		for range 10_000 {
			frames += r.step()
			steps++
		}
	})
	assert.Zero(t, got, "allocations in 10,000 frames")
	assert.Equal(t, steps, frames, "one frame released per step in steady state")
}

func BenchmarkSteadyWriteFramePollTransmit(b *testing.B) {
	s := newSteadySender(b)
	warm(s.step)
	b.ReportAllocs()
	b.SetBytes(int64(len(s.payload)))
	for b.Loop() {
		s.step()
	}
}

func BenchmarkSteadyHandleDatagramFrameReady(b *testing.B) {
	r := newSteadyReceiver(b)
	warm(r.step)
	b.ReportAllocs()
	b.SetBytes(1197 + 300 - wire.FramePrefixLen)
	for b.Loop() {
		r.step()
	}
}

var writeCorpus = flag.Bool("write-corpus", false, "write FuzzEndpoint's seed corpus from a recorded session")

// FuzzEndpoint throws datagrams at an established server connection: the
// endpoint must never panic, and its state stays bounded. The first byte
// says whether to aim the datagram at the live connection (its connection
// ID patched in) and whether it comes from the client's address.
func FuzzEndpoint(f *testing.F) {
	f.Add([]byte{0, 0x40})
	// Playout offset reports (APP SPPO), well-formed and not.
	for _, data := range [][]byte{{0, 3, 0xd0, 0x90}, {0xff, 0xff, 0xff, 0xff}, {1, 2, 3, 4, 5, 6, 7, 8}} {
		b, err := wire.AppendFeedbackHeader(nil, 1, 7)
		require.NoError(f, err)
		b, err = (&wire.App{Subtype: appSubPlayout, Name: appPlayoutName, Data: data}).Append(b)
		require.NoError(f, err)
		f.Add(append([]byte{1}, b...))
	}
	// Deadline horizon reports (APP SPPO subtype 1), well-formed and not.
	for _, data := range [][]byte{{0, 5, 0x57, 0xe0}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 1, 0, 0, 0, 2}} {
		b, err := wire.AppendFeedbackHeader(nil, 1, 8)
		require.NoError(f, err)
		b, err = (&wire.App{Subtype: appSubHorizon, Name: appPlayoutName, Data: data}).Append(b)
		require.NoError(f, err)
		f.Add(append([]byte{1}, b...))
	}
	// Stream announcements of later, earlier and equal generations, and
	// acknowledgements of both lengths (APP SPST).
	for _, app := range []wire.App{
		{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, 2, 0, 1, 0, 2, 0, 2 << streamGenShift, 0, 2, 0, 3 << streamGenShift, 0, 1, 1, 0x7f<<streamGenShift | 1}},
		{Subtype: appSubStreamAck, Name: appStreamName, Data: append([]byte{0, 1, 0, 0}, make([]byte, wire.MaxStreams)...)},
		{Subtype: appSubStreamAck, Name: appStreamName, Data: []byte{0, 1, 0, 0}},
	} {
		b, err := wire.AppendFeedbackHeader(nil, 1, 9)
		require.NoError(f, err)
		b, err = app.Append(b)
		require.NoError(f, err)
		f.Add(append([]byte{1}, b...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		p := newPipe(t, Config{MaxReceiveBuffer: 8 << 20, MaxFrameSize: 2 << 20})
		mode, b := in[0], append([]byte(nil), in[1:]...)
		if mode&1 != 0 {
			aim(b, p.sc.localCID)
		}
		from := clientAddr
		if mode&2 != 0 {
			from = serverAddr
		}
		for i := 0; i < 3; i++ { // delivered three times: duplicates and replays
			p.server.HandleDatagram(p.now, from, b)
			p.now = p.now.Add(10 * time.Millisecond)
			p.tick()
			p.drainEvents()
		}
		p.now = p.now.Add(time.Second)
		p.tick()
		p.drainEvents()
		require.LessOrEqual(t, len(p.server.conns), 1)
		if p.sc.state != stateClosed {
			require.LessOrEqual(t, p.sc.recvBytes, p.server.cfg.MaxReceiveBuffer)
			require.Zero(t, p.sc.recvBytes, "everything is delivered or given up a second later")
		}
	})
}

// aim writes cid into a datagram's destination connection ID field.
func aim(b []byte, cid uint32) {
	if len(b) < 1 {
		return
	}
	at := 1
	if wire.Type(b[0]>>3&7) == wire.TypeHandshake {
		at = 5
	}
	if len(b) >= at+4 {
		b[at], b[at+1], b[at+2], b[at+3] = byte(cid>>24), byte(cid>>16), byte(cid>>8), byte(cid)
	}
}

// TestFuzzEndpointCorpus writes (with -write-corpus) or checks the seed
// corpus: datagrams a real session sent, each way.
func TestFuzzEndpointCorpus(t *testing.T) {
	if *writeCorpus {
		fuzzseed.Write(t, "FuzzEndpoint", recordedSession(t))
	}
	fuzzseed.Check(t, "FuzzEndpoint")
}

// recordedSession returns up to three datagrams of each first byte a short
// session sends, as FuzzEndpoint inputs aimed at the live connection.
func recordedSession(t *testing.T) [][]byte {
	p := newPipe(t, Config{})
	var seeds [][]byte
	seen := map[byte]int{}
	p.tap = func(from string, b []byte) {
		if seen[b[0]] >= 3 {
			return
		}
		seen[b[0]]++
		seeds = append(seeds, append([]byte{1}, b...)) // mode 1: aimed at the connection
	}
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	for i := range 50 {
		p.now = p.now.Add(20 * time.Millisecond)
		require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 100+i*97), FrameInfo{Capture: p.now, Key: i%10 == 0}))
		p.tick()
	}
	return seeds
}
