package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/spillway-rt/spillway/bench"
	"github.com/spillway-rt/spillway/transport"
)

// playOptions configure play.
type playOptions struct {
	Listen   string        // host:port to listen on (port 0 picks one)
	Duration time.Duration // stop this long after the session starts; zero: when it ends
	Config   transport.Config
	Tick     time.Duration // progress line interval; zero: 1 s

	// onListen, if set, is called with the bound address once listening.
	onListen func(net.Addr)
}

func playFlags(o *playOptions) *flag.FlagSet {
	fs := newFlagSet("play", "-listen ADDR [-duration D] [-profile rtc|live] [-latency D]", `
Play listens, accepts one session (from spillway push) and reads its tracks,
verifying every frame: magic, length, CRC-32C, source against the track's
kind, and sequence numbers (a gap is loss, but for the frames the sender
says it dropped, counted as dropped). It prints a stats line to stderr
each second and, when the session ends (or on -duration, or on interrupt),
one line "frames=N on_time=R p99_ms=X corrupt=N lost=L ..." to stdout.
on_time counts frames complete within the pusher's latency budget of their
capture, which the handshake carries; -profile and -latency set play's own
transport (its playout bounds).`)
	fs.StringVar(&o.Listen, "listen", "", "UDP `address` to listen on (host:port)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop this long after the session starts (default: when the pusher closes)")
	transportFlags(fs, &o.Config)
	return fs
}

func playMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o playOptions
	fs := playFlags(&o)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case o.Listen == "":
		return usageErr(fs, "-listen is required")
	case o.Duration < 0:
		return usageErr(fs, "-duration must not be negative")
	}
	if _, err := resolveUDP(o.Listen, true); err != nil {
		return usageErr(fs, "-listen: %v", err)
	}
	if err := checkTransportFlags(fs, &o.Config); err != nil {
		return err
	}
	return play(ctx, o, stdout, stderr)
}

// playStats are the player's counters, shared by the track readers.
type playStats struct {
	budget time.Duration // a frame is on time if complete within it of capture

	mu         sync.Mutex
	frames     int64 // frames read (corrupt ones included)
	bytes      int64
	onTime     int64 // intact frames complete within budget
	late       int64 // intact frames complete after it
	corrupt    int64
	lost       int64    // sequence numbers never seen (gaps), less those the sender dropped
	dropped    int64    // sequence numbers the sender dropped (FrameInfo.DroppedBefore)
	skipped    int64    // sum of FrameInfo.LostBefore: the transport's own count
	misordered int64    // sequence numbers at or below one already seen
	next       [2]int64 // next expected sequence number, by bench.Source
	latencies  []time.Duration

	// The tracks' playout figures, as of the last tick (a track's end
	// takes them with it).
	playout map[*transport.RemoteTrack]transport.PlayoutStats

	// Since the last progress line.
	ivFrames int64
	ivBytes  int64
	ivMax    time.Duration
}

// record accounts one frame read from a track of kind k.
func (s *playStats) record(k transport.Kind, b []byte, info transport.FrameInfo) {
	lat := info.CompleteTime.Sub(info.CaptureTime)
	h, err := decodePayload(b)
	switch {
	case err != nil:
	case len(b) != info.Size:
		err = fmt.Errorf("frame of %d bytes, FrameInfo.Size %d", len(b), info.Size)
	case h.Source != sourceOf(k):
		err = fmt.Errorf("%s frame on a %v track", h.Source, k)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames++
	s.bytes += int64(len(b))
	s.ivFrames++
	s.ivBytes += int64(len(b))
	s.ivMax = max(s.ivMax, lat)
	s.latencies = append(s.latencies, lat)
	s.skipped += info.LostBefore
	if err != nil {
		s.corrupt++
		// The header cannot be trusted: follow the transport's numbering.
		if src := sourceOf(k); src <= bench.SourceVideo {
			s.lost += info.LostBefore
			s.dropped += info.DroppedBefore
			s.next[src] += info.LostBefore + info.DroppedBefore + 1
		}
		return
	}
	next := &s.next[h.Source]
	if h.Seq < *next {
		s.misordered++ // a repeat, or out of order: neither expected nor on time
		return
	}
	// The frames the sender dropped on purpose (too late to make their
	// deadline) are part of the gap; the rest of it is lost.
	gap := h.Seq - *next
	d := min(info.DroppedBefore, gap)
	s.dropped += d
	s.lost += gap - d
	*next = h.Seq + 1
	if lat <= s.budget {
		s.onTime++
	} else {
		s.late++
	}
}

// sourceOf is the bench source a track kind carries (an invalid Source for
// any other kind).
func sourceOf(k transport.Kind) bench.Source {
	switch k {
	case transport.KindAudio:
		return bench.SourceAudio
	case transport.KindVideo:
		return bench.SourceVideo
	}
	return bench.Source(255)
}

// progress returns a per-second line (keys distinct from the summary's) and
// starts a new interval.
func (s *playStats) progress(t, interval time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := fmt.Sprintf("t=%v rx=%d kbps=%.1f rx_total=%d lost_total=%d corrupt_total=%d late_total=%d lat_max_ms=%s",
		t, s.ivFrames, kbps(s.ivBytes, interval), s.frames, s.lost, s.corrupt, s.late, ms(s.ivMax))
	s.ivFrames, s.ivBytes, s.ivMax = 0, 0, 0
	return line
}

// summary returns the final line (DESIGN §9): frames, on_time, p99_ms,
// corrupt and lost first, then more key=value fields.
func (s *playStats) summary(overflow int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	onTime := 0.0
	if expected := s.frames + s.lost + s.dropped; expected > 0 {
		onTime = float64(s.onTime) / float64(expected)
	}
	lat := slices.Clone(s.latencies)
	slices.Sort(lat)
	var pl transport.PlayoutStats
	for _, st := range s.playout {
		pl.FreezeCount += st.FreezeCount
		pl.TotalFreezesDuration += st.TotalFreezesDuration
		pl.PauseCount += st.PauseCount
		pl.ConcealmentEvents += st.ConcealmentEvents
		pl.ConcealedDuration += st.ConcealedDuration
	}
	return fmt.Sprintf("frames=%d on_time=%.4f p99_ms=%s corrupt=%d lost=%d late=%d skipped=%d dropped=%d overflow=%d misordered=%d p50_ms=%s max_ms=%s bytes=%d"+
		" freeze_count=%d freezes_s=%.3f pause_count=%d concealment_events=%d concealed_s=%.3f",
		s.frames, onTime, ms(percentile(lat, 99)), s.corrupt, s.lost, s.late, s.skipped, s.dropped, overflow, s.misordered,
		ms(percentile(lat, 50)), ms(percentile(lat, 100)), s.bytes,
		pl.FreezeCount, pl.TotalFreezesDuration.Seconds(), pl.PauseCount, pl.ConcealmentEvents, pl.ConcealedDuration.Seconds())
}

// notePlayout keeps each track's latest playout figures.
func (s *playStats) notePlayout(ctx context.Context, tracks []*transport.RemoteTrack) {
	for _, rt := range tracks {
		st, err := rt.PlayoutStats(ctx)
		if err != nil {
			continue // ended: its last figures stay
		}
		s.mu.Lock()
		if s.playout == nil {
			s.playout = map[*transport.RemoteTrack]transport.PlayoutStats{}
		}
		s.playout[rt] = st
		s.mu.Unlock()
	}
}

// percentile is the nearest-rank percentile p of sorted (0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// play listens on o.Listen, plays the first session to the end (the peer
// closes, o.Duration passes, or ctx is done) and prints the summary line to
// stdout. It fails only when it cannot listen.
//
// Memory: every received frame's latency is kept for the percentiles, 8
// bytes a frame (2.3 MB per hour at 80 frames/s).
func play(ctx context.Context, o playOptions, stdout, stderr io.Writer) error {
	tick := o.Tick
	if tick <= 0 {
		tick = time.Second
	}
	cfg := o.Config
	stats := &playStats{budget: latencyBudget(&cfg)}
	l, err := transport.Listen(o.Listen, &cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	stderr = &syncWriter{w: stderr}
	fmt.Fprintf(stderr, "listening on %s (profile %s, latency %v)\n", l.Addr(), cfg.Profile, stats.budget)
	if o.onListen != nil {
		o.onListen(l.Addr())
	}

	sess, err := l.Accept(ctx)
	if err != nil {
		if ctx.Err() != nil { // interrupted before any session
			fmt.Fprintln(stderr, "interrupted")
			fmt.Fprintln(stdout, stats.summary(0))
			return nil
		}
		return err
	}
	if pl := sess.PeerLatency(); pl > 0 {
		stats.budget = pl // on time means within the pusher's own budget
	}
	fmt.Fprintf(stderr, "session from %s (its latency budget %v)\n", sess.RemoteAddr(), stats.budget)
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, o.Duration)
		defer cancel()
	}

	// One session at a time: refuse the others.
	var refuser sync.WaitGroup
	refuser.Go(func() {
		for {
			s, err := l.Accept(runCtx)
			if err != nil {
				return
			}
			fmt.Fprintf(stderr, "refusing a second session from %s\n", s.RemoteAddr())
			_ = s.CloseWithError(0x100, "busy")
		}
	})

	// One goroutine accepts tracks; one per track reads its frames.
	var (
		readers  sync.WaitGroup
		mu       sync.Mutex
		accepted []*transport.RemoteTrack
	)
	readers.Go(func() {
		for {
			rt, err := sess.AcceptTrack(runCtx)
			if err != nil {
				return
			}
			fmt.Fprintf(stderr, "track %d: %v\n", rt.ID(), rt.Kind())
			mu.Lock()
			accepted = append(accepted, rt)
			mu.Unlock()
			readers.Go(func() { readTrack(runCtx, rt, stats) })
		}
	})
	done := make(chan struct{})
	go func() {
		readers.Wait()
		close(done)
	}()

	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	reason := ""
loop:
	for {
		select {
		case <-ticker.C:
			k := time.Since(start).Round(tick) / tick
			fmt.Fprintln(stderr, stats.progress(k*tick, tick))
			mu.Lock()
			tracks := slices.Clone(accepted)
			mu.Unlock()
			stats.notePlayout(runCtx, tracks)
		case <-done:
			reason = fmt.Sprintf("session ended: %v", sess.Err())
			break loop
		case <-runCtx.Done():
			reason = "duration reached"
			if ctx.Err() != nil {
				reason = "interrupted"
			}
			break loop
		}
	}
	// The playout figures at the end, for the tracks still open.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	mu.Lock()
	tracks := slices.Clone(accepted)
	mu.Unlock()
	stats.notePlayout(fctx, tracks)
	fcancel()
	cancel()
	_ = l.Close() // closes the session in order, then the socket
	<-done
	refuser.Wait()
	fmt.Fprintln(stderr, reason)

	var overflow int64
	for _, rt := range accepted {
		overflow += rt.Dropped()
	}
	fmt.Fprintln(stdout, stats.summary(overflow))
	return nil
}

// readTrack reads rt's frames into stats until the track or the session
// ends or ctx is done.
func readTrack(ctx context.Context, rt *transport.RemoteTrack, stats *playStats) {
	buf := make([]byte, 64<<10)
	for {
		n, info, err := rt.ReadFrame(ctx, buf)
		if errors.Is(err, io.ErrShortBuffer) {
			buf = make([]byte, info.Size)
			continue
		}
		if err != nil {
			return // io.EOF, the session's end, or ctx
		}
		stats.record(rt.Kind(), buf[:n], info)
	}
}
