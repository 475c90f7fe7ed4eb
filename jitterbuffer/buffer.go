package jitterbuffer

import (
	"errors"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Errors Push returns; the caller still owns the frame's data.
var (
	// ErrLate: a frame at or before one already released arrived; releasing
	// it would break order.
	ErrLate = errors.New("jitterbuffer: frame arrived after a later frame was released")
	// ErrFull: the buffer holds its maximum number of frames.
	ErrFull = errors.New("jitterbuffer: full")
	// ErrDuplicate: the buffer already holds a frame with this id.
	ErrDuplicate = errors.New("jitterbuffer: duplicate frame")
)

// Frame is a complete frame waiting for its playout time. Data is owned by
// whoever pushed it; the buffer only holds the slice.
type Frame struct {
	ID         int64
	Capture    clock.Time // capture time on the receiver's clock
	Completed  clock.Time // when its last fragment arrived
	Key        bool
	Droppable  bool
	LostBefore int64 // set on release: frames skipped since the previous release
	Data       []byte
}

// Config configures a Buffer.
type Config struct {
	Delay     time.Duration // playout delay: playout = capture + Delay
	MaxFrames int           // frames held at most (default 512)
}

// DefaultMaxFrames bounds a buffer's length: 512 frames is 10 s of 50 fps
// audio, beyond any playout delay a profile allows.
const DefaultMaxFrames = 512

// Stats counts what a buffer did.
type Stats struct {
	FramesReleased int64
	FramesSkipped  int64 // ids never pushed before a later frame's release
	FramesLate     int64 // pushes refused with ErrLate
}

// Buffer is a fixed-delay playout buffer for one stream.
type Buffer struct {
	delay  time.Duration
	frames []Frame // sorted by ID; capacity MaxFrames, never grown
	next   int64   // lowest id still releasable; -1 before the first release
	stats  Stats
}

// New returns a buffer. It allocates its storage once.
func New(cfg Config) *Buffer {
	if cfg.MaxFrames <= 0 {
		cfg.MaxFrames = DefaultMaxFrames
	}
	return &Buffer{delay: cfg.Delay, frames: make([]Frame, 0, cfg.MaxFrames), next: -1}
}

// Delay returns the playout delay.
func (b *Buffer) Delay() time.Duration { return b.delay }

// PlayoutTime returns when a frame captured at capture (receiver's clock)
// plays.
func (b *Buffer) PlayoutTime(capture clock.Time) clock.Time { return capture.Add(b.delay) }

// Len returns the number of frames held.
func (b *Buffer) Len() int { return len(b.frames) }

// Push adds a complete frame. On error the frame was not taken.
func (b *Buffer) Push(now clock.Time, f Frame) error {
	if b.next >= 0 && f.ID < b.next {
		b.stats.FramesLate++
		return ErrLate
	}
	if len(b.frames) == cap(b.frames) {
		return ErrFull
	}
	// Frames nearly always arrive in order: find the place from the end.
	i := len(b.frames)
	for i > 0 && b.frames[i-1].ID > f.ID {
		i--
	}
	if i > 0 && b.frames[i-1].ID == f.ID {
		return ErrDuplicate
	}
	b.frames = append(b.frames, Frame{})
	copy(b.frames[i+1:], b.frames[i:])
	b.frames[i] = f
	return nil
}

// Pop releases the next frame if its playout time has come. LostBefore says
// how many ids were skipped to reach it.
func (b *Buffer) Pop(now clock.Time) (Frame, bool) {
	if len(b.frames) == 0 || b.PlayoutTime(b.frames[0].Capture) > now {
		return Frame{}, false
	}
	return b.release(), true
}

// Flush releases the next frame whatever its playout time (used when a
// stream ends and what it holds should go out at once).
func (b *Buffer) Flush() (Frame, bool) {
	if len(b.frames) == 0 {
		return Frame{}, false
	}
	return b.release(), true
}

func (b *Buffer) release() Frame {
	f := b.frames[0]
	copy(b.frames, b.frames[1:])
	b.frames[len(b.frames)-1] = Frame{}
	b.frames = b.frames[:len(b.frames)-1]
	if b.next >= 0 && f.ID > b.next {
		f.LostBefore = f.ID - b.next
		b.stats.FramesSkipped += f.LostBefore
	}
	b.next = f.ID + 1
	b.stats.FramesReleased++
	return f
}

// NextTimeout returns when Pop next has a frame to give, or clock.Never.
func (b *Buffer) NextTimeout() clock.Time {
	if len(b.frames) == 0 {
		return clock.Never
	}
	return b.PlayoutTime(b.frames[0].Capture)
}

// Expect says the stream's frames start at id: ids below it are not waited
// for, and a first frame released after id counts the ids it skipped as
// lost. Without it, the first frame released sets where the stream starts
// (a receiver joining mid-stream).
func (b *Buffer) Expect(id int64) {
	if len(b.frames) == 0 || b.frames[0].ID >= id {
		b.next = id
	}
}

// Reset empties the buffer for a new stream on the same id: it forgets the
// frames it holds (their data is the caller's to free first, with Flush)
// and what it released. Counters are kept.
func (b *Buffer) Reset() {
	clear(b.frames)
	b.frames = b.frames[:0]
	b.next = -1
}

// Stats returns the buffer's counters.
func (b *Buffer) Stats() Stats { return b.stats }
