package core

import "time"

// waitHist is a histogram of the time frames (or retransmissions) wait in
// the pacer queue, in fixed buckets: 0.1 ms wide below 1 ms, 0.5 ms to
// 10 ms, 5 ms to 100 ms, 50 ms to 1 s, then one overflow bucket. Adding
// costs a few comparisons and never allocates.
type waitHist struct {
	buckets [waitBuckets]int64
	n       int64
	max     time.Duration
}

const waitBuckets = 10 + 18 + 18 + 18 + 1

func waitBucket(d time.Duration) int {
	switch {
	case d < 0:
		return 0
	case d < time.Millisecond:
		return int(d / (100 * time.Microsecond))
	case d < 10*time.Millisecond:
		return 10 + int((d-time.Millisecond)/(500*time.Microsecond))
	case d < 100*time.Millisecond:
		return 28 + int((d-10*time.Millisecond)/(5*time.Millisecond))
	case d < time.Second:
		return 46 + int((d-100*time.Millisecond)/(50*time.Millisecond))
	}
	return waitBuckets - 1
}

// waitUpper is the upper bound of bucket i (the overflow bucket's is the
// largest value seen).
func (h *waitHist) upper(i int) time.Duration {
	switch {
	case i < 10:
		return time.Duration(i+1) * 100 * time.Microsecond
	case i < 28:
		return time.Millisecond + time.Duration(i-10+1)*500*time.Microsecond
	case i < 46:
		return 10*time.Millisecond + time.Duration(i-28+1)*5*time.Millisecond
	case i < 64:
		return 100*time.Millisecond + time.Duration(i-46+1)*50*time.Millisecond
	}
	return h.max
}

func (h *waitHist) add(d time.Duration) {
	h.buckets[waitBucket(d)]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns an upper bound of the q-quantile (nearest rank): the
// upper edge of its bucket, at most the largest value seen.
func (h *waitHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var cum int64
	for i, c := range h.buckets {
		cum += c
		if cum >= rank {
			return min(h.upper(i), h.max)
		}
	}
	return h.max
}

// WaitStats summarise the time spent in the pacer queue: frames from
// WriteFrame until their last fragment left, retransmissions from the NACK
// until they left. Percentiles are upper bounds at the resolution of the
// histogram (0.1 ms below 1 ms, 0.5 ms below 10 ms, 5 ms below 100 ms).
type WaitStats struct {
	Count         int64
	P50, P99, Max time.Duration
}

func (h *waitHist) stats() WaitStats {
	return WaitStats{Count: h.n, P50: h.quantile(0.5), P99: h.quantile(0.99), Max: h.max}
}
