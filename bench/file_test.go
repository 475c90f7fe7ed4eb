package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/internal/strictcfg"
)

func TestLoadScenarioFile(t *testing.T) {
	scs, err := LoadScenarioFile("testdata/scenarios/step-down.yaml")
	require.NoError(t, err)
	require.Len(t, scs, 1)
	sc := scs[0]
	assert.Equal(t, "step-down", sc.Name)
	assert.Equal(t, ProfileRTC, sc.Profile)
	assert.Equal(t, 30*time.Second, sc.Media)
	assert.Equal(t, 100*time.Millisecond, sc.RTT, "rtt defaults to the two delays")
	assert.Equal(t, int64(4_000_000), sc.Forward.Rate)
	assert.Equal(t, 50*time.Millisecond, sc.Reverse.Delay)
	assert.Zero(t, sc.Reverse.Rate, "an explicit reverse link does not inherit the forward one")
	assert.Equal(t, DefaultTraffic(), sc.Traffic)
	require.Len(t, sc.Schedule, 2)
	assert.Equal(t, 10*time.Second, sc.Schedule[0].At)
	require.NotNil(t, sc.Schedule[0].Forward)
	assert.Equal(t, int64(1_000_000), sc.Schedule[0].Forward.Rate)
	assert.Equal(t, 50*time.Millisecond, sc.Schedule[0].Forward.Delay, "a step changes only the fields it names")
	assert.Nil(t, sc.Schedule[0].Reverse)
	assert.Equal(t, int64(4_000_000), sc.Schedule[1].Forward.Rate)

	scs, err = LoadScenarioFile("testdata/scenarios/pair.json")
	require.NoError(t, err)
	require.Len(t, scs, 2)
	assert.Equal(t, "lossy-short", scs[0].Name)
	assert.Equal(t, 0.02, scs[0].Loss)
	assert.Equal(t, scs[0].Forward, scs[0].Reverse, "reverse defaults to forward")
	assert.Equal(t, ProfileLive, scs[1].Profile)
	assert.Zero(t, scs[1].Traffic.Video.FPS)
	assert.Equal(t, DefaultTraffic().Audio, scs[1].Traffic.Audio, "traffic fields left out keep the default")
}

func TestParseScenariosErrors(t *testing.T) {
	tests := []struct {
		name, in, errHas string
		f                strictcfg.Format
	}{
		{"unknown field", `{"name":"a","forwrd":{}}`, `unknown field "forwrd"`, strictcfg.JSON},
		{"unknown link field", "name: a\nforward: {delay: 5ms, lost: 0.1}\n", `forward: unknown field "lost"`, strictcfg.YAML},
		{"negative delay", "name: a\nforward: {delay: -5ms}\n", "Delay -5ms outside", strictcfg.YAML},
		{"loss above 1", `{"name":"a","forward":{"loss":1.5}}`, "Loss 1.5 outside [0, 1]", strictcfg.JSON},
		{"no name", `{"forward":{}}`, "empty name", strictcfg.JSON},
		{"bad profile", `{"name":"a","profile":"fast"}`, `unknown profile "fast"`, strictcfg.JSON},
		{"schedule out of order", "name: a\nmedia: 10s\nschedule:\n  - {at: 5s}\n  - {at: 2s}\n", "schedule[1].at", strictcfg.YAML},
		{"schedule past the media", "name: a\nmedia: 10s\nschedule:\n  - {at: 11s}\n", "schedule[0].at", strictcfg.YAML},
		{"schedule bad link", "name: a\nschedule:\n  - at: 1s\n    forward: {loss: 2}\n", "schedule[0] forward link", strictcfg.YAML},
		{"schedule unknown field", "name: a\nschedule:\n  - at: 1s\n    forward: {rat: 2}\n", `schedule[0].forward: unknown field "rat"`, strictcfg.YAML},
		{"duplicate names", `{"scenarios":[{"name":"a"},{"name":"a"}]}`, `name "a" used twice`, strictcfg.JSON},
		{"empty list", `{"scenarios":[]}`, "no scenario", strictcfg.JSON},
		{"bare duration", `{"name":"a","media":60}`, "media: bare number 60", strictcfg.JSON},
		{"FEC cap above 1", "name: a\nmax_fec_overhead: 1.5\n", "max_fec_overhead 1.5 outside [0, 1]", strictcfg.YAML},
		{"playout quantile 1", "name: a\nplayout_quantile: 1\n", "playout_quantile 1 outside (0, 0.99999]", strictcfg.YAML},
		{"playout quantile negative", "name: a\nplayout_quantile: -0.5\n", "playout_quantile -0.5 outside (0, 0.99999]", strictcfg.YAML},
		{"not a file", `{`, "json:", strictcfg.JSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenarios([]byte(tc.in), tc.f)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidFile)
			assert.Contains(t, err.Error(), tc.errHas)
		})
	}
	_, err := LoadScenarioFile("testdata/scenarios/missing.yaml")
	assert.Error(t, err)

	scs, err := ParseScenarios([]byte("name: capped\nmax_fec_overhead: 0.25\nplayout_quantile: 0.999\n"), strictcfg.YAML)
	require.NoError(t, err)
	assert.Equal(t, 0.25, scs[0].MaxFECOverhead)
	assert.Equal(t, 0.999, scs[0].PlayoutQuantile)
}

// A scenario file carries a link's trace as a list of delivery times in
// milliseconds (netem.Trace's JSON), in YAML and JSON alike; a trace the
// netem checks refuse is an error naming the field.
func TestScenarioFileTrace(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		f          strictcfg.Format
		want       string // "" for no error
	}{
		{"YAML", "name: a\nmedia: 1s\nforward: {trace: [1, 2, 3]}\n", strictcfg.YAML, ""},
		{"JSON", `{"name":"a","media":"1s","forward":{"trace":[1,2,3]}}`, strictcfg.JSON, ""},
		{"empty", `{"name":"a","media":"1s","forward":{"trace":[]}}`, strictcfg.JSON, "forward.trace"},
		{"an object", `{"name":"a","media":"1s","forward":{"trace":{}}}`, strictcfg.JSON, "forward.trace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scs, err := ParseScenarios([]byte(tc.data), tc.f)
			if tc.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			require.NoError(t, err)
			require.Len(t, scs, 1)
			require.NotNil(t, scs[0].Forward.Trace)
			b, err := json.Marshal(scs[0].Forward.Trace)
			require.NoError(t, err)
			assert.JSONEq(t, "[1,2,3]", string(b))
		})
	}
}
