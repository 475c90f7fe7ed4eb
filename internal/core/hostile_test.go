package core

import (
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// Regression tests for what a review of the core found a hostile or
// unlucky peer could do.

// craftFeedback builds a feedback datagram from the client to the server
// connection, taking the client's next packet number.
func (p *pipe) craftFeedback(t testing.TB, apps ...wire.App) []byte {
	b, err := wire.AppendFeedbackHeader(nil, p.sc.localCID, p.cc.pnTrunc())
	require.NoError(t, err)
	p.cc.consumePN()
	for i := range apps {
		b, err = apps[i].Append(b)
		require.NoError(t, err)
	}
	return b
}

// announce is a stream announcement with the given entries for stream 0.
// announce is an announcement of stream 0, generation gen, once per
// entry of opens (open or closed).
func announce(gen uint8, opens ...bool) wire.App {
	data := make([]byte, 0, 4*len(opens))
	for _, open := range opens {
		flags := gen << streamGenShift
		if open {
			flags |= streamFlagOpen
		}
		data = append(data, 0, byte(KindVideo), byte(PriorityLow), flags)
	}
	return wire.App{Subtype: appSubStreams, Name: appStreamName, Data: data}
}

func flipFlop(n int, gen uint8) wire.App {
	opens := make([]bool, n)
	for i := range opens {
		opens[i] = i%2 == 0
	}
	return announce(gen, opens...)
}

// One announcement that opens and closes a stream 362 times is one state
// change, not 362 stream resets.
func TestAnnouncementFlipFlopIsOneChange(t *testing.T) {
	p := newPipe(t, Config{})
	d := p.craftFeedback(t, flipFlop(362, 0)) // ends closed
	require.LessOrEqual(t, len(d), 1472)
	p.server.HandleDatagram(p.now, clientAddr, d)
	assert.Equal(t, 1, p.server.events.Len(), "opened (then closing): one event")
	p.drainEvents()

	// Alternate datagrams that end open (a new generation: the id is
	// reused) and that end closed: every one is a real change.
	const n = 200
	datagrams := make([][]byte, n)
	for i := range datagrams {
		gen := uint8(i/2+1) & streamGenMask
		app := flipFlop(362, gen)
		if i%2 == 0 {
			app = flipFlop(361, gen) // ends open
		}
		datagrams[i] = p.craftFeedback(t, app)
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for _, d := range datagrams {
		p.server.HandleDatagram(p.now, clientAddr, d)
		p.drainEvents()
	}
	runtime.ReadMemStats(&ms1)
	perDatagram := (ms1.TotalAlloc - ms0.TotalAlloc) / n
	t.Logf("allocated per 1.4 KB announcement datagram: %d B", perDatagram)
	assert.Less(t, perDatagram, uint64(2048), "no amplification: a reused stream id reuses its buffers")
}

// One peer's event flood cannot crowd out another connection's lifecycle
// events, nor its own close.
func TestEventFloodKeepsLifecycleEvents(t *testing.T) {
	p := newPipe(t, Config{})
	for i := range 2 * maxConnEvents {
		p.server.HandleDatagram(p.now, clientAddr, p.craftFeedback(t, announce(uint8(i/2)&streamGenMask, i%2 == 0)))
	}
	assert.Equal(t, maxConnEvents, p.sc.queuedEvents, "one connection holds at most maxConnEvents")
	assert.Positive(t, p.sc.Stats().EventsDropped)

	// An honest second client completes its handshake meanwhile.
	ce2, err := NewEndpoint(Config{Rand: newSeeded(77)})
	require.NoError(t, err)
	client2 := netip.AddrPortFrom(clientAddr.Addr(), 4000)
	c2, err := ce2.Connect(p.now, serverAddr)
	require.NoError(t, err)
	buf := make([]byte, 2048)
	for range 4 {
		for {
			n, _, ok := ce2.PollTransmit(p.now, buf)
			if !ok {
				break
			}
			p.server.HandleDatagram(p.now, client2, buf[:n])
		}
		for {
			n, to, ok := p.server.PollTransmit(p.now, buf)
			if !ok {
				break
			}
			if to == client2 {
				ce2.HandleDatagram(p.now, serverAddr, buf[:n])
			}
		}
	}
	require.True(t, c2.Established())

	// The flooder closes.
	b, err := (&wire.Close{DstConnID: p.sc.localCID, PacketNumber: p.cc.pnTrunc()}).Append(nil)
	require.NoError(t, err)
	p.server.HandleDatagram(p.now, clientAddr, b)
	for {
		if _, _, ok := p.server.PollTransmit(p.now, buf); !ok {
			break
		}
	}
	require.True(t, p.sc.Closed())
	var connected, closed int
	for {
		ev, ok := p.server.PollEvent()
		if !ok {
			break
		}
		switch ev.Type {
		case EventConnected:
			connected++
		case EventClosed:
			closed++
		}
	}
	assert.Equal(t, 1, connected, "the honest client's EventConnected")
	assert.Equal(t, 1, closed, "the flooder's EventClosed")
}

// A lost Hello-with-cookie inflates the server's handshake RTT sample by the
// client's backoff; the server measures again at once and its frames are
// not refused as late.
func TestServerRTTRecoversFromALostCookieHello(t *testing.T) {
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	dropped := 0
	p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: func(now clock.Time, b []byte) bool {
		typ, flags, _, err := wire.Peek(b)
		if err == nil && typ == wire.TypeHandshake && wire.HandshakeMsg(flags) == wire.MsgHello {
			var h wire.Handshake
			if h.Parse(b) == nil && len(h.Cookie) > 0 && dropped < 2 {
				dropped++
				return false
			}
		}
		return true
	}})
	sc := p.connected()
	require.Equal(t, 2, dropped)
	var sid, csid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = sc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		csid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindAudio})
		require.NoError(t, err)
	})
	var late int
	for i := range 500 {
		p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
			_ = p.cc.WriteFrame(now, csid, make([]byte, 100), FrameInfo{Capture: now})
			if errors.Is(sc.WriteFrame(now, sid, make([]byte, 1000), FrameInfo{Capture: now}), ErrFrameDropped) {
				late++
			}
		})
	}
	p.run(11 * time.Second)
	assert.Zero(t, late)
	assert.Equal(t, 40*time.Millisecond, sc.rtt.Min())
	assert.Equal(t, 40*time.Millisecond, sc.RTT())
}

// Arrivals after a run of packet numbers that carried no media (the peer's
// own feedback and pings) are still reported.
func TestTransportFeedbackSurvivesALongNonMediaRun(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	require.NoError(t, err)
	step := func() {
		p.now = p.now.Add(20 * time.Millisecond)
		p.tick()
		p.drainEvents()
	}
	for range 10 {
		require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 100), FrameInfo{Capture: p.now}))
		step()
	}
	p.cc.nextPN += 600 // 600 packet numbers spent on packets that are not media
	reported := map[uint16]bool{}
	p.tap = func(from string, b []byte) {
		if from != "server" || wire.Type(b[0]>>3&7) != wire.TypeFeedback {
			return
		}
		var sh wire.ShortHeader
		rtcp, err := wire.ParseFeedbackHeader(b, &sh)
		require.NoError(t, err)
		var f wire.Feedback
		require.NoError(t, wire.ParseFeedback(rtcp, &f))
		for _, tw := range f.TWCCs {
			for i, pk := range tw.Packets {
				if pk.Received {
					reported[tw.BaseSeq+uint16(i)] = true
				}
			}
		}
	}
	for range 50 {
		require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 100), FrameInfo{Capture: p.now}))
		step()
	}
	for range 5 { // the last arrivals' report
		step()
	}
	assert.Len(t, reported, 50, "every arrival reported")
}

// A client whose Accept was lost gets the Accept again even if the server
// stopped taking new connections meanwhile.
func TestAcceptIsIdempotentAfterAcceptingStops(t *testing.T) {
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	dropAccept := true
	var p *pair
	p = newPair(t, pairOpts{fwd: link, rev: link, serverFilter: func(now clock.Time, b []byte) bool {
		typ, flags, _, err := wire.Peek(b)
		if err == nil && typ == wire.TypeHandshake && wire.HandshakeMsg(flags) == wire.MsgAccept && dropAccept {
			dropAccept = false
			p.server.ep.SetAccept(false) // the application stops listening
			return false
		}
		return true
	}})
	p.run(2 * time.Second)
	assert.True(t, p.cc.Established())
	assert.Len(t, p.server.ep.conns, 1)
}

// Only a pong answering a ping we sent, once, is an RTT sample.
func TestUnsolicitedPongsAreIgnored(t *testing.T) {
	p := newPipe(t, Config{})
	rtt := p.sc.RTT()
	errs := p.sc.Stats().ProtocolErrors
	p.now = p.now.Add(time.Hour)
	pong := func(echo uint64) {
		b, err := (&wire.Ping{DstConnID: p.sc.localCID, PacketNumber: p.cc.pnTrunc(), Pong: true, Echo: echo}).Append(nil)
		require.NoError(t, err)
		p.cc.consumePN()
		p.server.HandleDatagram(p.now, clientAddr, b)
	}
	for range 40 {
		pong(uint64(p.sc.epoch))
	}
	assert.Equal(t, rtt, p.sc.RTT())
	assert.Equal(t, errs+40, p.sc.Stats().ProtocolErrors)
	// A real ping's pong counts once; its replay does not.
	samples := p.sc.rtt.Samples()
	p.sc.pingSoon = true
	p.exchange()
	require.Equal(t, samples+1, p.sc.rtt.Samples())
	pong(uint64(p.sc.lastPingSent))
	assert.Equal(t, samples+1, p.sc.rtt.Samples(), "a replayed pong is no sample")
}

// A pong says when its ping arrived, on the answering side's clock from
// its epoch (docs/PROTOCOL.md §8), not when the pong left; a ping carries
// no such time.
func TestPongCarriesPingArrival(t *testing.T) {
	p := newPipe(t, Config{})
	for _, after := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 40 * time.Second} {
		p.now = p.now.Add(after)
		p.exchange()
		p.cc.pingSoon = true
		var ping wire.Ping
		for {
			n, _, ok := p.client.PollTransmit(p.now, p.buf)
			require.True(t, ok, "the client pings")
			if ping.Parse(p.buf[:n]) == nil && !ping.Pong {
				p.server.HandleDatagram(p.now, clientAddr, p.buf[:n])
				break
			}
			p.server.HandleDatagram(p.now, clientAddr, p.buf[:n])
		}
		assert.Zero(t, ping.ArrivalMicros)
		arrived := p.now
		p.now = p.now.Add(7 * time.Millisecond) // the answer leaves later
		var pong wire.Ping
		for {
			n, _, ok := p.server.PollTransmit(p.now, p.buf)
			require.True(t, ok, "the server answers")
			if pong.Parse(p.buf[:n]) == nil && pong.Pong {
				break
			}
		}
		assert.Equal(t, ping.Echo, pong.Echo)
		assert.Equal(t, uint64(arrived.Sub(p.sc.epoch)/time.Microsecond), pong.ArrivalMicros)
		assert.Equal(t, uint32(7000), pong.HoldMicros)
	}
}

func TestPeerParamsAreBounded(t *testing.T) {
	cfg := Config{}.withDefaults()
	ok := wire.TransportParams{FragmentSize: 1200, Latency: time.Second}
	assert.True(t, acceptableParams(&ok, cfg))
	tooLong := ok
	tooLong.Latency = maxPeerLatency + time.Millisecond
	assert.False(t, acceptableParams(&tooLong, cfg), "a budget past the timestamps' wrap")
	tooBig := ok
	tooBig.FragmentSize = 1460
	assert.False(t, acceptableParams(&tooBig, cfg), "fragments that do not fit our datagrams")
	repairTooBig := ok
	repairTooBig.FragmentSize = uint16(cfg.MaxDatagramSize - wire.MaxPacketOverhead + 1)
	assert.False(t, acceptableParams(&repairTooBig, cfg), "a repair packet of a full fragment would not fit")
	repairTooBig.FragmentSize--
	assert.True(t, acceptableParams(&repairTooBig, cfg))
	tinyDatagrams := ok
	tinyDatagrams.MaxDatagramSize = 200
	assert.False(t, acceptableParams(&tinyDatagrams, cfg), "a peer must take datagrams of a padded Hello: feedback needs room")
	missing := ok
	missing.Latency = 0
	assert.False(t, acceptableParams(&missing, cfg))
}

// Retries after the first replace the cookie but are not answered at once:
// spoofed Retries cannot make the client send 30 times their size.
func TestOnlyTheFirstRetryIsAnsweredAtOnce(t *testing.T) {
	ep, err := NewEndpoint(Config{Rand: newSeeded(3)})
	require.NoError(t, err)
	now := clock.Time(time.Second)
	c, err := ep.Connect(now, serverAddr)
	require.NoError(t, err)
	buf := make([]byte, 2048)
	_, _, ok := ep.PollTransmit(now, buf)
	require.True(t, ok, "the first Hello")
	retry := func() int {
		b, err := (&wire.Handshake{Msg: wire.MsgRetry, Version: wire.Version1, DstConnID: c.localCID, Cookie: []byte("0123456789abcdef01234567")}).Append(nil, 0)
		require.NoError(t, err)
		ep.HandleDatagram(now, serverAddr, b)
		sent := 0
		for {
			if _, _, ok := ep.PollTransmit(now, buf); !ok {
				return sent
			}
			sent++
		}
	}
	assert.Equal(t, 1, retry())
	for range 10 {
		assert.Zero(t, retry())
	}
}

// craftDataPN hands the server a 19-byte one-fragment frame from "the
// client" with packet number pn (low 24 bits), and returns its size.
func (p *pipe) craftDataPN(t *testing.T, pn uint32, frame uint16) int {
	t.Helper()
	h := wire.DataHeader{DstConnID: p.sc.localCID, PacketNumber: pn & (1<<24 - 1), FrameID: frame & wire.FrameIDMask,
		FragCount: 1, SendTime: wire.Timestamp(p.now, p.cc.epoch)}
	b, err := h.Append(nil)
	require.NoError(t, err)
	b, err = wire.AppendFramePrefix(b, wire.Timestamp(p.now, p.cc.epoch))
	require.NoError(t, err)
	p.server.HandleDatagram(p.now, clientAddr, b)
	return len(b)
}

// serverOut runs the server for d in 1 ms steps and returns the bytes it
// sent (to a "client" that never answers).
func (p *pipe) serverOut(d time.Duration) int {
	out := 0
	for end := p.now.Add(d); p.now < end; p.now = p.now.Add(time.Millisecond) {
		if p.server.NextTimeout() <= p.now {
			p.server.HandleTimeout(p.now)
		}
		for {
			n, _, ok := p.server.PollTransmit(p.now, p.buf)
			if !ok {
				break
			}
			out += n
		}
		for {
			if _, ok := p.server.PollEvent(); !ok {
				break
			}
		}
	}
	return out
}

// What a peer's packets make the server send in reply (NACKs, pongs)
// stays within the bytes they brought and the connection's starting credit
// (the reply credit, PROTOCOL §3.3 "No amplification"), and an empty
// announcement is not acknowledged. 50 19-byte data packets, each 999
// packet numbers past the last, once bought 59 kB of NACKs: every invented
// number NACKed 30 times (a review's run at 370f7b9).
func TestNoAmplification(t *testing.T) {
	// data sends 100 tiny data packets 20 ms apart, step packet numbers apart.
	data := func(step uint32) func(t *testing.T, p *pipe) int {
		return func(t *testing.T, p *pipe) int {
			pn, in := uint32(p.cc.nextPN), 0
			for i := range 100 {
				in += p.craftDataPN(t, pn, uint16(i))
				pn += step
				p.now = p.now.Add(19 * time.Millisecond)
				p.settleServer(1000)
				p.now = p.now.Add(time.Millisecond)
			}
			return in
		}
	}
	pings := func(t *testing.T, p *pipe) int {
		in := 0
		for range 300 {
			pg := wire.Ping{DstConnID: p.sc.localCID, PacketNumber: p.cc.pnTrunc(), Echo: 1}
			p.cc.consumePN()
			b, err := pg.Append(nil)
			require.NoError(t, err)
			in += len(b)
			p.server.HandleDatagram(p.now, clientAddr, b)
			p.now = p.now.Add(time.Millisecond)
			p.settleServer(1000)
		}
		return in
	}
	empty := func(t *testing.T, p *pipe) int {
		in := 0
		for range 100 {
			b := p.craftFeedback(t, wire.App{Subtype: appSubStreams, Name: appStreamName})
			in += len(b)
			p.server.HandleDatagram(p.now, clientAddr, b)
			p.now = p.now.Add(time.Millisecond)
			p.settleServer(1000)
		}
		return in
	}
	// run counts the bytes the server sends during and 2 s after attack.
	run := func(t *testing.T, cfg Config, attack func(*testing.T, *pipe) int) (in, out, credit int, p *pipe) {
		p = newPipe(t, cfg)
		p.serverOut(3 * time.Second) // settled: nothing more owed
		credit = p.sc.replyCredit
		sent := p.sc.stats.BytesSent
		in = attack(t, p)
		p.serverOut(2 * time.Second)
		return in, int(p.sc.stats.BytesSent - sent), credit, p
	}
	// The same number of data packets with consecutive numbers to a
	// server that sends no NACKs: the feedback any data earns (the
	// transport-wide reports at the feedback interval, receiver reports).
	// What forged numbers add to it (NACKs, and reports sooner than the
	// interval because the numbers span half the arrival ring) is reply.
	_, honest, _, ctl := run(t, Config{DisableRetransmission: true}, data(1))
	require.Zero(t, ctl.sc.stats.NACKsSent)
	for _, tc := range []struct {
		name   string
		attack func(*testing.T, *pipe) int
		data   bool // data packets: their honest feedback is not a reply
	}{
		{"packet numbers 999 apart", data(1000), true},
		{"packet numbers 9 apart", data(9), true},
		{"a ping a millisecond", pings, false},
		{"empty announcements", empty, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := 0
			if tc.data {
				base = honest
			}
			in, out, credit, p := run(t, Config{}, tc.attack)
			t.Logf("in %d bytes, out %d (%d for the same packets in order), credit at the start %d, withheld %d, NACKs %d naming %d",
				in, out, base, credit, p.sc.stats.RepliesWithheld, p.sc.stats.NACKsSent, p.sc.stats.PacketsNACKed)
			assert.LessOrEqual(t, out-base, in+credit, "replies within what the packets brought and the credit")
			if tc.name != "empty announcements" {
				assert.Positive(t, p.sc.stats.RepliesWithheld, "the credit binds")
			}
		})
	}
	t.Run("an announcement of nothing is an error, not answered", func(t *testing.T) {
		_, out, _, p := run(t, Config{}, empty)
		assert.LessOrEqual(t, out, wire.PingLen, "a keepalive ping at most: no stream acks")
		assert.Equal(t, int64(100), p.sc.stats.ProtocolErrors)
	})
}
