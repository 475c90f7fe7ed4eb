package fec

import (
	"math"
	"time"
)

// The policy: how many repair packets a block gets, and how many members.
//
// Loss model. A two-state Markov chain (Gilbert-Elliott with every packet
// lost in the bad state and none in the good one, tc-netem's h = 0, k = 1):
// stationary loss p, mean burst length B, so P(bad -> good) = 1/B and
// P(good -> bad) = p/((1-p)B). Its one free parameter besides p is
// lambda = 1 - P(g->b) - P(b->g) = 1 - 1/((1-p)B): lambda = 0 is Bernoulli
// loss (B = 1/(1-p)), larger lambda is burstier. g steps later the chain
// forgets as lambda^g: P(bad | bad g steps ago) = p + (1-p) lambda^g and
// P(bad | good g steps ago) = p (1 - lambda^g). Members that sit g packets
// apart on the link (other streams, interleaving) are thus less correlated
// than consecutive ones, which is what interleaving buys.
//
// Failure of a block (k members spaced gm apart, then m repairs spaced gr
// apart) is computed exactly by dynamic programming over the chain, the
// method of Yee & Weldon (IEEE Trans. Commun. 43(5), 1995) and Frossard
// ("FEC performance in multimedia streaming", IEEE Commun. Lett. 5(3),
// 2001): the joint distribution of (media losses j, state) after the k
// members, then, for each state, the distribution of repair losses r over
// the m repairs. An MDS code fails exactly when j + r > m and j > 0. With
// lambda = 0 this is the binomial tail.
//
// ARQ. A member the FEC cannot rebuild may still be retransmitted. A round
// takes RTT + ARQMargin (detection and pacing), so R = floor(slack /
// (RTT + ARQMargin)) rounds fit, slack being the member's deadline less its
// send time less the one-way delay; each round fails with probability p
// (retransmissions are an RTT apart, so independently of the burst that
// took the original). A block then fails with
//
//	F = sum_{j>=1, r>m-j} P(j, r) (1 - (1 - p^R)^j)   (R = 0: P(j+r > m, j > 0))
//
// and a media packet is lost after recovery with
//
//	Q = (1/k) sum_{j, r>m-j} j P(j, r) p^R.
//
// F is what a video frame sees (it is lost if any member is); Q is what an
// audio packet sees (each is a frame of its own). The policy picks the
// smallest m whose F (Q for audio) is below the class's target, within
// MaxM and MaxOverhead x k; when no m reaches the target it takes the
// largest allowed. Delta and droppable video get no FEC at all once one
// retransmission round fits (R >= 1) and retransmission keeps the block's
// failure low enough, in this order (Encoder.arqPlan):
//   - ARQ alone reaches the class's target: 1 - (1 - p^(R+1))^k <= target;
//   - with two rounds or more, ARQ with the last retransmission sent twice
//     reaches it: 1 - (1 - p^(R+2))^k <= target (DESIGN §2's doubled last
//     chance, about p more retransmissions per loss; at 10 % loss a
//     7-packet frame fails 0.70 % of the time with two plain rounds, 0.07 %
//     with the second doubled). The packets are reported to the caller,
//     which asks its send history for the copy (arq.History.MarkLastChance);
//   - ARQ alone stays under ARQCeiling, a looser bar.
// ARQ repairs them at about the loss rate in bytes, which FEC cannot beat,
// as libwebrtc's hybrid NACK/FEC turns FEC off for low RTT
// (modules/video_coding/media_opt_util.cc, VCMNackFecMethod::
// ProtectionFactor). Otherwise (20 % loss with two rounds: a 7-packet frame
// fails 5.5 % of the time, 1.1 % doubled) they get FEC toward their target
// like every class. With one round left (a frame queued behind a key
// frame) the doubled copy is not offered: it would replace the frame's FEC
// with a retransmission round trip, and at 5 % loss that put the bench's
// arq-rtt100-loss5 p99 over 250 ms (seeds 1-5: 246 ms median, 263 ms worst,
// against 206 and 216 ms with FEC kept there). Audio, key frames and data keep FEC
// only while ARQ alone misses their target, which at R >= 2 and loss up
// to 5 % it does not (Q = p^3 <= 1.25e-4); at 10 % audio's p^3 = 1e-3 is
// above its 5e-4 target and it gets a little.
//
// Members. A block of a multi-packet frame closes at the frame's end; its
// k is planned from the lane's measured frame size so the frame splits
// into equal blocks of at most MaxK. Single-packet frames (audio) are
// grouped: the policy picks the k, up to what fits before the time bound at
// the lane's measured packet interval, with the smallest overhead m/k that
// meets the target (or, if none does, the smallest Q).

// Default targets: the failure probability (F for video and data, Q for
// audio) each class aims below. Audio aims at half the 1e-3 an on-time
// requirement of 0.999 allows, because a minute of audio is 3000 packets
// and a seed's count of failures scatters around the expectation (about
// +-0.06 %): with 1e-3, seeds 1-10 of the bench's rtc-rtt200-loss5 row had
// audio on time 0.9983-1.0000, four of them under 0.999; with 5e-4,
// 0.9990-1.0000, for 0.002 more FEC bytes per media byte (and
// fec-audio-loss5's residual, 0.17-0.60 % before, 0.30-0.47 %).
const (
	DefaultTargetAudio     = 5e-4
	DefaultTargetKey       = 1e-3
	DefaultTargetDelta     = 3e-3
	DefaultTargetDroppable = 1e-2
	DefaultTargetData      = 1e-3
)

// maxRounds caps the ARQ rounds the policy counts on. Live's 3 s budget
// at RTT 300 ms holds nine; at 20 % loss a 7-packet frame with three
// rounds still fails 1.1 % of the time (above ARQCeiling), with six
// 9e-5, so the cap must not stop at three.
const maxRounds = 6

// model is the loss model the policy computes with.
type model struct {
	p      float64 // stationary loss, clamped to [0, 0.5]
	lambda float64 // Gilbert-Elliott correlation, >= 0 (0: Bernoulli)
}

func newModel(loss, burst float64) model {
	p := loss
	if !(p > 0) { // also NaN
		p = 0
	}
	p = min(p, 0.5)
	lambda := 0.0
	if p > 0 && burst > 1 {
		// An endless burst (+Inf) is the limit, lambda 1 (1/Inf is 0); it
		// once read as Bernoulli loss, lambda 0.
		lambda = max(0, 1-1/((1-p)*burst))
	}
	return model{p: p, lambda: lambda}
}

// step returns P(bad at this packet) for a packet g after one in state
// bad (or good).
func (md model) step(bad bool, g int) float64 {
	l := math.Pow(md.lambda, float64(g))
	if md.lambda == 0 {
		l = 0
	}
	if bad {
		return md.p + (1-md.p)*l
	}
	return md.p * (1 - l)
}

// table is the policy's answer for one lane shape: for each k, the m to
// use, the failure metric it gives, and whether that meets the target.
type table struct {
	version uint64 // conditions version it was computed for; 0: empty
	class   Class
	rounds  int
	gm, gr  int
	m       [MaxSpan + 1]int8
	metric  [MaxSpan + 1]float64
	met     [MaxSpan + 1]bool
}

// evaluator holds the dynamic-programming scratch, so that computing a
// table allocates nothing.
type evaluator struct {
	media   [MaxSpan + 2][2]float64                  // P(j media losses, state of the last member)
	next    [MaxSpan + 2][2]float64                  // the next step of media
	walk    [MaxParity + 2][2]float64                // repair walk: P(r losses, state)
	walk2   [MaxParity + 2][2]float64                // its next step
	tail    [MaxParity + 1][2][MaxParity + 2]float64 // tail[m][s][t] = P(>= t losses among m repairs | last member in s)
	arqP    float64
	arqFail [MaxSpan + 1]float64 // 1 - (1 - arqP)^j
}

// policyParams is what a table needs beyond the loss model.
type policyParams struct {
	maxK, maxM  int
	maxOverhead float64
	target      float64
	audio       bool // metric Q rather than F
}

// chainStep moves the joint distribution cur (P(j losses so far, state of
// the last packet), for j < len(cur)) one packet on into next (len(cur)+1
// entries, overwritten): the next packet is lost with probability pGood
// after a good state and pBad after a bad one, and its fate is its state.
func chainStep(cur, next [][2]float64, pGood, pBad float64) {
	clear(next)
	for j := range cur {
		for st, pb := range [2]float64{pGood, pBad} {
			w := cur[j][st]
			if w == 0 {
				continue
			}
			next[j][0] += w * (1 - pb)
			next[j+1][1] += w * pb
		}
	}
}

// compute fills t for the model, ARQ rounds, member gap gm and repair gap
// gr.
func (ev *evaluator) compute(t *table, md model, pp policyParams, rounds, gm, gr int) {
	p := md.p
	arqP := 1.0 // probability that all ARQ rounds fail
	if rounds > 0 {
		arqP = math.Pow(p, float64(rounds))
	}
	ev.setARQ(arqP, pp.maxK)
	// Transition probabilities for the two spacings, once.
	gmBad, gmGood := md.step(true, gm), md.step(false, gm)
	grBad, grGood := md.step(true, gr), md.step(false, gr)
	// Repair tails, for every m up to maxM and both states of the last
	// member.
	for s := range 2 {
		for r := range ev.walk {
			ev.walk[r] = [2]float64{}
		}
		ev.walk[0][s] = 1
		ev.setTail(0, s)
		for m := 1; m <= pp.maxM; m++ {
			chainStep(ev.walk[:m], ev.walk2[:m+1], grGood, grBad)
			ev.walk, ev.walk2 = ev.walk2, ev.walk
			ev.setTail(m, s)
		}
	}
	// Media losses, one member at a time.
	for j := range ev.media {
		ev.media[j] = [2]float64{}
	}
	ev.media[0][0] = 1 - p
	ev.media[1][1] = p
	t.m[0], t.metric[0], t.met[0] = 0, 0, true
	for k := 1; k <= pp.maxK; k++ {
		if k > 1 {
			chainStep(ev.media[:k], ev.next[:k+1], gmGood, gmBad)
			ev.media, ev.next = ev.next, ev.media
		}
		mcap := min(pp.maxM, int(pp.maxOverhead*float64(k)+1e-9))
		// The metric falls as m grows: binary search for the smallest m
		// that meets the target, or mcap.
		limit := pp.target * (1 + 1e-9)
		m, v := 0, ev.metric(k, 0, pp.audio)
		if v > limit && mcap > 0 {
			lo, hi := 0, mcap // metric(lo) > limit; hi: candidate
			vhi := ev.metric(k, hi, pp.audio)
			if vhi <= limit {
				for hi-lo > 1 {
					mid := (lo + hi) / 2
					if vm := ev.metric(k, mid, pp.audio); vm <= limit {
						hi, vhi = mid, vm
					} else {
						lo = mid
					}
				}
			}
			m, v = hi, vhi
		}
		t.m[k], t.metric[k], t.met[k] = int8(m), v, v <= pp.target*(1+1e-9)
	}
	for k := pp.maxK + 1; k <= MaxSpan; k++ {
		t.m[k], t.metric[k], t.met[k] = 0, 1, false
	}
}

func (ev *evaluator) setTail(m, s int) {
	acc := 0.0
	ev.tail[m][s][m+1] = 0
	for r := m; r >= 0; r-- {
		acc += ev.walk[r][0] + ev.walk[r][1]
		ev.tail[m][s][r] = acc
	}
}

// setARQ prepares the ARQ factors for metric: all R rounds fail for one
// packet with arqP; a block with j lost members fails with
// 1 - (1 - arqP)^j.
func (ev *evaluator) setARQ(arqP float64, maxK int) {
	ev.arqP = arqP
	f := 1.0
	for j := range min(maxK, MaxSpan) + 1 {
		ev.arqFail[j] = 1 - f
		f *= 1 - arqP
	}
}

// metric returns F (or Q for audio) of a (k, m) block, the media part of
// the chain being in ev.media for k members (and setARQ done).
func (ev *evaluator) metric(k, m int, audio bool) float64 {
	arqP := ev.arqP
	sum := 0.0
	for j := 1; j <= k; j++ {
		need := m - j + 1 // repair losses that make the block fail
		for s := range 2 {
			w := ev.media[j][s]
			if w < 1e-18 { // below anything a target can be; and beyond, P(j) only falls
				continue
			}
			tail := 1.0
			if need > 0 {
				tail = ev.tail[m][s][need]
			}
			if tail == 0 {
				continue
			}
			if audio {
				sum += float64(j) * w * tail * arqP
			} else {
				sum += w * tail * ev.arqFail[j]
			}
		}
	}
	if audio {
		return sum / float64(k)
	}
	return sum
}

// rounds returns the ARQ rounds that fit in slack (deadline less send time
// less the one-way delay).
func rounds(c *Conditions, slack, margin time.Duration) int {
	if !c.ARQ {
		return 0
	}
	per := max(c.RTT, 0) + margin
	if per <= 0 || slack <= 0 {
		return 0
	}
	return int(min(slack/per, maxRounds))
}

// Analysis is the policy's view of one block shape, for tests, tools and
// logs.
type Analysis struct {
	K, M     int
	Rounds   int     // ARQ rounds that fit in the slack
	Failure  float64 // F: probability the block is not fully recovered (after ARQ)
	Residual float64 // Q: probability a member is lost after recovery (after ARQ)
	// DuplicateLastChance: no repair packet, and the members' last
	// retransmission goes twice (Encoder.AddMedia's dupLastChance); F and Q
	// count it (Encoder.Plan only: Analyze never sets it).
	DuplicateLastChance bool
}

// Analyze returns the failure F and residual Q of a (k, m) block under
// conditions c, with members gm packets apart and repairs gr apart, when
// the members' slack (deadline - send time - one-way delay) is slack.
// ARQ rounds are counted with arqMargin per round (the encoder's
// ARQMargin). It is the arithmetic the policy runs on.
func Analyze(c Conditions, k, m, gm, gr int, slack, arqMargin time.Duration) Analysis {
	k = min(max(k, 1), MaxSpan)
	m = min(max(m, 0), MaxParity)
	gm, gr = max(gm, 1), max(gr, 1)
	md := newModel(c.Loss, c.MeanBurst)
	r := rounds(&c, slack, arqMargin)
	var ev evaluator
	var t table
	// One pass with a fixed m: compute with target 0 and maxM = m so the
	// search stops at m, then read the metrics directly.
	pp := policyParams{maxK: k, maxM: max(m, 1), maxOverhead: MaxParity, target: -1}
	ev.compute(&t, md, pp, r, gm, gr)
	return Analysis{
		K: k, M: m, Rounds: r,
		Failure:  ev.metric(k, m, false),
		Residual: ev.metric(k, m, true),
	}
}
