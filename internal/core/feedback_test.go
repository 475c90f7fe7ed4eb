package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/wire"
)

// countingEstimator counts how often feedback reported each packet.
type countingEstimator struct {
	cc.Fixed
	seen map[int64]int
}

func (e *countingEstimator) OnFeedback(_ clock.Time, fb *cc.Feedback, _ cc.RTT, _ bool) {
	for _, p := range fb.Packets {
		e.seen[p.PacketNumber]++
	}
}

// Each transport-wide report repeats the last 100 ms of arrivals, so a lost
// report loses nothing, and the sender hands each packet to its estimator
// once however often it is reported.
func TestTransportFeedbackRepeatsArrivals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lossOf int // every lossOf-th report carrying TWCC is lost; 0 none
	}{
		{"lossless", 0},
		{"every second report lost", 2},
		{"every third report lost", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := &countingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, seen: map[int64]int{}}
			p := newPipe(t, Config{Estimator: func() cc.Estimator { return est }})
			sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindVideo, Bitrate: 1_000_000})
			require.NoError(t, err)
			reports, lost := 0, 0
			p.drop = func(from string, b []byte) bool {
				if from != "server" || tc.lossOf == 0 || wire.Type(b[0]>>3&7) != wire.TypeFeedback {
					return false
				}
				var sh wire.ShortHeader
				rtcp, err := wire.ParseFeedbackHeader(b, &sh)
				require.NoError(t, err)
				var f wire.Feedback
				require.NoError(t, wire.ParseFeedback(rtcp, &f))
				if len(f.TWCCs) == 0 {
					return false
				}
				reports++
				if reports%tc.lossOf == 0 {
					lost++
					return true
				}
				return false
			}
			for i := range 300 {
				p.now = p.now.Add(10 * time.Millisecond)
				if i < 250 && i%2 == 0 {
					require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 2500), FrameInfo{Capture: p.now, Key: i == 0}))
				}
				p.tick()
				p.drainEvents()
			}
			sent := p.cc.Stats().MediaPacketsSent
			require.Equal(t, sent, p.sc.Stats().MediaPacketsReceived, "the forward path loses nothing")
			assert.Len(t, est.seen, int(sent), "every packet that arrived reaches the estimator")
			for pn, n := range est.seen {
				assert.Equal(t, 1, n, "packet %d handed to the estimator once", pn)
			}
			if tc.lossOf > 0 {
				assert.Positive(t, lost)
			}
		})
	}
}
