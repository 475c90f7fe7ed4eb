// Package jitterbuffer holds complete frames until their playout time and
// releases them in order, so the application renders at a steady pace
// whatever the network's jitter.
//
// Terms (DESIGN §4): a frame's playout time is its capture time on the
// receiver's clock plus the playout delay. Frames are released in frame-id
// order, each at its playout time; frames that never arrived are skipped and
// counted on the next frame released (LostBefore).
//
// Version 1 is a fixed-delay buffer: the delay is set at construction and
// never adapts. The adaptive version (target from measured jitter and
// recovery time, gradual latency correction, drift compensation) keeps
// this type's methods.
//
// Like every core package, jitterbuffer never reads a clock: every call
// takes `now`. Nothing here is safe for concurrent use.
package jitterbuffer
