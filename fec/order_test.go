package fec

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spillway-rt/spillway/clock"
)

// Packet numbers that go back (or repeat) within a block close it: the
// decoder orders a block's packets by number and the parity takes them in
// the order they came, so a block holding 10, 12, 11 rebuilt 11 from the
// wrong bytes.
func TestOutOfOrderPacketNumbersCloseTheBlock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []int64
		lost  int64
	}{
		{"back by one", []int64{10, 12, 11}, 11},
		{"a repeat", []int64{10, 11, 11, 12}, 12},
		{"in order", []int64{10, 11, 12}, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := NewEncoder(EncoderConfig{FixedK: 3, FixedM: 1})
			require.NoError(t, err)
			dec, err := NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			now := clock.Time(0)
			deadline := now.Add(300 * time.Millisecond)
			pkt := func(pn int64) []byte { return bytes.Repeat([]byte{byte(pn)}, 40) }
			for i, pn := range tc.order {
				enc.AddMedia(now, pn, pkt(pn), ClassKey, deadline, i == len(tc.order)-1)
				if pn != tc.lost {
					dec.OnMedia(now, pn, pkt(pn))
				}
			}
			buf := make([]byte, DefaultMaxSymbol+SymbolOverhead)
			for {
				b, _, n, ok := enc.PollRepair(now, buf)
				if !ok {
					break
				}
				dec.OnRepair(now, b, buf[:n])
			}
			for {
				pn, n, ok := dec.PollRecovered(buf)
				if !ok {
					break
				}
				assert.Equal(t, pkt(pn), buf[:n], "packet %d rebuilt from the wrong bytes", pn)
			}
		})
	}
}
