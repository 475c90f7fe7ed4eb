package transport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
)

// The congestion controller is chosen by name or constant, GCC by default,
// and checked.
func TestCongestionControlConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cc   CongestionControl
		want any // the estimator's type; nil: the core's own (Fixed)
	}{
		{"gcc", GCC, &cc.GCC{}},
		{"gcc-02", GCC02, &cc.GCC02{}},
		{"fixed", Fixed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parsed CongestionControl
			require.NoError(t, parsed.UnmarshalText([]byte(tc.name)))
			assert.Equal(t, tc.cc, parsed)
			b, err := parsed.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, tc.name, string(b))
			cfg := Config{CongestionControl: tc.cc}
			require.NoError(t, cfg.Validate())
			f := cfg.withDefaults().estimator()
			if tc.want == nil {
				assert.Nil(t, f)
				return
			}
			require.NotNil(t, f)
			assert.IsType(t, tc.want, f())
		})
	}
	var c CongestionControl
	assert.ErrorIs(t, c.UnmarshalText([]byte("bbr")), ErrInvalidConfig)
	_, err := CongestionControl(9).MarshalText()
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorIs(t, (&Config{CongestionControl: 9}).Validate(), ErrInvalidConfig)
	assert.ErrorIs(t, (&Config{StartBitrate: -1}).Validate(), ErrInvalidConfig)
	assert.ErrorIs(t, (&Config{StartBitrate: 2_000_000, MaxBitrate: 1_000_000}).Validate(), ErrInvalidConfig)

	start := Config{StartBitrate: 1_000_000}
	g := start.withDefaults().estimator()().(*cc.GCC)
	assert.Equal(t, int64(1_000_000), g.Target(), "starts at StartBitrate")
}

// The profiles' playout: RTC's quantile 0.99 with the default memory,
// Live's 0.999 with a 20 s one (smoothness first).
func TestProfilePlayout(t *testing.T) {
	tests := []struct {
		p        Profile
		quantile float64
		window   time.Duration
	}{
		{RTC, 0.99, 0},
		{Live, 0.999, core.LivePlayoutWindow},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			cfg := Config{Profile: tt.p}
			c := cfg.withDefaults().core()
			assert.Equal(t, tt.quantile, c.PlayoutQuantile)
			assert.Equal(t, tt.window, c.PlayoutWindow)
			require.NoError(t, c.Validate())
		})
	}
}

// The playout's drain rate, the controller's floor and the controller
// itself can be set; each is checked.
func TestConfigDrainRateMinBitrateEstimator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		drain float64
	}{
		{"RTC default", Config{}, 0.10},
		{"Live default", Config{Profile: Live}, 0.03},
		{"set", Config{Profile: Live, DrainRate: 0.05}, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			assert.Equal(t, tc.drain, tc.cfg.withDefaults().core().DrainRate)
		})
	}
	for _, bad := range []Config{
		{DrainRate: 1}, {DrainRate: -0.1}, {DrainRate: 1.5},
		{MinBitrate: -1}, {MinBitrate: 2_000_000, MaxBitrate: 1_000_000},
		// Above the default MaxBitrate (20 Mbit/s) when it is unset: once
		// let through, and clamped by the controller without a word.
		{MinBitrate: 30_000_000}, {StartBitrate: 50_000_000},
	} {
		assert.ErrorIs(t, bad.Validate(), ErrInvalidConfig, "%+v", bad)
	}

	assert.NoError(t, (&Config{MinBitrate: core.DefaultMaxBitrate, StartBitrate: core.DefaultMaxBitrate}).Validate(), "at the default")
	assert.NoError(t, (&Config{MinBitrate: 30_000_000, MaxBitrate: 40_000_000}).Validate(), "under a MaxBitrate set")

	// A MinPlayoutDelay above the profile's MaxPlayoutDelay, with the
	// latter unset, raises it: it once failed blaming MaxPlayoutDelay.
	for _, p := range []Profile{RTC, Live} {
		c := Config{Profile: p, MinPlayoutDelay: 4 * time.Second}
		require.NoError(t, c.Validate(), p)
		assert.Equal(t, 4*time.Second, c.withDefaults().MaxPlayoutDelay, p)
	}
	assert.ErrorIs(t, (&Config{MinPlayoutDelay: 2 * time.Second, MaxPlayoutDelay: time.Second}).Validate(), ErrInvalidConfig, "both set: refused")

	floor := Config{MinBitrate: 400_000, StartBitrate: 500_000}
	require.NoError(t, floor.Validate())
	g := floor.withDefaults().estimator()().(*cc.GCC)
	rtt := cc.RTT{Min: 50 * time.Millisecond, Smoothed: 50 * time.Millisecond}
	g.OnFeedback(0, &cc.Feedback{Packets: []cc.PacketResult{{Size: 1000, Received: true}}}, rtt, false)
	for now := clock.Time(0); now < clock.Time(10*time.Second); now = now.Add(100 * time.Millisecond) {
		g.OnTime(now, rtt) // no feedback since: the target halves each RTT, down to MinBitrate
	}
	assert.Equal(t, int64(400_000), g.Target())

	fixed := &cc.Fixed{Rate: 123_000}
	own := Config{Estimator: func() cc.Estimator { return fixed }, CongestionControl: GCC02}
	require.NoError(t, own.Validate())
	assert.Same(t, fixed, own.withDefaults().core().Estimator())
}
