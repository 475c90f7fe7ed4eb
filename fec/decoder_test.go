package fec

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// sentBlock is one encoded block: its media packets and repairs.
type sentBlock struct {
	base  int64
	media [][]byte
	reps  []repair
}

func encodeFixed(t testing.TB, base int64, k, m int, rng *rand.Rand) sentBlock {
	e := fixedEncoder(t, k, m)
	sb := sentBlock{base: base}
	for i := range k {
		p := randPacket(rng, 20, 300)
		sb.media = append(sb.media, p)
		e.AddMedia(0, base+int64(i), p, ClassDelta, clock.Time(time.Second), i == k-1)
	}
	sb.reps = pollAll(t, e, 0)
	return sb
}

func checkInvariant(t *testing.T, d *Decoder) {
	t.Helper()
	st := d.Stats()
	held := int64(0)
	for i := range d.blocks {
		if d.blocks[i].used {
			held += int64(d.blocks[i].nrep)
		}
	}
	assert.Equal(t, st.FECPacketsReceived, st.FECPacketsUsed+st.FECPacketsDiscarded+held, "every repair packet accounted for")
	assert.Equal(t, st.FECPacketsDiscarded, st.DiscardedInvalid+st.DiscardedUnneeded+st.DiscardedExpired)
	assert.LessOrEqual(t, d.nblocks, d.cfg.MaxBlocks)
	assert.LessOrEqual(t, len(d.reps), d.cfg.MaxRepairs)
}

func TestDecoderReorderingAndDuplicates(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sb := encodeFixed(t, 1000, 5, 2, rng)
	d := newDecoder(t)
	// Repairs first, then some media, duplicates everywhere.
	d.OnRepair(0, sb.reps[1].b, sb.reps[1].sym)
	d.OnRepair(0, sb.reps[1].b, sb.reps[1].sym) // duplicate
	assert.True(t, d.Pending(1000), "a member of a known block, more repairs may come")
	assert.False(t, d.Pending(999), "not a member")
	until, wait := d.PendingUntil(1002)
	assert.True(t, wait)
	assert.Equal(t, clock.Time(DefaultRepairWait), until)
	d.OnMedia(0, 1004, sb.media[4])
	d.OnMedia(0, 1004, sb.media[4]) // duplicate
	d.OnMedia(0, 1001, sb.media[1])
	d.OnMedia(0, 1003, sb.media[3])
	assert.Empty(t, drainRecovered(d), "3 media + 1 repair of k = 5")
	d.OnRepair(0, sb.reps[0].b, sb.reps[0].sym)
	got := drainRecovered(d)
	assert.Equal(t, map[int64][]byte{1000: sb.media[0], 1002: sb.media[2]}, got)
	assert.False(t, d.Pending(1000), "recovered")
	// The originals arrive late, the repairs again: all unneeded.
	d.OnMedia(0, 1000, sb.media[0])
	d.OnRepair(0, sb.reps[0].b, sb.reps[0].sym)
	d.OnRepair(0, sb.reps[1].b, sb.reps[1].sym)
	assert.Empty(t, drainRecovered(d))
	st := d.Stats()
	assert.Equal(t, int64(2), st.PacketsRecovered)
	assert.Equal(t, int64(2), st.FECPacketsUsed)
	assert.Equal(t, int64(3), st.DiscardedUnneeded)
	checkInvariant(t, d)
	// Pending stops waiting once RepairWait has passed.
	sb2 := encodeFixed(t, 2000, 4, 2, rng)
	d.OnRepair(clock.Time(time.Second), sb2.reps[0].b, sb2.reps[0].sym)
	assert.True(t, d.Pending(2000))
	d.OnMedia(clock.Time(time.Second+DefaultRepairWait), 1999, []byte{1})
	assert.False(t, d.Pending(2000))
}

func TestDecoderHostileRepairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sb := encodeFixed(t, 500, 4, 2, rng)
	good := sb.reps[0]
	for _, tc := range []struct {
		name string
		b    Block
		sym  []byte
	}{
		{"bit 0 clear", Block{Base: 500, Mask: 0b1110, M: 2}, good.sym},
		{"no members", Block{Base: 500, Mask: 0, M: 2}, good.sym},
		{"negative base", Block{Base: -1, Mask: 1, M: 1}, good.sym},
		{"M zero", Block{Base: 500, Mask: 0b1111, M: 0}, good.sym},
		{"huge M", Block{Base: 500, Mask: 0b1111, M: 200, Index: 100}, good.sym},
		{"index >= M", Block{Base: 500, Mask: 0b1111, M: 2, Index: 2}, good.sym},
		{"negative index", Block{Base: 500, Mask: 0b1111, M: 2, Index: -1}, good.sym},
		{"empty symbol", good.b, nil},
		{"shorter than a member", good.b, []byte{1}},
		{"too long", good.b, make([]byte, DefaultMaxSymbol+SymbolOverhead+1)},
		{"far future", Block{Base: 1 << 40, Mask: 1, M: 1}, good.sym},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t)
			d.OnMedia(0, 500, sb.media[0])
			d.OnRepair(0, tc.b, tc.sym)
			st := d.Stats()
			assert.Equal(t, int64(1), st.DiscardedInvalid, "%+v", st)
			assert.Zero(t, d.Blocks())
			checkInvariant(t, d)
		})
	}

	t.Run("inconsistent with the block", func(t *testing.T) {
		d := newDecoder(t)
		d.OnRepair(0, good.b, good.sym)
		other := good.b
		other.Mask = 0b10111
		other.Index = 1
		d.OnRepair(0, other, sb.reps[1].sym) // same base, other mask
		other = sb.reps[1].b
		other.M = 3
		d.OnRepair(0, other, sb.reps[1].sym)                                // same base, other M
		d.OnRepair(0, sb.reps[1].b, sb.reps[1].sym[:len(sb.reps[1].sym)-1]) // other length
		assert.Equal(t, int64(3), d.Stats().DiscardedInvalid)
		checkInvariant(t, d)
	})
	t.Run("complete, expired and old blocks", func(t *testing.T) {
		d := newDecoder(t)
		for i, p := range sb.media {
			d.OnMedia(0, 500+int64(i), p)
		}
		d.OnRepair(0, good.b, good.sym) // nothing missing
		assert.Equal(t, int64(1), d.Stats().DiscardedUnneeded)
		d.Expire(0, 1000)
		sb2 := encodeFixed(t, 900, 4, 1, rng)
		d.OnRepair(0, sb2.reps[0].b, sb2.reps[0].sym) // below the expiry floor
		assert.Equal(t, int64(2), d.Stats().DiscardedUnneeded)
		d.OnMedia(0, 5000, []byte{1})
		sb3 := encodeFixed(t, 4000, 4, 1, rng)
		d.OnRepair(0, sb3.reps[0].b, sb3.reps[0].sym) // older than the history
		assert.Equal(t, int64(3), d.Stats().DiscardedUnneeded)
		assert.Zero(t, d.Blocks())
		checkInvariant(t, d)
	})
	t.Run("forged symbol", func(t *testing.T) {
		d := newDecoder(t)
		sym := make([]byte, len(good.sym))
		for i := range sym {
			sym[i] = 0xff // rebuilds a length of 65535-ish
		}
		for i := 1; i < 4; i++ {
			d.OnMedia(0, 500+int64(i), sb.media[i])
		}
		d.OnRepair(0, good.b, sym)
		assert.Equal(t, int64(1), d.Stats().RecoveredInvalid)
		assert.Empty(t, drainRecovered(d))
		checkInvariant(t, d)
	})
	t.Run("member longer than the symbol", func(t *testing.T) {
		d := newDecoder(t)
		d.OnMedia(0, 501, make([]byte, 1000))
		for i := 2; i < 4; i++ {
			d.OnMedia(0, 500+int64(i), sb.media[i])
		}
		d.OnRepair(0, good.b, good.sym)
		assert.Equal(t, int64(1), d.Stats().DiscardedInvalid)
		checkInvariant(t, d)
	})
}

// A flood of distinct blocks, each missing everything, keeps the state
// within MaxBlocks and MaxRepairs.
func TestDecoderBounded(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{MaxBlocks: 8, MaxRepairs: 16})
	require.NoError(t, err)
	sym := make([]byte, DefaultMaxSymbol+SymbolOverhead)
	for i := range 10_000 {
		d.OnRepair(clock.Time(i), Block{Base: int64(i), Mask: 0xffff, M: 4, Index: i % 4}, sym)
		require.LessOrEqual(t, d.Blocks(), 8)
	}
	assert.LessOrEqual(t, len(d.reps), 16)
	assert.Positive(t, d.Stats().BlocksUnrecovered)
	checkInvariant(t, d)
	d.Expire(clock.Time(time.Hour), 0)
	assert.Zero(t, d.Blocks())
	checkInvariant(t, d)
}
