package transport_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/spillway-rt/spillway/transport"
)

// Example shows both ends: a player listening and a pusher dialing it,
// sending one video frame.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := &transport.Config{Profile: transport.RTC}

	// Player.
	l, err := transport.Listen("127.0.0.1:0", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Pusher.
	sess, err := transport.Dial(ctx, l.Addr().String(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	video, err := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindVideo, Priority: transport.PriorityMedium})
	if err != nil {
		log.Fatal(err)
	}
	if err := video.WriteFrame(ctx, transport.Frame{Data: []byte("an encoded key frame"), Keyframe: true}); err != nil {
		log.Fatal(err)
	}

	// Player again.
	in, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	track, err := in.AcceptTrack(ctx)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, info, err := track.ReadFrame(ctx, buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s track, frame %d: %q key=%v\n", track.Kind(), info.ID, buf[:n], info.Keyframe)
	// Output: video track, frame 0: "an encoded key frame" key=true
}

// ExampleDial opens a session to a listener and publishes an audio track.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := transport.Listen("127.0.0.1:0", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	sess, err := transport.Dial(ctx, l.Addr().String(), &transport.Config{Profile: transport.RTC})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	audio, err := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindAudio, Priority: transport.PriorityHigh})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", audio.Kind(), "track", audio.ID(), "with a", sess.Latency(), "budget")
	// Output: published audio track 0 with a 300ms budget
}

// ExampleListen accepts sessions until the context ends.
func ExampleListen() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := transport.Listen("127.0.0.1:0", &transport.Config{Profile: transport.Live})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	go func() { // a pusher somewhere
		s, err := transport.Dial(ctx, l.Addr().String(), &transport.Config{Profile: transport.Live})
		if err != nil {
			log.Print(err)
			return
		}
		<-s.Done()
	}()

	sess, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("incoming:", sess.Incoming(), "peer budget:", sess.PeerLatency())
	sess.Close()
	// Output: incoming: true peer budget: 3s
}

// ExampleLocalTrack_WriteFrame sends frames with their capture times; a
// frame that can no longer arrive in time is refused, not sent late.
func ExampleLocalTrack_WriteFrame() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := transport.Listen("127.0.0.1:0", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	sess, err := transport.Dial(ctx, l.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	video, err := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindVideo, Bitrate: 1_500_000})
	if err != nil {
		log.Fatal(err)
	}

	// The first key frame is sized for the congestion controller's start
	// (300 kbit/s by default; OnTargetBitrate gives the encoder its rate):
	// one far larger could not arrive within the budget and is refused.
	captured := time.Now()
	err = video.WriteFrame(ctx, transport.Frame{Data: make([]byte, 8_000), CaptureTime: captured, Keyframe: true})
	fmt.Println("fresh frame:", err)

	stale := captured.Add(-time.Second) // a second old: past the 300 ms budget
	err = video.WriteFrame(ctx, transport.Frame{Data: make([]byte, 5_000), CaptureTime: stale})
	fmt.Println("stale frame dropped:", errors.Is(err, transport.ErrFrameDropped))
	// Output:
	// fresh frame: <nil>
	// stale frame dropped: true
}

// ExampleLocalTrack_OnFrameDropped wires a track to an encoder: the
// encoder follows the target rate, makes a key frame when asked (after a
// dropped reference frame the request comes at once), and learns which
// frames the transport dropped and why.
func ExampleLocalTrack_OnFrameDropped() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := transport.Listen("127.0.0.1:0", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	sess, err := transport.Dial(ctx, l.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	video, err := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindVideo, Bitrate: 1_500_000})
	if err != nil {
		log.Fatal(err)
	}
	dropped := make(chan transport.FrameDrop, 1)
	keyWanted := make(chan struct{}, 1)
	video.OnTargetBitrate(func(r transport.TargetRate) { _ = r.Bitrate /* enc.SetBitrate(r.Bitrate) */ })
	video.OnKeyFrameRequest(func() {
		select {
		case keyWanted <- struct{}{}:
		default:
		}
	})
	video.OnFrameDropped(func(d transport.FrameDrop) { dropped <- d })

	now := time.Now()
	_ = video.WriteFrame(ctx, transport.Frame{Data: make([]byte, 10_000), CaptureTime: now, Keyframe: true})
	// A delta frame a second old: past the 300 ms budget.
	err = video.WriteFrame(ctx, transport.Frame{Data: make([]byte, 2_000), CaptureTime: now.Add(-time.Second)})
	fmt.Println("refused:", errors.Is(err, transport.ErrFrameDropped))
	d := <-dropped
	fmt.Println("dropped frame", d.ID, "because", d.Reason)
	<-keyWanted
	fmt.Println("key frame requested")
	// Output:
	// refused: true
	// dropped frame 1 because late-on-arrival
	// key frame requested
}

// ExampleRemoteTrack_ReadFrame reads frames at their playout time until the
// peer closes the track.
func ExampleRemoteTrack_ReadFrame() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := &transport.Config{Profile: transport.RTC}
	l, err := transport.Listen("127.0.0.1:0", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() {
		sess, err := transport.Dial(ctx, l.Addr().String(), cfg)
		if err != nil {
			log.Print(err)
			return
		}
		defer sess.Close()
		audio, _ := sess.Publish(ctx, transport.TrackConfig{Kind: transport.KindAudio})
		for i := range 3 {
			_ = audio.WriteFrame(ctx, transport.Frame{Data: []byte{byte(i), 1, 2, 3}})
			time.Sleep(20 * time.Millisecond)
		}
		_ = audio.Close()
	}()

	sess, err := l.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	track, err := sess.AcceptTrack(ctx)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, info, err := track.ReadFrame(ctx, buf)
		if err != nil {
			fmt.Println("end:", err)
			break
		}
		fmt.Printf("frame %d: %d bytes, lost before it: %d\n", info.ID, n, info.LostBefore)
	}
	// Output:
	// frame 0: 4 bytes, lost before it: 0
	// frame 1: 4 bytes, lost before it: 0
	// frame 2: 4 bytes, lost before it: 0
	// end: EOF
}

// ExampleSession_OnPathDelay tells the user when the path alone is slower
// than the session's budget (as behind a download filling a deep router
// buffer): the frames still go, judged against capture + that delay +
// Latency, and the player may raise its buffer meanwhile.
func ExampleSession_OnPathDelay() {
	ctx := context.Background()
	sess, err := transport.Dial(ctx, "198.51.100.7:5000", &transport.Config{Profile: transport.RTC})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	sess.OnPathDelay(func(d transport.PathDelay) {
		if d.Over {
			log.Printf("network delay %v exceeds the %v budget: expect more delay", d.OneWay, d.Latency)
		} else {
			log.Printf("network delay back to %v", d.OneWay)
		}
	})
}
