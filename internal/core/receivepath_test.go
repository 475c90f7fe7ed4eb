package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
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
	p.writeFrames(t, sid, 5)
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	p.reopen(t, sid)
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

// voice speaks for a pipe's client, crafting what it sends to the server
// (the client itself sends nothing more).
type voice struct {
	t  *testing.T
	p  *pipe
	pn uint32
}

func newVoice(t *testing.T, p *pipe) *voice { return &voice{t: t, p: p, pn: uint32(p.cc.nextPN)} }

// next takes a packet number.
func (v *voice) next() uint32 { n := v.pn & (1<<24 - 1); v.pn++; return n }

func (v *voice) send(b []byte) { v.p.server.HandleDatagram(v.p.now, clientAddr, b) }

// feedback sends an APP message in a feedback packet.
func (v *voice) feedback(app wire.App) {
	b, err := wire.AppendFeedbackHeader(nil, v.p.sc.localCID, v.next())
	require.NoError(v.t, err)
	b, err = app.Append(b)
	require.NoError(v.t, err)
	v.send(b)
}

// fragment sends a full-size fragment of a frame on stream 0 and returns
// its packet number.
func (v *voice) fragment(frame uint16, idx, count uint16, key bool) uint32 {
	ts := wire.Timestamp(v.p.now, v.p.cc.epoch)
	at := v.next()
	h := wire.DataHeader{DstConnID: v.p.sc.localCID, PacketNumber: at, Stream: 0, FrameID: frame,
		FragIndex: idx, FragCount: count, Key: key, SendTime: ts}
	b, err := h.Append(nil)
	require.NoError(v.t, err)
	n := int(v.p.cc.fragSize())
	if idx == 0 {
		b, err = wire.AppendFramePrefix(b, ts)
		require.NoError(v.t, err)
		n -= wire.FramePrefixLen
	}
	v.send(append(b, make([]byte, n)...))
	return at
}

// dropNotice sends a drop notice for frames [first, first+frames) of
// stream 0 and the run of n packet numbers from pn.
func (v *voice) dropNotice(first, frames uint16, pn uint32, n uint8) {
	notice := make([]byte, dropNoticeLen)
	notice[3] = dropFlagPackets
	binary.BigEndian.PutUint16(notice[4:], first)
	binary.BigEndian.PutUint16(notice[6:], frames)
	binary.BigEndian.PutUint32(notice[8:], pn<<8|uint32(n))
	v.feedback(wire.App{Subtype: appSubDrops, Name: appDropName, Data: notice})
}

// run advances the server by d in 1 ms steps, sending what it has.
func (v *voice) run(d time.Duration) {
	buf := make([]byte, 2048)
	for end := v.p.now.Add(d); v.p.now < end; {
		v.p.now = v.p.now.Add(time.Millisecond)
		if v.p.server.NextTimeout() <= v.p.now {
			v.p.server.HandleTimeout(v.p.now)
		}
		for {
			if _, _, ok := v.p.server.PollTransmit(v.p.now, buf); !ok {
				break
			}
		}
	}
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
	v := newVoice(t, p)
	v.feedback(wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}})
	v.fragment(0, 0, 1, true) // key frame 0: one fragment, complete
	p.now = p.now.Add(33 * time.Millisecond)
	// Frame 1: 10 fragments; the sender cuts it short after 3.
	first := v.fragment(1, 0, 10, false)
	v.fragment(1, 1, 10, false)
	v.fragment(1, 2, 10, false)
	v.dropNotice(1, 1, first, 3)
	require.Equal(t, int64(1), p.sc.Stats().DropNoticesReceived)
	v.run(30 * time.Millisecond) // nothing more comes
	assert.Zero(t, p.sc.Stats().PacketsNACKed, "nothing NACKed for a frame declared dropped")
	assert.Zero(t, p.sc.rcv.nack.Stats().TailPackets, "the tail-loss timer guessed the dropped frame's fragments lost")
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
	v := newVoice(t, p)
	v.feedback(wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}})
	// Frame 0: three fragments sent and lost, then cut short.
	first := v.next()
	v.next()
	v.next()
	v.dropNotice(0, 1, first, 3)
	require.Equal(t, int64(1), p.sc.Stats().DropNoticesReceived)
	// Frame 1: the key frame asked for, one fragment.
	p.now = p.now.Add(20 * time.Millisecond)
	v.fragment(1, 0, 1, true)
	v.run(50 * time.Millisecond)
	rs, ok := p.sc.RecvStreamStats(0)
	require.True(t, ok)
	require.Equal(t, int64(1), rs.FramesReceived)
	assert.Zero(t, p.sc.Stats().PacketsNACKed, "the packets of a frame declared dropped are never NACKed")
}

// A drop notice of more frames than the jitter buffer remembers singly
// (jitterbuffer.GoneMemory, 32) is one run: the frames after it decode, as
// after a shorter one. With 40 frames dropped, the 18 after them came out
// undecodable and no key frame was asked for (the whole gap was the
// sender's).
func TestLongSenderDropLeavesTheStreamDecodable(t *testing.T) {
	for _, n := range []uint16{30, 40, 500} {
		t.Run(fmt.Sprintf("%d frames dropped", n), func(t *testing.T) {
			p := newPipe(t, Config{DisableFEC: true})
			v := newVoice(t, p)
			v.feedback(wire.App{Subtype: appSubStreams, Name: appStreamName, Data: []byte{0, byte(KindVideo), 0, streamFlagOpen}})
			v.fragment(0, 0, 1, true)
			v.run(33 * time.Millisecond)
			v.fragment(1, 0, 1, false)
			v.run(33 * time.Millisecond)
			notice := make([]byte, dropNoticeLen) // frames 2 .. 2+n-1, no packets sent
			binary.BigEndian.PutUint16(notice[4:], 2)
			binary.BigEndian.PutUint16(notice[6:], n)
			v.feedback(wire.App{Subtype: appSubDrops, Name: appDropName, Data: notice})
			plis := p.sc.Stats().PLIsSent
			for id := 2 + n; id < 2+n+18; id++ {
				v.fragment(id, 0, 1, false)
				v.run(33 * time.Millisecond)
			}
			v.run(500 * time.Millisecond)
			undec, delivered := 0, 0
			for {
				ev, ok := p.server.PollEvent()
				if !ok {
					break
				}
				if ev.Type == EventFrame {
					delivered++
					if ev.Frame.Undecodable {
						undec++
					}
				}
			}
			assert.Equal(t, 20, delivered)
			assert.Zero(t, undec, "frames after a gap the sender made decode")
			assert.Equal(t, plis, p.sc.Stats().PLIsSent, "no key frame asked for")
			rs, _ := p.sc.RecvStreamStats(0)
			assert.Equal(t, int64(n), rs.FramesDroppedBySender)
		})
	}
}

// A stream id the peer reuses, whose new announcement is lost: the new
// stream's first frames arrive before it. They were taken for the old,
// finished stream's (duplicates of its frames 0, 1, ...) and dropped, key
// frame 0 with them, and the new stream played undecodable until a key
// frame answered a request. A data packet on a closed, finished stream's
// id is a new stream's (docs/PROTOCOL.md: the sender reuses an id only once
// none of the old stream's packets can be sent again): its frames are
// assembled and held for its announcement, as a stream not yet announced.
func TestReusedStreamBeforeItsAnnouncement(t *testing.T) {
	p := newPipe(t, Config{MinPlayoutDelay: 200 * time.Millisecond})
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
	require.NoError(t, err)
	p.tick()
	p.writeFrames(t, sid, 5)
	require.NoError(t, p.cc.CloseStream(p.now, sid))
	p.reopen(t, sid)
	// Everything but data from the client is lost for 150 ms: the new
	// stream's announcement with it.
	lostUntil := p.now.Add(150 * time.Millisecond)
	p.drop = func(from string, b []byte) bool {
		typ := wire.Type(b[0] >> 3 & 7)
		return from == "client" && typ != wire.TypeData && typ != wire.TypeRetransmit && p.now < lostUntil
	}
	var frames []FrameMeta
	var lost int
	for i := 0; i < 60; i++ {
		if i < 10 {
			require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 500), FrameInfo{Capture: p.now, Key: i == 0}))
		}
		for range 33 {
			p.tick()
			p.now = p.now.Add(time.Millisecond)
			for {
				ev, ok := p.server.PollEvent()
				if !ok {
					break
				}
				switch {
				case ev.Stream != sid:
				case ev.Type == EventFrame:
					frames = append(frames, ev.Frame)
				case ev.Type == EventFrameLost:
					lost++
				}
			}
		}
	}
	require.Len(t, frames, 10, "every frame of the new stream delivered")
	for i, f := range frames {
		assert.Equal(t, int64(i), f.ID)
		assert.False(t, f.Undecodable, "frame %d", i)
	}
	assert.True(t, frames[0].Key)
	assert.Zero(t, lost)
	assert.Zero(t, p.sc.Stats().ProtocolErrors)
}

// A data packet of a stream that has closed and ended, held up in the
// network past the stream's end (its retransmission completed the frame
// in time), is no packet of the stream reusing the id: it was sent before
// the stream ended. Taken for one (the first version of the rule above),
// the old frame stood as the new stream's, and the new stream's frames
// were refused or played undecodable. (Stop 36's review of that change.)
func TestLateOldDataIsNotTheReusedStreams(t *testing.T) {
	for _, justBefore := range []bool{false, true} {
		t.Run(fmt.Sprintf("just before the reuse %v", justBefore), func(t *testing.T) {
			p := newPipe(t, Config{MinPlayoutDelay: 200 * time.Millisecond})
			sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
			require.NoError(t, err)
			p.tick()
			var late []byte
			p.drop = func(from string, b []byte) bool {
				if from != "client" || wire.Type(b[0]>>3&7) != wire.TypeData || late != nil {
					return false
				}
				var h wire.DataHeader
				if _, err := h.Parse(b); err == nil && h.Stream == sid && h.FrameID == 3 {
					late = append([]byte(nil), b...) // held up in the network
					return true
				}
				return false
			}
			p.writeFrames(t, sid, 5)
			require.NotNil(t, late)
			require.NoError(t, p.cc.CloseStream(p.now, sid))
			st := p.sc.rcv.streams[sid]
			for i := 0; st.open || st.closeAt != clock.Never; i++ {
				require.Less(t, i, 5000)
				p.now = p.now.Add(time.Millisecond)
				p.tick()
			}
			p.drainEvents()
			// The old stream has ended here: its delayed packet comes, long
			// before the id is reused, or as the sender reuses it.
			if !justBefore {
				p.server.HandleDatagram(p.now, clientAddr, late)
			}
			p.reopen(t, sid)
			if justBefore {
				p.server.HandleDatagram(p.now, clientAddr, late)
			}
			errsBefore := p.sc.Stats().ProtocolErrors
			var frames []Event
			for i := 0; i < 60; i++ {
				if i < 10 {
					require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, 100+int64(i), 700), FrameInfo{Capture: p.now, Key: i == 0}))
				}
				for range 33 {
					p.tick()
					p.now = p.now.Add(time.Millisecond)
					for {
						ev, ok := p.server.PollEvent()
						if !ok {
							break
						}
						if ev.Stream == sid && ev.Type == EventFrame {
							ev.Data = append([]byte(nil), ev.Data...)
							frames = append(frames, ev)
						}
					}
				}
			}
			var want, got []string
			for i := range 10 {
				want = append(want, fmt.Sprintf("%d lostBefore=0 undecodable=false new=true", i))
			}
			for _, ev := range frames {
				got = append(got, fmt.Sprintf("%d lostBefore=%d undecodable=%v new=%v", ev.Frame.ID, ev.Frame.LostBefore,
					ev.Frame.Undecodable, bytes.Equal(ev.Data, payload(sid, 100+ev.Frame.ID, 700))))
			}
			assert.Equal(t, want, got, "the new stream's frames, from its key frame 0")
			assert.Equal(t, errsBefore, p.sc.Stats().ProtocolErrors)
		})
	}
}

// writeFrames writes n 500-byte frames on sid, 33 ms apart, the first a
// key frame.
func (p *pipe) writeFrames(t *testing.T, sid uint8, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, p.cc.WriteFrame(p.now, sid, payload(sid, int64(i), 500), FrameInfo{Capture: p.now, Key: i == 0}))
		p.tick()
		p.now = p.now.Add(33 * time.Millisecond)
	}
}

// reopen opens video streams (closing each again) until the sender hands
// out sid once more: it reuses a closed stream's id only once none of its
// packets can be sent again (docs/PROTOCOL.md §6.1). It returns at the
// moment of the reuse, the new stream open.
func (p *pipe) reopen(t *testing.T, sid uint8) {
	t.Helper()
	for i := 0; ; i++ {
		require.Less(t, i, 5000)
		p.now = p.now.Add(time.Millisecond)
		p.tick()
		p.drainEvents()
		nsid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo})
		require.NoError(t, err)
		if nsid == sid {
			return
		}
		require.NoError(t, p.cc.CloseStream(p.now, nsid))
	}
}
