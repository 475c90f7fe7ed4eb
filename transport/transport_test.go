package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	addrA = netip.MustParseAddrPort("10.1.0.1:1000")
	addrB = netip.MustParseAddrPort("10.1.0.2:2000")
)

// netemPair returns a listening and a dialing transport over an in-memory
// network with the given link each way. Call inside a synctest bubble.
func netemPair(t *testing.T, link netem.LinkConfig, cfg *Config) (*Listener, *Transport, *netem.Network) {
	t.Helper()
	n := netem.NewNetwork(1)
	ca, err := n.Listen(addrA)
	require.NoError(t, err)
	cb, err := n.Listen(addrB)
	require.NoError(t, err)
	require.NoError(t, n.SetLink(addrA, addrB, link))
	require.NoError(t, n.SetLink(addrB, addrA, link))
	server := &Transport{Conn: ca, Config: cfg}
	l, err := server.Listen()
	require.NoError(t, err)
	client := &Transport{Conn: cb, Config: cfg}
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
		_ = ca.Close()
		_ = cb.Close()
		_ = n.Close()
	})
	return l, client, n
}

// loneConn returns a PacketConn on an in-memory network with nobody else
// on it. Call inside a synctest bubble.
func loneConn(t *testing.T) *netem.PacketConn {
	t.Helper()
	n := netem.NewNetwork(1)
	c, err := n.Listen(addrB)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.Close()
		_ = n.Close()
	})
	return c
}

// dialAccept opens a session from client to l and returns both ends.
func dialAccept(t *testing.T, l *Listener, client *Transport) (cs, ss *Session) {
	t.Helper()
	cs, err := client.Dial(context.Background(), net.UDPAddrFromAddrPort(addrA))
	require.NoError(t, err)
	ss, err = l.Accept(context.Background())
	require.NoError(t, err)
	return cs, ss
}

func frameData(track, i int) []byte {
	b := make([]byte, 500+i*37%9000)
	for j := range b {
		b[j] = byte(j*track + i)
	}
	return b
}

func TestSessionOverEmulatedLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		link := netem.LinkConfig{Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 10_000_000}
		l, client, _ := netemPair(t, link, nil)
		start := time.Now()
		cs, err := client.Dial(ctx, net.UDPAddrFromAddrPort(addrA))
		require.NoError(t, err)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 120*time.Millisecond, "two round trips: Hello, Retry, Hello, Accept")
		assert.LessOrEqual(t, took, 140*time.Millisecond, "plus at most 5 ms of jitter on each of the four trips")
		ss, err := l.Accept(ctx)
		require.NoError(t, err)
		assert.True(t, ss.Incoming())
		assert.False(t, cs.Incoming())
		assert.Equal(t, addrB.String(), ss.RemoteAddr().String())

		audio, err := cs.Publish(ctx, TrackConfig{Kind: KindAudio, Priority: PriorityHigh})
		require.NoError(t, err)
		video, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo, Bitrate: 3_000_000})
		require.NoError(t, err)
		assert.NotEqual(t, audio.ID(), video.ID())

		const frames = 100
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range frames {
				require.NoError(t, audio.WriteFrame(ctx, Frame{Data: frameData(1, i)}))
				require.NoError(t, video.WriteFrame(ctx, Frame{Data: frameData(2, i), Keyframe: i%30 == 0}))
				time.Sleep(20 * time.Millisecond)
			}
		})
		got := map[Kind]int{}
		var mu sync.Mutex
		for range 2 {
			rt, err := ss.AcceptTrack(ctx)
			require.NoError(t, err)
			wg.Go(func() {
				buf := make([]byte, 1<<16)
				track := 1
				if rt.Kind() == KindVideo {
					track = 2
				}
				for i := range frames {
					n, info, err := rt.ReadFrame(ctx, buf)
					require.NoError(t, err)
					assert.Equal(t, int64(i), info.ID)
					assert.True(t, bytes.Equal(frameData(track, i), buf[:n]), "track %d frame %d", track, i)
					assert.Equal(t, track == 2 && i%30 == 0, info.Keyframe)
					// The adaptive playout offset stays within the budget on
					// a clean link, after the path's delay.
					off := info.PlayoutTime.Sub(info.CaptureTime)
					assert.LessOrEqual(t, off, 300*time.Millisecond, "frame %d", i)
					assert.Positive(t, off)
					assert.Zero(t, info.LostBefore)
					mu.Lock()
					got[rt.Kind()]++
					mu.Unlock()
				}
				ps, err := rt.PlayoutStats(ctx)
				require.NoError(t, err)
				assert.Equal(t, int64(frames), ps.FramesReleased, "jitterBufferEmittedCount")
				assert.Zero(t, ps.FramesReleasedLate)
				assert.Positive(t, ps.JitterBufferDelay)
				assert.Positive(t, ps.Offset)
			})
		}
		wg.Wait()
		assert.Equal(t, map[Kind]int{KindAudio: frames, KindVideo: frames}, got)
		st := ss.Stats()
		assert.Equal(t, int64(2*frames), st.FramesDelivered)
		assert.InDelta(t, 60*time.Millisecond, st.MinRoundTripTime, float64(11*time.Millisecond))

		require.NoError(t, cs.Close())
		<-ss.Done()
		var ce *CloseError
		require.ErrorAs(t, ss.Err(), &ce)
		assert.True(t, ce.Remote)
		assert.ErrorIs(t, ss.Err(), ErrClosed)
		assert.ErrorIs(t, cs.Err(), ErrClosed)
		_, err = audio.s.Publish(ctx, TrackConfig{})
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, audio.WriteFrame(ctx, Frame{Data: []byte{1}}), ErrClosed)
		assert.Equal(t, int64(2*frames), cs.Stats().FramesSent, "stats survive the close")
	})
}

// With PassThrough a received frame is delivered as soon as it completes:
// its playout time is its completion time, with no buffering.
func TestPassThroughDeliversOnCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		link := netem.LinkConfig{Delay: 30 * time.Millisecond, Jitter: 20 * time.Millisecond, Rate: 10_000_000}
		l, client, _ := netemPair(t, link, &Config{PassThrough: true})
		cs, ss := dialAccept(t, l, client)
		video, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo, Bitrate: 2_000_000})
		require.NoError(t, err)
		const frames = 60
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range frames {
				require.NoError(t, video.WriteFrame(ctx, Frame{Data: frameData(2, i), Keyframe: i%30 == 0}))
				time.Sleep(33 * time.Millisecond)
			}
		})
		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		buf := make([]byte, 1<<16)
		for i := range frames {
			n, info, err := rt.ReadFrame(ctx, buf)
			require.NoError(t, err)
			assert.Equal(t, int64(i), info.ID)
			assert.True(t, bytes.Equal(frameData(2, int(info.ID)), buf[:n]), "frame %d", info.ID)
			assert.Equal(t, info.CompleteTime, info.PlayoutTime, "frame %d: delivered as it completed", i)
			assert.Less(t, info.PlayoutTime.Sub(info.CaptureTime), 100*time.Millisecond, "frame %d: 30-50 ms one way, no buffer", i)
		}
		wg.Wait()
		ps, err := rt.PlayoutStats(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(frames), ps.FramesReleased)
		// Held from its first packet to its completion only (W3C's
		// jitterBufferDelay counts the frame's assembly): at most the
		// frames' spread of 20 ms of jitter each.
		assert.Less(t, ps.JitterBufferDelay, frames*25*time.Millisecond)
		require.NoError(t, cs.Close())
		<-ss.Done()
	})
}

func TestLossyLinkReportsLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 20 * time.Millisecond, Loss: 0.05}, nil)
		cs, ss := dialAccept(t, l, client)
		var statusMu sync.Mutex
		var reports []NetStatus
		ss.OnNetStatus(func(st NetStatus) {
			statusMu.Lock()
			reports = append(reports, st)
			statusMu.Unlock()
		})
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		go func() {
			for i := range 200 {
				_ = v.WriteFrame(ctx, Frame{Data: frameData(2, i)})
				time.Sleep(30 * time.Millisecond)
			}
			_ = v.Close()
		}()
		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		buf := make([]byte, 1<<16)
		var got, lost int64
		last := int64(-1)
		for {
			n, info, err := rt.ReadFrame(ctx, buf)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			assert.Equal(t, frameData(2, int(info.ID)), buf[:n])
			assert.Equal(t, info.ID-last-1, info.LostBefore)
			last = info.ID
			got++
			lost += info.LostBefore
		}
		assert.Greater(t, got, int64(100))
		assert.LessOrEqual(t, lost, int64(4), "5 % packet loss: retransmissions repair all but a few frames")
		assert.Equal(t, int64(200), got+lost+(199-last))

		statusMu.Lock()
		defer statusMu.Unlock()
		require.GreaterOrEqual(t, len(reports), 6, "one NetStatus a second over 6 s")
		assert.LessOrEqual(t, reports[0].Interval, time.Second, "the first covers the time since the session began")
		var rcv, lostPkts, frames int64
		for _, st := range reports[1:6] {
			assert.Equal(t, time.Second, st.Interval)
			assert.Positive(t, st.ReceiveBitrate)
			assert.Equal(t, 40*time.Millisecond, st.RoundTripTime.Round(10*time.Millisecond))
			// 33.3 frames a second, played up to 10 % fast while the
			// playout offset drains (RTC's rate), plus one at the edge.
			assert.LessOrEqual(t, st.FramesDelivered, int64(38), "at most 36.7 frames a second")
			rcv += st.PacketsReceived
			lostPkts += st.PacketsLost
		}
		for _, st := range reports {
			frames += st.FramesDelivered
		}
		assert.InDelta(t, 0.05, float64(lostPkts)/float64(rcv+lostPkts), 0.03)
		assert.InDelta(t, got, frames, 34, "the reports account for the frames read, but the last second's")
	})
}

func TestDialErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := loneConn(t)
		tr := &Transport{Conn: c, Config: &Config{HandshakeTimeout: 2 * time.Second}}
		defer tr.Close()
		start := time.Now()
		_, err := tr.Dial(context.Background(), net.UDPAddrFromAddrPort(addrA))
		assert.ErrorIs(t, err, ErrHandshakeTimeout)
		assert.Equal(t, 2*time.Second, time.Since(start))

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err = tr.Dial(ctx, net.UDPAddrFromAddrPort(addrA))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})

	_, err := (&Transport{}).Dial(context.Background(), &net.UDPAddr{})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	err = (&Config{Latency: -time.Second}).Validate()
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "Latency")
	_, err = Dial(context.Background(), "not an address", nil)
	assert.Error(t, err)
}

func TestRefusedWhenNotListening(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: time.Millisecond}, nil)
		require.NoError(t, l.Close())
		_, err := client.Dial(context.Background(), net.UDPAddrFromAddrPort(addrA))
		var rej *RejectError
		require.ErrorAs(t, err, &rej)
		assert.ErrorIs(t, err, ErrRejected)
		_, err = l.Accept(context.Background())
		assert.ErrorIs(t, err, ErrClosed)
	})
}

func TestFrameErrorsAndCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, &Config{MaxFrameSize: 100_000})
		cs, ss := dialAccept(t, l, client)
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		assert.ErrorIs(t, v.WriteFrame(ctx, Frame{Data: make([]byte, 100_001)}), ErrFrameTooLarge)
		// Droppable: nothing references it, so the frames after it still go
		// (a dropped reference frame would hold them until a key frame).
		assert.ErrorIs(t, v.WriteFrame(ctx, Frame{Data: []byte{1}, CaptureTime: time.Now().Add(-time.Second), Droppable: true}), ErrFrameDropped)
		_, err = cs.Publish(ctx, TrackConfig{Kind: 7})
		assert.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorIs(t, cs.CloseWithError(5, ""), ErrInvalidConfig, "codes below 0x100 are reserved")

		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, _, err = rt.ReadFrame(short, make([]byte, 10))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		_, err = ss.AcceptTrack(short)
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		require.NoError(t, v.WriteFrame(ctx, Frame{Data: frameData(2, 3)}))
		_, info, err := rt.ReadFrame(ctx, make([]byte, 10))
		assert.ErrorIs(t, err, io.ErrShortBuffer)
		assert.Equal(t, len(frameData(2, 3)), info.Size)
		buf := make([]byte, info.Size)
		n, _, err := rt.ReadFrame(ctx, buf)
		require.NoError(t, err, "the frame was kept for a bigger buffer")
		assert.Equal(t, frameData(2, 3), buf[:n])

		// Key-frame requests reach the sender's callback.
		asked := make(chan struct{}, 1)
		v.OnKeyFrameRequest(func() { asked <- struct{}{} })
		require.NoError(t, rt.RequestKeyFrame(ctx))
		<-asked

		// A reader that falls behind loses the oldest frames, counted.
		_ = v.Close()
		assert.ErrorIs(t, v.Close(), ErrClosed)
		_, _, err = rt.ReadFrame(ctx, buf)
		assert.ErrorIs(t, err, io.EOF)
	})
}

func TestSlowReaderDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, &Config{FrameQueue: 4})
		cs, ss := dialAccept(t, l, client)
		a, err := cs.Publish(ctx, TrackConfig{Kind: KindAudio})
		require.NoError(t, err)
		for i := range 10 {
			require.NoError(t, a.WriteFrame(ctx, Frame{Data: []byte{byte(i)}}))
			time.Sleep(20 * time.Millisecond)
		}
		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		time.Sleep(time.Second)
		assert.Equal(t, int64(6), rt.Dropped())
		buf := make([]byte, 8)
		n, info, err := rt.ReadFrame(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, []byte{6}, buf[:n], "the newest four remain")
		assert.Equal(t, int64(6), info.ID)
	})
}

func TestTransportCloseEndsSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, ss := dialAccept(t, l, client)
		require.NoError(t, client.Close())
		<-cs.Done()
		<-ss.Done()
		assert.ErrorIs(t, cs.Err(), ErrClosed)
		var ce *CloseError
		assert.ErrorAs(t, ss.Err(), &ce, "the peer was told")
		_, err := client.Dial(ctx, net.UDPAddrFromAddrPort(addrA))
		assert.ErrorIs(t, err, ErrClosed)
		require.NoError(t, client.Close(), "Close twice is fine")
	})
}

// TestLoopbackUDP runs a session over real UDP sockets on loopback, which
// takes the batched (recvmmsg/sendmmsg) path on Linux.
func TestLoopbackUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Real time on a shared machine: a 3 s budget keeps scheduling stalls
	// from dropping frames, while playout stays quick.
	cfg := &Config{Latency: 3 * time.Second, MaxPlayoutDelay: 50 * time.Millisecond}
	l, err := Listen("127.0.0.1:0", cfg)
	require.NoError(t, err)
	defer l.Close()
	cs, err := Dial(ctx, l.Addr().String(), cfg)
	require.NoError(t, err)
	defer cs.Close()
	ss, err := l.Accept(ctx)
	require.NoError(t, err)
	v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: frameData(2, i)}))
	}
	rt, err := ss.AcceptTrack(ctx)
	require.NoError(t, err)
	buf := make([]byte, 1<<16)
	for i := range 20 {
		n, info, err := rt.ReadFrame(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, int64(i), info.ID)
		assert.Equal(t, frameData(2, i), buf[:n])
	}
	if ioPathBatchAvailable {
		assert.Equal(t, "batch", l.t.Stats().IOPath)
	}
	assert.Zero(t, l.t.Stats().DatagramsDropped)
}

// A key-frame callback that writes the key frame at once must not
// deadlock: callbacks run off the loop.
func TestCallbackMayCallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, ss := dialAccept(t, l, client)
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		wrote := make(chan error, 1)
		v.OnKeyFrameRequest(func() {
			wrote <- v.WriteFrame(ctx, Frame{Data: []byte("key"), Keyframe: true})
		})
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("first")}))
		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		require.NoError(t, rt.RequestKeyFrame(ctx))
		require.NoError(t, <-wrote)
		buf := make([]byte, 16)
		for _, want := range []string{"first", "key"} {
			n, _, err := rt.ReadFrame(ctx, buf)
			require.NoError(t, err)
			assert.Equal(t, want, string(buf[:n]))
		}
	})
}

// Sessions that arrive but are never accepted are refused when a
// listener on a shared transport closes.
func TestListenerCloseRefusesUnaccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, err := client.Dial(ctx, net.UDPAddrFromAddrPort(addrA))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		<-cs.Done()
		var ce *CloseError
		require.ErrorAs(t, cs.Err(), &ce)
		assert.Equal(t, CloseError{Code: 0x100, Reason: "not accepted", Remote: true}, *ce)
	})
}

// failingConn is a PacketConn whose reads always fail.
type failingConn struct {
	net.PacketConn
	reads atomic.Int64
}

func (f *failingConn) ReadFrom([]byte) (int, net.Addr, error) {
	f.reads.Add(1)
	return 0, nil, io.ErrUnexpectedEOF
}

// A conn that fails every read ends the transport with its error instead of
// spinning.
func TestFailingConnEndsTheTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := loneConn(t)
		fc := &failingConn{PacketConn: struct{ net.PacketConn }{c}}
		tr := &Transport{Conn: fc}
		_, err := tr.Listen()
		require.NoError(t, err)
		start := time.Now()
		<-tr.done
		assert.ErrorIs(t, tr.loopErr, io.ErrUnexpectedEOF)
		assert.ErrorIs(t, tr.loopErr, ErrClosed, "an error saying why the sessions ended")
		assert.Equal(t, int64(maxReadFailures), fc.reads.Load())
		assert.Less(t, time.Since(start), 30*time.Second, "with backoff, not forever")
		assert.Equal(t, int64(maxReadFailures), tr.Stats().ReadErrors)
		require.NoError(t, tr.Close())
	})
}

// A dropped reference frame reaches the application three ways: the
// write's ErrFrameDropped, OnFrameDropped with the reason, and a key-frame
// request at once; the receiver reports the gap as dropped by the sender.
// OnTargetBitrate gives the track's rate.
func TestDroppedFrameCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, ss := dialAccept(t, l, client)
		var droppedBy atomic.Int64
		ss.OnNetStatus(func(ns NetStatus) { droppedBy.Add(ns.FramesDroppedBySender) })
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		drops := make(chan FrameDrop, 4)
		keys := make(chan struct{}, 4)
		targets := make(chan TargetRate, 16)
		v.OnFrameDropped(func(d FrameDrop) { drops <- d })
		v.OnKeyFrameRequest(func() { keys <- struct{}{} })
		v.OnTargetBitrate(func(r TargetRate) {
			select {
			case targets <- r:
			default:
			}
		})
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("key"), Keyframe: true}))
		err = v.WriteFrame(ctx, Frame{Data: []byte("late"), CaptureTime: time.Now().Add(-time.Second)})
		require.ErrorIs(t, err, ErrFrameDropped)
		d := <-drops
		assert.Equal(t, int64(1), d.ID)
		assert.Equal(t, DropLateOnArrival, d.Reason)
		<-keys
		assert.ErrorIs(t, v.WriteFrame(ctx, Frame{Data: []byte("delta")}), ErrFrameDropped, "its reference is gone")
		assert.Equal(t, DropReference, (<-drops).Reason)
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("key2"), Keyframe: true}))
		r := <-targets
		assert.Positive(t, r.Bitrate)

		rt, err := ss.AcceptTrack(ctx)
		require.NoError(t, err)
		buf := make([]byte, 16)
		n, info, err := rt.ReadFrame(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, "key", string(buf[:n]))
		n, info, err = rt.ReadFrame(ctx, buf)
		require.NoError(t, err)
		assert.Equal(t, "key2", string(buf[:n]))
		assert.Equal(t, int64(2), info.DroppedBefore, "frames 1 and 2 were dropped by the sender")
		assert.Zero(t, info.LostBefore)
		time.Sleep(3 * time.Second)
		assert.Equal(t, int64(2), droppedBy.Load(), "NetStatus counts them too")
	})
}

// A path whose delay alone exceeds Latency is told of through OnPathDelay
// and NetStatus, and frames still go (judged against capture + that delay
// + Latency).
func TestPathDelayOverLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cfg := &Config{Latency: 150 * time.Millisecond}
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 200 * time.Millisecond}, cfg)
		cs, ss := dialAccept(t, l, client)
		got := make(chan PathDelay, 4)
		cs.OnPathDelay(func(d PathDelay) { got <- d })
		var over atomic.Bool
		cs.OnNetStatus(func(ns NetStatus) {
			if ns.PathOverBudget {
				over.Store(true)
			}
		})
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo, Bitrate: 500_000})
		require.NoError(t, err)
		v.OnFrameDropped(func(d FrameDrop) { t.Logf("dropped %+v", d) })
		var read atomic.Int64
		go func() {
			rt, err := ss.AcceptTrack(ctx)
			if err != nil {
				return
			}
			buf := make([]byte, 16<<10)
			for {
				if _, _, err := rt.ReadFrame(ctx, buf); err != nil {
					return
				}
				read.Add(1)
			}
		}()
		for i := range 90 {
			require.NoError(t, v.WriteFrame(ctx, Frame{Data: frameData(1, i)[:500], Keyframe: i == 0}))
			time.Sleep(33 * time.Millisecond)
		}
		d := <-got
		assert.True(t, d.Over)
		assert.Equal(t, 200*time.Millisecond, d.OneWay)
		assert.Equal(t, 150*time.Millisecond, d.Latency)
		time.Sleep(2 * time.Second)
		assert.True(t, over.Load(), "NetStatus says so")
		assert.Zero(t, cs.Stats().FramesDroppedOnSend)
		assert.Equal(t, int64(90), read.Load(), "every frame played")
	})
}

// A track's bitrate bounds are checked when it is published.
func TestPublishBitrateBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: time.Millisecond}, nil)
		cs, _ := dialAccept(t, l, client)
		_, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo, MinBitrate: 500_000, MaxBitrate: 400_000})
		require.ErrorIs(t, err, ErrInvalidConfig)
		_, err = cs.Publish(ctx, TrackConfig{Kind: KindVideo, MinBitrate: -1})
		require.ErrorIs(t, err, ErrInvalidConfig)
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo, MinBitrate: 300_000, MaxBitrate: 800_000})
		require.NoError(t, err)
		got := make(chan TargetRate, 1)
		v.OnTargetBitrate(func(r TargetRate) {
			select {
			case got <- r:
			default:
			}
		})
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("key"), Keyframe: true}))
		r := <-got
		assert.GreaterOrEqual(t, r.Bitrate, int64(300_000))
		assert.LessOrEqual(t, r.Bitrate, int64(800_000))
	})
}

// fds counts this process's open file descriptors (Linux).
func fds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(ents)
}

// Dial and Listen check the Config before they open a socket: an invalid
// one once leaked a socket per call, and left Listen's port bound so a
// retry with a good Config failed. A bad address is refused with words.
func TestDialListenInvalidConfigLeakNothing(t *testing.T) {
	bad := &Config{Latency: -time.Second}
	before := fds(t)
	for range 20 {
		_, err := Dial(t.Context(), "127.0.0.1:9", bad)
		require.ErrorIs(t, err, ErrInvalidConfig)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	_, err = Listen(addr, bad)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.LessOrEqual(t, fds(t), before, "no socket left open")
	l, err := Listen(addr, nil)
	require.NoError(t, err, "the port is free again")
	require.NoError(t, l.Close())

	for _, a := range []string{":7400", "127.0.0.1:0"} {
		_, err = Dial(t.Context(), a, nil)
		require.Error(t, err, a)
		assert.Contains(t, err.Error(), "want host:port", a)
	}
	assert.LessOrEqual(t, fds(t), before)
}

// A session from Dial returns from Close with its socket closed.
// Accept after Close fails with ErrClosed even when a session was queued.
func TestCloseReleasesAndAcceptAfterClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	before := fds(t)
	l, err := Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	cs, err := Dial(ctx, l.Addr().String(), nil)
	require.NoError(t, err)
	// The server's session is queued for Accept; close before accepting.
	require.Eventually(t, func() bool { return len(l.accept) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, l.Close())
	s, err := l.Accept(ctx)
	assert.Nil(t, s)
	assert.ErrorIs(t, err, ErrClosed)
	require.NoError(t, cs.Close())
	assert.LessOrEqual(t, fds(t), before, "both sockets closed when Close returned")
}

// A ReadFrame waiting for its turn behind another heeds its own context.
func TestConcurrentReadFrameHeedsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: time.Millisecond}, nil)
		cs, ss := dialAccept(t, l, client)
		v, err := cs.Publish(context.Background(), TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		require.NoError(t, v.WriteFrame(context.Background(), Frame{Data: frameData(1, 0)}))
		rt, err := ss.AcceptTrack(context.Background())
		require.NoError(t, err)
		buf := make([]byte, 1<<16)
		_, _, err = rt.ReadFrame(context.Background(), buf)
		require.NoError(t, err)

		long, cancelLong := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, _, err := rt.ReadFrame(long, make([]byte, 1<<16))
			first <- err
		}()
		synctest.Wait() // the first reader waits for a frame
		short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancelShort()
		start := time.Now()
		_, _, err = rt.ReadFrame(short, buf)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "not held until the first reader gives up")
		cancelLong()
		assert.ErrorIs(t, <-first, context.Canceled)
	})
}

// ReceiveQueue counts datagrams: with the loop held until 200 datagrams
// arriving one by one have all been read, they all wait for it. The queue
// once held 32 batches of one read each, and a read of the plain path, or
// a light one of the batch path, returns one datagram: 168 of the 200 were
// dropped (the loop held 300 ms).
func TestReceiveQueueHoldsDatagrams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plain   bool
		queue   int
		dropped int64 // datagrams the reader drops
	}{
		{"plain", true, 0, 0},
		{"batch", false, 0, 0},
		{"plain, a queue of 50", true, 50, 200 - 50 - 1}, // the queue and the one read the reader holds
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.plain && !ioPathBatchAvailable {
				t.Skip("no batch I/O here")
			}
			rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer rc.Close()
			_ = rc.SetReadBuffer(4 << 20)
			sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer sc.Close()
			tr := &Transport{Conn: rc, Config: &Config{ReceiveQueue: tc.queue}, preferPlain: tc.plain}
			require.NoError(t, tr.init(false))
			defer tr.Close()
			held, release := make(chan struct{}), make(chan struct{})
			go func() {
				_ = tr.do(context.Background(), func(clock.Time) error {
					close(held)
					<-release // the loop is busy until every datagram was read
					return nil
				})
			}()
			<-held
			to := rc.LocalAddr().(*net.UDPAddr).AddrPort()
			for range 200 {
				_, err := sc.WriteToUDPAddrPort(make([]byte, 100), to)
				require.NoError(t, err)
				time.Sleep(200 * time.Microsecond) // one by one: a read each
			}
			require.Eventually(t, func() bool { return tr.Stats().DatagramsReceived == 200 }, 10*time.Second, 5*time.Millisecond)
			close(release)
			assert.Equal(t, tc.dropped, tr.Stats().DatagramsDropped)
		})
	}
}

// A connected socket (net.DialUDP) sends to its peer on both I/O paths:
// the plain path's WriteTo once failed on every datagram, where the batch
// path's sendmmsg went. Another destination is refused.
func TestConnectedSocketBothPaths(t *testing.T) {
	for _, plain := range []bool{true, false} {
		if !plain && !ioPathBatchAvailable {
			continue
		}
		rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		uc, err := net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
		w := newPacketIO(uc, !plain)
		failed, err := w.write([]byte("hi"), rc.LocalAddr().(*net.UDPAddr).AddrPort())
		require.NoError(t, err, "plain %v", plain)
		require.Zero(t, failed)
		failed, err = w.flush()
		require.NoError(t, err, "plain %v", plain)
		require.Zero(t, failed)
		require.NoError(t, rc.SetReadDeadline(time.Now().Add(2*time.Second)))
		buf := make([]byte, 16)
		n, _, err := rc.ReadFromUDPAddrPort(buf)
		require.NoError(t, err)
		assert.Equal(t, "hi", string(buf[:n]))
		if plain {
			failed, err = w.write([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9"))
			assert.Error(t, err)
			assert.Equal(t, 1, failed)
		}
		require.NoError(t, uc.Close())
		require.NoError(t, rc.Close())
	}
}

// The socket closed under a transport ends it, and every error saying so
// matches ErrClosed, as the errors of sessions ended otherwise do: they
// wrapped net.ErrClosed only, and a writer loop that stops on ErrClosed
// never stopped. (Stop 36's review of the transport as a user.)
func TestSocketClosedMatchesErrClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	defer l.Close()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &Transport{Conn: uc}
	defer tr.Close()
	cs, err := tr.Dial(ctx, l.Addr())
	require.NoError(t, err)
	v, err := cs.Publish(ctx, TrackConfig{Kind: KindAudio})
	require.NoError(t, err)
	require.NoError(t, uc.Close())
	<-cs.Done()
	assert.ErrorIs(t, cs.Err(), ErrClosed)
	assert.ErrorIs(t, cs.Err(), net.ErrClosed, "and says why")
	assert.ErrorIs(t, v.WriteFrame(ctx, Frame{Data: []byte("x")}), ErrClosed)
	_, err = cs.Publish(ctx, TrackConfig{})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = tr.Dial(ctx, l.Addr())
	assert.ErrorIs(t, err, ErrClosed)
}

// Session.Stats never reads all zero while the session closes: between the
// connection's close and the session's end it returned an empty Stats
// (the review's test failed 5 runs of 5).
func TestStatsWhileClosing(t *testing.T) {
	var zeros atomic.Int64
	for round := 0; round < 30 && zeros.Load() == 0; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, err := Listen("127.0.0.1:0", nil)
		require.NoError(t, err)
		cs, err := Dial(ctx, l.Addr().String(), nil)
		require.NoError(t, err)
		_, err = l.Accept(ctx)
		require.NoError(t, err)
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindAudio})
		require.NoError(t, err)
		require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("a")}))
		for cs.Stats().PacketsSent == 0 {
			time.Sleep(time.Millisecond)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if cs.Stats().PacketsSent == 0 {
						zeros.Add(1)
					}
				}
			}()
		}
		require.NoError(t, cs.Close())
		close(stop)
		wg.Wait()
		require.NoError(t, l.Close())
		cancel()
	}
	assert.Zero(t, zeros.Load(), "all-zero Stats while closing")
}
