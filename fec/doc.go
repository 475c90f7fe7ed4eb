// Package fec is Spillway's forward error correction: Reed-Solomon repair
// packets (github.com/klauspost/reedsolomon) over blocks of media packets,
// with protection chosen from measured loss, RTT and deadline slack.
//
// Version 1 sends no repair packets. Encoder and Decoder are already where
// the session core calls them (every media packet as it leaves; every media
// and repair packet as it arrives), so the adaptive version fills their
// insides and adds what the core polls for (repair packets to send, media
// packets recovered, a block's time bound). A version-1 Decoder counts the
// repair packets it receives and discards them.
//
// Like every core package, fec never reads a clock: every call takes `now`.
// Nothing here is safe for concurrent use.
package fec
