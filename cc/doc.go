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
// # Version 1
//
// This version has no real controller yet: Fixed returns a constant target.
// The session core gives it 2.5 x the nominal bitrate of the streams it
// sends (libwebrtc's pacing factor, DESIGN §2), capped at the configured
// maximum, so a key frame of 8 x a delta frame does not take a quarter
// second to leave. Pacer is a token bucket at that rate with bursts of at
// most 5 ms.
//
// Like every core package, cc never reads a clock: every call takes `now`.
// Nothing here is safe for concurrent use; one goroutine owns a session.
package cc
