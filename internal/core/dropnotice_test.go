package core

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// Drop notices: a new one goes at once alone; the ones already sent wait
// for their repeat (one smoothed RTT), when every live one goes again.
func TestDropNoticesRepeatOnTheirOwnClock(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.connected()
	s := &p.cc.snd
	d := &s.notices
	now := p.sim.Now()
	repeat := s.noticeRepeat()
	require.Greater(t, repeat, 100*time.Millisecond)
	buf := make([]byte, 0, 1500)
	sent := func(at clock.Time) int64 {
		before := d.stats.Sent
		require.LessOrEqual(t, s.noticeDue(), at, "owed")
		_ = s.appendNotices(at, buf[:0], 1200)
		return d.stats.Sent - before
	}
	// Frames 1, 3, 5 dropped 33 ms apart (not mergeable), none acked.
	for i := range 3 {
		at := now.Add(time.Duration(i) * 33 * time.Millisecond)
		d.addFrame(at, 1, int64(2*i+1))
		assert.Equal(t, int64(1), sent(at), "notice %d: only the new one", i)
	}
	assert.Equal(t, now.Add(repeat), s.noticeDue(), "the repeat")
	assert.Equal(t, int64(3), sent(now.Add(repeat)), "every live notice again")

	// One that did not fit goes with the next packet.
	at := now.Add(repeat + 10*time.Millisecond)
	d.addFrame(at, 1, 20)
	d.addFrame(at, 2, 40)
	before := d.stats.Sent
	_ = s.appendNotices(at, buf[:0], dropNoticeLen+12)
	assert.Equal(t, int64(1), d.stats.Sent-before)
	assert.Equal(t, s.c.lastSend, s.noticeDue(), "the other is still owed")
	assert.Equal(t, int64(1), sent(at))
}

// A repeat the packet's budget cuts short owes the notices it had no room
// for to the next packet: cut at the same place every time, it once never
// repeated the newest.
func TestDropNoticesRepeatCutShortOwesTheRest(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.connected()
	s := &p.cc.snd
	d := &s.notices
	now := p.sim.Now()
	buf := make([]byte, 0, 1500)
	for i := range 4 {
		d.addFrame(now, 1, int64(2*i+1)) // seqs 0-3, not mergeable
	}
	_ = s.appendNotices(now, buf[:0], 1200) // all four go once
	budget := 2*dropNoticeLen + 12          // room for two a packet
	sends := map[uint16]int{}
	for at := now.Add(s.noticeRepeat()); at <= now.Add(dropNoticeLife); at = max(s.noticeDue(), at) {
		out := s.appendNotices(at, buf[:0], budget)
		for e := 12; e+dropNoticeLen <= len(out); e += dropNoticeLen {
			sends[binary.BigEndian.Uint16(out[e:])]++
		}
		if s.noticeDue() == clock.Never {
			break
		}
	}
	for seq := range uint16(4) {
		assert.Positive(t, sends[seq], "notice %d repeated", seq)
	}
	assert.InDelta(t, sends[0], sends[3], 1, "each about as often: %v", sends)
}
