package clock

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestAddSaturates(t *testing.T) {
	tests := []struct {
		name string
		t    Time
		d    time.Duration
		want Time
	}{
		{"plain", 10, 5, 15},
		{"negative", 10, -15, -5},
		{"never stays never", Never, -time.Hour, Never},
		{"overflow saturates", Never - 1, time.Hour, Never},
		{"underflow saturates", Time(math.MinInt64 + 1), -time.Hour, Time(math.MinInt64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.t.Add(tt.d))
		})
	}
}

func TestOrdering(t *testing.T) {
	a, b := Time(1), Time(2)
	assert.True(t, a.Before(b))
	assert.False(t, b.Before(a))
	assert.True(t, b.After(a))
	assert.Equal(t, a, Min(a, b))
	assert.Equal(t, b, Max(a, b))
	assert.Equal(t, time.Duration(-1), a.Sub(b))
	assert.Equal(t, "never", Never.String())
	assert.Equal(t, "1.5s", Time(1500*time.Millisecond).String())
	epoch := time.Unix(100, 0)
	assert.Equal(t, Time(2*time.Second), Since(epoch, epoch.Add(2*time.Second)))
}
