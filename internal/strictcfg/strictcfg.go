package strictcfg

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every error Decode returns for a well-formed file
// whose content does not fit the target.
var ErrInvalid = errors.New("invalid file")

// Format is a file's syntax.
type Format int

// Formats.
const (
	JSON Format = iota
	YAML
)

// FormatOf picks the format from a file name's extension: .yaml and .yml
// are YAML, anything else JSON.
func FormatOf(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return YAML
	}
	return JSON
}

// Decode decodes data, in format f, into v (a non-nil pointer). Fields the
// file does not name keep the values v already holds, so a caller can fill
// in defaults first; a field set to null is reset to its zero value.
func Decode(data []byte, f Format, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictcfg: Decode needs a non-nil pointer, got %T", v)
	}
	var tree any
	switch f {
	case YAML:
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%w: yaml: %w", ErrInvalid, err)
		}
		t, err := fromYAML(doc, "")
		if err != nil {
			return err
		}
		tree = t
	default:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			return fmt.Errorf("%w: json: %w", ErrInvalid, err)
		}
		if dec.More() {
			return fmt.Errorf("%w: json: data after the top-level value", ErrInvalid)
		}
		// encoding/json keeps the last of a repeated key; YAML refuses
		// them, and so does a strict JSON file.
		if err := duplicateKeys(data); err != nil {
			return err
		}
	}
	return assign(rv.Elem(), tree, "")
}

// duplicateKeys reports the first object key that repeats within its
// object, in well-formed JSON data.
func duplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		path   string
		keys   map[string]bool // nil in an array
		key    bool            // an object expects a key next
		index  int             // an array's next element
		pathOf string          // the path of the value being read
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or an error Decode has already reported
		}
		var top *level
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.keys != nil && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("%w: %s: key %q repeated", ErrInvalid, orTop(top.path), k)
			}
			top.keys[k] = true
			top.key, top.pathOf = false, join(top.path, k)
			continue
		}
		path := ""
		if top != nil {
			if top.keys != nil {
				top.key, path = true, top.pathOf
			} else {
				path = fmt.Sprintf("%s[%d]", top.path, top.index)
				top.index++
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{path: path, keys: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, level{path: path})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// ListLen returns the length of the list the top-level object holds under
// key, or -1 when data is not such an object (whatever the reason: Decode
// reports the errors). It lets a caller fill a list's elements with
// defaults before decoding onto them.
func ListLen(data []byte, f Format, key string) int {
	var top any
	if f == YAML {
		if yaml.Unmarshal(data, &top) != nil {
			return -1
		}
	} else if json.Unmarshal(data, &top) != nil {
		return -1
	}
	m, ok := top.(map[string]any)
	if !ok {
		return -1
	}
	l, ok := m[key].([]any)
	if !ok {
		return -1
	}
	return len(l)
}

// Assign stores a value Decode kept in a field of type any (a tree of
// map[string]any, []any, json.Number, string, bool and nil) into v, with
// Decode's rules; path prefixes the field names in errors. Fields the tree
// does not name keep v's values, which is how a file can say "change these
// fields of what was there".
func Assign(tree any, v any, path string) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictcfg: Assign needs a non-nil pointer, got %T", v)
	}
	return assign(rv.Elem(), tree, path)
}

// fromYAML turns what yaml.v3 decodes into the JSON decoder's shapes:
// map[string]any, []any, json.Number, string, bool, nil.
func fromYAML(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := fromYAML(e, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s: key %v is not a string", ErrInvalid, orTop(path), k)
			}
			c, err := fromYAML(e, join(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := fromYAML(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w: %s: %v is not a number a file may hold", ErrInvalid, orTop(path), x)
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case string, bool, nil:
		return x, nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	default:
		return nil, fmt.Errorf("%w: %s: unsupported YAML value %T", ErrInvalid, orTop(path), v)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	textType     = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonType     = reflect.TypeFor[json.Unmarshaler]()
)

// assign stores the decoded value v into dst.
func assign(dst reflect.Value, v any, path string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, orTop(path), fmt.Sprintf(format, args...))
	}
	if v == nil {
		dst.SetZero() // null: the field's zero value (its default)
		return nil
	}
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return assign(dst.Elem(), v, path)
	}
	if dst.Type() == durationType {
		return assignDuration(dst, v, bad)
	}
	if dst.CanAddr() && dst.Addr().Type().Implements(jsonType) {
		// A type that reads its own JSON (netem.Trace: a list of times)
		// gets the value as JSON, and checks it itself.
		b, err := json.Marshal(v)
		if err != nil {
			return bad("%v", err)
		}
		if err := dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			return bad("%v", err)
		}
		return nil
	}
	if dst.CanAddr() && dst.Addr().Type().Implements(textType) {
		s, ok := v.(string)
		if !ok {
			return bad("want a string, got %s", describe(v))
		}
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return bad("%v", err)
		}
		return nil
	}
	switch dst.Kind() {
	case reflect.Interface:
		if dst.NumMethod() != 0 {
			return bad("cannot hold a value of Go type %s", dst.Type())
		}
		dst.Set(reflect.ValueOf(v)) // kept as decoded, for a later Assign
		return nil
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("want an object, got %s", describe(v))
		}
		return assignStruct(dst, m, path)
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return bad("want a list, got %s", describe(v))
		}
		// Elements the slice already holds are decoded onto (their values
		// are defaults), as struct fields are.
		out := reflect.MakeSlice(dst.Type(), len(a), len(a))
		reflect.Copy(out, dst)
		for i, e := range a {
			if err := assign(out.Index(i), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return bad("want true or false, got %s", describe(v))
		}
		dst.SetBool(b)
		return nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return bad("want a string, got %s", describe(v))
		}
		dst.SetString(s)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return bad("want a number, got %s", describe(v))
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return bad("%s is not a number", n)
		}
		dst.SetFloat(f)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := integer(v)
		if err != nil {
			return bad("%v", err)
		}
		if dst.OverflowInt(i) {
			return bad("%d does not fit", i)
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := integer(v)
		if err != nil {
			return bad("%v", err)
		}
		if i < 0 || dst.OverflowUint(uint64(i)) {
			return bad("%d does not fit", i)
		}
		dst.SetUint(uint64(i))
		return nil
	}
	return bad("cannot hold a value of Go type %s", dst.Type())
}

func assignStruct(dst reflect.Value, m map[string]any, path string) error {
	t := dst.Type()
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = i
	}
	// Report unknown fields in a stable order.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i, ok := fields[k]
		if !ok {
			known := make([]string, 0, len(fields))
			for n := range fields {
				known = append(known, n)
			}
			slices.Sort(known)
			return fmt.Errorf("%w: %s: unknown field %q (known: %s)", ErrInvalid, orTop(path), k, strings.Join(known, ", "))
		}
		if err := assign(dst.Field(i), m[k], join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func assignDuration(dst reflect.Value, v any, bad func(string, ...any) error) error {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return bad("%q is not a duration (write e.g. \"50ms\", \"1.5s\")", x)
		}
		dst.SetInt(int64(d))
		return nil
	case json.Number:
		if f, err := x.Float64(); err == nil && f == 0 {
			dst.SetInt(0)
			return nil
		}
		return bad("bare number %s: write a duration with its unit, e.g. \"%sms\"", x, x)
	}
	return bad("want a duration string, got %s", describe(v))
}

// integer reads a number or a string with an SI suffix.
func integer(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
			return 0, fmt.Errorf("%s is not an integer", x)
		}
		return int64(f), nil
	case string:
		return parseSI(x)
	}
	return 0, fmt.Errorf("want an integer, got %s", describe(v))
}

func parseSI(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, unit := range []string{"bit/s", "bps", "bit", "b"} {
		if strings.HasSuffix(t, unit) {
			t = strings.TrimSuffix(t, unit)
			break
		}
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1e3, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1e6, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1e9, strings.TrimSuffix(t, "g")
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not an integer (write e.g. 1500, \"64k\", \"4mbit\")", s)
	}
	f *= mult
	if f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return int64(f), nil
}

func describe(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprintf("%T", v)
}
