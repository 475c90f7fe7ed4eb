// Package netem emulates networks for Spillway's tests and bench: links
// between endpoints, one direction at a time, with delay, jitter, loss and a
// rate limit behind a bounded queue.
//
// # Faces
//
// Version 1 has two faces over one link model:
//
//   - Simulator: a discrete-event simulator on virtual time. It is the clock
//     of the sans-I/O cores it drives (anything implementing Node): it
//     delivers datagrams with HandleDatagram, fires timers with
//     HandleTimeout, and after every call drains PollTransmit and reads
//     NextTimeout. A minute of a call runs in well under a second, and in
//     steady state moving a datagram allocates nothing.
//   - Network: in-memory net.PacketConn endpoints (PacketConn) running in
//     real time with timers. Inside a testing/synctest bubble, time is the
//     bubble's fake clock, so code that owns goroutines and sockets (the UDP
//     driver, quic-go) can be tested on virtual time with exact delays.
//
// # Link model
//
// Each direction of a link has its own LinkConfig. A datagram entering a
// link is, in order:
//
//  1. lost with probability Loss (Bernoulli);
//  2. queued in a drop-tail queue bounded by QueueBytes/QueueDelay, and
//     serialised at Rate bit/s counting len+Overhead bytes: it departs at
//     max(arrival, previous departure) + (len+Overhead)*8/Rate;
//  3. delayed by Delay plus a jitter sample (Uniform on [0, Jitter], or
//     Normal with standard deviation Jitter), and, unless Reorder is set,
//     never delivered before its predecessor;
//  4. delivered, after the link's capture hook (Simulator.SetCapture) has
//     seen it.
//
// The steps are scheduled events: a packet event is an arrival at the
// queue, a departure after serialisation, or a delivery (DESIGN section 6),
// and SimStats.PacketEvents counts them. A datagram sent to an address with
// no link from its sender is dropped and counted as unroutable; one longer
// than MaxDatagramSize (65535 bytes) is dropped and counted; zero-length
// datagrams are carried like any other.
//
// # Determinism
//
// Events run in order of (time, scheduling order), and nothing iterates a
// map where order matters. All randomness comes from math/rand/v2 PCG
// streams derived from the seed and the link's two endpoints (one for loss,
// one for jitter, per direction), so the same seed and the same node
// behaviour give the identical event sequence, bit for bit, and adding a link
// does not change the draws of another. A Network is as deterministic as the
// goroutines that use it: synctest makes time deterministic, not goroutine
// scheduling.
//
// # Memory
//
// Datagrams in flight live in pooled buffers of power-of-two size classes
// (256 B to 64 KiB); the event heap is a slice of structs. Every queue is
// bounded: a link's queue by its config, a link as a whole by
// MaxInFlightPackets and MaxInFlightBytes, a PacketConn's receive queue by
// RecvQueueLen and its read buffer. What does not fit is dropped and
// counted, never blocked on.
//
// # Limitations
//
// Version 1 has no Gilbert-Elliott or 4-state loss, duplication,
// corruption, CoDel, capacity schedules or traces (a Schedule callback can
// change a config by hand), cross traffic, per-endpoint clock skew, pcap
// writer (the capture hook is there for it) or UDP proxy face. A rate change
// applies to datagrams that enter the queue afterwards: those already queued
// keep the departure times computed when they arrived. The Network's timers
// wake as late as the Go runtime wakes them (about a millisecond in real
// time; exactly on time in a synctest bubble), and a PacketConn has no
// batch I/O.
package netem
