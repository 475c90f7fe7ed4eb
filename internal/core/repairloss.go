package core

import "time"

// The recovery allowance's rounds (recoveryAllowance) come from two
// rates: p, the share of packet numbers lost on the way (a retransmission
// is lost as often as any packet; lossRate, per connection), and f, the
// share of a stream's frames that needed a retransmission: completed with
// a retransmitted fragment, or given up (repairNeed, per stream; frames
// FEC alone mended do not count, nor do lost repair packets). A frame then
// misses its playout after r rounds with probability about f p^(r-1) p =
// f p^r (rounds an RTT apart taken as independent). Where the sender
// sends a first retransmission twice (dupFirst), the first round fails
// when both copies are lost or both of the receiver's NACKs for it are:
// about 2p^2 instead of p, and the frame misses after r rounds with
// probability f 2p^2 p^(r-1).

const (
	// lossRatePackets is the loss rate's memory in packet numbers: about
	// 7 s of the bench's av traffic with its FEC.
	lossRatePackets = 2000
	// lossRateBatch is how many packet numbers an update waits for.
	lossRateBatch = 32
	// repairFrames is the repair need's memory in frames (10 s of 30 fps
	// video).
	repairFrames = 300
	// DefaultRecoveryResidual is Config.RecoveryResidual's default: the
	// 99.94 % of frames in time the jitterbuffer issue's RTC end-to-end
	// rows need, as each lost video frame costs a freeze until the next key
	// frame.
	DefaultRecoveryResidual = 6e-4
	// maxRecoveryRounds bounds the rounds the allowance counts (the
	// offset's bound, MaxPlayoutDelay, bounds its time): at 20 % loss
	// Live's LiveRecoveryResidual asks for 7 (2.1 s at RTT 300 ms, within
	// its 3 s; 9 without the doubled late rounds).
	maxRecoveryRounds = 8
)

// lossRate is a mean of the share of packet numbers lost: the plain mean
// of the first lossRatePackets, then weighted over about the last
// lossRatePackets (a mean that starts from 0 with the later weights took
// 7 s to see 20 % loss, and Live's first frames played late meanwhile).
// The share of packet numbers that open a run of losses is kept the same
// way (runs), so p / runs is the mean loss burst.
type lossRate struct {
	p, runs         float64
	exp, lost, gaps int64 // the counters at the last update
	seen            int64 // packet numbers counted so far
	primed          bool
}

// update takes the receive window's expected, lost and gap counts (lost
// may go down: a late packet fills a gap counted lost).
func (l *lossRate) update(expected, lost, gaps int64) {
	if !l.primed {
		l.exp, l.lost, l.gaps, l.primed = expected, lost, gaps, true
		return
	}
	de := expected - l.exp
	if de < lossRateBatch {
		return
	}
	frac := min(max(float64(lost-l.lost)/float64(de), 0), 1)
	runs := min(max(float64(gaps-l.gaps)/float64(de), 0), 1)
	l.seen += de
	w := min(float64(de)/float64(min(l.seen, lossRatePackets)), 1)
	l.p += w * (frac - l.p)
	l.runs += w * (runs - l.runs)
	l.exp, l.lost, l.gaps = expected, lost, gaps
}

// lossTally feeds a lossRate packet outcomes in sending order, counting
// as the receive window counts packet numbers: the sender's twin of the
// receiver's estimate, so that both ask dupFirst about the same rates.
type lossTally struct {
	rate           lossRate
	n, lost, gaps  int64
	lastLost, seen bool
}

func (t *lossTally) add(lost bool) {
	t.n++
	if lost {
		t.lost++
		if t.seen && !t.lastLost {
			t.gaps++
		}
	}
	t.lastLost, t.seen = lost, true
	t.rate.update(t.n, t.lost, t.gaps)
}

// lossRateSettle is how many packet numbers the loss rate counts before
// dupFirst trusts it: its first batches count in full, and one loss in
// the first 32 packets reads 3 %.
const lossRateSettle = 500

// settled returns the loss rate and mean burst for dupFirst and the copy
// spacing: no loss (0, 1) until lossRateSettle packet numbers are
// counted.
func (l *lossRate) settled() (p, burst float64) {
	if l.seen < lossRateSettle {
		return 0, 1
	}
	return l.p, l.burst()
}

// burst returns the mean loss burst in packets (1 without losses).
func (l *lossRate) burst() float64 {
	if l.runs <= 0 || l.p <= 0 {
		return 1
	}
	return max(1, l.p/l.runs)
}

// repairNeed is a mean of the share of a stream's frames that needed a
// retransmission: the plain mean of the first repairFrames frames, then
// weighted over about the last repairFrames.
type repairNeed struct {
	f float64
	n int64
}

func (r *repairNeed) frame(needed bool) {
	x := 0.0
	if needed {
		x = 1
	}
	r.n++
	r.f += max(1/float64(r.n), 1.0/repairFrames) * (x - r.f)
}

// recoveryRounds is the least number of retransmission rounds, at least
// one and at most maxRecoveryRounds, after which a frame misses its
// playout with probability f p1 p ... <= residual, where p1 is the
// first round's failure: p, or about 2p^2 where the sender doubles first
// retransmissions (firstRoundLoss). Rounds after after (the sender's
// lateRounds: arq.HistoryConfig.DuplicateAfter; 0 for none) go twice and
// fail with about 2p^2 (both copies lost, or both of the receiver's
// NACKs), not p.
func recoveryRounds(f, p, p1, residual float64, after int) int {
	r, miss := 1, f*p1
	for r < maxRecoveryRounds && miss > residual {
		r++
		if after > 0 && r > after {
			miss *= min(p, 2*p*p)
		} else {
			miss *= p
		}
	}
	return r
}

// recoveryAllowance is the time st's playout target keeps for repairs while
// losses recur: the rounds recoveryRounds asks for (Config.RecoveryResidual), a smoothed RTT each,
// plus the time a loss takes to show (the next packets' arrival, the
// path's jitter). One round stays within the budget the sender's Latency
// leaves after the path's delay; when the losses need more rounds than
// one, the network does not allow that budget, and the allowance may take
// the offset up to MaxPlayoutDelay.
func (r *receiver) recoveryAllowance(st *recvStream) time.Duration {
	c := r.c
	p := r.loss.p
	sp, sb := r.loss.settled()
	n := recoveryRounds(st.repair.f, p, firstRoundLoss(p, dupFirst(sp, sb, r.peerLatency)), c.cfg.RecoveryResidual, lateRounds(r.peerLatency, sb))
	d := time.Duration(n)*c.rtt.Smoothed() + 3*r.jitter + max(2*r.gap, 30*time.Millisecond)
	limit := r.peerLatency
	if m := c.cfg.MaxPlayoutDelay; n > 1 && m > limit {
		limit = m
	}
	return min(d, max(0, limit-c.owd()))
}

// firstRoundLoss is the probability that a first retransmission round
// fails at loss rate p: 2p^2 where the sender doubles first
// retransmissions (dupFirst: both copies lost, or both of the receiver's
// NACKs), else p.
func firstRoundLoss(p float64, doubled bool) float64 {
	if doubled {
		return min(p, 2*p*p)
	}
	return p
}
