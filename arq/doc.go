// Package arq is Spillway's selective, deadline-aware retransmission.
//
// Version 1 keeps the receiver's packet-number window (duplicate detection
// and loss accounting) and the round-trip-time estimator every later stage
// reads, and retransmits nothing: a lost packet is lost. The later version
// adds NACK generation on the receiver and a bounded send history with
// deadline checks on the sender, behind the same types.
//
// Like every core package, arq never reads a clock: every call takes `now`.
// Nothing here is safe for concurrent use.
package arq
