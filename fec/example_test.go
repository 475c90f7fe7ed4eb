package fec_test

import (
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/fec"
)

// A sender protects a frame of four packets; two of them are lost on the
// way and the receiver rebuilds them from the two repair packets.
func Example() {
	enc, err := fec.NewEncoder(fec.EncoderConfig{})
	if err != nil {
		panic(err)
	}
	// RTT 200 ms under a 300 ms budget: no retransmission can arrive in
	// time, so FEC carries the load.
	enc.SetConditions(0, fec.Conditions{Loss: 0.05, MeanBurst: 1, RTT: 200 * time.Millisecond, OneWay: 100 * time.Millisecond, ARQ: true})
	dec, err := fec.NewDecoder(fec.DecoderConfig{})
	if err != nil {
		panic(err)
	}

	now := clock.Time(0)
	deadline := now.Add(300 * time.Millisecond)
	frame := [][]byte{[]byte("key frame, part one"), []byte("part two"), []byte("part three"), []byte("the end")}
	for i, pkt := range frame {
		pn := int64(10 + i)
		enc.AddMedia(now, pn, pkt, fec.ClassKey, deadline, i == len(frame)-1)
		if pn != 11 && pn != 12 { // 11 and 12 are lost
			dec.OnMedia(now, pn, pkt)
		}
	}
	buf := make([]byte, fec.DefaultMaxSymbol+fec.SymbolOverhead)
	for {
		b, _, n, ok := enc.PollRepair(now, buf)
		if !ok {
			break
		}
		fmt.Printf("repair %d of %d for %d packets from %d\n", b.Index+1, b.M, b.K(), b.Base)
		dec.OnRepair(now, b, buf[:n])
	}
	for {
		pn, n, ok := dec.PollRecovered(buf)
		if !ok {
			break
		}
		fmt.Printf("recovered %d: %q\n", pn, buf[:n])
	}
	// Output:
	// repair 1 of 2 for 4 packets from 10
	// repair 2 of 2 for 4 packets from 10
	// recovered 11: "part two"
	// recovered 12: "part three"
}
