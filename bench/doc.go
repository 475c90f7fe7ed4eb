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
// The pacer rows `collapse-av` and `collapse-av-live` (RTC and Live) drop
// the forward capacity from 4 to 0.5 Mbit/s for 10 s at 15 s of media, with
// 50 ms one way and a 300 ms drop-tail queue. They drive the sender with a
// scripted target (Scenario.Target "scripted": cc.Scripted following the
// capacity 0.5 s late, at 95 % of it) and their video source follows the
// core's TargetRate events and key-frame requests like an encoder. So do
// `rfc8867-5.1` and `rfc8867-5.1-rmax4` (RFC 8867's variable capacity,
// 1.0/2.5/0.6/1.0 Mbit/s, jitter 0-30 ms) until the cc issue's controller
// replaces the script; `pacer-priority` and `pacer-priority-live` offer
// twice the target and ignore it. `collapse` is collapse-av with the
// delay-based controller (Scenario.Target "gcc": cc.GCC, which probes)
// instead of the script, and R_max 4 Mbit/s. Every row reports
// window_p95_latency_ms_max (the largest per-second p95 latency of
// completed frames, the second after a capacity drop left out),
// late_delivered_ratio, pacer_queue_ms_max, pacer_wait_ms (time in the
// pacer queue per class), rtx_behind_frames, rtx_for_dropped,
// receiver_dropped_by_sender and sender_dropped_after_drop_s.
//
// The ground truth comes from the simulator, not from the cores' own
// counters: the runner sees every datagram each host sends and receives and
// knows when every frame was offered.
package bench
