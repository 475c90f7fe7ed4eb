package ring

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFIFOAcrossGrowth(t *testing.T) {
	var r Ring[int]
	next, want := 0, 0
	for round := 0; round < 50; round++ {
		for i := 0; i < round%13+1; i++ {
			r.Push(next)
			next++
		}
		for i := 0; i < round%7 && r.Len() > 0; i++ {
			assert.Equal(t, want, *r.Front())
			assert.Equal(t, want+r.Len()-1, *r.At(r.Len() - 1))
			assert.Equal(t, want, r.Pop())
			want++
		}
	}
	for r.Len() > 0 {
		assert.Equal(t, want, r.Pop())
		want++
	}
	assert.Equal(t, next, want)
}

func TestSteadyDoesNotAllocate(t *testing.T) {
	var r Ring[[]byte]
	for i := 0; i < 16; i++ {
		r.Push(nil)
	}
	for r.Len() > 0 {
		r.Pop()
	}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { r.Push(nil); r.Pop() }))
}
