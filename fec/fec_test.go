package fec

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/spillway-rt/spillway/clock"
)

func TestVersion1SendsNoRepairAndDiscardsWhatArrives(t *testing.T) {
	var e Encoder
	e.OnMediaSent(0, 1, []byte{1, 2, 3}, 100)
	_, ok := e.PollRepair(0, make([]byte, 1500))
	assert.False(t, ok)
	assert.Equal(t, clock.Never, e.NextTimeout())
	assert.Equal(t, Stats{}, e.Stats())

	var d Decoder
	d.OnMedia(0, 1, []byte{1})
	d.OnRepair(0, 0, 10, 3, 0, []byte{1, 2})
	d.OnRepair(0, 0, 10, 3, 1, []byte{1, 2})
	_, _, ok = d.PollRecovered(make([]byte, 1500))
	assert.False(t, ok)
	assert.Equal(t, Stats{FECPacketsReceived: 2, FECPacketsDiscarded: 2}, d.Stats())
}
