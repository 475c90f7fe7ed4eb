package strictcfg

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type mode uint8

func (m *mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "a":
		*m = 1
	case "b":
		*m = 2
	default:
		return fmt.Errorf("unknown mode %q", b)
	}
	return nil
}

type link struct {
	Delay time.Duration `json:"delay"`
	Loss  float64       `json:"loss"`
	Rate  int64         `json:"rate"`
	Mode  mode          `json:"mode"`
	On    bool          `json:"on"`
}

type file struct {
	Name    string        `json:"name"`
	Forward link          `json:"forward"`
	Reverse *link         `json:"reverse"`
	Steps   []link        `json:"steps"`
	Small   uint8         `json:"small"`
	Skip    int           `json:"-"`
	Every   time.Duration `json:"every"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		in     string
		want   file
		errHas string
	}{
		{name: "json", format: JSON,
			in:   `{"name":"x","forward":{"delay":"50ms","loss":0.05,"rate":"4mbit","mode":"b","on":true},"steps":[{"rate":1500}],"small":7}`,
			want: file{Name: "x", Forward: link{Delay: 50 * time.Millisecond, Loss: 0.05, Rate: 4_000_000, Mode: 2, On: true}, Steps: []link{{Rate: 1500}}, Small: 7}},
		{name: "yaml", format: YAML,
			in:   "name: y\nforward:\n  delay: 1.5s\n  rate: 64k\nreverse:\n  loss: 0.1\nevery: 0\n",
			want: file{Name: "y", Forward: link{Delay: 1500 * time.Millisecond, Rate: 64_000}, Reverse: &link{Loss: 0.1}}},
		{name: "unknown field", format: JSON, in: `{"forward":{"dealy":"5ms"}}`, errHas: `forward: unknown field "dealy"`},
		{name: "unknown field yaml", format: YAML, in: "steps:\n  - lost: 1\n", errHas: `steps[0]: unknown field "lost"`},
		{name: "bare duration", format: JSON, in: `{"forward":{"delay":50}}`, errHas: "forward.delay: bare number 50"},
		{name: "bad duration", format: YAML, in: "forward: {delay: fast}\n", errHas: `forward.delay: "fast" is not a duration`},
		{name: "wrong type", format: JSON, in: `{"forward":{"loss":"high"}}`, errHas: "forward.loss: want a number"},
		{name: "text unmarshaler", format: JSON, in: `{"forward":{"mode":"z"}}`, errHas: `forward.mode: unknown mode "z"`},
		{name: "overflow", format: JSON, in: `{"small":300}`, errHas: "small: 300 does not fit"},
		{name: "fraction for integer", format: JSON, in: `{"forward":{"rate":1.5}}`, errHas: "forward.rate: 1.5 is not an integer"},
		{name: "bad SI", format: JSON, in: `{"forward":{"rate":"lots"}}`, errHas: `forward.rate: "lots" is not an integer`},
		{name: "ignored field is unknown", format: JSON, in: `{"Skip":1}`, errHas: `unknown field "Skip"`},
		{name: "trailing data", format: JSON, in: `{} {}`, errHas: "data after the top-level value"},
		{name: "syntax", format: JSON, in: `{"name":`, errHas: "json:"},
		{name: "yaml syntax", format: YAML, in: "name: [", errHas: "yaml:"},
		{name: "top level not an object", format: YAML, in: "- 1\n", errHas: "(top level): want an object"},
		{name: "repeated key", format: JSON, in: `{"name":"a","name":"b"}`, errHas: `(top level): key "name" repeated`},
		{name: "repeated nested key", format: JSON, in: `{"forward":{"rate":2000000,"rate":0}}`, errHas: `forward: key "rate" repeated`},
		{name: "repeated key in a list", format: JSON, in: `{"steps":[{"rate":1},{"loss":0.1,"loss":0.2}]}`, errHas: `steps[1]: key "loss" repeated`},
		{name: "repeated key yaml", format: YAML, in: "name: a\nname: b\n", errHas: "yaml:"},
		{name: "same key in sibling objects", format: JSON,
			in:   `{"forward":{"rate":1},"reverse":{"rate":2},"steps":[{"rate":3},{"rate":4}],"name":"s"}`,
			want: file{Name: "s", Forward: link{Rate: 1}, Reverse: &link{Rate: 2}, Steps: []link{{Rate: 3}, {Rate: 4}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got file
			err := Decode([]byte(tc.in), tc.format, &got)
			if tc.errHas != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrInvalid)
				assert.Contains(t, err.Error(), tc.errHas)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeKeepsDefaults(t *testing.T) {
	got := file{Name: "default", Forward: link{Loss: 0.5, Rate: 9}}
	require.NoError(t, Decode([]byte(`{"forward":{"rate":"1k"}}`), JSON, &got))
	assert.Equal(t, "default", got.Name)
	assert.Equal(t, link{Loss: 0.5, Rate: 1000}, got.Forward)
	require.NoError(t, Decode([]byte(`{"forward":null}`), JSON, &got))
	assert.Equal(t, link{}, got.Forward, "null resets to the zero value")
}

func TestDecodeNeedsPointer(t *testing.T) {
	assert.Error(t, Decode([]byte(`{}`), JSON, file{}))
	assert.Error(t, Decode([]byte(`{}`), JSON, (*file)(nil)))
}

func TestFormatOf(t *testing.T) {
	assert.Equal(t, YAML, FormatOf("a/b.yaml"))
	assert.Equal(t, YAML, FormatOf("B.YML"))
	assert.Equal(t, JSON, FormatOf("c.json"))
	assert.Equal(t, JSON, FormatOf("noext"))
}

func TestAssignPatch(t *testing.T) {
	var f struct {
		Patch any `json:"patch"`
	}
	require.NoError(t, Decode([]byte("patch: {loss: 0.2}\n"), YAML, &f))
	base := link{Delay: time.Second, Loss: 0.1}
	require.NoError(t, Assign(f.Patch, &base, "schedule[0].forward"))
	assert.Equal(t, link{Delay: time.Second, Loss: 0.2}, base)
	require.NoError(t, Decode([]byte(`{"patch":{"los":1}}`), JSON, &f))
	err := Assign(f.Patch, &base, "schedule[0].forward")
	assert.ErrorContains(t, err, `schedule[0].forward: unknown field "los"`)
}

func TestListLen(t *testing.T) {
	assert.Equal(t, 2, ListLen([]byte(`{"s":[1,2]}`), JSON, "s"))
	assert.Equal(t, 1, ListLen([]byte("s:\n  - a: 1\n"), YAML, "s"))
	assert.Equal(t, -1, ListLen([]byte(`{"t":[1]}`), JSON, "s"))
	assert.Equal(t, -1, ListLen([]byte(`[1]`), JSON, "s"))
	assert.Equal(t, -1, ListLen([]byte(`{`), JSON, "s"))
}
