package fec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// depthFor compares sequential and interleaved layouts at the block sizes
// open can give them: a block of k members g*d apart spans (k-1)*g*d+1
// packet numbers, at most MaxSpan, and k is at most MaxK. It compared
// sizes open could not use, so with a lane whose packets sit 12 apart
// (other streams between them) a bursty path made the lane interleave 3
// deep, open found room for k = 1 per block, and the policy gives k = 1 no
// repair: a 100-packet key frame that got FEC on its own went out with
// none. A layout with no repair is no cheaper protection either.
func TestInterleaveLeavesFrameUnprotected(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{})
	require.NoError(t, err)
	e.SetConditions(0, Conditions{Loss: 0.02, MeanBurst: 3, RTT: 200 * ms, OneWay: 100 * ms})
	const gap = 12
	pn := int64(0)
	pkt := make([]byte, 1000)
	repairsPerFrame := []int{}
	for f := range 4 {
		now := clock.Time(time.Duration(f) * 100 * ms)
		for i := range 100 {
			e.AddMedia(now, pn, pkt, ClassKey, now.Add(300*ms), i == 99)
			pn += gap
		}
		repairsPerFrame = append(repairsPerFrame, len(pollAll(t, e, now)))
	}
	t.Logf("repairs per frame: %v, depth %d, stats %+v", repairsPerFrame, e.lanes[ClassKey].depth, e.Stats())
	require.NotZero(t, repairsPerFrame[0], "the first frame (no interleaving yet) is protected")
	for f := 1; f < len(repairsPerFrame); f++ {
		assert.NotZero(t, repairsPerFrame[f], "frame %d: same frame, same path, no repair packets", f)
	}
}

// The quiet rule's 2 s branch counted time to now: a quiet run of a single
// good packet followed by silence (feedback lost or late, as on a path in
// a bad spell) read as "loss stopped" 2 s after that packet was sent,
// though nothing about the last 2 s is known. The run's own span counts
// now. The 5 s window still holds 10 % loss.
func TestEstimatorSilenceIsNotQuiet(t *testing.T) {
	var l LossEstimator
	now := clock.Time(0)
	for i := range 5000 { // 5 s at 1 packet/ms, every 10th lost
		now = now.Add(time.Millisecond)
		l.OnPacket(now, i%10 == 9)
	}
	now = now.Add(time.Millisecond)
	l.OnPacket(now, false) // one good packet after the last loss, then no reports
	loss, _ := l.Estimate(now)
	require.InDelta(t, 0.1, loss, 0.01)
	later := now.Add(2*time.Second + time.Millisecond)
	loss, _ = l.Estimate(later)
	assert.InDelta(t, 0.1, loss, 0.02, "1 good packet and 2 s of silence read as loss stopped")
}

// OnRepair bounded a repair's reach (maxJump) only once a packet had been
// seen: a first repair naming a block near 2^63 was accepted, moved the
// window there, and from then on every media packet was "older than the
// history" and d.highest+maxJump overflowed, so every later repair was
// discarded as invalid: one hostile repair disabled the decoder for good.
// Packet numbers start at 0 (PROTOCOL §2.1), so a block reaching past
// 0+maxJump before anything arrived cannot be genuine.
func TestFirstRepairFarAheadDisablesDecoder(t *testing.T) {
	d := newDecoder(t)
	d.OnRepair(0, Block{Base: 1<<63 - 1 - 100, Mask: 1, M: 1}, []byte{1, 2, 3})

	// A genuine block afterwards: members 10-13, one lost, one repair.
	e := fixedEncoder(t, 4, 1)
	pkts := [][]byte{{1, 2, 3}, {4, 5}, {6}, {7, 8, 9, 10}}
	for i, p := range pkts {
		e.AddMedia(0, int64(10+i), p, ClassDelta, clock.Time(time.Second), i == 3)
	}
	reps := pollAll(t, e, 0)
	require.Len(t, reps, 1)
	for i, p := range pkts {
		if i != 2 {
			d.OnMedia(0, int64(10+i), p)
		}
	}
	d.OnRepair(0, reps[0].b, reps[0].sym)
	got := drainRecovered(d)
	assert.Equal(t, []byte{6}, got[12], "packet 12 is recoverable (highest %d, stats %+v)", d.highest, d.Stats())
}

// close() re-plans a block that ends short of its planned k with mFor,
// which may answer "no repairs: ARQ with the last retransmission doubled"
// (arqPlan's second rule). The block was then released, but the doubling
// is reported by AddMedia's return value, already given (false) for every
// member: the members ended up with plain ARQ, which arqPlan had just
// judged insufficient (at 15 % loss, two rounds, a 5-packet delta block
// fails 1 - (1 - p^3)^5 = 1.7 %, above ARQCeiling and the 0.3 % target).
// Such a block now keeps its parity.
func TestShortBlockLosesBothFECAndLastChance(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{})
	require.NoError(t, err)
	e.SetConditions(0, Conditions{Loss: 0.15, MeanBurst: 1, RTT: 100 * ms, OneWay: 50 * ms, ARQ: true})
	pn := int64(0)
	send := func(now clock.Time, n int) (dups, reps int) {
		for i := range n {
			if e.AddMedia(now, pn, make([]byte, 1000), ClassDelta, now.Add(300*ms), i == n-1) {
				dups++
			}
			pn++
		}
		return dups, len(pollAll(t, e, now))
	}
	for f := range 5 { // frames of 7 packets: the lane learns the frame size
		_, reps := send(clock.Time(time.Duration(f)*33*ms), 7)
		require.NotZero(t, reps, "a 7-packet frame gets FEC")
	}
	// The policy itself, for a block of 5: no FEC, last chance doubled.
	m, dup := e.mFor(ClassDelta, 5, 2, 1, 1)
	require.Equal(t, 0, m)
	require.True(t, dup)
	plainARQ := e.arqFails(5, 3)
	require.Greater(t, plainARQ, ARQCeiling)

	dups, reps := send(clock.Time(200*ms), 5) // a smaller frame
	t.Logf("5-packet frame: %d repairs, %d packets marked for the doubled last chance", reps, dups)
	assert.True(t, reps > 0 || dups == 5,
		"a 5-packet frame gets neither FEC nor the doubled last chance: plain ARQ fails it %.2f %%", 100*plainARQ)
}

// MeanBurst = +Inf (burst without end) was modelled as Bernoulli loss:
// newModel set lambda = 0 for an infinite burst instead of its limit
// lambda -> 1, so F fell from 5 % (burst 1e12) to 0.3 % (burst +Inf) and
// the policy planned as if loss were independent.
func TestInfiniteBurstIsNotBernoulli(t *testing.T) {
	huge := Analyze(Conditions{Loss: 0.05, MeanBurst: 1e12}, 10, 3, 1, 1, 0, 0)
	inf := Analyze(Conditions{Loss: 0.05, MeanBurst: math.Inf(1)}, 10, 3, 1, 1, 0, 0)
	assert.InDelta(t, huge.Failure, inf.Failure, 1e-6, "F at burst 1e12 vs +Inf")
}

// RepairsDue and RepairBytesDue count what PollRepair has left to hand
// out, symbol bytes (largest member + SymbolOverhead) per repair: up when
// a block closes, down as repairs leave, when late ones are dropped and
// when the oldest block gives way to a new one (MaxPending).
func TestRepairBytesDue(t *testing.T) {
	buf := make([]byte, DefaultMaxSymbol+SymbolOverhead)
	block := func(e *Encoder, base int64, sizes ...int) {
		for i, n := range sizes {
			e.AddMedia(0, base+int64(i), make([]byte, n), ClassDelta, clock.Time(time.Second), i == len(sizes)-1)
		}
	}
	for _, tc := range []struct {
		name  string
		act   func(t *testing.T, e *Encoder)
		wantN int
		wantB int64
	}{
		{"closed: 3 repairs of 301 bytes", func(*testing.T, *Encoder) {}, 3, 903},
		{"one handed out", func(t *testing.T, e *Encoder) {
			_, _, n, ok := e.PollRepair(0, buf)
			require.True(t, ok)
			require.Equal(t, 301, n)
		}, 2, 602},
		{"a second block", func(_ *testing.T, e *Encoder) { block(e, 3, 10, 10) }, 6, 903 + 33},
		{"too late to arrive: dropped", func(t *testing.T, e *Encoder) {
			_, _, _, ok := e.PollRepair(clock.Time(time.Second+1), buf)
			require.False(t, ok)
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fixedEncoder(t, 3, 3)
			block(e, 0, 100, 300, 200)
			tc.act(t, e)
			assert.Equal(t, tc.wantN, e.RepairsDue())
			assert.Equal(t, tc.wantB, e.RepairBytesDue())
		})
	}
	t.Run("oldest pending block given way", func(t *testing.T) {
		e, err := NewEncoder(EncoderConfig{FixedK: 1, FixedM: 2, MaxK: 1, MaxM: 2, MaxPending: 2})
		require.NoError(t, err)
		for i := range 3 {
			e.AddMedia(0, int64(i), make([]byte, 10*(i+1)), ClassDelta, clock.Time(time.Second), true)
		}
		assert.Equal(t, 4, e.RepairsDue(), "the first block's two repairs dropped")
		assert.Equal(t, int64(2*21+2*31), e.RepairBytesDue())
		assert.Equal(t, int64(2), e.Stats().RepairsDropped)
	})
}

// Forged repairs that make a rebuild fail cannot each buy a whole
// reconstruction: the failed block is dropped and the next forged repair
// for the same base starts it anew, one repair short, so every repair
// once rebuilt 64 shards (about 32 us, 116 x a discarded repair; a
// review's run). Rebuilds are paid for by the packets that arrive: 4
// members of work per media packet, 1 per repair.
func TestForgedRepairsBuyNoRebuilds(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{MaxSymbol: 1206})
	require.NoError(t, err)
	pkt := make([]byte, 1206)
	for i := range pkt {
		pkt[i] = byte(i)
	}
	now := clock.Time(time.Second)
	for pn := range int64(64) {
		if pn != 40 {
			d.OnMedia(now, pn, pkt)
		}
	}
	sym := make([]byte, 1207)
	for i := range sym {
		sym[i] = byte(i*7 + 1)
	}
	const n = 20_000
	for i := range n {
		sym[0] = byte(i)
		d.OnRepair(now, Block{Base: 0, Mask: ^uint64(0), M: 32, Index: i % 32}, sym)
	}
	s := d.Stats()
	// The work earned: 64 to start, at most 4 x 64 held, 1 per repair.
	maxRebuilds := int64((4*64 + n) / 64)
	assert.LessOrEqual(t, s.BlocksRecovered, maxRebuilds)
	assert.Positive(t, s.RebuildsDeferred)
	assert.Zero(t, s.PacketsRecovered, "garbage rebuilds nothing")
	assert.Equal(t, s.BlocksRecovered, s.RecoveredInvalid, "each rebuild ran and found the member forged")

	// Honest loss never waits: a block's own packets pay for its rebuild,
	// even a block rebuilt from repairs alone.
	for _, tc := range []struct{ k, m, lost int }{{64, 1, 1}, {10, 3, 3}, {4, 4, 4}, {5, 5, 4}, {32, 32, 32}} {
		t.Run(fmt.Sprintf("k %d m %d, %d lost", tc.k, tc.m, tc.lost), func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(uint64(tc.k), 1))
			base := int64(0)
			const blocks = 100
			for range blocks {
				sb := encodeFixed(t, base, tc.k, tc.m, rng)
				for i, p := range sb.media[tc.lost:] {
					d.OnMedia(now, base+int64(tc.lost+i), p)
				}
				for _, r := range sb.reps {
					d.OnRepair(now, r.b, r.sym)
				}
				base += int64(tc.k + tc.m)
			}
			s := d.Stats()
			assert.Equal(t, int64(blocks*tc.lost), s.PacketsRecovered)
			assert.Zero(t, s.RebuildsDeferred)
		})
	}
}
