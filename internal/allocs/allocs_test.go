package allocs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

var sink []byte

func TestMallocs(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want uint64
	}{
		{"nothing", func() {}, 0},
		{"stack only", func() {
			var b [64]byte
			b[0] = 1
			_ = b
		}, 0},
		{"one heap slice per run", func() { sink = make([]byte, 1<<10) }, 1},
		{"ten per run", func() {
			for range 10 {
				sink = make([]byte, 1<<10)
			}
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Mallocs(3, tt.f))
		})
	}
	calls := 0
	Mallocs(0, func() { calls++ })
	assert.Equal(t, 1, calls, "at least one run")
}
