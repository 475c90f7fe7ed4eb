package fec

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVersion1SendsNoRepairAndDiscardsWhatArrives(t *testing.T) {
	var e Encoder
	e.OnMediaSent(0, 1, []byte{1, 2, 3}, 100)
	assert.Equal(t, Stats{}, e.Stats())

	var d Decoder
	d.OnMedia(0, 1, []byte{1})
	d.OnRepair(0, 0, 10, 3, 0, []byte{1, 2})
	d.OnRepair(0, 0, 10, 3, 1, []byte{1, 2})
	assert.Equal(t, Stats{FECPacketsReceived: 2, FECPacketsDiscarded: 2}, d.Stats())
}
