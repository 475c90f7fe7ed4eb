// Command spillway runs Spillway from the command line: the benchmark
// suite in the simulator, and a synthetic media stream between two hosts
// over real UDP.
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
// # spillway bench [-json FILE] [-seed N] [-scenario REGEX] [-list]
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
//	-list            list the scenarios matching -scenario (all without it)
//	                 with their main parameters, * marking the default
//	                 matrix, and exit
//
// For a seed, the JSON file is byte-identical from run to run apart from
// the wall-clock fields sim_speed and wall_s. Its fields are DESIGN §9's:
// scenario, profile, rtt_ms, loss, latency_budget_ms, media_s, frames_sent,
// on_time_ratio, latency_ms {p50, p95, p99, max} (null where the percentile
// falls on a frame that never completed), goodput_bps, wire_overhead,
// wire_overhead_ip, sender_dropped, streams {audio, video}, media_bytes,
// fec_bytes, rtx_bytes, feedback_bytes, media_packets, lost_packets,
// recovered_fec, retransmissions, rtx_per_loss, rtx_sent_too_late,
// rtx_arrived_late, residual_loss, fec_overhead_1s, sim_speed, wall_s.
//
// # spillway push -to ADDR -duration D [-seed N] [-profile rtc|live] [-latency D]
//
// Dials a player and publishes an audio track (KindAudio, PriorityHigh) and
// a video track (KindVideo, PriorityMedium), then sends the bench's
// synthetic stream (bench.DefaultTraffic: 50 audio frames/s of 80-160
// bytes, 30 fps video at 1.5 Mbit/s with a key frame every 2 s) in real
// time: each frame is written at media start + its offset, with that time
// as its capture time even when the write is late. -seed seeds the frame
// sizes (default 1). -profile (default rtc) and -latency (default the
// profile's: 300 ms, or 3 s for live) set the transport's Config.
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
// contiguous per source: a gap is loss (frames the pusher dropped included).
// A frame's latency is FrameInfo.CompleteTime - FrameInfo.CaptureTime; it
// is on time within the latency budget (-latency, or the -profile's; give
// the pusher's values). A line per second goes to stderr ("t=1s rx=...
// kbps=... rx_total=... lost_total=... corrupt_total=... late_total=...
// lat_max_ms=...": keys other than the summary's).
//
// Play ends when the session ends (the pusher closed it), -duration after
// the session started, or on an interrupt, and prints exactly one line to
// stdout:
//
//	frames=N on_time=R p99_ms=X corrupt=C lost=L late=... skipped=... overflow=... misordered=... p50_ms=... max_ms=... bytes=...
//
// N counts the frames received (corrupt ones included); R is the intact
// frames complete within the budget over the frames expected (N + L), 4
// decimals; X is the 99th percentile (nearest rank) of the latency over the
// frames received, in ms, 1 decimal (0 when none arrived); C the corrupt
// frames; L the sequence numbers never received. The further fields: late
// (intact frames complete after the budget), skipped (the transport's own
// count of frames skipped, FrameInfo.LostBefore, which should equal lost),
// overflow (frames the transport dropped because a reader fell behind),
// misordered (sequence numbers at or below one already seen), p50_ms,
// max_ms, and bytes. Play exits with status 0 whatever the loss (the
// numbers tell) and 1 only when it cannot listen.
//
// # Output contract
//
// DESIGN §9 fixes what checks read: bench's row names and JSON fields,
// push's final line starting "frames=N bytes=B", and play's final line
// starting "frames=N on_time=R p99_ms=X corrupt=N"; further key=value
// fields may follow, and the per-second lines (on stderr) use other keys.
// Summary lines are the only lines on stdout for push and play.
//
// # Limitations
//
// push sends only the synthetic stream (no media files or pipes yet). play
// keeps every frame's latency for the percentiles: 8 bytes a frame, 2.3 MB
// an hour at 80 frames/s.
package main
