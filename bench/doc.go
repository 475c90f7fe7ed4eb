// Package bench is Spillway's bench suite: scenarios as data (a path per
// direction, traffic, a profile, a duration), a runner that plays each one
// in the netem simulator with the same session core the UDP driver uses,
// and the metrics DESIGN §9 and SCENARIOS.md define (on-time ratio, frame
// latency percentiles over every frame offered, goodput, wire overhead,
// loss, recovery and retransmission counts).
//
// `spillway bench` runs the default matrix (Select("")): RTC, audio plus
// 1.5 Mbit/s video for 60 s, RTT 40/100/200 ms times random loss 0/2/5/10 %
// behind a 4 Mbit/s bottleneck with a 300 ms drop-tail queue. A run is
// deterministic for a seed: only the wall-clock fields (sim_speed, wall_s)
// differ between runs.
//
// The ground truth comes from the simulator, not from the cores' own
// counters: the runner sees every datagram each host sends and receives and
// knows when every frame was offered.
package bench
