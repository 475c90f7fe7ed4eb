// Package netem emulates networks for Spillway's tests and bench: links
// between endpoints, one direction at a time, with delay, jitter (uniform,
// normal, pareto, paretonormal), loss (Bernoulli, Gilbert-Elliott, 4-state),
// duplication, corruption, reordering, a rate limit or a capacity trace
// behind a bounded drop-tail or CoDel queue, blackouts, and shared
// bottlenecks.
//
// # Faces
//
// Three faces run one link model and one event engine:
//
//   - Simulator: a discrete-event simulator on virtual time. It is the clock
//     of the sans-I/O cores it drives (anything implementing Node): it
//     delivers datagrams with HandleDatagram, fires timers with
//     HandleTimeout, and after every call drains PollTransmit and reads
//     NextTimeout. A minute of a call runs in well under a second, and in
//     steady state moving a datagram allocates nothing. Only the Simulator
//     has shared bottlenecks, cross traffic and ApplySchedule.
//   - Network: in-memory net.PacketConn endpoints (PacketConn) running in
//     real time with timers. Inside a testing/synctest bubble, time is the
//     bubble's fake clock, so code that owns goroutines and sockets (the UDP
//     driver, quic-go) can be tested on virtual time with exact delays.
//   - Proxy: a UDP proxy that impairs a real UDP program in real time. It
//     listens on one address, forwards to a target through the Forward
//     link and back to its client (the latest source address seen) through
//     the Reverse one, allocating nothing per datagram. Go's timers wake up
//     to a millisecond late, so it wakes ProxyConfig.WakeEarly before a
//     datagram is due and spins for the rest; ProxyStats.LateSum and LateMax
//     show the error left, and MeasureTimerLateness measures the timers.
//     The spillway command's "netem" subcommand is this face, with a flag
//     for each LinkConfig field and -config to read the links and their
//     schedule from a bench scenario file.
//
// Every face exposes its links (Simulator.Link, Network.Link,
// Proxy.Forward and Proxy.Reverse), whose Config, SetConfig and Stats work
// while it runs.
//
// # Link model
//
// Each direction of a link has its own LinkConfig. A datagram entering a
// link is, in order:
//
//  1. lost if the link is Down (a blackout, counted apart);
//  2. lost by the link's loss model: Bernoulli (Loss), Gilbert-Elliott (GE,
//     tc-netem's "gemodel" p, r, 1-h, 1-k) or the 4-state Markov model
//     (FourState, tc-netem's "state" p13, p31, p32, p23, p14);
//  3. duplicated with probability Duplicate (the copy follows it);
//  4. queued in a FIFO bounded by QueueBytes/QueueDelay (drop-tail on
//     arrival; with QueueDisc CoDel, also RFC 8289's drops at the head),
//     and serialised at Rate bit/s counting len+Overhead bytes, or through
//     the delivery opportunities of a Trace (Mahimahi's format; capacity
//     that changes over time);
//  5. corrupted (one random bit flipped) with probability Corrupt;
//  6. delivered at once with probability ReorderProb (tc-netem's "reorder
//     P gap N"), or else delayed by Delay plus Jitter times a sample of
//     JitterDist (uniform, normal, pareto, paretonormal: tc-netem's tables as
//     continuous functions, see JitterDist for their moments and
//     percentiles), truncated at 0, and, unless Reorder is set, never
//     delivered before its predecessor;
//  7. delivered, after the link's capture hook (Simulator.SetCapture) has
//     seen it, or handed to a shared Bottleneck (Link.SetVia), where steps
//     1-6 run again under the bottleneck's own LinkConfig.
//
// LinkStats counts every fate. Configs change over time with
// Link.SetConfig, by hand in a Schedule callback or as data with
// Simulator.ApplySchedule (capacity steps, blackouts): datagrams already
// queued stay and drain when a capacity drop shrinks the queue bound; only
// new arrivals see it.
//
// The steps are scheduled events: a packet event is an arrival at the
// queue, a departure after serialisation, or a delivery (DESIGN section 6),
// and SimStats.PacketEvents counts them. A datagram sent to an address with
// no link from its sender is dropped and counted as unroutable; one longer
// than MaxDatagramSize (65535 bytes) is dropped and counted; zero-length
// datagrams are carried like any other.
//
// # Shared bottlenecks
//
// A Bottleneck (Simulator.AddBottleneck) is a queue several link
// directions share, a router's output port: Link.SetVia sends a link's
// datagrams through it after the link's own delay, which then plays the
// access delay, so flows with different RTTs meet in one queue (drop-tail
// or CoDel, Rate or Trace) with its own LinkConfig and LinkStats. A queue
// hook (Bottleneck.SetQueueHook, Simulator.SetQueueHook for a link) is told
// of each datagram leaving the queue, with its sojourn, or dropped by it:
// per-packet queueing delay and per-flow throughput at the shared queue.
//
// # Schedules and traces
//
// A Trace is a capacity that changes over time, in Mahimahi's format
// (ParseTrace, LoadTrace, NewTrace; the files in testdata/traces are
// examples): LinkConfig.Trace replaces Rate, and the link serialises through
// the trace's delivery opportunities, anchored at the face's time 0. A
// schedule changes a config at given times: ScheduleStep lists for
// Simulator.ApplySchedule (on a Link or a Bottleneck), Blackout for a Down
// period, or SetConfig from a timer on the real-time faces (what
// "spillway netem -config" does with a scenario's schedule).
//
// # Cross traffic
//
// Cross traffic is a set of Nodes that load a bottleneck the way other
// applications would, sans-I/O like the cores (cross.go, cross_tcp.go):
//
//   - CBRSender and CBRSink: constant-bitrate UDP with a start, a stop and
//     on/off periods; the sink counts loss, reordering and delay.
//   - TCPSender and TCPReceiver (NewTCPFlow): a TCP-like flow with NewReno
//     loss recovery and Reno or CUBIC congestion avoidance (TCPVariant),
//     RFC 6298 timers and delayed ACKs, sending bulk data or files separated
//     by idle times; TCPStats and Goodput give its window, RTT estimate,
//     goodput and file completion times.
//   - FlowMux: several flows behind one address, so that they cross the same
//     links and share one queue.
//
// Every cross-traffic datagram carries its flow number and an Internet
// checksum, so a corrupted one is discarded as UDP and TCP would.
//
// # Captures
//
// Each face has a capture hook, a CaptureFunc that sees every datagram a
// link delivers, with its time and endpoints: Simulator.SetCapture,
// Network.SetCapture, ProxyConfig.CaptureForward and CaptureReverse. Package
// netem/pcap writes them as pcap files (raw IPv4/IPv6 with UDP headers;
// virtual times from the Simulator, wall-clock times from the real-time
// faces) and decodes Spillway's packets in them with gopacket; "spillway
// bench -pcap" and "spillway netem -pcap" use it.
//
// # Determinism
//
// Events run in order of (time, scheduling order), and nothing iterates a
// map where order matters. All randomness comes from math/rand/v2 PCG
// streams derived from the seed and the link's two endpoints (a
// bottleneck's from its creation order), one stream per feature and
// direction: loss (every loss model), jitter, duplication, corruption and
// reordering. So the same seed and the same node behaviour give the
// identical event sequence, bit for bit; adding a link does not change the
// draws of another; and turning a feature on does not move the draws of the
// others (a config using only version 1's features runs exactly as it did).
// A Network is as deterministic as the goroutines that use it: synctest
// makes time deterministic, not goroutine scheduling.
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
// The models have no correlation parameters (tc-netem's "delay 100ms 10ms
// 25%" style), no slot or cell-size options, and the jitter tables are
// evaluated as continuous functions rather than tc's 4,096 entries.
// Uniform jitter is [Delay, Delay+Jitter], not tc-netem's Delay+-Jitter.
// CoDel controls flows that respond to drops; against an unresponsive
// overload (a constant bit rate above capacity) the sojourn stays well
// above its target (measured: about 25 ms at 1.1 times the capacity, 160 ms
// at 1.25 with the default 300 ms bound). A rate change applies to
// datagrams whose serialisation starts afterwards. The TCP-like cross
// traffic has no SACK, pacing, HyStart or ECN (see TCPSender). Bottlenecks,
// cross traffic and ApplySchedule are the Simulator's only: a Network's
// links cannot go through a Bottleneck, and on a Network or a Proxy a
// schedule is SetConfig called at the right time. The Network's timers
// wake as late as the Go runtime wakes them (about a millisecond in real
// time; exactly on time in a synctest bubble); the Proxy spins to hide
// that, at a CPU cost. A PacketConn has no batch I/O; the Proxy reads and
// writes one datagram per system call and serves one client at a time.
//
// # Clocks
//
// A Clock skews what one endpoint reads (PPM, Offset): Skewed wraps a
// Node so that every time it sees is its own clock's and its timers are
// mapped back to virtual time; the simulator itself runs virtual time.
package netem
