package core

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/wire"
)

// A frame the sender declared dropped (a drop notice) breaks no reference:
// nothing references a droppable frame, and a sender that drops a
// reference frame drops its dependents too (deltas up to the next key
// frame), so every frame that arrives after a sender's drop decodes. The
// receiver marked the deltas after such a gap Undecodable until the next
// key frame, and asked for none (the gap was the sender's): the picture
// froze until the encoder's next periodic key frame.
func TestSenderDroppedDroppableFrameBreaksNothing(t *testing.T) {
	p := newPipe(t, Config{})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	write := func(i int, info FrameInfo) error {
		p.now = p.now.Add(33 * time.Millisecond)
		if info.Capture == 0 {
			info.Capture = p.now
		}
		err := p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 500), info)
		p.tick()
		return err
	}
	require.NoError(t, write(0, FrameInfo{Key: true}))
	require.NoError(t, write(1, FrameInfo{}))
	// Frame 2: droppable, and late on arrival (its capture 1 s ago).
	err = write(2, FrameInfo{Droppable: true, Capture: p.now.Add(-time.Second)})
	require.True(t, errors.Is(err, ErrFrameDropped))
	for i := 3; i < 10; i++ {
		require.NoError(t, write(i, FrameInfo{}))
	}
	var frames []FrameMeta
	for range 100 {
		p.now = p.now.Add(10 * time.Millisecond)
		p.tick()
		for {
			ev, ok := p.server.PollEvent()
			if !ok {
				break
			}
			if ev.Type == EventFrame {
				frames = append(frames, ev.Frame)
			}
		}
	}
	require.Len(t, frames, 9, "frames 0, 1 and 3-9 delivered")
	assert.Equal(t, int64(3), frames[2].ID)
	assert.Equal(t, int64(1), frames[2].DroppedBefore, "frame 2 reported dropped by the sender")
	assert.Zero(t, frames[2].LostBefore)
	undecodable := 0
	for _, f := range frames {
		if f.Undecodable {
			undecodable++
		}
	}
	assert.Zero(t, undecodable, "frames after a droppable frame the sender dropped decode")
	rs, _ := p.sc.RecvStreamStats(sid)
	assert.Equal(t, int64(1), rs.FramesDroppedBySender)
}

// "At start ... wait for a key frame and ask for one at once": a stream id
// the peer reuses (a new generation, docs/PROTOCOL.md §6.1) starts afresh,
// its key frames too. resetStream kept the old stream's sawKey: when the
// new stream's first key frame was lost, the first delta to complete did
// not ask for one (a fresh stream's does, TestKeyFrameAskedAtOnceWithoutOne),
// and the request waited for that delta's playout time.
func TestReusedStreamAsksForItsFirstKeyFrameAtOnce(t *testing.T) {
	p := newPipe(t, Config{DisableFEC: true, DisableRetransmission: true, MinPlayoutDelay: 200 * time.Millisecond})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	for i := range 5 {
		require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 500), FrameInfo{Capture: p.now, Key: i == 0}))
		p.tick()
		p.now = p.now.Add(33 * time.Millisecond)
	}
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	var nsid uint8
	for i := 0; ; i++ {
		require.Less(t, i, 5000)
		p.now = p.now.Add(time.Millisecond)
		p.tick()
		p.drainEvents()
		if nsid, err = p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo}); err == nil && nsid == sid {
			break
		}
		require.NoError(t, err)
		require.NoError(t, p.cc.CloseStream(p.now, nsid))
	}
	for range 20 { // the announcement of the new stream is acknowledged
		p.now = p.now.Add(5 * time.Millisecond)
		p.tick()
	}
	p.drainEvents()
	// The new stream's key frame 0 is lost (no recovery here).
	p.drop = func(from string, b []byte) bool {
		var h wire.DataHeader
		_, err := h.Parse(b)
		return from == "client" && err == nil && h.Stream == sid && h.FrameID == 0
	}
	require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, 0, 500), FrameInfo{Capture: p.now, Key: true}))
	p.tick()
	p.now = p.now.Add(33 * time.Millisecond)
	before := p.sc.Stats().PLIsSent
	require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, 1, 500), FrameInfo{Capture: p.now}))
	p.tick() // frame 1 completes now; its playout is 200 ms away
	rs, ok := p.sc.RecvStreamStats(sid)
	require.True(t, ok)
	require.Equal(t, int64(1), rs.FramesReceived, "the new stream's delta completed")
	assert.Equal(t, before+1, p.sc.Stats().PLIsSent, "a key frame asked for as the first delta completes")
}

// A feedback packet fits MaxDatagramSize (the transport's send buffer is
// exactly that long: transport.go slices txbuf[:n]). NACKs and drop
// notices left a fixed 200 bytes for what follows them, but up to 16 PLIs
// (12 bytes each) and a receiver report (32 bytes) take 224: a peer that
// announces 16 video streams, sends one delta on each (no key frame yet:
// each asks for one) and leaves every 17th packet number out (a NACK pair
// each) made the receiver build a 1224-byte feedback packet, written past
// the end of dst (append reallocates), n > len(dst).
func TestFeedbackFitsMaxDatagramSize(t *testing.T) {
	cfg := Config{MaxDatagramSize: 1200, FragmentSize: 1000, MaxFrameSize: 1 << 20}
	p := newPipe(t, cfg)
	sc := p.sc
	pn := uint32(p.cc.nextPN) + 100
	next := func() uint32 { v := pn & (1<<24 - 1); pn++; return v }
	send := func(b []byte) { p.server.HandleDatagram(p.now, clientAddr, b) }
	var data []byte
	for id := range wire.MaxStreams {
		data = append(data, byte(id), byte(KindVideo), byte(PriorityLow), streamFlagOpen)
	}
	b, err := wire.AppendFeedbackHeader(nil, sc.localCID, next())
	require.NoError(t, err)
	b, err = (&wire.App{Subtype: appSubStreams, Name: appStreamName, Data: data}).Append(b)
	require.NoError(t, err)
	send(b)
	ts := wire.Timestamp(p.now, p.cc.epoch)
	for id := range wire.MaxStreams {
		h := wire.DataHeader{DstConnID: sc.localCID, PacketNumber: next(), Stream: uint8(id), FragCount: 1, SendTime: ts}
		b, err := h.Append(nil)
		require.NoError(t, err)
		b, err = wire.AppendFramePrefix(b, ts)
		require.NoError(t, err)
		send(append(b, make([]byte, 100)...))
	}
	require.Equal(t, int64(wire.MaxStreams), sc.Stats().FramesReceived)
	for range 300 {
		next() // never arrives
		for range 16 {
			pg := wire.Ping{DstConnID: sc.localCID, PacketNumber: next(), Echo: 1}
			b, err := pg.Append(nil)
			require.NoError(t, err)
			send(b)
		}
	}
	p.now = p.now.Add(10 * time.Millisecond)
	if p.server.NextTimeout() <= p.now {
		p.server.HandleTimeout(p.now)
	}
	dst := make([]byte, cfg.MaxDatagramSize)
	worst := 0
	for range 20 {
		n, _, ok := p.server.PollTransmit(p.now, dst)
		if !ok {
			break
		}
		worst = max(worst, n)
	}
	assert.Positive(t, sc.Stats().PLIsSent)
	assert.LessOrEqual(t, worst, cfg.MaxDatagramSize, "every datagram fits MaxDatagramSize (and dst)")
}

// A drop notice for a frame cut short disarms the tail-loss timer waiting
// for its last fragments ("so it neither NACKs nor waits"). The notice's
// Forget disarmed it only when the declared run reached the next packet
// number expected, and the feedback packet carrying the notice had moved
// that on (and re-armed the timer: shiftTail): the timer fired and the
// receiver NACKed 77 packet numbers it guessed carried the dropped frame's
// fragments, which the sender will never send.
func TestNoTailNACKsForAFrameDeclaredDropped(t *testing.T) {
	p := newPipe(t, Config{DisableFEC: true})
	sc := p.sc
	pn := uint32(p.cc.nextPN) // the client sends nothing more itself: the test speaks for it
	next := func() uint32 { v := pn & (1<<24 - 1); pn++; return v }
	send := func(b []byte) { p.server.HandleDatagram(p.now, clientAddr, b) }
	feedback := func(app wire.App) {
		b, err := wire.AppendFeedbackHeader(nil, sc.localCID, next())
		require.NoError(t, err)
		b, err = app.Append(b)
		require.NoError(t, err)
		send(b)
	}
	fs := int(p.cc.fragSize())
	fragment := func(frame uint16, idx, count uint16, key bool) uint32 {
		ts := wire.Timestamp(p.now, p.cc.epoch)
		at := next()
		h := wire.DataHeader{DstConnID: sc.localCID, PacketNumber: at, Stream: 0, FrameID: frame,
			FragIndex: idx, FragCount: count, Key: key, SendTime: ts}
		b, err := h.Append(nil)
		require.NoError(t, err)
		n := fs
		if idx == 0 {
			b, err = wire.AppendFramePrefix(b, ts)
			require.NoError(t, err)
			n -= wire.FramePrefixLen
		}
		send(append(b, make([]byte, n)...))
		return at
	}
	feedback(wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}})
	fragment(0, 0, 1, true) // key frame 0: one fragment, complete
	p.now = p.now.Add(33 * time.Millisecond)
	// Frame 1: 10 fragments; the sender cuts it short after 3.
	first := fragment(1, 0, 10, false)
	fragment(1, 1, 10, false)
	fragment(1, 2, 10, false)
	notice := make([]byte, dropNoticeLen)
	notice[2], notice[3] = 0, dropFlagPackets
	notice[5], notice[7] = 1, 1 // first frame 1, frames 1
	run := first<<8 | 3
	notice[8], notice[9], notice[10], notice[11] = byte(run>>24), byte(run>>16), byte(run>>8), byte(run)
	feedback(wire.App{Subtype: appSubDrops, Name: appDropName, Data: notice})
	require.Equal(t, int64(1), sc.Stats().DropNoticesReceived)
	buf := make([]byte, 2048)
	for range 30 { // 30 ms in which nothing more comes
		p.now = p.now.Add(time.Millisecond)
		if p.server.NextTimeout() <= p.now {
			p.server.HandleTimeout(p.now)
		}
		for {
			if _, _, ok := p.server.PollTransmit(p.now, buf); !ok {
				break
			}
		}
	}
	assert.Zero(t, sc.Stats().PacketsNACKed, "nothing NACKed for a frame declared dropped")
	assert.Zero(t, sc.rcv.nack.Stats().TailPackets, "the tail-loss timer guessed the dropped frame's fragments lost")
}

// "Transport-wide CC feedback every 50-100 ms, each repeating the previous
// 100 ms of arrivals so one lost report loses nothing" (the cc issue). The
// repeat was a fixed 100 ms whatever FeedbackInterval: at an interval of
// 100 ms a report repeated only the arrivals since the one before it, so
// what a lost report carried was never reported. It is now two intervals,
// at least 100 ms.
func TestTransportFeedbackRepeatsAt100ms(t *testing.T) {
	est := &countingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, seen: map[int64]int{}}
	p := newPipe(t, Config{FeedbackInterval: 100 * time.Millisecond, Estimator: func() cc.Estimator { return est }})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
	require.NoError(t, err)
	reports, lost := 0, 0
	p.drop = func(from string, b []byte) bool {
		if from != "server" || wire.Type(b[0]>>3&7) != wire.TypeFeedback {
			return false
		}
		var sh wire.ShortHeader
		rtcp, err := wire.ParseFeedbackHeader(b, &sh)
		require.NoError(t, err)
		var f wire.Feedback
		require.NoError(t, wire.ParseFeedback(rtcp, &f))
		if len(f.TWCCs) == 0 {
			return false
		}
		reports++
		if reports%2 == 0 { // every second report is lost
			lost++
			return true
		}
		return false
	}
	for i := range 300 {
		p.now = p.now.Add(10 * time.Millisecond)
		if i < 250 && i%2 == 0 {
			require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 2500), FrameInfo{Capture: p.now, Key: i == 0}))
		}
		p.tick()
		p.drainEvents()
	}
	sent := p.cc.Stats().MediaPacketsSent
	require.Equal(t, sent, p.sc.Stats().MediaPacketsReceived, "the forward path loses nothing")
	require.Positive(t, lost)
	assert.Equal(t, int(sent), len(est.seen), "every packet that arrived reaches the estimator though one report in two is lost")
}

// A drop notice that comes before the first media packet. The sender's
// first frame (a key frame) is cut short after three fragments, all three
// lost; the notice declaring them reaches the receiver before any media
// packet, before its NACK generator exists (the first media packet starts
// it). The declared packet numbers were not remembered, and the generator
// the next frame's packet started listed every packet number since 0 that
// did not come (expectFromStart): 72 NACKed. A notice now starts it.
func TestDropNoticeBeforeFirstMediaPacket(t *testing.T) {
	p := newPipe(t, Config{DisableFEC: true})
	sc := p.sc
	pn := uint32(p.cc.nextPN)
	next := func() uint32 { v := pn & (1<<24 - 1); pn++; return v }
	send := func(b []byte) { p.server.HandleDatagram(p.now, clientAddr, b) }
	feedback := func(app wire.App) {
		b, err := wire.AppendFeedbackHeader(nil, sc.localCID, next())
		require.NoError(t, err)
		b, err = app.Append(b)
		require.NoError(t, err)
		send(b)
	}
	feedback(wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}})
	// Frame 0: three fragments sent and lost, then cut short.
	first := next()
	next()
	next()
	notice := make([]byte, dropNoticeLen)
	notice[3] = dropFlagPackets
	notice[7] = 1 // first frame 0, frames 1
	run := first<<8 | 3
	notice[8], notice[9], notice[10], notice[11] = byte(run>>24), byte(run>>16), byte(run>>8), byte(run)
	feedback(wire.App{Subtype: appSubDrops, Name: appDropName, Data: notice})
	require.Equal(t, int64(1), sc.Stats().DropNoticesReceived)
	// Frame 1: the key frame asked for, one fragment.
	p.now = p.now.Add(20 * time.Millisecond)
	ts := wire.Timestamp(p.now, p.cc.epoch)
	h := wire.DataHeader{DstConnID: sc.localCID, PacketNumber: next(), Stream: 0, FrameID: 1, FragCount: 1, Key: true, SendTime: ts}
	b, err := h.Append(nil)
	require.NoError(t, err)
	b, err = wire.AppendFramePrefix(b, ts)
	require.NoError(t, err)
	send(append(b, make([]byte, 200)...))
	buf := make([]byte, 2048)
	for range 50 {
		p.now = p.now.Add(time.Millisecond)
		if p.server.NextTimeout() <= p.now {
			p.server.HandleTimeout(p.now)
		}
		for {
			if _, _, ok := p.server.PollTransmit(p.now, buf); !ok {
				break
			}
		}
	}
	rs, ok := sc.RecvStreamStats(0)
	require.True(t, ok)
	require.Equal(t, int64(1), rs.FramesReceived)
	assert.Zero(t, sc.Stats().PacketsNACKed, "the packets of a frame declared dropped are never NACKed")
}
