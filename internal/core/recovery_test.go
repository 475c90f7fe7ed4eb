package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/fec"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// dropFragment returns a filter losing the first transmission of one
// fragment (retransmissions, type 6, pass).
func dropFragment(frame, frag uint16) func(now clock.Time, b []byte) bool {
	return func(now clock.Time, b []byte) bool {
		if b[0]>>3&7 == byte(wire.TypeData) {
			var h wire.DataHeader
			if _, err := h.Parse(b); err == nil && h.FrameID == frame && h.FragIndex == frag {
				return false
			}
		}
		return true
	}
}

// sendFrames opens a video stream and writes n frames of size bytes, one
// every 33 ms.
func sendFrames(t *testing.T, p *pair, n, size int) {
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
	})
	for i := range n {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), size), FrameInfo{Capture: now}))
		})
	}
}

func TestRetransmissionRecoversLoss(t *testing.T) {
	tests := []struct {
		name       string
		frame      uint16
		frag       uint16
		retransmit bool
	}{
		{"middle fragment", 2, 1, true},
		{"tail fragment", 2, 2, true}, // nothing of frame 2 follows it: the tail timer finds it
		// The connection's first media packet: nothing before it reveals
		// the gap, but packet numbers start at 0.
		{"first packet", 0, 0, true},
		{"disabled", 2, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := netem.LinkConfig{Delay: 20 * time.Millisecond}
			cfg := Config{DisableFEC: true, DisableRetransmission: !tc.retransmit}
			p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: dropFragment(tc.frame, tc.frag), client: cfg, server: cfg})
			p.connected()
			sendFrames(t, p, 5, 3000) // 3 fragments each
			p.run(2 * time.Second)
			st := p.server.events[0].Conn.Stats()
			cst := p.cc.Stats()
			if !tc.retransmit {
				assert.Equal(t, 4, p.server.count(EventFrame))
				assert.Zero(t, cst.RetransmittedPacketsSent)
				assert.Zero(t, st.NACKsSent)
				return
			}
			assert.Equal(t, 5, p.server.count(EventFrame), "every frame delivered")
			_, lost := p.server.find(EventFrameLost)
			assert.False(t, lost)
			assert.Equal(t, int64(1), cst.RetransmittedPacketsSent, "one retransmission for one loss")
			assert.Equal(t, int64(1), st.RetransmissionsReceived)
			assert.GreaterOrEqual(t, st.NACKsSent, int64(1))
			assert.Zero(t, cst.RTXSender.RtxSkippedLate)
		})
	}
}

// TestLastChanceGoesTwice: on a 140 ms RTT path in a 300 ms budget the
// first retransmission of a lost packet is also its last chance; audio's
// is sent twice (duplicateLastChance), video's once (FEC off, so the
// policy asks nothing).
func TestLastChanceGoesTwice(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		sends int64
	}{
		{"audio", KindAudio, 2},
		{"video", KindVideo, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := netem.LinkConfig{Delay: 70 * time.Millisecond}
			cfg := Config{DisableFEC: true}
			p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: dropFragment(5, 0), client: cfg, server: cfg})
			p.connected()
			var sid uint8
			p.at(0, func(now clock.Time) {
				var err error
				sid, err = p.cc.OpenStream(now, StreamConfig{Kind: tc.kind})
				require.NoError(t, err)
			})
			for i := range 20 {
				p.at(time.Duration(i+1)*20*time.Millisecond, func(now clock.Time) {
					require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 100), FrameInfo{Capture: now}))
				})
			}
			p.run(2 * time.Second)
			cst := p.cc.Stats()
			assert.Equal(t, tc.sends, cst.RetransmittedPacketsSent)
			assert.Equal(t, tc.sends-1, cst.RTXSender.LastChanceDuplicates)
			assert.Zero(t, cst.RTXSender.RtxSkippedLate)
			assert.Equal(t, 20, p.server.count(EventFrame), "every frame delivered")
			st := p.server.events[0].Conn.Stats()
			assert.Equal(t, tc.sends-1, st.RTXReceiver.DuplicateRetransmissions)
		})
	}
}

// dropFirstSends drops the first n transmissions (original and
// retransmissions) of frame's fragment frag.
func dropFirstSends(frame, frag uint16, n int) func(now clock.Time, b []byte) bool {
	seen := 0
	return func(now clock.Time, b []byte) bool {
		if t := wire.Type(b[0] >> 3 & 7); t == wire.TypeData || t == wire.TypeRetransmit {
			var h wire.DataHeader
			if _, err := h.Parse(b); err == nil && h.FrameID == frame && h.FragIndex == frag {
				seen++
				return seen > n
			}
		}
		return true
	}
}

// TestLateRoundsGoTwice: under a budget of a second or more (Live's) a
// packet whose first two retransmissions were lost gets every later one
// twice (lateRoundsAfter); under RTC's budget each round goes once.
func TestLateRoundsGoTwice(t *testing.T) {
	tests := []struct {
		name    string
		latency time.Duration
		lost    int   // transmissions of the packet lost, copies included
		sends   int64 // retransmissions sent
		late    int64 // of them, copies of late rounds
	}{
		{"Live, third round", 3 * time.Second, 3, 4, 1},
		{"Live, third round's copy arrives", 3 * time.Second, 4, 4, 1},
		{"Live, fourth round", 3 * time.Second, 5, 6, 2}, // the third round's two copies lost
		{"Live, second round", 3 * time.Second, 2, 2, 0},
		{"RTC budget, third round", 800 * time.Millisecond, 3, 3, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			link := netem.LinkConfig{Delay: 25 * time.Millisecond}
			cfg := Config{DisableFEC: true, Latency: tc.latency, MaxPlayoutDelay: tc.latency}
			p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: dropFirstSends(2, 1, tc.lost), client: cfg, server: cfg})
			p.connected()
			sendFrames(t, p, 10, 3000)
			p.run(3 * time.Second)
			cst := p.cc.Stats()
			assert.Equal(t, tc.sends, cst.RetransmittedPacketsSent)
			assert.Equal(t, tc.late, cst.RTXSender.LateRoundDuplicates)
			assert.Zero(t, cst.RTXSender.FirstDuplicates+cst.RTXSender.LastChanceDuplicates)
			assert.Equal(t, 10, p.server.count(EventFrame), "every frame delivered")
		})
	}
}

// TestFirstRetransmissionGoesTwice: a first retransmission goes twice
// (dupFirst) on a path losing 5 % at random under RTC's budget, once the
// loss rate has counted 500 packets; and once where the losses are rare,
// come in bursts, or the budget is Live's.
func TestFirstRetransmissionGoesTwice(t *testing.T) {
	tests := []struct {
		name    string
		loss    float64
		ge      netem.GilbertElliott
		latency time.Duration
		twice   bool
	}{
		{"5 % random, RTC", 0.05, netem.GilbertElliott{}, 0, true},
		{"1 % random", 0.01, netem.GilbertElliott{}, 0, false},
		{"5 % in bursts of 3", 0, netem.GEFromLossBurst(0.05, 3), 0, false},
		{"5 % random, Live's budget", 0.05, netem.GilbertElliott{}, 3 * time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fwd := netem.LinkConfig{Delay: 50 * time.Millisecond, Loss: tc.loss, GE: tc.ge}
			rev := netem.LinkConfig{Delay: 50 * time.Millisecond}
			cfg := Config{DisableFEC: true, Latency: tc.latency}
			p := newPair(t, pairOpts{fwd: fwd, rev: rev, client: cfg, server: cfg})
			p.connected()
			var sid uint8
			p.at(0, func(now clock.Time) {
				var err error
				sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo})
				require.NoError(t, err)
			})
			const frames = 300 // 10 s at 30 fps
			for i := range frames {
				p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
					require.NoError(t, p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now}))
				})
			}
			p.run(12 * time.Second)
			rs := p.cc.Stats().RTXSender
			require.Positive(t, rs.RetransmittedPacketsSent, "losses were retransmitted")
			if tc.twice {
				assert.Positive(t, rs.FirstDuplicates)
			} else {
				assert.Zero(t, rs.FirstDuplicates)
			}
		})
	}
}

// TestCopySpacing: a second copy goes three mean bursts of our packets
// behind its retransmission on a path losing in bursts, right behind
// otherwise, and never more than maxCopySpacing behind.
func TestCopySpacing(t *testing.T) {
	tests := []struct {
		name  string
		burst float64
		rate  int64
		want  time.Duration
	}{
		{"random loss: right behind", 1.1, 2_000_000, 0},
		{"bursts of 3 at 2 Mbit/s", 3, 2_000_000, 43200 * time.Microsecond}, // 3 x 3 x 1200 B at 2 Mbit/s
		{"bursts of 3 at 8 Mbit/s", 3, 8_000_000, 10800 * time.Microsecond},
		{"long bursts, slow: capped", 10, 500_000, maxCopySpacing},
		{"no rate yet", 3, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, copySpacing(tt.burst, tt.rate, 1200), float64(time.Microsecond))
		})
	}
}

func TestRetransmissionNeverLate(t *testing.T) {
	// RTT 400 ms against a 300 ms budget: a retransmission can never make
	// it, so none is sent, and the loss is given up at the deadline.
	link := netem.LinkConfig{Delay: 200 * time.Millisecond}
	cfg := Config{DisableFEC: true}
	p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: dropFragment(2, 1), client: cfg, server: cfg})
	p.connected()
	sendFrames(t, p, 5, 3000)
	p.run(3 * time.Second)
	assert.Zero(t, p.cc.Stats().RetransmittedPacketsSent)
	assert.Equal(t, 4, p.server.count(EventFrame))
}

func TestFECRecoversLoss(t *testing.T) {
	// FEC with a fixed (k, 1) shape rebuilds a lost fragment before any
	// retransmission could.
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	cfg := Config{DisableRetransmission: true}
	p := newPair(t, pairOpts{fwd: link, rev: link, clientFilter: dropFragment(2, 1), client: cfg, server: cfg})
	p.connected()
	p.at(0, func(clock.Time) {
		enc, err := fec.NewEncoder(fec.EncoderConfig{MaxSymbol: wire.ProtectedHeaderLen + p.cc.fragSize(), FixedM: 1})
		require.NoError(t, err)
		p.cc.snd.fec = enc
	})
	sendFrames(t, p, 5, 3000)
	p.run(2 * time.Second)
	st := p.server.events[0].Conn.Stats()
	assert.Equal(t, 5, p.server.count(EventFrame), "every frame delivered")
	assert.Equal(t, int64(1), st.PacketsRecovered)
	assert.Equal(t, int64(1), st.FECReceived.PacketsRecovered)
	assert.Equal(t, int64(5), p.cc.Stats().FECSent.FECPacketsSent, "one repair per frame")
	assert.Zero(t, st.RecoveredRejected)
}

func TestRepairPacketsFitThePeersDatagrams(t *testing.T) {
	// The client takes datagrams of at most 1200 bytes: the server shrinks
	// its fragments so that even a repair packet of a full fragment fits,
	// and the client gets every repair packet.
	largest := 0
	sizes := func(now clock.Time, b []byte) bool {
		largest = max(largest, len(b))
		return true
	}
	link := netem.LinkConfig{Delay: 20 * time.Millisecond}
	client := Config{MaxDatagramSize: 1200, FragmentSize: 1100}
	p := newPair(t, pairOpts{fwd: link, rev: link, serverFilter: sizes, client: client})
	p.connected()
	sc := p.server.events[0].Conn
	assert.Equal(t, 1200-wire.MaxPacketOverhead, sc.fragSize())
	var sid uint8
	p.at(0, func(now clock.Time) {
		var err error
		sid, err = sc.OpenStream(now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		enc, err := fec.NewEncoder(fec.EncoderConfig{MaxSymbol: wire.ProtectedHeaderLen + sc.fragSize(), FixedM: 1})
		require.NoError(t, err)
		sc.snd.fec = enc
	})
	for i := range 5 {
		p.at(time.Duration(i+1)*33*time.Millisecond, func(now clock.Time) {
			require.NoError(t, sc.WriteFrame(now, sid, payload(sid, int64(i), 5000), FrameInfo{Capture: now}))
		})
	}
	p.run(2 * time.Second)
	assert.Equal(t, 1200, largest, "a repair of a full fragment is exactly the peer's limit")
	assert.Equal(t, int64(5), p.cc.Stats().FECReceived.FECPacketsReceived)
	assert.Zero(t, p.client.ep.Stats().Malformed)
	assert.Equal(t, int64(fec.SymbolOverhead), int64(wire.RepairSymbolOverhead), "the fec package's symbol layout is the wire's")
}

func TestRepairReachingPastItselfIsRefused(t *testing.T) {
	// A repair packet whose block names packet numbers at or after its own
	// would rebuild packets not yet sent: it is refused and counted.
	link := netem.LinkConfig{Delay: 10 * time.Millisecond}
	p := newPair(t, pairOpts{fwd: link, rev: link})
	p.connected()
	sendFrames(t, p, 2, 100)
	p.run(time.Second)
	sc := p.server.events[0].Conn
	before := sc.Stats().ProtocolErrors
	pn := sc.window.Largest() + 1
	for _, mask := range []uint64{1 << 2, 1 << 3} { // base pn-2: members pn-2 and pn, or pn+1
		h := wire.RepairHeader{DstConnID: sc.localCID, PacketNumber: uint32(pn), BasePacketNumber: uint32(pn - 2), Mask: 1 | mask, M: 1}
		b, err := h.Append(nil)
		require.NoError(t, err)
		b = append(b, make([]byte, 20)...)
		p.server.ep.HandleDatagram(p.sim.Now(), clientAddr, b)
		pn++
	}
	assert.Equal(t, before+2, sc.Stats().ProtocolErrors)
	assert.Zero(t, sc.Stats().FECReceived.FECPacketsReceived, "never reached the decoder")
}

func TestMaxFECOverheadReachesThePolicy(t *testing.T) {
	tests := []struct {
		name string
		cap  float64
		want float64
	}{
		{"default", 0, fec.DefaultMaxOverhead},
		{"quarter", 0.25, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link := netem.LinkConfig{Delay: 20 * time.Millisecond}
			p := newPair(t, pairOpts{fwd: link, rev: link, client: Config{MaxFECOverhead: tt.cap}})
			p.connected()
			sendFrames(t, p, 1, 3000)
			p.run(time.Second)
			require.NotNil(t, p.cc.snd.fec, "the first frame starts recovery")
			assert.Equal(t, tt.want, p.cc.snd.fec.Config().MaxOverhead)
		})
	}
}

// TestDupClasses: delta frames' last useful retransmission goes twice from
// 5 % loss on; audio's always; key frames' never.
func TestDupClasses(t *testing.T) {
	for _, tt := range []struct {
		loss float64
		want uint8
	}{
		{0, 1 << 0},
		{0.049, 1 << 0},
		{0.05, 1<<0 | 1<<2},
		{0.3, 1<<0 | 1<<2},
	} {
		assert.Equal(t, tt.want, dupClasses(tt.loss), "loss %v", tt.loss)
		assert.Equal(t, uint8(1), dupClasses(tt.loss)&1, "audio always")
		assert.Zero(t, dupClasses(tt.loss)&(1<<rtxClass(KindVideo, true, false)), "key frames never")
	}
	assert.Equal(t, uint8(2), rtxClass(KindVideo, false, false), "the delta class is bit 2")
}

// fecDeadline: FEC works to capture + Latency while its repairs can still
// arrive by then, and past that reach to the receiver's playout offset
// when it is longer (as retransmissions are held to): a key frame's tail
// is protected instead of left bare.
func TestFECDeadlineFollowsThePlayoutOffset(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name        string
		peerPlayout time.Duration
		sentAfter   time.Duration // from capture
		want        time.Duration // the deadline, from capture
	}{
		{"within Latency's reach", 500 * ms, 50 * ms, 300 * ms},
		{"past it, a longer playout offset", 500 * ms, 200 * ms, 500 * ms},
		{"past it, no longer offset", 0, 200 * ms, 300 * ms},
		{"past it, a shorter offset", 250 * ms, 200 * ms, 300 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(t, Config{})
			s := &p.cc.snd
			enc, err := fec.NewEncoder(fec.EncoderConfig{MaxSymbol: wire.ProtectedHeaderLen + p.cc.fragSize()})
			require.NoError(t, err)
			// Repairs leave 100 ms one way plus the 20 ms margin before
			// the deadline: Latency (300 ms) is out of reach 180 ms
			// after capture.
			enc.SetConditions(p.now, fec.Conditions{OneWay: 100 * ms})
			s.fec = enc
			s.peerPlayout = tc.peerPlayout
			capture := p.now
			f := &outFrame{capture: capture, deadline: capture.Add(p.cc.cfg.Latency)}
			assert.Equal(t, capture.Add(tc.want), s.fecDeadline(capture.Add(tc.sentAfter), f))
		})
	}
}
