// Command spillway runs Spillway from the command line: the benchmark
// suite in the simulator, a synthetic media stream between two hosts over
// real UDP, and netem's UDP proxy, which impairs any UDP program.
//
// # Usage
//
//	spillway <command> [flags]
//	spillway help [command]
//
// Each command takes its own flags (the standard flag package: -flag value
// or -flag=value). A bad command line prints the error and the usage to
// stderr and exits with status 2; a runtime failure (the socket, the
// session, a file) exits with status 1; success, an interrupted run that
// printed its summary, and -h exit with status 0.
//
// # spillway bench [-json FILE] [-seed N] [-scenario REGEX] [-file FILE] [-list] [-pcap DIR] [-trace FILE]
//
// Runs scenarios in the simulator (package bench; virtual time, so a minute
// of media takes milliseconds) in order and prints one table row per
// scenario to stdout; one progress line per finished scenario goes to
// stderr.
//
//	-scenario REGEX  run the scenarios whose names match (default: the
//	                 default matrix, the 12 rows rtc-rtt{40,100,200}-loss{0,2,5,10})
//	-seed N          the simulation seed (default 1)
//	-json FILE       also write {"results": [...]}, one object per row
//	                 (bench.Report, indented)
//	-file FILE       run the scenarios of a scenario file instead of the
//	                 built-in ones (repeatable, or comma-separated: the
//	                 files' scenarios in order; -scenario still filters
//	                 them, and without it they all run)
//	-list            list the scenarios matching -scenario (all without it)
//	                 with their main parameters, * marking the default
//	                 matrix, and exit (with -file, the files' scenarios)
//	-pcap DIR        write what each row's links deliver to
//	                 DIR/<scenario>-fwd.pcap (sender to receiver) and
//	                 DIR/<scenario>-rev.pcap, stamped with virtual times
//	                 (the Unix epoch + simulated time; see netem/pcap)
//	-trace FILE      write, per row, a line for each sender event (frame
//	                 dropped and why, key-frame request, target rate) and
//	                 for each frame late or never complete, at its time in
//	                 seconds of media
//
// A scenario file is JSON or YAML (by its extension: .yaml or .yml, else
// JSON), one scenario object or {"scenarios": [...]}, read strictly by
// bench.LoadScenarioFile: an unknown field or an out-of-range value fails
// the run (exit status 1) with an error naming the field. A scenario:
//
//	name: step-down          # required, unique
//	profile: rtc             # rtc (default) or live
//	media: 30s               # media offered (default 60s)
//	forward:                 # a netem.LinkConfig, by its JSON names
//	  delay: 50ms
//	  rate: 4mbit
//	  queue_delay: 300ms
//	  overhead: 28
//	  ge: {p: 0.0123, r: 0.333}
//	reverse: {delay: 50ms}   # default: the same as forward
//	loss_stop: 20s           # random loss off from then on
//	schedule:                # link changes, in time order
//	  - at: 10s
//	    forward: {rate: 1mbit}   # only the fields named change
//	  - at: 20s
//	    forward: {rate: 4mbit}
//
// Further fields: rtt and loss (for the report; by default the two delays
// and the forward loss), and traffic (bench.Traffic; fields left out keep
// bench.DefaultTraffic's).
//
// For a seed, the JSON file is byte-identical from run to run apart from
// the wall-clock fields sim_speed and wall_s. Its fields are DESIGN §9's:
// scenario, profile, rtt_ms, loss, latency_budget_ms, media_s, frames_sent,
// on_time_ratio, latency_ms {p50, p95, p99, max} (null where the percentile
// falls on a frame that never completed), goodput_bps, wire_overhead,
// wire_overhead_ip, sender_dropped, streams {audio, video}, media_bytes,
// fec_bytes, rtx_bytes, feedback_bytes, media_packets, lost_packets,
// recovered_fec, retransmissions, rtx_per_loss, rtx_sent_too_late,
// rtx_arrived_late, residual_loss, fec_overhead_1s, sim_speed, wall_s;
// beyond them, fec_packets (repair packets sent, beside media_packets) and
// the further fields package bench documents (playout, phases, flows,
// pacer and controller figures, baselines, per row).
//
// # spillway push -to ADDR -duration D [-seed N] [-profile rtc|live] [-latency D]
//
// Dials a player and publishes an audio track (KindAudio, PriorityHigh) and
// a video track (KindVideo, PriorityMedium), then sends the bench's
// synthetic stream (bench.DefaultTraffic: 50 audio frames/s of 80-160
// bytes, 30 fps video at 1.5 Mbit/s with a key frame every 2 s) in real
// time: each frame is written at media start + its offset, with that time
// as its capture time even when the write is late. Like an encoder, the
// video source makes a key frame when the track asks for one (the peer's
// PLI, or a reference frame the sender dropped) and follows the track's
// target bitrate (at most 1.5 Mbit/s). -seed seeds the frame sizes
// (default 1). -profile (default rtc) and -latency (default the
// profile's: 300 ms, or 3 s for live) set the transport's Config, as do
// these, push and play alike (each defaults to transport.Config's zero
// value, the profile's default): -cc gcc|gcc-02|fixed, -start-bitrate,
// -min-bitrate and -max-bitrate (bit/s), -pacer-queue D (the sender's);
// -min-playout D, -max-playout D, -drain-rate F, -catch-up,
// -key-allowance-always and -passthrough (the receiver's).
//
// Every frame's payload is exactly the traffic model's size (padded up to
// 21 bytes if smaller) and verifiable on its own: the magic "SPWY" (4
// bytes), the source (1 byte: 0 audio, 1 video), the sequence number within
// the source (8 bytes, from 0), the payload length (4 bytes: the whole
// frame), filler derived from (source, sequence), and in the last 4 bytes a
// CRC-32C (Castagnoli) of everything before it. Integers are big endian.
//
// A line per second goes to stderr ("t=1s sent=... kbps=... sent_total=...
// dropped_total=... rtt_ms=... backlog_bytes=..."). At the end (the
// duration sent, an interrupt, or the session failing) push closes the
// session in order (queued frames still go while their deadlines allow)
// and prints exactly one line to stdout:
//
//	frames=N bytes=B dropped=K
//
// N counts the frames the transport accepted, B their payload bytes, and K
// the frames it refused as too late to make their deadline
// (transport.ErrFrameDropped).
//
// # spillway play -listen ADDR [-duration D] [-profile rtc|live] [-latency D]
//
// Listens on ADDR, accepts one session (later ones are refused) and reads
// each of its tracks on a goroutine of its own, verifying every frame: the
// CRC-32C, the magic, the length field against the frame's size, the
// filler, the source against the track's kind, and the sequence numbers,
// contiguous per source: a gap is loss, but for the frames the pusher
// said it dropped (FrameInfo.DroppedBefore), which count as dropped.
// A frame's latency is FrameInfo.CompleteTime - FrameInfo.CaptureTime; it
// is on time within the pusher's latency budget, which the handshake
// carries (transport.Session.PeerLatency; -latency and -profile set
// play's own transport, and stand in for it only if the pusher sent none).
// A line per second goes to stderr ("t=1s rx=...
// kbps=... rx_total=... lost_total=... corrupt_total=... late_total=...
// lat_max_ms=...": keys other than the summary's).
//
// Play ends when the session ends (the pusher closed it), -duration after
// the session started, or on an interrupt, and prints exactly one line to
// stdout:
//
//	frames=N on_time=R p99_ms=X corrupt=C lost=L late=... skipped=... dropped=... overflow=... misordered=... p50_ms=... max_ms=... bytes=... freeze_count=... freezes_s=... pause_count=... concealment_events=... concealed_s=...
//
// N counts the frames received (corrupt ones included); R is the intact
// frames complete within the budget over the frames expected (N + L +
// dropped), 4 decimals; X is the 99th percentile (nearest rank) of the latency over the
// frames received, in ms, 1 decimal (0 when none arrived); C the corrupt
// frames; L the sequence numbers never received. The further fields: late
// (intact frames complete after the budget), skipped (the transport's own
// count of frames skipped, FrameInfo.LostBefore, which should equal lost),
// dropped (frames the pusher dropped as too late and said so: drop
// notices, FrameInfo.DroppedBefore), overflow (frames the transport dropped because a reader fell behind),
// misordered (sequence numbers at or below one already seen), p50_ms,
// max_ms, bytes, and the tracks' playout figures summed (W3C's video
// freezeCount, totalFreezesDuration and pauseCount; audio concealment
// events and time: transport.PlayoutStats, as of the last second a track
// was open). Play exits with status 0 whatever the loss (the
// numbers tell) and 1 only when it cannot listen.
//
// # spillway netem -listen ADDR -forward ADDR [-config FILE [-scenario NAME]] [impairments] [-pcap DIR]
//
// A UDP proxy with netem's link model, in real time (netem.Proxy): it
// listens on -listen and forwards what it receives to -forward through the
// forward link, and what the -forward address answers to the client (the
// most recent source address seen on -listen) through the reverse link.
//
// Each LinkConfig field but hold_until (a stall: a -config file's
// schedule has it) has a flag named after its JSON name, which sets
// both directions, and a -rev- form (-rev-delay, -rev-loss, ...) which
// overrides it for the reverse direction (forward address to client):
//
//	-delay D -jitter D -jitter-dist uniform|normal|pareto|paretonormal -reorder
//	-loss P                                Bernoulli loss
//	-ge-p P -ge-r R [-ge-h H] [-ge-k1 K1]  Gilbert-Elliott loss (tc's "loss gemodel")
//	-ge-loss L -ge-burst B                 the same from its loss and mean burst
//	                                       (netem.GEFromLossBurst; not with -ge-p etc.)
//	-four-state p13,p31,p32,p23,p14        4-state Markov loss (tc's "loss state")
//	-duplicate P -corrupt P
//	-reorder-prob P [-reorder-gap N]       tc's "reorder P gap N"
//	-rate R (4M, 500k, ...)                or -trace FILE, a Mahimahi trace (netem.LoadTrace)
//	-queue-bytes N -queue-delay D -overhead N
//	-queue-disc droptail|codel [-codel-target D] [-codel-interval D]
//	-down                                  start with the link down (a blackout)
//
// A direction has one loss model and one capacity source: giving two in one
// set of flags (-loss with -ge-p, -rate with -trace) is an error, while a
// -rev- flag of another model replaces the both-ways one for the reverse
// link. Each direction's config is checked (LinkConfig.Validate) and an
// error names the flag at fault.
//
// -config FILE reads the links from a scenario file, the format bench -file
// reads: the scenario's forward and reverse links, and its schedule applied
// in real time, each step at its time after the proxy started (SetConfig on
// the proxy's links, from a goroutine that ends with the proxy; loss_stop
// is a step too, turning the loss models off). The last step stays in force
// until the proxy stops; a line on stderr reports each step. -scenario NAME
// picks the scenario of a file that has several (an error lists their
// names). Flags given on the command line override the file's fields for
// their direction, in the initial links and in every step of the schedule:
// a loss-model flag replaces the file's loss model (-loss 0 turns it off,
// and loss_stop then leaves that direction alone), -rate replaces a trace
// and -trace a rate. The file's other fields (profile, media, traffic, rtt)
// are the bench's and play no part here. An unreadable or invalid file
// exits with status 1 and an error naming the field.
//
// The proxy runs until SIGINT or SIGTERM, or for -duration, printing a
// stats line to stderr every -stats-interval and a final one to stdout:
//
//	fwd_offered=N fwd_delivered=N fwd_lost=N fwd_dropped=N fwd_codel_dropped=N fwd_overflow=N fwd_blackout=N fwd_duplicated=N fwd_bytes=N rev_... client_changes=N strangers=N no_client=N write_errors=N read_errors=N late_mean_us=N late_max_us=N
//
// Every datagram is accounted for: offered + duplicated = delivered + lost
// + dropped + codel_dropped + overflow + blackout + those still on the
// link.
//
// -pcap DIR writes DIR/netem-fwd.pcap and DIR/netem-rev.pcap, stamped with
// wall-clock times. -seed seeds the links' randomness (default 1).
// -wake-early D sets how long before a datagram is due the proxy stops
// sleeping and spins (default: the measured timer lateness; negative: never
// spin). -measure, instead of proxying, sends 10 Mbit/s of 1,250-byte
// datagrams on loopback through a proxy with a 50 ms delay (or -delay and
// the other impairment flags; not -config) for -duration (default 5s) and
// prints the timer lateness, the delay error's percentiles and the
// datagrams' fates: "sent=N received=N lost=N dropped=N queued=N" (lost by
// the loss model; dropped by the queue, CoDel or a link down; still queued
// when the run stopped).
//
// # Output contract
//
// DESIGN §9 fixes what checks read: bench's row names and JSON fields,
// push's final line starting "frames=N bytes=B", and play's final line
// starting "frames=N on_time=R p99_ms=X corrupt=N"; further key=value
// fields may follow, and the per-second lines (on stderr) use other keys.
// Summary lines are the only lines on stdout for push and play, and for
// netem (its final stats line; -measure prints its figures there).
//
// # Limitations
//
// push sends only the synthetic stream (no media files or pipes yet). play
// keeps every frame's latency for the percentiles: 8 bytes a frame, 2.3 MB
// an hour at 80 frames/s.
package main
