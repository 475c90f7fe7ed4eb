package core

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// noticeSender is a connected client's sender, its drop notices, and now.
func noticeSender(t *testing.T) (*sender, *dropNotices, clock.Time) {
	p := newPair(t, pairOpts{})
	p.connected()
	return &p.cc.snd, &p.cc.snd.notices, p.sim.Now()
}

// Drop notices: a new one goes at once, with every live one (under loss
// the copies get a notice through soon); then all go again one repeat
// (a smoothed RTT) after the last packet that carried them.
func TestDropNoticesGoWithEachNewOne(t *testing.T) {
	s, d, now := noticeSender(t)
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
	last := now
	for i := range 3 {
		last = now.Add(time.Duration(i) * 33 * time.Millisecond)
		d.addFrame(last, 1, int64(2*i+1))
		assert.Equal(t, int64(i+1), sent(last), "notice %d: with those before it", i)
	}
	assert.Equal(t, last.Add(repeat), s.noticeDue(), "the repeat")
	assert.Equal(t, int64(3), sent(last.Add(repeat)), "every live notice again")

	// A packet with room for one: a new notice goes first; the others are
	// owed to the next packet.
	at := last.Add(repeat + 10*time.Millisecond)
	d.addFrame(at, 1, 20)
	d.addFrame(at, 2, 40)
	before := d.stats.Sent
	out := s.appendNotices(at, buf[:0], dropNoticeLen+12)
	assert.Equal(t, int64(1), d.stats.Sent-before)
	assert.Equal(t, uint16(3), binary.BigEndian.Uint16(out[12:]), "the first never sent")
	assert.Equal(t, s.c.lastSend, s.noticeDue(), "the other never sent is due")
	before = d.stats.Sent
	out = s.appendNotices(at, buf[:0], 2*dropNoticeLen+12)
	assert.Equal(t, int64(2), d.stats.Sent-before)
	assert.Equal(t, uint16(4), binary.BigEndian.Uint16(out[12:]), "then the other never sent")
	assert.Equal(t, uint16(0), binary.BigEndian.Uint16(out[12+dropNoticeLen:]), "then the oldest owed")
	assert.Equal(t, at.Add(repeat), s.noticeDue(), "the owed ones wait for the next packet or the repeat")
}

// A repeat the packet's budget cuts short owes the notices it had no room
// for to the next packet: cut at the same place every time, it once never
// repeated the newest.
func TestDropNoticesRepeatCutShortOwesTheRest(t *testing.T) {
	s, d, now := noticeSender(t)
	buf := make([]byte, 0, 1500)
	for i := range 4 {
		d.addFrame(now, 1, int64(2*i+1)) // seqs 0-3, not mergeable
	}
	_ = s.appendNotices(now, buf[:0], 1200) // all four go once
	budget := 2*dropNoticeLen + 12          // room for two a packet
	sends := map[uint16]int{}
	packets := 0
	for at := now.Add(s.noticeRepeat()); at <= now.Add(dropNoticeLife); at = max(s.noticeDue(), at) {
		packets++
		require.Less(t, packets, 100, "a budget too small for every notice must not make packets due without end")
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
