package cc

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// FuzzEstimators feeds GCC and GCC02 reports decoded from data: arrival
// times anywhere in the TWCC range (±2^23 x 64 ms plus deltas), send
// times and now mostly forward, sizes, loss, RTTs and OnTime/PollProbe
// calls as the bytes say. The targets stay within [MinRate, MaxRate] and
// the state stays finite; and once 20 s of sane reports follow (1 Mbit/s,
// the peer's clock at any offset), the receive rates read 1 Mbit/s.
func FuzzEstimators(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add(make([]byte, 200))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := GCCConfig{StartRate: 300_000, MinRate: 50_000, MaxRate: 5_000_000}
		g, g2 := NewGCC(cfg), NewGCC02(cfg)
		rd := func(n int) uint64 {
			var b [8]byte
			k := copy(b[:n], data)
			data = data[k:]
			return binary.LittleEndian.Uint64(b[:])
		}
		now, send := clock.Time(0), clock.Time(0)
		arr := clock.Time(0)
		var fb Feedback
		off := time.Duration(int64(int32(rd(3)<<8))>>8) * 64 * time.Millisecond
		for len(data) > 0 {
			op := rd(1)
			now = now.Add(time.Duration(int16(rd(2))) * time.Millisecond) // may go back
			rtt := RTT{Min: time.Duration(rd(2)) * time.Millisecond, Smoothed: time.Duration(rd(2)) * time.Millisecond}
			rtt.Latest = rtt.Smoothed
			switch op % 8 {
			case 0:
				g.OnTime(now, rtt)
			case 1:
				g.PollProbe(now)
			default:
				fb.Packets = fb.Packets[:0]
				n := int(rd(1)) * int(op%8)
				mode := rd(1)
				if mode%16 == 0 {
					arr = clock.Time(int64(int32(rd(3)<<8))>>8) * clock.Time(64*time.Millisecond)
				}
				for i := range n {
					send = send.Add(time.Duration(rd(1)) * 100 * time.Microsecond)
					p := PacketResult{PacketNumber: int64(i), Size: int(rd(1)) * 10, SendTime: send, ProbeID: int(mode % 4)}
					if d := rd(1); d%5 != 0 {
						p.Received = true
						arr = arr.Add(time.Duration(int8(d)) * time.Duration(1+mode%3*1000) * 250 * time.Microsecond)
						p.ArrivalTime = arr
					}
					fb.Packets = append(fb.Packets, p)
				}
				al := mode&32 != 0
				g.OnFeedback(now, &fb, rtt, al)
				g2.OnFeedback(now, &fb, rtt, al)
			}
			for _, e := range []Estimator{g, g2} {
				if tg := e.Target(); tg < cfg.MinRate || tg > cfg.MaxRate {
					t.Fatalf("%T target %d", e, tg)
				}
			}
			for name, v := range map[string]float64{"target": g.target, "lossFrac": g.lossFrac, "accDelay": g.accDelay,
				"smoothDelay": g.smoothDelay, "threshold": g.det.threshold, "queueMS": g.queueMS, "ack": g.ack.rate,
				"mHat": g2.mHat, "varV": g2.varV, "e": g2.e, "delayRate": g2.delayRate, "lossRate": g2.lossRate} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s = %v", name, v)
				}
			}
		}
		// Sane reports: 1200 bytes every 9.6 ms, a report every 50 ms.
		send = clock.Max(now, send).Add(time.Second)
		for range 400 {
			fb.Packets = fb.Packets[:0]
			for range 5 {
				send = send.Add(9600 * time.Microsecond)
				fb.Packets = append(fb.Packets, PacketResult{Size: 1200, SendTime: send, Received: true, ArrivalTime: send.Add(off)})
			}
			rtt := RTT{Min: 60 * time.Millisecond, Smoothed: 60 * time.Millisecond, Latest: 60 * time.Millisecond}
			g.OnFeedback(send.Add(30*time.Millisecond), &fb, rtt, false)
			g2.OnFeedback(send.Add(30*time.Millisecond), &fb, rtt, false)
		}
		for _, r := range []float64{g.ack.rate, g2.ack.rate} {
			if r < 0.8e6 || r > 1.2e6 {
				t.Fatalf("receive rate %.0f after 20 s of 1 Mbit/s (GCC %.0f, GCC02 %.0f)", r, g.ack.rate, g2.ack.rate)
			}
		}
	})
}
