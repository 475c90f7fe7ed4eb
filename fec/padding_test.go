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

// padBlock builds a padding block over media[pns[i]-base] with m repairs.
func padBlock(t *testing.T, e *Encoder, base int64, media [][]byte, m int, pns ...int64) []repair {
	t.Helper()
	require.True(t, e.PadBlock(m))
	for _, pn := range pns {
		require.True(t, e.AddPad(0, pn, media[pn-base], clock.Time(time.Second)))
	}
	require.Positive(t, e.ClosePad())
	assert.Empty(t, pollAll(t, e, 0), "padding never comes out of PollRepair")
	return pollPad(t, e, 0)
}

func pollPad(t *testing.T, e *Encoder, now clock.Time) []repair {
	t.Helper()
	var out []repair
	buf := make([]byte, e.Config().MaxSymbol+SymbolOverhead)
	for {
		b, n, ok := e.PollPad(now, buf)
		if !ok {
			assert.Zero(t, e.PadLeft())
			return out
		}
		out = append(out, repair{b, bytes.Clone(buf[:n])})
	}
}

// A probe's padding (PadBlock) mends losses among packets that other
// blocks protect too, base and all: the receiver tells the blocks apart,
// and a member one recovers lets the other finish.
func TestPaddingBlockRecovers(t *testing.T) {
	const base = 100
	tests := []struct {
		name     string
		lost     []int64 // media lost
		regular  bool    // the regular block's repair (members 100-103, m 1) arrives
		padM     int
		padPNs   []int64
		wantBack []int64
	}{
		{"two losses the regular block cannot mend, padding with its base can", []int64{101, 102}, true, 2,
			[]int64{100, 101, 102, 103, 104, 105, 106, 107}, []int64{101, 102}},
		{"two losses, two padding repairs", []int64{101, 106}, false, 2,
			[]int64{100, 101, 102, 103, 104, 105, 106, 107}, []int64{101, 106}},
		{"padding recovers a member, the regular block the other", []int64{101, 102}, true, 1,
			[]int64{102, 103, 104, 105}, []int64{101, 102}},
		{"too few repairs recover nothing", []int64{101, 102, 104}, false, 2,
			[]int64{100, 101, 102, 103, 104}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			sb := encodeFixed(t, base, 4, 1, rng) // 100-103
			media := sb.media
			for range 4 {
				media = append(media, randPacket(rng, 20, 300)) // 104-107
			}
			e, err := NewEncoder(EncoderConfig{})
			require.NoError(t, err)
			pad := padBlock(t, e, base, media, tt.padM, tt.padPNs...)
			require.Len(t, pad, tt.padM)
			for _, r := range pad {
				assert.Equal(t, tt.padPNs[0], r.b.Base)
			}
			assert.Equal(t, int64(1), e.Stats().PaddingBlocks)
			assert.Equal(t, int64(tt.padM), e.Stats().PaddingSent)

			d := newDecoder(t)
			lost := map[int64]bool{}
			for _, pn := range tt.lost {
				lost[pn] = true
			}
			for i, p := range media {
				if pn := int64(base + i); !lost[pn] {
					d.OnMedia(0, pn, p)
				}
			}
			if tt.regular {
				d.OnRepair(0, sb.reps[0].b, sb.reps[0].sym)
			}
			for _, r := range pad {
				d.OnRepair(0, r.b, r.sym)
			}
			got := drainRecovered(d)
			want := map[int64][]byte{}
			for _, pn := range tt.wantBack {
				want[pn] = media[pn-base]
			}
			assert.Equal(t, want, got)
			checkInvariant(t, d)
		})
	}
}

func TestPaddingBlockRefuses(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{MaxK: 4})
	require.NoError(t, err)
	p := []byte{1, 2, 3}
	assert.False(t, e.AddPad(0, 10, p, 0), "no block open")
	assert.Zero(t, e.ClosePad(), "no block open")
	assert.False(t, e.PadBlock(0), "m < 1")
	require.True(t, e.PadBlock(3))
	assert.True(t, e.AddPad(0, 10, p, clock.Time(time.Second)))
	assert.False(t, e.AddPad(0, 10, p, clock.Time(time.Second)), "not after the last")
	assert.False(t, e.AddPad(0, 9, p, clock.Time(time.Second)), "out of order")
	assert.False(t, e.AddPad(0, 10+MaxSpan, p, clock.Time(time.Second)), "beyond the span")
	assert.False(t, e.AddPad(0, 11, make([]byte, DefaultMaxSymbol+1), clock.Time(time.Second)), "too long")
	assert.True(t, e.AddPad(0, 10+MaxSpan-1, p, clock.Time(time.Second)))
	assert.Equal(t, 2, e.ClosePad(), "at most one repair per member")
	assert.Equal(t, 2, e.PadLeft())
	assert.Len(t, pollPad(t, e, 0), 2)

	require.True(t, e.PadBlock(2))
	assert.Zero(t, e.ClosePad(), "no member")
	assert.Empty(t, pollPad(t, e, 0))
	// Past every member's deadline, the repairs are dropped, not sent.
	require.True(t, e.PadBlock(2))
	for pn := int64(20); pn < 24; pn++ {
		assert.True(t, e.AddPad(0, pn, p, clock.Time(time.Second)))
	}
	assert.False(t, e.AddPad(0, 24, p, clock.Time(time.Second)), "MaxK members")
	assert.Equal(t, 2, e.ClosePad())
	assert.Empty(t, pollPad(t, e, clock.Time(2*time.Second)))
	assert.Equal(t, int64(2), e.Stats().PaddingDropped)
	// What the padding no longer wants is dropped, never sent: by
	// DropPad, or by the next padding block.
	for _, drop := range []func(){e.DropPad, func() { require.True(t, e.PadBlock(1)); e.ClosePad() }} {
		require.True(t, e.PadBlock(2))
		require.True(t, e.AddPad(0, 30, p, clock.Time(time.Second)))
		require.True(t, e.AddPad(0, 31, p, clock.Time(time.Second)))
		require.Equal(t, 2, e.ClosePad())
		before := e.Stats().PaddingDropped
		drop()
		assert.Equal(t, before+2, e.Stats().PaddingDropped)
		assert.Empty(t, pollPad(t, e, 0))
	}
	assert.Zero(t, e.Stats().FECPacketsSent-e.Stats().PaddingSent, "only padding was sent")
	assert.Zero(t, e.Stats().RepairsDropped, "padding is not the policy's repair")
	// Buffers all came back: every block and buffer can be taken again.
	assert.Len(t, e.free, len(e.blocks))
	assert.Len(t, e.freeBufs, len(e.bufs))
}
