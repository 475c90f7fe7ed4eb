package jitterbuffer_test

import (
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/jitterbuffer"
)

// A stream's buffer in a sync group: push frames as they complete, pop
// them when NextTimeout comes.
func Example() {
	g := jitterbuffer.NewGroup(0.10)
	b := jitterbuffer.New(jitterbuffer.Config{MaxDelay: 800 * time.Millisecond})
	g.Join(b)
	const ms = clock.Time(time.Millisecond)
	for i := int64(0); i < 3; i++ {
		capture := clock.Time(i) * 20 * ms
		done := capture + 45*ms // 45 ms from capture to completion
		if err := b.Push(done, jitterbuffer.Frame{ID: i, Capture: capture, Completed: done, Transit: done.Sub(capture)}); err != nil {
			fmt.Println(err)
		}
	}
	for b.Len() > 0 {
		at := b.NextTimeout()
		f, _ := b.Pop(at)
		fmt.Println(f.ID, f.Playout.Sub(f.Capture), f.Late)
	}
	// Output:
	// 0 105ms false
	// 1 105ms false
	// 2 105ms false
}
