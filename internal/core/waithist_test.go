package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWaitHistBuckets(t *testing.T) {
	var h waitHist
	for i := range waitBuckets - 1 {
		lo := time.Duration(0)
		if i > 0 {
			lo = h.upper(i - 1)
		}
		assert.Equal(t, i, waitBucket(lo), "lower edge of bucket %d", i)
		assert.Equal(t, i, waitBucket(h.upper(i)-1), "just under the upper edge of bucket %d", i)
	}
	assert.Equal(t, waitBuckets-1, waitBucket(time.Second))
	assert.Equal(t, 0, waitBucket(-time.Millisecond))
}

func TestWaitHistQuantiles(t *testing.T) {
	tests := []struct {
		name     string
		waits    []time.Duration
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 3 * time.Millisecond, 3 * time.Millisecond},
		// 98 at 0.05 ms, 2 at 40 ms: p99 is the 99th value, 40 ms.
		{"tail", append(repeat(50*time.Microsecond, 98), 40*time.Millisecond, 40*time.Millisecond), 100 * time.Microsecond, 40 * time.Millisecond},
		// 99 at 0.05 ms, 1 at 2 s: p99 stays in the first bucket.
		{"one outlier", append(repeat(50*time.Microsecond, 99), 2*time.Second), 100 * time.Microsecond, 100 * time.Microsecond},
	}
	for _, tt := range tests {
		var h waitHist
		for _, w := range tt.waits {
			h.add(w)
		}
		s := h.stats()
		assert.Equal(t, tt.p50, s.P50, tt.name)
		assert.Equal(t, tt.p99, s.P99, tt.name)
		assert.Equal(t, int64(len(tt.waits)), s.Count, tt.name)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}
