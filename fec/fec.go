package fec

import "github.com/spillway-rt/spillway/clock"

// Stats are the FEC counters, named after W3C webrtc-stats where it has a
// name (fecPacketsSent, fecPacketsReceived, fecPacketsDiscarded).
type Stats struct {
	FECPacketsSent      int64 // repair packets sent
	FECPacketsReceived  int64 // repair packets received
	FECPacketsDiscarded int64 // repair packets received but not used (no loss to repair, or unusable)
	PacketsRecovered    int64 // media packets rebuilt from repair packets
}

// Encoder decides which repair packets protect the media packets a session
// sends. Version 1 protects nothing.
type Encoder struct {
	stats Stats
}

// OnMediaSent tells the encoder a media packet left: pn is its packet
// number and pkt its bytes after the short header. deadline is its frame's.
func (e *Encoder) OnMediaSent(now clock.Time, pn int64, pkt []byte, deadline clock.Time) {}

// Stats returns the encoder's counters.
func (e *Encoder) Stats() Stats { return e.stats }

// Decoder rebuilds lost media packets from repair packets. Version 1 only
// counts the repair packets it is given.
type Decoder struct {
	stats Stats
}

// OnMedia tells the decoder a media packet arrived.
func (d *Decoder) OnMedia(now clock.Time, pn int64, pkt []byte) {}

// OnRepair takes a repair packet's block shape and symbol. Version 1
// discards it.
func (d *Decoder) OnRepair(now clock.Time, basePN int64, k, m, index int, symbol []byte) {
	d.stats.FECPacketsReceived++
	d.stats.FECPacketsDiscarded++
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() Stats { return d.stats }
