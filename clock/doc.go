// Package clock holds the one notion of time the sans-I/O cores use: a
// monotonic instant in nanoseconds, passed in by a driver as `now`.
//
// Only drivers read a real clock (the UDP driver reads the wall clock once
// per loop turn; the simulator is its own clock). Cores never do, which is
// what lets the same code run on real time and on virtual time,
// deterministically.
package clock
