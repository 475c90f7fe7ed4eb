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

// Each transport-wide report repeats the arrivals of the last two feedback
// intervals, at least 100 ms, so a lost report loses nothing, and the
// sender hands each packet to its estimator once however often it is
// reported. (The repeat was a fixed 100 ms: at an interval of 100 ms, with
// every second report lost, 206 of 375 arrivals reached the estimator.)
func TestTransportFeedbackRepeatsArrivals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lossOf   int           // every lossOf-th report carrying TWCC is lost; 0 none
		interval time.Duration // FeedbackInterval (0: the default, 50 ms)
	}{
		{"lossless", 0, 0},
		{"every second report lost", 2, 0},
		{"every third report lost", 3, 0},
		{"every second report lost, 100 ms apart", 2, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			est := &countingEstimator{Fixed: cc.Fixed{Rate: 1_000_000}, seen: map[int64]int{}}
			p := newPipe(t, Config{FeedbackInterval: tc.interval, Estimator: func() cc.Estimator { return est }})
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
			assert.Zero(t, p.cc.Stats().Congestion, "an estimator without counters reports none")
		})
	}
}

// A TWCC report's 24-bit reference time is read as the nearest to the
// last report's: across its wrap (the receiver's clock past 6.2 days) and
// for reports reordered, the arrival times stay continuous.
func TestUnwrapTWCCRef(t *testing.T) {
	const wrap = 1 << 24
	tests := []struct {
		name string
		last int64
		set  bool
		ref  int32
		want int64
	}{
		{"first report", 0, false, -5, -5},
		{"next", 100, true, 101, 101},
		{"reordered", 100, true, 99, 99},
		{"across the wrap", 1<<23 - 1, true, -1 << 23, 1 << 23},
		{"the wrap after", wrap + 10, true, 12, wrap + 12},
		{"reordered across it", 1 << 23, true, 1<<23 - 1, 1<<23 - 1},
		{"backwards across it", -1 << 23, true, 1<<23 - 1, -1<<23 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unwrapTWCCRef(tt.last, tt.set, tt.ref))
		})
	}
}

// Across the wrap of the TWCC reference time (the receiver's clock at
// 2^23 x 64 ms, 6.2 days), the arrival times the sender's estimator gets
// stay on the receiver's clock (the pipe's two ends share it); they
// jumped back 12.4 days.
func TestTWCCArrivalsAcrossTheWrap(t *testing.T) {
	p := newEndpoints(t, Config{})
	p.now = clock.Time(1<<23)*clock.Time(wire.TWCCRefTimeUnit) - clock.Time(3*time.Second)
	p.connect(t)
	sid, err := p.cc.OpenStream(p.now, StreamConfig{Kind: KindAudio})
	require.NoError(t, err)
	worst := time.Duration(0)
	for range 300 { // 6 s of 20 ms frames, across the wrap
		require.NoError(t, p.cc.WriteFrame(p.now, sid, make([]byte, 100), FrameInfo{Capture: p.now}))
		p.tick()
		for _, pk := range p.cc.rcv.fb.ccReport.Packets {
			if pk.Received {
				worst = max(worst, max(pk.ArrivalTime.Sub(p.now), p.now.Sub(pk.ArrivalTime)))
			}
		}
		p.now = p.now.Add(20 * time.Millisecond)
	}
	assert.Less(t, worst, time.Second, "reported arrival times against the receiver's clock")
}
