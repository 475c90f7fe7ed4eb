package arq_test

import (
	"fmt"
	"time"

	"github.com/spillway-rt/spillway/arq"
	"github.com/spillway-rt/spillway/clock"
)

// A sender and a receiver 50 ms apart: packet 3 is lost, the receiver NACKs
// it after the reorder allowance, the sender retransmits it under a fresh
// packet number because it can still arrive before its deadline.
func Example() {
	ms := func(n int) clock.Time { return clock.Time(time.Duration(n) * time.Millisecond) }
	oneWay := 50 * time.Millisecond
	var rtt arq.RTT
	rtt.Add(0, 2*oneWay)

	history, _ := arq.NewHistory(arq.HistoryConfig{})
	receiver, _ := arq.NewReceiver(arq.ReceiverConfig{Repeats: -1})
	history.SetRTT(&rtt)
	receiver.SetRTT(&rtt)

	deadline := ms(300) // capture at 0 + a 300 ms budget
	for pn := int64(0); pn < 6; pn++ {
		sent := ms(int(pn))
		history.Put(sent, pn, []byte{byte(pn)}, deadline, 1)
		if pn != 3 {
			receiver.OnPacket(sent.Add(oneWay), pn, deadline)
		}
	}

	now := receiver.NextTimeout()
	nack, _ := receiver.PollNACK(now, nil)
	fmt.Printf("at %v the receiver NACKs %v\n", now, nack)

	now = now.Add(oneWay)
	for _, pn := range nack {
		history.OnNACK(now, pn)
	}
	buf := make([]byte, 1500)
	orig, n, _, ok := history.PollRetransmit(now, oneWay, buf)
	fmt.Printf("at %v the sender retransmits %d (%d byte): %v\n", now, orig, n, ok)

	receiver.OnRetransmission(now.Add(oneWay), 6, orig, deadline)
	fmt.Printf("recovered by retransmission: %d, still missing: %d\n",
		receiver.Stats().RecoveredByRTX, receiver.Stats().Missing)
	// Output:
	// at 59ms the receiver NACKs [3]
	// at 109ms the sender retransmits 3 (1 byte): true
	// recovered by retransmission: 1, still missing: 0
}

// A packet whose frame the FEC policy left to a doubled last chance: its
// only retransmission that can still arrive goes twice, so it is lost only
// if both copies are.
func ExampleHistory_MarkLastChance() {
	ms := func(n int) clock.Time { return clock.Time(time.Duration(n) * time.Millisecond) }
	var rtt arq.RTT
	rtt.Add(0, 140*time.Millisecond) // 70 ms each way
	history, _ := arq.NewHistory(arq.HistoryConfig{})
	history.SetRTT(&rtt)

	history.Put(0, 1, []byte("delta frame"), ms(300), 2)
	history.MarkLastChance(1) // fec.Encoder.AddMedia reported it

	// The NACK comes back 150 ms later: a retransmission sent now arrives
	// at 220 ms, and another round could not make 300 ms.
	history.OnNACK(ms(150), 1)
	buf := make([]byte, 1500)
	for {
		orig, n, _, ok := history.PollRetransmit(ms(150), 70*time.Millisecond, buf)
		if !ok {
			break
		}
		fmt.Printf("retransmit %d: %q\n", orig, buf[:n])
	}
	fmt.Println("second copies:", history.Stats().LastChanceDuplicates)
	// Output:
	// retransmit 1: "delta frame"
	// retransmit 1: "delta frame"
	// second copies: 1
}

// The first packets of a connection are lost: with Expect the receiver
// knows packet numbers start at 0 and NACKs them once packet 2 arrives.
func ExampleReceiver_Expect() {
	var rtt arq.RTT
	rtt.Add(0, 100*time.Millisecond)
	receiver, _ := arq.NewReceiver(arq.ReceiverConfig{Repeats: -1})
	receiver.SetRTT(&rtt)
	receiver.Expect(0, 0)

	deadline := clock.Time(300 * time.Millisecond)
	receiver.OnPacket(clock.Time(50*time.Millisecond), 2, deadline)
	now := receiver.NextTimeout()
	nack, _ := receiver.PollNACK(now, nil)
	fmt.Printf("at %v the receiver NACKs %v\n", now, nack)
	// Output:
	// at 55ms the receiver NACKs [0 1]
}
