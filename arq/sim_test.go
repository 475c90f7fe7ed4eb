package arq

import (
	"cmp"
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// The simulation drives a Receiver and a History against each other over a
// lossy, jittery link, in virtual time: 2 Mbit/s of 30 fps video (a key
// frame of 8 deltas every 3 s) in 1200-byte fragments, 50 audio packets a
// second, a non-media packet every 200 ms; one-way delay 50 ms plus 0-5 ms
// of jitter (so packets reorder); a pacer at 5 Mbit/s sending audio, then
// retransmissions, then video; deadlines capture + 300 ms; NACKs and
// transport-wide acks on the reverse link with the same loss.

type simConfig struct {
	loss     float64 // Bernoulli loss, each direction
	geBurst  float64 // if > 0: Gilbert-Elliott with this mean burst length and `loss` average loss
	duration time.Duration
	seed     uint64
	dupMask  uint8         // HistoryConfig.DuplicateLastChance
	owd      time.Duration // one-way propagation delay; default 50 ms
	budget   time.Duration // capture to deadline; default 300 ms
}

type simResult struct {
	media        int // media originals sent
	available    int // of those, available (original or retransmission) by their deadline
	lostOnLink   int // media transmissions lost while their deadline was ahead
	rtxSent      int
	rtxTooLate   int // sent when send time + propagation was not before the deadline
	rtxArrivedLt int // arrived after the deadline (jitter)
	rx           ReceiverStats
	tx           SenderStats
}

func (r simResult) rtxPerLoss() float64 { return float64(r.rtxSent) / float64(r.lostOnLink) }
func (r simResult) onTime() float64     { return float64(r.available) / float64(r.media) }

const (
	simJitter = 5 * time.Millisecond
	simRate   = 5_000_000 // pacing, bit/s
)

type simEvent struct {
	at  clock.Time
	seq int
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simPacket struct {
	pn, orig int64 // orig: the original packet number of a retransmission, else -1
	size     int
	deadline clock.Time // clock.Never for non-media
	audio    bool
	capture  clock.Time
}

// lossModel is Bernoulli, or Gilbert-Elliott (loss only in the bad state).
type lossModel struct {
	rng      *rand.Rand
	p, r     float64 // good->bad, bad->good
	bernoull float64
	bad      bool
}

func newLoss(rng *rand.Rand, loss, burst float64) *lossModel {
	if burst <= 0 {
		return &lossModel{rng: rng, bernoull: loss}
	}
	// Mean burst 1/r; stationary bad share p/(p+r) = loss.
	r := 1 / burst
	return &lossModel{rng: rng, r: r, p: loss * r / (1 - loss)}
}

func (l *lossModel) lost() bool {
	if l.r == 0 {
		return l.rng.Float64() < l.bernoull
	}
	if l.bad {
		l.bad = l.rng.Float64() >= l.r
	} else {
		l.bad = l.rng.Float64() < l.p
	}
	return l.bad
}

func runSim(t testing.TB, cfg simConfig) simResult {
	simOWD, simBudget := cmp.Or(cfg.owd, 50*time.Millisecond), cmp.Or(cfg.budget, 300*time.Millisecond)
	rng := rand.New(rand.NewPCG(cfg.seed, 99))
	fwdLoss := newLoss(rng, cfg.loss, cfg.geBurst)
	revLoss := newLoss(rng, cfg.loss, cfg.geBurst)
	var q simQueue
	seq := 0
	now := clock.Time(0)
	schedule := func(at clock.Time, fn func()) {
		seq++
		heap.Push(&q, simEvent{at: at, seq: seq, fn: fn})
	}

	rx, err := NewReceiver(ReceiverConfig{})
	require.NoError(t, err)
	tx, err := NewHistory(HistoryConfig{DuplicateLastChance: cfg.dupMask, MaxBytes: 4 << 20})
	require.NoError(t, err)
	var rttTx, rttRx RTT

	var res simResult
	var kick func()                   // wakes the pacer
	arrival := map[int64]clock.Time{} // original pn -> first time available at the receiver
	originals := map[int64]clock.Time{}
	var pendingAcks []int64

	// Receiver side.
	rxTimer, rxGen := clock.Never, 0
	var nackBuf []int64
	var armRx func()
	armRx = func() {
		at := rx.NextTimeout()
		if at >= rxTimer {
			return
		}
		rxTimer = at
		rxGen++
		gen := rxGen
		schedule(max(at, now), func() {
			if gen != rxGen {
				return
			}
			rxTimer = clock.Never
			var kf bool
			nackBuf, kf = rx.PollNACK(now, nackBuf[:0])
			require.False(t, kf, "no overflow at these loss rates")
			if len(nackBuf) > 0 && !revLoss.lost() {
				pns := append([]int64(nil), nackBuf...)
				schedule(now.Add(simOWD+time.Duration(rng.Int64N(int64(simJitter)))), func() {
					for _, pn := range pns {
						tx.OnNACK(now, pn)
					}
					kick()
				})
			}
			armRx()
		})
	}
	deliver := func(p simPacket) {
		switch {
		case p.orig >= 0:
			rx.OnRetransmission(now, p.pn, p.orig, p.deadline)
			if _, ok := arrival[p.orig]; !ok {
				arrival[p.orig] = now
			}
			if now > p.deadline {
				res.rtxArrivedLt++
			}
		case p.deadline == clock.Never:
			rx.OnPacket(now, p.pn, clock.Never)
		default:
			rx.OnPacket(now, p.pn, p.deadline)
			if _, ok := arrival[p.pn]; !ok {
				arrival[p.pn] = now
			}
			pendingAcks = append(pendingAcks, p.pn)
		}
		armRx()
	}
	var ackTick func()
	ackTick = func() { // transport-wide feedback every 50 ms
		if len(pendingAcks) > 0 && !revLoss.lost() {
			acks := append([]int64(nil), pendingAcks...)
			schedule(now.Add(simOWD), func() {
				for _, pn := range acks {
					tx.Acked(pn)
				}
			})
		}
		pendingAcks = pendingAcks[:0]
		schedule(now.Add(50*time.Millisecond), ackTick)
	}
	var rttTick func()
	rttTick = func() { // a ping every 500 ms
		sample := 2*simOWD + time.Duration(rng.Int64N(int64(2*simJitter)))
		rttTx.Add(now, sample)
		rttRx.Add(now, sample)
		tx.SetRTT(&rttTx)
		rx.SetRTT(&rttRx)
		schedule(now.Add(500*time.Millisecond), rttTick)
	}

	// Sender side.
	var audioQ, videoQ []simPacket
	nextPN := int64(0)
	nextSend := clock.Time(0)
	paceArmed := false
	rtxBuf := make([]byte, 1500)
	transmit := func(p simPacket) {
		p.pn = nextPN
		nextPN++
		nextSend = now.Add(time.Duration(p.size * 8 * int(time.Second) / simRate))
		media := p.deadline != clock.Never
		if media && p.orig < 0 {
			res.media++
			originals[p.pn] = p.deadline
			prio := uint8(1)
			if p.audio {
				prio = 0
			}
			tx.Put(now, p.pn, rtxBuf[:p.size], p.deadline, prio)
		}
		if p.orig >= 0 {
			res.rtxSent++
			if now.Add(simOWD) >= p.deadline {
				res.rtxTooLate++
			}
		}
		if fwdLoss.lost() {
			if media && now.Add(simOWD) < p.deadline {
				res.lostOnLink++
			}
			return
		}
		schedule(now.Add(simOWD+time.Duration(rng.Int64N(int64(simJitter)))), func() { deliver(p) })
	}
	var pace func()
	pace = func() {
		paceArmed = false
		if now < nextSend {
			kick()
			return
		}
		switch {
		case len(audioQ) > 0:
			p := audioQ[0]
			audioQ = audioQ[1:]
			transmit(p)
		case tx.HasRetransmit(now):
			oneWay := rttTx.Smoothed() / 2
			if orig, n, d, ok := tx.PollRetransmit(now, oneWay, rtxBuf); ok {
				transmit(simPacket{orig: orig, size: n, deadline: d})
			} else {
				pace()
				return
			}
		case len(videoQ) > 0:
			p := videoQ[0]
			videoQ = videoQ[1:]
			if now.Add(simOWD) >= p.deadline {
				pace() // dropped proactively: it cannot arrive in time
				return
			}
			transmit(p)
		default:
			return
		}
		kick()
	}
	kick = func() {
		if paceArmed || (len(audioQ) == 0 && len(videoQ) == 0 && !tx.HasRetransmit(now)) {
			return
		}
		paceArmed = true
		schedule(max(now, nextSend), pace)
	}
	var videoTick, audioTick, pingTick func()
	frame := 0
	videoTick = func() {
		size := 7700
		if frame%90 == 0 {
			size *= 8
		}
		frame++
		for size > 0 {
			n := min(size, 1200)
			size -= n
			videoQ = append(videoQ, simPacket{orig: -1, size: n, deadline: now.Add(simBudget), capture: now})
		}
		kick()
		schedule(now.Add(time.Second/30), videoTick)
	}
	audioTick = func() {
		audioQ = append(audioQ, simPacket{orig: -1, size: 160, deadline: now.Add(simBudget), audio: true, capture: now})
		kick()
		schedule(now.Add(20*time.Millisecond), audioTick)
	}
	pingTick = func() {
		audioQ = append(audioQ, simPacket{orig: -1, size: 30, deadline: clock.Never})
		kick()
		schedule(now.Add(200*time.Millisecond), pingTick)
	}

	rttTick()
	schedule(0, videoTick)
	schedule(0, audioTick)
	schedule(0, pingTick)
	schedule(0, ackTick)
	for q.Len() > 0 {
		e := heap.Pop(&q).(simEvent)
		if e.at > clock.Time(cfg.duration) {
			break
		}
		now = e.at
		e.fn()
	}
	// Count originals whose deadline passed well before the end.
	res.media = 0
	for pn, d := range originals {
		if d > now.Add(-time.Second) {
			continue
		}
		res.media++
		if a, ok := arrival[pn]; ok && a <= d {
			res.available++
		}
	}
	res.rx, res.tx = rx.Stats(), tx.Stats()
	return res
}

func TestSimulation(t *testing.T) {
	tests := []struct {
		name          string
		cfg           simConfig
		maxRtxPerLoss float64
		minOnTime     float64
	}{
		// On time here is per packet, ARQ alone (no FEC). At RTT 100 ms and
		// a 300 ms budget a packet gets two rounds if sent promptly, one if
		// sent late in its budget (key frames, frames queued behind them).
		{"5% loss", simConfig{loss: 0.05}, 1.1, 0.998},
		{"10% loss", simConfig{loss: 0.10}, 1.1, 0.995},
		{"20% loss", simConfig{loss: 0.20}, 1.1, 0.975},
		{"Gilbert-Elliott 10%, bursts of 3", simConfig{loss: 0.10, geBurst: 3}, 1.1, 0.99},
		{"10% loss, audio's last chance sent twice", simConfig{loss: 0.10, dupMask: 1}, 1.1, 0.995},
		{"Live: RTT 300 ms, 3 s, 20% loss", simConfig{loss: 0.20, owd: 150 * time.Millisecond, budget: 3 * time.Second}, 1.1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.duration = 60 * time.Second
			tt.cfg.seed = 1
			r := runSim(t, tt.cfg)
			t.Logf("media %d, lost on the link %d, retransmissions %d (%.3f per loss), sent too late %d, arrived late %d, on time %.4f",
				r.media, r.lostOnLink, r.rtxSent, r.rtxPerLoss(), r.rtxTooLate, r.rtxArrivedLt, r.onTime())
			t.Logf("receiver: NACKed %d (requests %d, repeats %d, re-NACKs %d), gave up %d, spurious NACKs %d, reorder allowance %v; sender: unknown %d, skipped late %d, duplicates %d, last-chance copies %d, spurious %d",
				r.rx.PacketsNACKed, r.rx.NACKRequests, r.rx.Repeats, r.rx.ReNACKs, r.rx.GaveUp, r.rx.SpuriousNACKs, r.rx.ReorderAllowance,
				r.tx.NACKsUnknown, r.tx.RtxSkippedLate, r.tx.NACKsDuplicate, r.tx.LastChanceDuplicates, r.tx.SpuriousRetransmissions)
			assert.Zero(t, r.rtxTooLate, "no retransmission sent after it could arrive in time")
			assert.LessOrEqual(t, r.rtxPerLoss(), tt.maxRtxPerLoss)
			assert.GreaterOrEqual(t, r.onTime(), tt.minOnTime)
			assert.Zero(t, r.rx.Overflows)
			assert.Zero(t, r.tx.EvictedEarly)
			if tt.cfg.dupMask != 0 {
				assert.Positive(t, r.tx.LastChanceDuplicates)
			}
		})
	}
}

// TestSimulationNeverLate runs many short seeded scenarios with random loss
// and delay and counts retransmissions sent when send time + propagation
// was not before the deadline: none.
func TestSimulationNeverLate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var rtx int
	for seed := range uint64(40) {
		cfg := simConfig{
			loss:     0.02 + 0.3*rng.Float64(),
			duration: 10 * time.Second,
			seed:     seed,
			owd:      time.Duration(5+rng.IntN(200)) * time.Millisecond,
			budget:   time.Duration(150+rng.IntN(1000)) * time.Millisecond,
			dupMask:  uint8(rng.IntN(4)),
		}
		if rng.IntN(3) == 0 {
			cfg.geBurst = 1 + 4*rng.Float64()
		}
		r := runSim(t, cfg)
		require.Zero(t, r.rtxTooLate, "%+v", cfg)
		rtx += r.rtxSent
	}
	t.Logf("%d retransmissions over 40 scenarios, none sent too late", rtx)
	assert.Greater(t, rtx, 10_000)
}
