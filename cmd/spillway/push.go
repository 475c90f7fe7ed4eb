package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/transport"
)

// pushOptions configure push.
type pushOptions struct {
	To       string        // the player's address, host:port
	Duration time.Duration // media to send
	Seed     uint64        // the traffic generator's seed
	Config   transport.Config
	Traffic  bench.Traffic // zero: bench.DefaultTraffic()
	Tick     time.Duration // progress line interval; zero: 1 s
}

func pushFlags(o *pushOptions) *flag.FlagSet {
	fs := newFlagSet("push", "-to ADDR -duration D [-seed N] [-profile rtc|live] [-latency D]", `
Push dials a player and sends the bench's synthetic stream in real time: an
audio track (50 frames/s) and a video track (30 fps, 1.5 Mbit/s, a key frame
every 2 s), each frame a verifiable payload (magic, source, sequence,
length, CRC-32C). It prints progress to stderr each second and, at the end,
one line "frames=N bytes=B dropped=K" to stdout.`)
	fs.StringVar(&o.To, "to", "", "the player's `address` (host:port)")
	fs.DurationVar(&o.Duration, "duration", 0, "how much media to send (e.g. 10s)")
	fs.Uint64Var(&o.Seed, "seed", 1, "traffic generator `seed` (frame sizes)")
	transportFlags(fs, &o.Config)
	return fs
}

func pushMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o pushOptions
	fs := pushFlags(&o)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case o.To == "":
		return usageErr(fs, "-to is required")
	case o.Duration <= 0:
		return usageErr(fs, "-duration must be positive")
	}
	if _, err := resolveUDP(o.To, false); err != nil {
		return usageErr(fs, "-to: %v", err)
	}
	if err := checkTransportFlags(fs, &o.Config); err != nil {
		return err
	}
	return push(ctx, o, stdout, stderr)
}

// pushCounts is what push reports.
type pushCounts struct {
	frames  int64 // frames WriteFrame queued
	bytes   int64 // their payload bytes
	dropped int64 // frames WriteFrame refused with ErrFrameDropped
}

func (c pushCounts) summary() string {
	return fmt.Sprintf("frames=%d bytes=%d dropped=%d", c.frames, c.bytes, c.dropped)
}

// push sends o.Duration of synthetic media to o.To in real time and prints
// the summary line to stdout. Cancelling ctx stops it early; it still closes
// the session in order and prints the summary. It fails (after printing the
// summary, if the session was up) when the session does.
func push(ctx context.Context, o pushOptions, stdout, stderr io.Writer) error {
	traffic := o.Traffic
	if traffic == (bench.Traffic{}) {
		traffic = bench.DefaultTraffic()
	}
	if err := traffic.Validate(); err != nil {
		return err
	}
	tick := o.Tick
	if tick <= 0 {
		tick = time.Second
	}
	cfg := o.Config
	sess, err := transport.Dial(ctx, o.To, &cfg)
	if err != nil {
		if ctx.Err() != nil { // interrupted while dialling
			fmt.Fprintln(stdout, pushCounts{}.summary())
			return nil
		}
		return err
	}
	fmt.Fprintf(stderr, "connected to %s (profile %s, latency %v)\n", sess.RemoteAddr(), cfg.Profile, latencyBudget(&cfg))

	var tracks [2]*transport.LocalTrack // by bench.Source
	if a := traffic.Audio; a.FPS > 0 {
		tracks[bench.SourceAudio], err = sess.Publish(ctx, transport.TrackConfig{
			Kind: transport.KindAudio, Priority: transport.PriorityHigh,
			Bitrate: int64(a.FPS * float64(a.MaxSize) * 8),
		})
	}
	if v := traffic.Video; v.FPS > 0 && err == nil {
		tracks[bench.SourceVideo], err = sess.Publish(ctx, transport.TrackConfig{
			Kind: transport.KindVideo, Priority: transport.PriorityMedium, Bitrate: v.Bitrate,
		})
	}
	var counts pushCounts
	if err == nil {
		err = sendMedia(ctx, sess, tracks, traffic, o, tick, &counts, stderr)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		fmt.Fprintln(stderr, "interrupted")
		err = nil
	}
	_ = sess.Close() // in order: queued frames go while their deadlines allow
	fmt.Fprintln(stdout, counts.summary())
	return err
}

// sendMedia writes each frame of the traffic at its capture time (media
// start + frame.At) until o.Duration of media has gone or ctx is done.
func sendMedia(ctx context.Context, sess *transport.Session, tracks [2]*transport.LocalTrack, traffic bench.Traffic,
	o pushOptions, tick time.Duration, counts *pushCounts, stderr io.Writer) error {
	gen := bench.NewGenerator(traffic, o.Seed)
	// Like an encoder, the video source makes a key frame when the track
	// asks (the peer's PLI, or a reference frame this side dropped) and
	// follows the track's target bitrate. The callbacks run on the
	// transport's callback goroutine; this loop owns the generator.
	var keyAsked atomic.Bool
	var target atomic.Int64
	if v := tracks[bench.SourceVideo]; v != nil {
		first := make(chan struct{})
		var once sync.Once
		v.OnKeyFrameRequest(func() { keyAsked.Store(true) })
		v.OnTargetBitrate(func(r transport.TargetRate) {
			target.Store(r.Bitrate)
			once.Do(func() { close(first) })
		})
		// Like an encoder, size the first key frame for the rate the
		// transport starts at (a 1.5 Mbit/s key frame cannot make its
		// deadline at a 300 kbit/s start and would be dropped): wait
		// briefly for the first target.
		select {
		case <-first:
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var buf []byte
	start := time.Now()
	nextTick := start.Add(tick)
	var last pushCounts // at the previous progress line
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		at := gen.Peek()
		if at >= o.Duration {
			return nil
		}
		due := start.Add(at)
		now := time.Now()
		if !now.Before(nextTick) {
			k := now.Sub(start) / tick
			st := sess.Stats()
			fmt.Fprintf(stderr, "t=%v sent=%d kbps=%.1f sent_total=%d dropped_total=%d rtt_ms=%s backlog_bytes=%d\n",
				k*tick, counts.frames-last.frames, kbps(counts.bytes-last.bytes, tick), counts.frames,
				counts.dropped, ms(st.CurrentRoundTripTime), st.SendBacklog)
			last = *counts
			nextTick = start.Add((k + 1) * tick)
		}
		wake := due
		if nextTick.Before(wake) {
			wake = nextTick
		}
		if wait := wake.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
			continue
		}
		if keyAsked.Swap(false) {
			gen.RequestKey()
		}
		if r := target.Swap(0); r > 0 {
			gen.SetVideoBitrate(r)
		}
		f := gen.Next()
		n := payloadSize(f.Size)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		encodePayload(buf, f.Source, f.Seq)
		tr := tracks[f.Source]
		if tr == nil {
			continue // unreachable: the generator only yields sources with a track
		}
		// A late frame still goes with its scheduled capture time: the
		// transport decides whether it can make its deadline.
		err := tr.WriteFrame(ctx, transport.Frame{Data: buf, CaptureTime: due, Keyframe: f.Key})
		switch {
		case err == nil:
			counts.frames++
			counts.bytes += int64(n)
		case errors.Is(err, transport.ErrFrameDropped):
			counts.dropped++
		default:
			if serr := sess.Err(); serr != nil && !errors.Is(err, ctx.Err()) {
				err = serr // why the session ended says more than ErrClosed
			}
			return fmt.Errorf("write %s frame %d: %w", f.Source, f.Seq, err)
		}
	}
}
