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
// core's TargetRate events and key-frame requests like an encoder (the
// foundation's key frame every 2 s, and the cc issue's RFC 8593 model: at
// most 10 % per 100 ms, Laplacian size noise 0.15);
// `pacer-priority` and `pacer-priority-live` offer twice the target and
// ignore it.
//
// The cc issue's rows run its controller (Scenario.Target "gcc": cc.GCC,
// which probes) and RFC 8593 sources (RFC8593Video: a key frame at the
// start and on request, Laplacian size noise 0.15, at most 10 % rate
// change per 100 ms, never under RFC 8867's 150 kbit/s: its stream's
// MinBitrate, below which the sender drops frames) beside the
// foundation's audio: `rfc8867-5.1`,
// `-5.1-rmax4`, `-5.2`, `-5.3` (one flow each way, FlowSpec.Reverse: the
// reverse bottleneck carries the forward flow's feedback; `-5.3-control`
// holds it at 2 Mbit/s, `-5.3-revloss10` adds 10 % loss to it), `-5.4`,
// `-5.5-3.5`/`-4.0`, `-5.6` (CUBIC; and
// `-newreno`, each with a 300 ms queue in RTC and 1000 ms queues in RTC
// (`-q1000`) and Live (`-q1000-live`)), `-5.7` and `-5.8`, as SCENARIOS.md
// gives them (several media flows through one shared bottleneck,
// Scenario.Flows, and TCP cross traffic, Scenario.Cross); `collapse`
// (4 -> 0.5 Mbit/s for 10 s), `app-limited` (the application at 784
// kbit/s for 60 s, then 3 Mbit/s: Scenario.SourceSteps), `random-loss-5`,
// `-10`, `-20` and `jitter-30` (2 Mbit/s, 100 ms one way), with R_max 4
// Mbit/s. Every row reports `phases` (per constant phase of capacity and
// active flows, over its converged part: utilization, queueing delay at
// the bottleneck, loss, the least Jain's index over 1 s and 5 s windows
// (and 20 s ones in phases of 20 s or more), reaction and reach times,
// the convergence time (`converge_s`: SCENARIOS.md's, the summed target's
// 1 s mean within 15 % of the phase's reference for 5 s), targets,
// and in phases of 20 s or more `target_min_max_20s`, the least min/max of
// the transport target over any 20 s window; with two or more forward
// media flows, each one's throughput over the converged window,
// `flow_throughput_bps`, one entry per flow of the row and null for one
// not active, and their largest over the smallest, `throughput_max_min`)
// and `flows` (per media flow: targets, goodput and throughput means, the
// time a joining flow took to its share, the least goodput of a whole
// second, when its sender first said the path's delay alone exceeds
// Latency, core.EventPathDelay, and the least goodput of a second from
// then on, and, in rows made of flows
// (Scenario.Flows), its transport target's cuts per second,
// `target_cuts_1s`), `app_limited_bound_max` in `app-limited`
// (the target against twice the send rate or what probes measured, before
// the application asks for more; a phase whose sources offer more gets a
// `reach_s`), `controller` (flow 0's cc.GCC counters at the end:
// overuse signals, cuts by kind, cuts taken back, targets restored after
// a drain, probes, up-probes the path did not carry and the cuts within
// 2 s of an up-probe), and `reference`: the same row
// run with gcc-02 as written (cc.GCC02, Scenario.Reference), its phases
// and flows beside ours. Scenario.Target "fixed" holds every media flow's
// transport target at StartTarget (cc.Fixed): a sender without congestion
// control, as a baseline; testdata/scenarios/rfc8867-5.7-fixed.yaml runs
// `-5.7` so at four rates. Every row reports
// window_p95_latency_ms_max (the largest per-second p95 latency of
// completed frames, the second after a capacity drop left out),
// late_delivered_ratio, pacer_queue_ms_max, pacer_wait_ms (time in the
// pacer queue per class), rtx_behind_frames, rtx_for_dropped,
// receiver_dropped_by_sender and sender_dropped_after_drop_s.
//
// The jitterbuffer issue's rows: `jb-accumulate-rtc`/`-live` (60 min,
// jitter redrawn every 30 s from 0-100 ms, ten 1 s stalls from netem's
// HoldUntil), `jb-drain-rtc`/`-live` (one stall of 1 s, or 2 s over
// Live's 1 s floor), `e2e-rtc-rtt100-loss5` (30 ms jitter),
// `e2e-rtc-rtt200-ge10b3` and `e2e-live-rtt300-loss20`, 10 min each. The
// receivers play with the profile's bounds and drain rate (RTC 0-0.8 s,
// 10 %; Live 1-3 s, 3 %). Every row reports playout_latency_ms
// (capture to the receiver's release, p50/p95/p99/max, and _mean),
// latency_slope_ms_per_min, freeze_count and total_freezes_duration_s
// (W3C's rule on the video's releases), pause_count, av_offset_ms_max and
// played_on_time_ratio; drift_ppm_30s and drift_ppm_end give the
// receiver's clock-drift estimate; rows of 10 min or more add
// excess_ms_first5 and excess_ms_last5 (the playout offset's mean excess
// over the one wanted, in the media's first and last 5 min). Rows where
// loss stops (`fec-lossstop`, `fec-lossstop-ge10b3`) add
// allowance_ms_at_loss_stop and allowance_ms_10s_after_loss_stop, the
// receiver's recovery allowance then and 10 s later, and
// allowance_ms_during_loss (its percentiles over the seconds before).
// Every row with a lost original adds recovery_ms: the time loss added to
// the frames that completed anyway (completion less when their originals
// would have arrived without loss; percentiles). `jb-drift-100ppm`/`-1000ppm` (and
// `-neg100ppm`/`-neg1000ppm`) run 60 min with the receiver's clock fast (or
// slow) by that much (Scenario.ReceiverClock, netem.Clock), jitter 0-30 ms
// on the forward path only, and add drift_settled_s. `jb-accumulate-rtc`, its audio-only twin
// `jb-accumulate-rtc-audio` (the playout quantile 0.99: about 0.6 % late),
// the same with the quantile 0.999 (`jb-accumulate-rtc-audio-q999`, about
// 0.1 %; Scenario.PlayoutQuantile) and `jb-stationary-30ms` (RTC, 10 min of
// stationary 0-30 ms jitter) add `baselines`: our mean added delay and
// late ratio beside a fixed offset with as many late frames, a NetEq-style
// target (0.95 quantile of each 500 ms's largest relative delay, 20 ms
// buckets, forgetting 0.983 an interval) and the offline optimum (dynamic
// programming over offsets changing no faster than the drain rate, held
// per 100 ms on a 1 ms grid, within MaxPlayoutDelay, with at most as many
// late frames; `optimum_bound_ms` is a lower bound on it, the Lagrangian
// hull at our late count), and `period_added_ms`: a constant offset per
// period of the schedule's forward jitter, known in advance, with as many
// late frames placed where they save most (the per-period
// quantile, with foresight a causal buffer lacks).
//
// The ground truth comes from the simulator, not from the cores' own
// counters: the runner sees every datagram each host sends and receives and
// knows when every frame was offered.
package bench
