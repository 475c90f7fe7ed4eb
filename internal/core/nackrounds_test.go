package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/wire"
)

// A packet's NACK rounds last as long as its budget allows: with Live's
// 3 s, a retransmission that cannot get through for 2 s (after a
// collapse, the sender's retransmissions queue behind each other at the
// path's rate) still repairs the frame. Ten rounds at RTT 100 ms gave up
// after about a second. With RTC's 300 ms the deadline ends the rounds
// first either way.
func TestNACKRoundsLastTheBudget(t *testing.T) {
	tests := []struct {
		name     string
		latency  time.Duration
		blockFor time.Duration // retransmissions of the lost packet dropped for so long
		repaired bool
	}{
		{name: "Live, blocked 2 s", latency: 3 * time.Second, blockFor: 2 * time.Second, repaired: true},
		{name: "Live, blocked 4 s: past the budget", latency: 3 * time.Second, blockFor: 4 * time.Second},
		{name: "RTC, blocked 100 ms", latency: 300 * time.Millisecond, blockFor: 100 * time.Millisecond, repaired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link := netem.LinkConfig{Delay: 50 * time.Millisecond}
			lostAt := clock.Never

			cfg := Config{Latency: tt.latency}
			p := newPair(t, pairOpts{client: cfg, server: cfg, fwd: link, rev: link,
				clientFilter: func(now clock.Time, b []byte) bool {
					var h wire.DataHeader
					if _, err := h.Parse(b); err != nil {
						return true
					}
					switch {
					case !h.Retransmit && h.FrameID == 1 && h.FragIndex == 1 && lostAt == clock.Never:
						lostAt = now
						return false
					case h.Retransmit && lostAt != clock.Never && now < lostAt.Add(tt.blockFor):
						return false
					}
					return true
				}})
			p.connected()
			var sid uint8
			p.at(0, func(now clock.Time) {
				var err error
				sid, err = p.cc.OpenStream(now, StreamConfig{Kind: KindVideo, Bitrate: 500_000})
				require.NoError(t, err)
				for i := range 150 { // 5 s at 30 fps: a key frame, then deltas of 3 packets
					p.at(time.Duration(i)*time.Second/30, func(now clock.Time) {
						_ = p.cc.WriteFrame(now, sid, payload(sid, int64(i), 3000), FrameInfo{Capture: now, Key: i == 0})
					})
				}
			})
			p.run(6 * time.Second)
			require.NotEqual(t, clock.Never, lostAt, "the packet was lost")
			var got, gone bool
			for _, ev := range p.server.events {
				if ev.Frame.ID != 1 {
					continue
				}
				switch ev.Type {
				case EventFrame:
					got = !ev.Frame.Undecodable
				case EventFrameLost:
					gone = true
				}
			}
			assert.Equal(t, tt.repaired, got, "frame 1 delivered")
			assert.Equal(t, !tt.repaired, gone, "frame 1 given up")
		})
	}
}

func TestNACKRoundsFromTheBudget(t *testing.T) {
	tests := []struct {
		budget time.Duration
		want   int
	}{
		{0, 10},
		{300 * time.Millisecond, 10}, // RTC: arq's default
		{time.Second, 20},
		{3 * time.Second, 60}, // Live
		{60 * time.Second, 255},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, nackRounds(tt.budget), "budget %v", tt.budget)
	}
}
