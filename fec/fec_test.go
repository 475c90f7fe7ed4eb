package fec

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

const ms = time.Millisecond

// repair is a repair packet as a test link carries it.
type repair struct {
	b   Block
	sym []byte
}

// pollAll drains an encoder's due repair packets.
func pollAll(t testing.TB, e *Encoder, now clock.Time) []repair {
	t.Helper()
	var out []repair
	buf := make([]byte, e.Config().MaxSymbol+SymbolOverhead)
	for {
		b, _, n, ok := e.PollRepair(now, buf)
		if !ok {
			return out
		}
		out = append(out, repair{b, bytes.Clone(buf[:n])})
	}
}

// drainRecovered collects a decoder's recovered packets.
func drainRecovered(d *Decoder) map[int64][]byte {
	out := map[int64][]byte{}
	buf := make([]byte, d.cfg.MaxSymbol)
	for {
		pn, n, ok := d.PollRecovered(buf)
		if !ok {
			return out
		}
		out[pn] = bytes.Clone(buf[:n])
	}
}

func randPacket(rng *rand.Rand, minLen, maxLen int) []byte {
	p := make([]byte, minLen+rng.IntN(maxLen-minLen+1))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func fixedEncoder(t testing.TB, k, m int) *Encoder {
	t.Helper()
	e, err := NewEncoder(EncoderConfig{FixedK: k, FixedM: m, MaxK: max(k, 1), MaxM: max(m, 1)})
	require.NoError(t, err)
	return e
}

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	return d
}

// Any k of a block's k+m packets rebuild every member exactly, lengths
// included, whatever the loss pattern.
func TestRecoversFromAnyKOfN(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range []struct{ k, m int }{{1, 1}, {2, 1}, {4, 2}, {5, 2}, {10, 3}, {16, 4}, {48, 16}, {64, 32}} {
		for trial := range 30 {
			e := fixedEncoder(t, shape.k, shape.m)
			d := newDecoder(t)
			pkts := make([][]byte, shape.k)
			for i := range pkts {
				pkts[i] = randPacket(rng, 0, 1400)
				if trial == 0 {
					pkts[i] = randPacket(rng, 20, 20) // all one size
				}
				e.AddMedia(0, int64(100+i), pkts[i], ClassDelta, clock.Time(time.Second), i == shape.k-1)
			}
			reps := pollAll(t, e, 0)
			require.Len(t, reps, shape.m)
			// Lose up to m of the k+m, at random.
			n := shape.k + shape.m
			lost := rng.Perm(n)[:rng.IntN(shape.m+1)]
			isLost := map[int]bool{}
			for _, i := range lost {
				isLost[i] = true
			}
			for i, p := range pkts {
				if !isLost[i] {
					d.OnMedia(0, int64(100+i), p)
				}
			}
			for j, r := range reps {
				if !isLost[shape.k+j] {
					d.OnRepair(0, r.b, r.sym)
				}
			}
			got := drainRecovered(d)
			for i, p := range pkts {
				if isLost[i] {
					require.Contains(t, got, int64(100+i), "shape %v lost %v", shape, lost)
					require.Equal(t, p, got[int64(100+i)], "shape %v member %d", shape, i)
				}
			}
			assert.Len(t, got, len(lostMedia(lost, shape.k)))
			st := d.Stats()
			assert.Equal(t, st.FECPacketsReceived, st.FECPacketsUsed+st.FECPacketsDiscarded)
		}
	}
}

func lostMedia(lost []int, k int) []int {
	var out []int
	for _, i := range lost {
		if i < k {
			out = append(out, i)
		}
	}
	return out
}

// With more than m losses nothing is rebuilt, and the block is counted as
// unrecovered when forgotten.
func TestTooManyLossesRecoverNothing(t *testing.T) {
	e := fixedEncoder(t, 4, 1)
	d := newDecoder(t)
	for i := range 4 {
		e.AddMedia(0, int64(i), []byte{byte(i), 1, 2}, ClassDelta, clock.Time(time.Second), i == 3)
	}
	reps := pollAll(t, e, 0)
	require.Len(t, reps, 1)
	d.OnMedia(0, 0, []byte{0, 1, 2})
	d.OnMedia(0, 3, []byte{3, 1, 2})
	d.OnRepair(0, reps[0].b, reps[0].sym)
	assert.Empty(t, drainRecovered(d))
	assert.True(t, d.Pending(1) == false, "every repair of the block came")
	d.Expire(clock.Time(2*time.Second), 0)
	st := d.Stats()
	assert.Equal(t, int64(2), st.PacketsUnrecovered)
	assert.Equal(t, int64(1), st.BlocksUnrecovered)
	assert.Equal(t, int64(1), st.DiscardedExpired)
	assert.Equal(t, 0, d.Blocks())
}
