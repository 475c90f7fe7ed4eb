package fec

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// binomTail returns P(X >= t) for X ~ Binomial(n, p).
func binomTail(n, t int, p float64) float64 {
	s := 0.0
	for x := t; x <= n; x++ {
		s += binom(n, x) * math.Pow(p, float64(x)) * math.Pow(1-p, float64(n-x))
	}
	return s
}

func binom(n, x int) float64 {
	r := 1.0
	for i := 1; i <= x; i++ {
		r = r * float64(n-x+i) / float64(i)
	}
	return r
}

// The arithmetic behind the audio scheme, by hand. A member is lost after
// recovery when it is lost and at least m of the other n-1 packets are too:
// Q = p P(Bin(n-1, p) >= m). At p = 5 %:
//
//	(4,1)  25 %:   Q = 0.05 (1 - 0.95^4)                        = 0.927 %  (block failure P(>=2 of 5) = 2.26 %)
//	(8,2)  25 %:   Q = 0.05 (1 - 0.95^9 - 9 0.05 0.95^8)        = 0.356 %
//	(9,2)  22 %:   Q = 0.05 P(Bin(10) >= 2)                     = 0.431 %
//	(10,3) 30 %:   Q = 0.05 P(Bin(12) >= 3)                     = 0.0978 %
//	(8,3) 37.5 %:  Q = 0.05 P(Bin(10) >= 3)                     = 0.0575 %
//
// So at most 25 % redundancy, (8,2) gets audio below 0.5 % (the issue's
// bound) and (4,1) does not; 1e-3 needs 30 % or more with the ten packets
// (200 ms) a 300 ms budget at RTT 200 ms leaves room for.
func TestAudioArithmetic(t *testing.T) {
	c := Conditions{Loss: 0.05, MeanBurst: 1}
	for _, tc := range []struct {
		k, m int
		q, f float64 // by hand, above
	}{
		{4, 1, 0.00927, 0.0226},
		{8, 2, 0.00356, 0.0115},
		{9, 2, 0.00431, 0},
		{10, 3, 0.000978, 0.00312},
		{8, 3, 0.000575, 0},
	} {
		a := Analyze(c, tc.k, tc.m, 1, 1, 0, 0)
		n := tc.k + tc.m
		assert.InDelta(t, 0.05*binomTail(n-1, tc.m, 0.05), a.Residual, 1e-12, "(%d,%d) Q", tc.k, tc.m)
		assert.InDelta(t, binomTail(n, tc.m+1, 0.05), a.Failure, 1e-12, "(%d,%d) F", tc.k, tc.m)
		assert.InEpsilon(t, tc.q, a.Residual, 0.01, "(%d,%d) Q by hand", tc.k, tc.m)
		if tc.f > 0 {
			assert.InEpsilon(t, tc.f, a.Failure, 0.01, "(%d,%d) F by hand", tc.k, tc.m)
		}
	}
}

// The Markov-chain computation equals brute force over every loss pattern
// of a block, for bursty loss and spaced members and repairs.
func TestChainMatchesEnumeration(t *testing.T) {
	for _, tc := range []struct {
		p, burst float64
		k, m     int
		gm, gr   int
	}{
		{0.05, 1, 6, 2, 1, 1},
		{0.05, 3, 6, 2, 1, 1},
		{0.10, 3, 5, 3, 3, 2},
		{0.20, 5, 7, 3, 2, 1},
		{0.02, 1.5, 8, 1, 1, 4},
	} {
		c := Conditions{Loss: tc.p, MeanBurst: tc.burst}
		got := Analyze(c, tc.k, tc.m, tc.gm, tc.gr, 0, 0)
		md := newModel(tc.p, tc.burst)
		n := tc.k + tc.m
		var f, q float64
		for pat := range 1 << n {
			pr := 1.0
			bad := false
			for i := range n {
				lost := pat&(1<<i) != 0
				var pb float64
				switch {
				case i == 0:
					pb = md.p
				case i < tc.k:
					pb = md.step(bad, tc.gm)
				default:
					pb = md.step(bad, tc.gr)
				}
				if lost {
					pr *= pb
				} else {
					pr *= 1 - pb
				}
				bad = lost
			}
			media := 0
			for i := range tc.k {
				if pat&(1<<i) != 0 {
					media++
				}
			}
			total := 0
			for i := range n {
				if pat&(1<<i) != 0 {
					total++
				}
			}
			if media > 0 && total > tc.m {
				f += pr
				q += pr * float64(media) / float64(tc.k)
			}
		}
		assert.InDelta(t, f, got.Failure, 1e-12, "%+v F", tc)
		assert.InDelta(t, q, got.Residual, 1e-12, "%+v Q", tc)
	}
}

// A Gilbert-Elliott model with mean burst 1/(1-p) is Bernoulli loss.
func TestModelReducesToBernoulli(t *testing.T) {
	md := newModel(0.1, 1/0.9)
	assert.InDelta(t, 0, md.lambda, 1e-12)
	md = newModel(0.1, 3)
	assert.InDelta(t, 1-1/(0.9*3), md.lambda, 1e-12)
	assert.InDelta(t, 1-1.0/3, md.step(true, 1), 1e-12, "P(bad|bad) = 1 - 1/B")
	assert.InDelta(t, 0.1, md.step(true, 1000), 1e-9, "forgets")
}

func policyEncoder(t *testing.T, cfg EncoderConfig, c Conditions) *Encoder {
	t.Helper()
	e, err := NewEncoder(cfg)
	require.NoError(t, err)
	e.SetConditions(0, c)
	return e
}

// RTT 100 ms, 300 ms budget: two retransmission rounds fit, so delta
// frames get no FEC at 1-10 % loss and audio none up to 5 % (at 10 % two
// rounds leave p^3 = 1e-3, above audio's 5e-4 target); key frames (40 packets, where one round leaves a 40-packet
// frame lost 1-(1-p^2)^40 of the time) get some. The bytes are checked
// against the bound, FEC + retransmissions <= 1.3 x loss + 2 % of
// media, for the default bench streams over a 2 s GOP: 59 delta frames of
// 5 packets, one key frame of 40, 100 audio packets of 150 B; a packet
// left to ARQ costs p/(1-p) retransmissions, a protected one only when FEC
// fails (its residual Q without ARQ).
func TestPolicyARQSufficesAtRTT100(t *testing.T) {
	for _, loss := range []float64{0.01, 0.02, 0.05, 0.10} {
		c := Conditions{Loss: loss, MeanBurst: 1, RTT: 100 * ms, OneWay: 50 * ms, ARQ: true}
		e := policyEncoder(t, EncoderConfig{}, c)
		// Slack at send: 300 ms budget - 50 ms one way, less a 20 ms
		// queueing allowance for the last packets of a frame.
		slack := 230 * ms
		delta := e.Plan(ClassDelta, 5, slack, 1, 0)
		audio := e.Plan(ClassAudio, 1, 250*ms, 4, 20*ms)
		key := e.Plan(ClassKey, 40, slack, 1, 0)
		t.Logf("loss %.2f: rounds %d/%d; delta (%d,%d) F=%.2g; audio (%d,%d) Q=%.2g; key (%d,%d) F=%.2g",
			loss, delta.Rounds, audio.Rounds, delta.K, delta.M, delta.Failure, audio.K, audio.M, audio.Residual, key.K, key.M, key.Failure)
		assert.Equal(t, 2, delta.Rounds, "230 ms of slack holds two rounds of 100 + 5 ms")
		assert.Zero(t, delta.M, "delta: ARQ suffices")
		if loss <= 0.05 {
			assert.Zero(t, audio.M, "audio: ARQ suffices")
		} else {
			assert.Positive(t, audio.M, "audio: p^3 is past its target")
			assert.LessOrEqual(t, audio.Residual, DefaultTargetAudio)
		}
		assert.Less(t, key.Failure, DefaultTargetKey)

		rtxPer := loss / (1 - loss)
		blocks := (40 + key.K - 1) / key.K
		keyQ := Analyze(c, key.K, key.M, 1, 1, 0, 0).Residual // FEC alone
		media := float64(59*5*1200 + 40*1200 + 100*150)
		fecBytes := float64(key.M*blocks*1200) + float64(audio.M)*100/float64(audio.K)*150
		rtxBytes := (59*5*1200+100*150)*rtxPer + 40*1200*keyQ/(1-loss) +
			100*150*loss*loss // audio's doubled last chance: a copy for each packet lost twice
		ratio := (fecBytes + rtxBytes) / media
		t.Logf("  FEC %.2f %% + retransmissions %.2f %% of media (bound %.2f %%)", 100*fecBytes/media, 100*rtxBytes/media, 100*(1.3*loss+0.02))
		assert.Less(t, ratio, 1.3*loss+0.02)
	}
}

// Past ARQCeiling ARQ alone is not enough even for delta frames: at 20 %
// loss a 7-packet frame with two rounds fails 1 - (1 - 0.2^3)^7 = 5.5 % of
// the time, so deltas get repair packets toward their target (which the
// 50 % overhead cap, m = 3 for k = 7, stops short of), while at 10 %
// (0.7 %) they still get none.
func TestPolicyDeltaFECPastARQCeiling(t *testing.T) {
	tests := []struct {
		loss    float64
		wantM   int
		wantDup bool
	}{
		{0.05, 0, false}, // ARQ alone: 0.09 %, under the 0.3 % target
		{0.10, 0, true},  // ARQ alone 0.70 %; the second round doubled 0.07 %
		{0.20, 3, false}, // doubled 1.1 %, alone 5.5 %: past both bars
		{0.30, 3, false},
	}
	for _, tt := range tests {
		c := Conditions{Loss: tt.loss, MeanBurst: 1, RTT: 100 * ms, OneWay: 50 * ms, ARQ: true}
		e := policyEncoder(t, EncoderConfig{}, c)
		delta := e.Plan(ClassDelta, 7, 230*ms, 1, 0)
		arqAlone := 1 - math.Pow(1-math.Pow(tt.loss, 3), 7)
		doubled := 1 - math.Pow(1-math.Pow(tt.loss, 4), 7)
		t.Logf("loss %.2f: rounds %d, (%d,%d) dup %v F=%.2g, ARQ alone %.2g, doubled %.2g", tt.loss, delta.Rounds, delta.K, delta.M, delta.DuplicateLastChance, delta.Failure, arqAlone, doubled)
		require.Equal(t, 2, delta.Rounds)
		assert.Equal(t, tt.wantM, delta.M, "repair packets at loss %.2f", tt.loss)
		assert.Equal(t, tt.wantDup, delta.DuplicateLastChance, "doubled last chance at loss %.2f", tt.loss)
		assert.InDelta(t, arqAlone, Analyze(c, 7, 0, 1, 1, 230*ms, DefaultARQMargin).Failure, 1e-9, "the policy's arithmetic is 1 - (1 - p^3)^7")
		switch {
		case tt.wantDup:
			assert.Greater(t, arqAlone, DefaultTargetDelta)
			assert.LessOrEqual(t, doubled, DefaultTargetDelta)
			assert.InDelta(t, doubled, delta.Failure, 1e-12)
		case tt.wantM == 0:
			assert.LessOrEqual(t, arqAlone, DefaultTargetDelta)
		default:
			assert.Greater(t, doubled, DefaultTargetDelta)
			assert.Greater(t, arqAlone, ARQCeiling)
			assert.Less(t, delta.Failure, arqAlone/1.5, "FEC cuts the failure")
		}
	}
}

// TestPolicyLastChanceOnlyWithTwoRounds: with one round left (a delta
// queued behind a key frame) the policy keeps FEC rather than doubling the
// last retransmission; key frames and audio never get the doubled copy.
func TestPolicyLastChanceOnlyWithTwoRounds(t *testing.T) {
	c := Conditions{Loss: 0.05, MeanBurst: 1, RTT: 100 * ms, OneWay: 50 * ms, ARQ: true}
	e := policyEncoder(t, EncoderConfig{}, c)
	oneRound := e.Plan(ClassDelta, 6, 150*ms, 1, 0)
	require.Equal(t, 1, oneRound.Rounds)
	assert.False(t, oneRound.DuplicateLastChance)
	assert.Positive(t, oneRound.M, "1 - (1 - p^2)^6 = 1.5 %% is past ARQCeiling: FEC")

	c.Loss = 0.10
	e = policyEncoder(t, EncoderConfig{}, c)
	for _, cl := range []Class{ClassKey, ClassAudio} {
		a := e.Plan(cl, 7, 230*ms, 1, 20*ms)
		assert.False(t, a.DuplicateLastChance, "class %v", cl)
	}
	drop := e.Plan(ClassDroppable, 7, 230*ms, 1, 0)
	assert.Zero(t, drop.M)
	assert.False(t, drop.DuplicateLastChance, "0.7 %% is under the droppable target of 1 %%")
}

// TestAddMediaReportsLastChance: the encoder tells the caller which packets
// it left to ARQ with a doubled last chance, and counts them.
func TestAddMediaReportsLastChance(t *testing.T) {
	tests := []struct {
		loss float64
		want bool
	}{
		{0.05, false},
		{0.10, true},
	}
	for _, tt := range tests {
		c := Conditions{Loss: tt.loss, MeanBurst: 1, RTT: 100 * ms, OneWay: 50 * ms, ARQ: true}
		e := policyEncoder(t, EncoderConfig{}, c)
		pkt := make([]byte, 1000)
		// Two frames of 7 packets 1 ms apart, 33 ms apart, each with a
		// 300 ms deadline: the first teaches the encoder the frame size.
		var got []bool
		for f := range 2 {
			start := time.Duration(f) * 33 * ms
			before := e.Stats()
			got = got[:0]
			for i := range 7 {
				now := clock.Time(start + time.Duration(i)*ms)
				got = append(got, e.AddMedia(now, int64(f*7+i), pkt, ClassDelta, clock.Time(start+300*ms), i == 6))
			}
			if f == 0 {
				continue
			}
			for i, g := range got {
				assert.Equal(t, tt.want, g, "loss %.2f packet %d", tt.loss, i)
			}
			st := e.Stats()
			assert.Equal(t, int64(7), st.MediaUnprotected-before.MediaUnprotected)
			if tt.want {
				assert.Equal(t, int64(7), st.MediaLastChance-before.MediaLastChance)
			} else {
				assert.Equal(t, before.MediaLastChance, st.MediaLastChance)
			}
		}
	}
}

// RTT 200 ms, 300 ms budget, 5 % random loss: no retransmission fits, FEC
// carries the load. Delta frames of 5 packets get (5,2): 40 %, failure
// 0.38 % (on time 0.996 >= 0.995; (5,3) would exceed the 50 % cap); key
// frames and audio meet 1e-3.
func TestPolicyFECCarriesAtRTT200(t *testing.T) {
	c := Conditions{Loss: 0.05, MeanBurst: 1, RTT: 200 * ms, OneWay: 100 * ms, ARQ: true}
	e := policyEncoder(t, EncoderConfig{}, c)
	slack := 200 * ms
	delta := e.Plan(ClassDelta, 5, slack, 1, 0)
	assert.Zero(t, delta.Rounds)
	assert.Equal(t, 5, delta.K)
	assert.Equal(t, 2, delta.M)
	assert.Less(t, delta.Failure, 0.005)
	for _, n := range []int{4, 6, 8, 12, 20} {
		a := e.Plan(ClassDelta, n, slack, 1, 0)
		assert.LessOrEqual(t, float64(a.M)/float64(a.K), 0.5, "cap")
		assert.Less(t, a.Failure, 0.005, "delta frame of %d: %+v", n, a)
	}
	key := e.Plan(ClassKey, 40, slack, 1, 0)
	assert.Less(t, key.Failure, DefaultTargetKey, "%+v", key)
	t.Logf("delta (5,%d) F=%.4f; key (%d,%d) F=%.2g", delta.M, delta.Failure, key.K, key.M, key.Failure)

	// Audio: 50 packets/s, its packets 4 apart on the link among video.
	audio := e.Plan(ClassAudio, 1, slack, 4, 20*ms)
	assert.LessOrEqual(t, audio.Residual, DefaultTargetAudio, "%+v", audio)
	assert.LessOrEqual(t, float64(audio.M)/float64(audio.K), 0.5)
	assert.LessOrEqual(t, (audio.K-1)*20, 180, "fits before the time bound: %+v", audio)
	t.Logf("audio (%d,%d) Q=%.2g", audio.K, audio.M, audio.Residual)

	// Audio alone with at most 25 % redundancy: below 0.5 %.
	e = policyEncoder(t, EncoderConfig{MaxOverhead: 0.25}, c)
	audio = e.Plan(ClassAudio, 1, slack, 1, 20*ms)
	assert.LessOrEqual(t, float64(audio.M)/float64(audio.K), 0.25)
	assert.LessOrEqual(t, audio.Residual, 0.005, "%+v", audio)
	t.Logf("audio at <= 25 %%: (%d,%d) Q=%.4f", audio.K, audio.M, audio.Residual)
}

// Clean network: no FEC for anything; and a loss rate that falls to zero
// takes FEC to zero at once.
func TestPolicyCleanNetwork(t *testing.T) {
	for _, rtt := range []time.Duration{20 * ms, 100 * ms, 200 * ms, 400 * ms} {
		for _, arq := range []bool{false, true} {
			e := policyEncoder(t, EncoderConfig{}, Conditions{Loss: 0, MeanBurst: 1, RTT: rtt, OneWay: rtt / 2, ARQ: arq})
			for cl := range numClasses {
				for _, n := range []int{1, 5, 40} {
					assert.Zero(t, e.Plan(cl, n, 200*ms, 1, 20*ms).M, "rtt %v class %v n %d", rtt, cl, n)
				}
			}
		}
	}
	e := policyEncoder(t, EncoderConfig{}, Conditions{Loss: 0.05, RTT: 200 * ms, OneWay: 100 * ms})
	require.NotZero(t, e.Plan(ClassDelta, 5, 200*ms, 1, 0).M)
	e.SetConditions(0, Conditions{Loss: 0, RTT: 200 * ms, OneWay: 100 * ms})
	assert.Zero(t, e.Plan(ClassDelta, 5, 200*ms, 1, 0).M)
}

// Unequal protection: for the same shape, audio and key frames get at
// least as much as delta frames, and droppable frames at most as much.
func TestPolicyUnequalProtection(t *testing.T) {
	for _, loss := range []float64{0.01, 0.03, 0.05, 0.1, 0.2} {
		e := policyEncoder(t, EncoderConfig{}, Conditions{Loss: loss, MeanBurst: 1, RTT: 200 * ms, OneWay: 100 * ms})
		for _, n := range []int{4, 10, 30} {
			delta := e.Plan(ClassDelta, n, 200*ms, 1, 0).M
			assert.GreaterOrEqual(t, e.Plan(ClassKey, n, 200*ms, 1, 0).M, delta, "loss %v n %d", loss, n)
			assert.LessOrEqual(t, e.Plan(ClassDroppable, n, 200*ms, 1, 0).M, delta, "loss %v n %d", loss, n)
		}
	}
}

// Bursty loss needs more repair packets for the same target than random
// loss of the same rate, and protection grows with loss.
func TestPolicyFollowsLossAndBurstiness(t *testing.T) {
	m := func(loss, burst float64) int {
		e := policyEncoder(t, EncoderConfig{MaxOverhead: 1, MaxM: 32}, Conditions{Loss: loss, MeanBurst: burst, RTT: 200 * ms, OneWay: 100 * ms})
		return e.Plan(ClassKey, 30, 200*ms, 1, 0).M
	}
	prev := 0
	for _, loss := range []float64{0.001, 0.01, 0.02, 0.05, 0.1, 0.2} {
		got := m(loss, 1)
		assert.GreaterOrEqual(t, got, prev, "loss %v", loss)
		assert.Greater(t, m(loss, 4), got-1, "burst needs no less")
		prev = got
	}
	assert.Greater(t, m(0.05, 4), m(0.05, 1))
}

// The table holds, for every k, the smallest m within the cap that meets
// the target (or the cap), as a linear search over Analyze finds it.
func TestPolicyTableIsSmallestM(t *testing.T) {
	for _, c := range []Conditions{
		{Loss: 0.01, MeanBurst: 1}, {Loss: 0.05, MeanBurst: 1}, {Loss: 0.05, MeanBurst: 3},
		{Loss: 0.2, MeanBurst: 2}, {Loss: 0.1, MeanBurst: 1, RTT: 100 * ms, ARQ: true},
	} {
		for _, audio := range []bool{false, true} {
			var ev evaluator
			var tb table
			pp := policyParams{maxK: 48, maxM: 16, maxOverhead: 0.5, target: 1e-3, audio: audio}
			slack := 130 * ms
			ev.compute(&tb, newModel(c.Loss, c.MeanBurst), pp, rounds(&c, slack, 20*ms), 1, 1)
			for k := 1; k <= 48; k++ {
				mcap := min(16, k/2)
				want := mcap
				for m := 0; m <= mcap; m++ {
					a := Analyze(c, k, m, 1, 1, slack, 20*ms)
					v := a.Failure
					if audio {
						v = a.Residual
					}
					if v <= 1e-3*(1+1e-9) {
						want = m
						break
					}
				}
				require.Equal(t, want, int(tb.m[k]), "%+v audio %v k %d", c, audio, k)
			}
		}
	}
}
