package bufpool

import "math/bits"

const (
	minShift = 8  // 256 B
	maxShift = 23 // 8 MiB
	classes  = maxShift - minShift + 1
)

// MaxSize is the largest buffer the pool hands out from a class; Get of more
// allocates an exact-size slice that Put drops.
const MaxSize = 1 << maxShift

// Pool is a free list of byte slices. The zero value is ready to use with
// the default bounds. Not safe for concurrent use.
type Pool struct {
	MaxFree      int // buffers kept per class (default 64)
	MaxFreeBytes int // bytes kept in all (default 32 MiB)

	free      [classes][][]byte
	freeBytes int
	allocs    int64
}

func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Cap returns the capacity Get(n) returns: what a buffer of n bytes
// really costs.
func Cap(n int) int {
	if n > MaxSize {
		return n
	}
	return 1 << (class(max(n, 0)) + minShift)
}

// Get returns a slice of length n. Its capacity is n rounded up to a power of
// two (at least 256) when n <= MaxSize.
func (p *Pool) Get(n int) []byte {
	if n < 0 {
		n = 0
	}
	if n > MaxSize {
		p.allocs++
		return make([]byte, n)
	}
	c := class(n)
	if l := len(p.free[c]); l > 0 {
		b := p.free[c][l-1]
		p.free[c][l-1] = nil
		p.free[c] = p.free[c][:l-1]
		p.freeBytes -= cap(b)
		return b[:n]
	}
	p.allocs++
	return make([]byte, n, 1<<(c+minShift))
}

// Put gives b back. b must not be used afterwards. Slices whose capacity is
// not one of the pool's classes are dropped.
func (p *Pool) Put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c > MaxSize || c&(c-1) != 0 {
		return
	}
	maxFree, maxBytes := p.MaxFree, p.MaxFreeBytes
	if maxFree <= 0 {
		maxFree = 64
	}
	if maxBytes <= 0 {
		maxBytes = 32 << 20
	}
	k := class(c)
	if len(p.free[k]) >= maxFree || p.freeBytes+c > maxBytes {
		return
	}
	p.free[k] = append(p.free[k], b[:0])
	p.freeBytes += c
}

// FreeBytes returns the bytes held in free lists.
func (p *Pool) FreeBytes() int { return p.freeBytes }

// Allocs returns how many times Get had to allocate.
func (p *Pool) Allocs() int64 { return p.allocs }
