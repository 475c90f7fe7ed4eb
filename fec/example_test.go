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

// At RTT 100 ms two retransmission rounds fit a 300 ms budget. At 10 %
// loss a 7-packet delta frame would still fail 0.7 % of the time with
// plain retransmission, above its 0.3 % target; with the last round sent
// twice, 0.07 %. The encoder sends no repair packet for it and reports its
// packets, for the send history to double (arq.History.MarkLastChance).
func ExampleEncoder_AddMedia() {
	enc, err := fec.NewEncoder(fec.EncoderConfig{})
	if err != nil {
		panic(err)
	}
	enc.SetConditions(0, fec.Conditions{Loss: 0.10, MeanBurst: 1, RTT: 100 * time.Millisecond, OneWay: 50 * time.Millisecond, ARQ: true})
	pkt := make([]byte, 1000)
	pn := int64(0)
	for f := range 2 { // the first frame teaches the encoder the frame size
		start := time.Duration(f) * 33 * time.Millisecond
		before := enc.RepairsDue() // the first frame's (its blocks were planned blind)
		doubled := 0
		for i := range 7 {
			now := clock.Time(start + time.Duration(i)*time.Millisecond)
			if enc.AddMedia(now, pn, pkt, fec.ClassDelta, clock.Time(start+300*time.Millisecond), i == 6) {
				doubled++
			}
			pn++
		}
		if f == 1 {
			fmt.Printf("repair packets: %d, packets to double at their last chance: %d\n", enc.RepairsDue()-before, doubled)
		}
	}
	// Output:
	// repair packets: 0, packets to double at their last chance: 7
}

// A packet sent 200 ms after capture can no longer have its repairs
// arrive by capture + 300 ms (100 ms one way, 20 ms margin): the sender
// protects it to the receiver's later playout time instead.
func ExampleEncoder_Reaches() {
	enc, err := fec.NewEncoder(fec.EncoderConfig{})
	if err != nil {
		panic(err)
	}
	enc.SetConditions(0, fec.Conditions{Loss: 0.05, MeanBurst: 1, RTT: 200 * time.Millisecond, OneWay: 100 * time.Millisecond})
	capture := clock.Time(0)
	now := capture.Add(200 * time.Millisecond)
	deadline := capture.Add(300 * time.Millisecond)
	if !enc.Reaches(now, deadline) {
		deadline = capture.Add(500 * time.Millisecond) // the playout offset the receiver reported
	}
	fmt.Println(enc.Reaches(now, deadline), deadline.Sub(capture))
	// Output: true 500ms
}
