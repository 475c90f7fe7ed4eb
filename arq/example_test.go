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
