// Package cc is congestion control for Spillway: the estimator that turns
// feedback into a target rate, and the pacer that spreads packets at that
// rate.
//
// # The plug point
//
// Estimator is the one interface every controller implements. It is fed a
// neutral Feedback (per packet: packet number, size, send time, arrival time
// or lost), the round-trip time and whether the sender was application
// limited, and returns the transport target in bit/s on the wire (all
// overhead included). The session core calls it; nothing else does.
//
// # Estimators so far
//
// Fixed returns a constant target (the session core's default: the
// nominal bitrate of the streams it sends); Scripted follows a schedule
// (the bench drives the pacer with the path's capacity, 0.5 s late); GCC
// is the delay-based controller (gcc-02's packet groups, a trendline, the
// adaptive-threshold overuse detector and the AIMD rate controller; a
// jitter-proof standing-queue estimate, loss counted only as congestion
// when the delay says so and a cut has not answered it yet, a return to
// the rate the path carried once the queue a cut found has drained, a
// competitive mode against loss-based flows, and probes: at the start,
// gently while the target is used, exponentially while the path carries
// them, and after a collapse). The session core
// sends a probe cluster at its rate (Pacer.SetProbe), padded with copies
// of recent packets, and tells the estimator whether the sender is
// application limited (ALR, libwebrtc's detector: under 65 % of the
// target for a while). GCC02 is draft-ietf-rmcat-gcc-02 as written
// (Kalman filter, no probes), the reference the bench runs beside GCC,
// with two choices its comments give: K, the groups f_max looks back
// over, which §5.3 leaves open (60), and the loss-based As_hat held within
// 1.5 x A_hat, which §6 does not have.
// The bench's cc rows run GCC.
//
// # The pacer
//
// Pacer is a token bucket at the pacing rate (the target x the pacing
// factor, default 2.5) with bursts of at most 5 ms, and an account of the
// bytes queued in each priority Class (audio, retransmissions, key frames,
// other video, data). The session core keeps the frames; the pacer tells it
// how long the queue takes to drain (QueueDelay, Ahead), whether more bytes
// fit the queue's limit in time (Fits), and stretches its drain rate for
// bytes that must not be dropped for the limit alone (Stretch: a key frame
// whose deadline is reachable, audio). PredictArrival is the proactive
// drop's prediction: the queue ahead at the drain rate, the frame's own
// bytes at the target, and the one-way delay.
//
// Why 2.5: a key frame of 8 x a delta frame at a key-frame interval of 2 s
// and 30 fps holds 8/67 of the interval's bytes, 239 ms at the media rate.
// At a pacing factor f it takes 239/f ms to leave, and it must fit the RTC
// queue limit of 150 ms: f >= 1.6. At 2.5 it takes 96 ms, leaving a third
// of the limit for the deltas and audio that arrive meanwhile, and matches
// libwebrtc's factor.
//
// Like every core package, cc never reads a clock: every call takes `now`.
// Nothing here is safe for concurrent use; one goroutine owns a session.
package cc
