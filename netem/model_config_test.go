package netem_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/netem"
)

func TestValidateModels(t *testing.T) {
	tr, err := netem.NewTrace([]int64{1, 2, 3})
	require.NoError(t, err)
	ge := netem.GEFromLossBurst(0.1, 3)
	four := netem.FourState{P13: 0.02, P31: 0.4, P32: 0.2, P23: 0.3, P14: 0.01}
	tests := []struct {
		name string
		cfg  netem.LinkConfig
		want string // the start of the message's detail; "" for valid
	}{
		{"everything", netem.LinkConfig{
			Delay: time.Second, Jitter: time.Second, JitterDist: netem.ParetoNormal, GE: ge,
			Duplicate: 1, Corrupt: 1, ReorderProb: 1, ReorderGap: netem.MaxReorderGap,
			Trace: tr, QueueBytes: 1, QueueDelay: time.Second, QueueDisc: netem.CoDel,
			CoDelTarget: time.Millisecond, CoDelInterval: time.Second, Overhead: 28, Down: true,
		}, ""},
		{"pareto", netem.LinkConfig{JitterDist: netem.Pareto}, ""},
		{"four-state", netem.LinkConfig{FourState: four}, ""},
		{"GE with lossy good state only", netem.LinkConfig{GE: netem.GilbertElliott{K1: 0.1}}, ""},
		{"codel defaults", netem.LinkConfig{Rate: 1e6, QueueDisc: netem.CoDel}, ""},

		{"NaN delay-free loss", netem.LinkConfig{Loss: math.NaN()}, "Loss "},
		{"unknown dist", netem.LinkConfig{JitterDist: 4}, "JitterDist "},
		{"negative duplicate", netem.LinkConfig{Duplicate: -0.1}, "Duplicate "},
		{"NaN duplicate", netem.LinkConfig{Duplicate: math.NaN()}, "Duplicate "},
		{"corrupt above 1", netem.LinkConfig{Corrupt: 1.01}, "Corrupt "},
		{"reorder prob NaN", netem.LinkConfig{ReorderProb: math.NaN()}, "ReorderProb "},
		{"negative gap", netem.LinkConfig{ReorderProb: 0.5, ReorderGap: -1}, "ReorderGap "},
		{"huge gap", netem.LinkConfig{ReorderProb: 0.5, ReorderGap: netem.MaxReorderGap + 1}, "ReorderGap "},
		{"gap without prob", netem.LinkConfig{ReorderGap: 5}, "ReorderGap 5 set without ReorderProb"},
		{"trace and rate", netem.LinkConfig{Trace: tr, Rate: 1e6}, "Trace and Rate are both set"},
		{"empty trace", netem.LinkConfig{Trace: &netem.Trace{}}, "Trace is empty"},
		{"unknown queue disc", netem.LinkConfig{QueueDisc: 9}, "QueueDisc "},
		{"negative codel target", netem.LinkConfig{QueueDisc: netem.CoDel, CoDelTarget: -1}, "CoDelTarget "},
		{"huge codel interval", netem.LinkConfig{QueueDisc: netem.CoDel, CoDelInterval: 2 * time.Hour}, "CoDelInterval "},
		{"codel target without codel", netem.LinkConfig{CoDelTarget: time.Millisecond}, "CoDelTarget set but QueueDisc is droptail"},
		{"codel interval without codel", netem.LinkConfig{CoDelInterval: time.Millisecond}, "CoDelInterval set but QueueDisc is droptail"},
		{"codel target above interval", netem.LinkConfig{QueueDisc: netem.CoDel, CoDelTarget: 200 * time.Millisecond}, "CoDelTarget 200ms not below CoDelInterval 100ms"},
		{"codel target equals interval", netem.LinkConfig{QueueDisc: netem.CoDel, CoDelTarget: 5 * time.Millisecond, CoDelInterval: 5 * time.Millisecond}, "CoDelTarget "},
		{"loss and GE", netem.LinkConfig{Loss: 0.1, GE: ge}, "Loss, GE are all set"},
		{"GE and four-state", netem.LinkConfig{GE: ge, FourState: four}, "GE, FourState are all set"},
		{"all three", netem.LinkConfig{Loss: 0.1, GE: ge, FourState: four}, "Loss, GE, FourState are all set"},
		{"GE p above 1", netem.LinkConfig{GE: netem.GilbertElliott{P: 1.5, R: 0.1}}, "GE.P "},
		{"GE r NaN", netem.LinkConfig{GE: netem.GilbertElliott{P: 0.1, R: math.NaN()}}, "GE.R "},
		{"GE h negative", netem.LinkConfig{GE: netem.GilbertElliott{P: 0.1, R: 0.1, H: -1}}, "GE.H "},
		{"GE k1 above 1", netem.LinkConfig{GE: netem.GilbertElliott{K1: 2}}, "GE.K1 "},
		{"GE absorbing bad", netem.LinkConfig{GE: netem.GilbertElliott{P: 0.01}}, "GE.R is 0 while GE.P is 0.01"},
		{"GE from impossible inputs", netem.LinkConfig{GE: netem.GEFromLossBurst(0.9, 1)}, "GE.P "},
		{"GE from zero burst", netem.LinkConfig{GE: netem.GEFromLossBurst(0.1, 0)}, "GE.P "},
		{"four p13 negative", netem.LinkConfig{FourState: netem.FourState{P13: -0.1}}, "FourState.P13 "},
		{"four p23 above 1", netem.LinkConfig{FourState: netem.FourState{P23: 1.1}}, "FourState.P23 "},
		{"four p13+p14", netem.LinkConfig{FourState: netem.FourState{P13: 0.6, P14: 0.6, P31: 1}}, "FourState.P13+P14 "},
		{"four p31+p32", netem.LinkConfig{FourState: netem.FourState{P13: 0.1, P31: 0.6, P32: 0.6}}, "FourState.P31+P32 "},
		{"four endless burst", netem.LinkConfig{FourState: netem.FourState{P13: 0.1}}, "FourState.P31 and P32 are 0 while P13 is 0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, netem.ErrInvalidConfig)
			assert.True(t, strings.HasPrefix(err.Error(), netem.ErrInvalidConfig.Error()+": "+tt.want), "%v", err)
		})
	}
}

func TestEnumText(t *testing.T) {
	for _, d := range []netem.JitterDist{netem.Uniform, netem.Normal, netem.Pareto, netem.ParetoNormal} {
		b, err := d.MarshalText()
		require.NoError(t, err)
		var got netem.JitterDist
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, d, got)
	}
	assert.Equal(t, "paretonormal", netem.ParetoNormal.String())
	for _, q := range []netem.QueueDisc{netem.DropTail, netem.CoDel} {
		b, err := q.MarshalText()
		require.NoError(t, err)
		var got netem.QueueDisc
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, q, got)
	}
	var q netem.QueueDisc
	assert.ErrorIs(t, q.UnmarshalText([]byte("red")), netem.ErrInvalidConfig)
	_, err := netem.QueueDisc(5).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "QueueDisc(5)", netem.QueueDisc(5).String())
}

func TestLinkConfigJSON(t *testing.T) {
	// Version 1 fields keep their JSON; new ones are left out when zero.
	b, err := json.Marshal(netem.LinkConfig{Delay: time.Millisecond, Loss: 0.1})
	require.NoError(t, err)
	assert.JSONEq(t, `{"delay":1000000,"jitter":0,"jitter_dist":"uniform","reorder":false,"loss":0.1,
		"rate":0,"queue_bytes":0,"queue_delay":0,"overhead":0}`, string(b))

	full := netem.LinkConfig{
		Delay: time.Millisecond, Jitter: time.Millisecond, JitterDist: netem.Pareto,
		GE: netem.GilbertElliott{P: 0.1, R: 0.5, H: 0.2, K1: 0.01}, Duplicate: 0.01, Corrupt: 0.02,
		ReorderProb: 0.1, ReorderGap: 3, Rate: 1e6, QueueDisc: netem.CoDel, CoDelTarget: time.Millisecond,
		CoDelInterval: 50 * time.Millisecond, Down: true,
	}
	b, err = json.Marshal(full)
	require.NoError(t, err)
	for _, key := range []string{`"ge":{"p":0.1,"r":0.5,"h":0.2,"k1":0.01}`, `"jitter_dist":"pareto"`, `"queue_disc":"codel"`,
		`"duplicate":0.01`, `"corrupt":0.02`, `"reorder_prob":0.1`, `"reorder_gap":3`, `"codel_target":1000000`, `"down":true`} {
		assert.Contains(t, string(b), key)
	}
	var back netem.LinkConfig
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, full, back)

	four := netem.LinkConfig{FourState: netem.FourState{P13: 0.1, P31: 0.5}}
	b, err = json.Marshal(four)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"four_state":{"p13":0.1,"p31":0.5,"p32":0,"p23":0,"p14":0}`)
}

func TestLossModelClosedForms(t *testing.T) {
	// Closed forms against power iteration, degenerate chains included.
	for _, g := range []netem.GilbertElliott{
		{P: 1.0 / 27, R: 1.0 / 3},
		{P: 0.05, R: 0.25, H: 0.3, K1: 0.01},
		{P: 0.5, R: 0.5, H: 0.5, K1: 0.5},
		{P: 1, R: 1},
	} {
		l, b := geChain(g).lossAndBurst()
		assert.InDelta(t, l, g.StationaryLoss(), 1e-12, "%+v", g)
		assert.InDelta(t, b, g.MeanBurst(), 1e-9, "%+v", g)
	}
	simple := netem.GEFromLossBurst(0.1, 3)
	assert.InDelta(t, 0.1, simple.StationaryLoss(), 1e-15)
	assert.InDelta(t, 3, simple.MeanBurst(), 1e-12)
	assert.Equal(t, 0.1, netem.GilbertElliott{K1: 0.1}.StationaryLoss(), "never leaves Good")
	assert.Zero(t, netem.GilbertElliott{P: 0.1, R: 0.1, H: 1}.MeanBurst(), "nothing lost")
	assert.True(t, math.IsInf(netem.GilbertElliott{K1: 1}.MeanBurst(), 1), "everything lost")

	for _, f := range []netem.FourState{
		{P13: 0.02, P31: 0.4, P32: 0.2, P23: 0.3, P14: 0.01},
		{P13: 0.005, P31: 0.1, P32: 0.05, P23: 0.5, P14: 0.03},
		{P13: 0.1, P31: 0.9}, // Bernoulli-like
		{P13: 0.05, P31: 1},  // isolated-style bursts
		{P13: 0.1, P31: 0.3, P32: 0.3, P23: 0.2},
	} {
		l, b := fourChain(f).lossAndBurst()
		assert.InDelta(t, l, f.StationaryLoss(), 1e-12, "%+v", f)
		assert.InDelta(t, b, f.MeanBurst(), 1e-9, "%+v", f)
	}
	isolated := netem.FourState{P14: 0.1} // 1 <-> 4 only
	assert.InDelta(t, 0.1/1.1, isolated.StationaryLoss(), 1e-15)
	assert.InDelta(t, 1, isolated.MeanBurst(), 1e-15)
	trapped := netem.FourState{P13: 0.1, P32: 0.25, P23: 0.75} // never back to 1
	assert.InDelta(t, 0.75, trapped.StationaryLoss(), 1e-15)
	assert.InDelta(t, 4, trapped.MeanBurst(), 1e-12)
	absorbed := netem.FourState{P13: 0.1, P31: 0.5, P32: 0.5} // ends in 2, lossless
	assert.Zero(t, absorbed.StationaryLoss())
	assert.Zero(t, absorbed.MeanBurst())
	assert.True(t, netem.FourState{}.IsZero())
	assert.True(t, netem.GilbertElliott{}.IsZero())
}
