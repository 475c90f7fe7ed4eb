package bufpool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGetPut(t *testing.T) {
	var p Pool
	tests := []struct{ n, cap int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1200, 2048}, {4 << 20, 4 << 20}, {MaxSize, MaxSize},
	}
	for _, tt := range tests {
		b := p.Get(tt.n)
		assert.Len(t, b, tt.n)
		assert.Equal(t, tt.cap, cap(b), "n=%d", tt.n)
		assert.Equal(t, tt.cap, Cap(tt.n))
		p.Put(b)
		b2 := p.Get(tt.n)
		assert.Equal(t, &b[:1][0], &b2[:1][0], "n=%d: reused", tt.n)
		p.Put(b2)
	}
	big := p.Get(MaxSize + 1)
	assert.Len(t, big, MaxSize+1)
	p.Put(big)               // dropped
	p.Put(make([]byte, 300)) // not a class: dropped
	assert.Equal(t, int64(6), p.Allocs(), "five classes used (0, 1 and 256 share one) and the oversized Get")
}

func TestBounded(t *testing.T) {
	p := Pool{MaxFree: 2, MaxFreeBytes: 1 << 20}
	bufs := [][]byte{p.Get(100), p.Get(100), p.Get(100)}
	for _, b := range bufs {
		p.Put(b)
	}
	assert.Equal(t, 512, p.FreeBytes(), "only MaxFree buffers kept per class")
	p.Put(p.Get(1 << 20))
	assert.Equal(t, 512, p.FreeBytes(), "MaxFreeBytes bound")
}

func TestSteadyDoesNotAllocate(t *testing.T) {
	var p Pool
	p.Put(p.Get(5000))
	assert.Zero(t, testing.AllocsPerRun(1000, func() { p.Put(p.Get(5000)) }))
}
