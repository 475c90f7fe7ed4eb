package netem

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// Bounds of a Trace.
const (
	// TraceOpportunityBytes is what one delivery opportunity of a Trace
	// carries: one 1,500-byte packet, as in Mahimahi (which counts 1,504
	// with its tunnel header), in the bytes the queue counts (len+Overhead).
	TraceOpportunityBytes = 1500

	// MaxTraceMillis bounds a trace's timestamps (a day).
	MaxTraceMillis = 24 * 60 * 60 * 1000

	// MaxTraceLen bounds the opportunities in one period of a trace.
	MaxTraceLen = 1 << 24
)

// Trace is a link capacity that changes over time, as a list of delivery
// opportunities in Mahimahi's format (mm-link): each line of a trace file is
// a whole number of milliseconds at which one TraceOpportunityBytes packet
// may leave; several lines with the same time are several opportunities.
// Times never decrease and the last one, T, is positive; the trace repeats
// with period T (the opportunity at t ms recurs at t+T, t+2T, ...). A
// simulated link's trace is anchored at virtual time 0 (a Network's at its
// creation), whenever it is set.
//
// A link with a Trace serialises the datagram at the head of its queue
// through the opportunities at or after the time it reached the head: its
// len+Overhead bytes fill opportunities in order (a datagram may span
// several, and several small ones may share one), and it departs at the time
// of the opportunity that carries its last byte (a zero-byte one still needs
// an opportunity). Bytes of an opportunity nothing is waiting for are lost,
// as in Mahimahi. So the link carries at most TraceOpportunityBytes per
// opportunity: MeanRate on average.
//
// A Trace is immutable; share it between links freely.
type Trace struct {
	ms     []int64 // opportunity times within a period, in ms
	period time.Duration
}

// NewTrace returns the trace whose opportunities are at the given times, in
// milliseconds (it copies ms). See ParseTrace for the rules.
func NewTrace(ms []int64) (*Trace, error) {
	t := &Trace{ms: append([]int64(nil), ms...)}
	for i, v := range t.ms {
		if err := t.check(i, v); err != nil {
			return nil, fmt.Errorf("%w: trace entry %d: %w", ErrInvalidConfig, i, err)
		}
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseTrace reads a trace in Mahimahi's format: one whole number of
// milliseconds per line, non-decreasing, at most MaxTraceMillis, the last
// one positive. Blank lines and spaces around numbers are ignored. An error
// names the first bad line and wraps ErrInvalidConfig.
func ParseTrace(r io.Reader) (*Trace, error) {
	t := &Trace{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 {
			continue
		}
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: trace line %d: %q is not a whole number of milliseconds", ErrInvalidConfig, line, s)
		}
		if err := t.check(len(t.ms), v); err != nil {
			return nil, fmt.Errorf("%w: trace line %d: %w", ErrInvalidConfig, line, err)
		}
		t.ms = append(t.ms, v)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: trace line %d: longer than %d bytes", ErrInvalidConfig, line+1, bufio.MaxScanTokenSize)
		}
		return nil, fmt.Errorf("netem: reading trace at line %d: %w", line+1, err)
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadTrace reads the trace file at path (see ParseTrace).
func LoadTrace(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("netem: %w", err)
	}
	defer f.Close()
	t, err := ParseTrace(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// check validates the i-th timestamp v against those before it.
func (t *Trace) check(i int, v int64) error {
	switch {
	case i >= MaxTraceLen:
		return fmt.Errorf("more than %d opportunities", MaxTraceLen)
	case v < 0 || v > MaxTraceMillis:
		return fmt.Errorf("%d ms outside [0, %d]", v, MaxTraceMillis)
	case i > 0 && v < t.ms[i-1]:
		return fmt.Errorf("%d ms goes back before %d ms", v, t.ms[i-1])
	}
	return nil
}

func (t *Trace) finish() error {
	switch {
	case len(t.ms) == 0:
		return fmt.Errorf("%w: trace has no delivery opportunity", ErrInvalidConfig)
	case t.ms[len(t.ms)-1] == 0:
		return fmt.Errorf("%w: trace's last time is 0 ms: its period would be empty", ErrInvalidConfig)
	}
	t.period = time.Duration(t.ms[len(t.ms)-1]) * time.Millisecond
	return nil
}

func (t *Trace) valid() bool { return t != nil && t.period > 0 }

// Period returns the time after which the trace repeats (its last time).
func (t *Trace) Period() time.Duration { return t.period }

// Len returns the number of delivery opportunities in one period.
func (t *Trace) Len() int { return len(t.ms) }

// Millis returns a copy of the opportunity times, in milliseconds.
func (t *Trace) Millis() []int64 { return append([]int64(nil), t.ms...) }

// MeanRate returns the trace's capacity in bit/s averaged over a period:
// Len * TraceOpportunityBytes * 8 / Period, rounded down.
func (t *Trace) MeanRate() int64 {
	if !t.valid() {
		return 0
	}
	return int64(len(t.ms)) * TraceOpportunityBytes * 8 * 1000 / t.ms[len(t.ms)-1]
}

// meanRate is MeanRate unrounded.
func (t *Trace) meanRate() float64 {
	return float64(len(t.ms)) * TraceOpportunityBytes * 8 * 1000 / float64(t.ms[len(t.ms)-1])
}

// WriteTo writes the trace in Mahimahi's format, one time per line.
func (t *Trace) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var buf [24]byte
	for _, v := range t.ms {
		k, err := bw.Write(append(strconv.AppendInt(buf[:0], v, 10), '\n'))
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// MarshalJSON writes the trace as a JSON array of its times in milliseconds,
// so a scenario saved as JSON carries its trace.
func (t *Trace) MarshalJSON() ([]byte, error) {
	if t == nil {
		return []byte("null"), nil
	}
	return json.Marshal(t.ms)
}

// UnmarshalJSON reads what MarshalJSON writes, with NewTrace's checks.
func (t *Trace) UnmarshalJSON(b []byte) error {
	var ms []int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("%w: trace: %w", ErrInvalidConfig, err)
	}
	nt, err := NewTrace(ms)
	if err != nil {
		return err
	}
	*t = *nt
	return nil
}

// at returns the time of opportunity k (counting from 0 at virtual time 0,
// across periods).
func (t *Trace) at(k int64) clock.Time {
	n := int64(len(t.ms))
	c := k / n
	return clock.Time(c*int64(t.period) + t.ms[k-c*n]*int64(time.Millisecond))
}

// seek returns the first opportunity at or after now.
func (t *Trace) seek(now clock.Time) int64 {
	if now <= 0 {
		return 0
	}
	c := int64(now) / int64(t.period)
	r := int64(now) - c*int64(t.period)
	if r == 0 {
		// The previous period's last opportunities fall at its end, which
		// is now: the first of them.
		last := int64(t.period / time.Millisecond)
		i := sort.Search(len(t.ms), func(i int) bool { return t.ms[i] >= last })
		return (c-1)*int64(len(t.ms)) + int64(i)
	}
	i := sort.Search(len(t.ms), func(i int) bool { return t.ms[i]*int64(time.Millisecond) >= r })
	return c*int64(len(t.ms)) + int64(i) // i == len: the next period's first
}

// traceState is where a link is in its trace.
type traceState struct {
	tr   *Trace     // the trace this state belongs to
	next int64      // the first opportunity not used yet
	at   clock.Time // time of the last opportunity used
	left int64      // bytes left in it
}

// serve returns when a datagram of wire bytes reaching the head of the
// queue at now has left, using up the opportunities it needs.
func (s *traceState) serve(t *Trace, now clock.Time, wire int64) clock.Time {
	if s.tr != t {
		*s = traceState{tr: t}
	}
	need := max(wire, 1)
	if s.left > 0 && s.at == now { // share the opportunity the last one used
		use := min(need, s.left)
		s.left -= use
		if need -= use; need == 0 {
			return now
		}
	}
	if t.at(s.next) < now { // the link was idle: those opportunities are gone
		s.next = t.seek(now)
	}
	for need > 0 {
		s.at = t.at(s.next)
		s.next++
		use := min(need, TraceOpportunityBytes)
		need -= use
		s.left = TraceOpportunityBytes - use
	}
	return s.at
}
