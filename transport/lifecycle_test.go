package transport

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/netem"
)

// videoPair opens a session over a 5 ms link, publishes a video track with
// one key frame written and accepts it. Call inside a synctest bubble.
func videoPair(t *testing.T) (client *Transport, v *LocalTrack, rt *RemoteTrack) {
	t.Helper()
	ctx := context.Background()
	l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
	cs, ss := dialAccept(t, l, client)
	v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
	require.NoError(t, err)
	require.NoError(t, v.WriteFrame(ctx, Frame{Data: []byte("k"), Keyframe: true}))
	rt, err = ss.AcceptTrack(ctx)
	require.NoError(t, err)
	return client, v, rt
}

// Callbacks may call into the transport while it closes, Close included:
// nothing waits for a callback on the loop.
func TestCallbacksDuringClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   func(client *Transport, v *LocalTrack) error // runs inside the callback
		want error                                        // what in returns
	}{
		{"write a key frame while Close runs", func(_ *Transport, v *LocalTrack) error {
			time.Sleep(2 * time.Second) // a slow encoder: the transport ends meanwhile
			return v.WriteFrame(context.Background(), Frame{Data: []byte("key"), Keyframe: true})
		}, ErrClosed},
		{"close the transport", func(client *Transport, _ *LocalTrack) error {
			return client.Close()
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				client, v, rt := videoPair(t)
				entered := make(chan struct{})
				got := make(chan error, 1)
				v.OnKeyFrameRequest(func() {
					close(entered)
					got <- tc.in(client, v)
				})
				require.NoError(t, rt.RequestKeyFrame(ctx))
				<-entered
				closed := make(chan error, 1)
				go func() { closed <- client.Close() }()
				select {
				case err := <-closed:
					require.NoError(t, err)
				case <-time.After(time.Minute):
					t.Fatal("Close still blocked after a minute (of the bubble's time)")
				}
				if err := <-got; tc.want == nil {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, tc.want)
				}
			})
		})
	}
}

// OnTargetBitrate set after the transport closed does nothing (it used to
// send on the closed callback queue and panic).
func TestOnTargetBitrateAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, _ := dialAccept(t, l, client)
		v, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		got := make(chan TargetRate, 16)
		v.OnTargetBitrate(func(r TargetRate) {
			select {
			case got <- r:
			default:
			}
		})
		first := <-got
		assert.Positive(t, first.Bitrate)
		// Set again while open: called at once with the known target.
		again := make(chan TargetRate, 1)
		v.OnTargetBitrate(func(r TargetRate) { again <- r })
		assert.Positive(t, (<-again).Bitrate)
		require.NoError(t, client.Close())
		called := false
		assert.NotPanics(t, func() { v.OnTargetBitrate(func(TargetRate) { called = true }) })
		synctest.Wait()
		assert.False(t, called, "no callback after the transport closed")
	})
}

// A closed LocalTrack's handle neither writes to nor closes the track that
// reuses its id.
func TestStaleTrackHandle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, ss := dialAccept(t, l, client)
		a, err := cs.Publish(ctx, TrackConfig{Kind: KindVideo})
		require.NoError(t, err)
		require.NoError(t, a.Close())
		assert.ErrorIs(t, a.WriteFrame(ctx, Frame{Data: []byte("x"), Keyframe: true}), ErrClosed)
		time.Sleep(time.Second) // the close is acknowledged: the id is free
		b, err := cs.Publish(ctx, TrackConfig{Kind: KindAudio})
		require.NoError(t, err)
		require.Equal(t, a.ID(), b.ID(), "the id is reused")
		assert.ErrorIs(t, a.WriteFrame(ctx, Frame{Data: []byte("stale")}), ErrClosed)
		assert.ErrorIs(t, a.Close(), ErrClosed)
		require.NoError(t, b.WriteFrame(ctx, Frame{Data: []byte("fresh")}), "b is still open")
		for {
			rt, err := ss.AcceptTrack(ctx)
			require.NoError(t, err)
			if rt.Kind() != KindAudio {
				continue
			}
			buf := make([]byte, 64)
			n, _, err := rt.ReadFrame(ctx, buf)
			require.NoError(t, err)
			assert.Equal(t, "fresh", string(buf[:n]))
			break
		}
	})
}

// Stats may be read while another goroutine starts the transport (-race).
func TestStatsWhileStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &Transport{Conn: loneConn(t)}
		done := make(chan TransportStats)
		go func() { done <- tr.Stats() }()
		_, err := tr.Listen()
		require.NoError(t, err)
		<-done
		assert.NotEmpty(t, tr.Stats().IOPath)
		require.NoError(t, tr.Close())
	})
}

// cancelAsItRuns is a context that ends exactly when the loop checks it
// before running a command: the command runs, and its caller must get its
// result, not "canceled" with the work done behind its back.
type cancelAsItRuns struct {
	context.Context
	once  sync.Once
	done  chan struct{}
	calls atomic.Int32
}

func newCancelAsItRuns() *cancelAsItRuns {
	return &cancelAsItRuns{Context: context.Background(), done: make(chan struct{})}
}

func (c *cancelAsItRuns) Done() <-chan struct{} { return c.done }
func (c *cancelAsItRuns) Err() error {
	if c.calls.Add(1) == 1 {
		c.once.Do(func() { close(c.done) })
		return nil
	}
	return context.Canceled
}

func TestCancelAsCommandRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l, client, _ := netemPair(t, netem.LinkConfig{Delay: 5 * time.Millisecond}, nil)
		cs, _ := dialAccept(t, l, client)
		// Publish: every track opened reaches its caller (16 ids in all).
		for i := range 16 {
			lt, err := cs.Publish(newCancelAsItRuns(), TrackConfig{Kind: KindData})
			require.NoError(t, err, "publish %d", i)
			require.NotNil(t, lt)
		}
		_, err := cs.Publish(ctx, TrackConfig{Kind: KindData})
		assert.ErrorIs(t, err, ErrTooManyTracks)

		// Dial: a dial given up on leaves no session open at the peer.
		_, err = client.Dial(newCancelAsItRuns(), net.UDPAddrFromAddrPort(addrA))
		require.ErrorIs(t, err, context.Canceled)
		time.Sleep(time.Second)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		ss, err := l.Accept(short)
		cancel()
		if err == nil { // accepted before the close reached it
			select {
			case <-ss.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the peer still holds the canceled dial's session")
			}
		} else {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		}
	})
}

// A remote track that ended refuses key-frame requests and stats.
func TestEndedRemoteTrack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		_, v, rt := videoPair(t)
		require.NoError(t, rt.RequestKeyFrame(ctx))
		_, err := rt.PlayoutStats(ctx)
		require.NoError(t, err)
		require.NoError(t, v.Close())
		buf := make([]byte, 8)
		_, _, err = rt.ReadFrame(ctx, buf)
		require.NoError(t, err)
		_, _, err = rt.ReadFrame(ctx, buf)
		require.ErrorIs(t, err, io.EOF, "the track ended")
		assert.ErrorIs(t, rt.RequestKeyFrame(ctx), ErrClosed)
		_, err = rt.PlayoutStats(ctx)
		assert.ErrorIs(t, err, ErrClosed)
	})
}
