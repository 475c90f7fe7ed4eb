//go:build race

package fec

// raceEnabled shortens the long statistical runs under the race detector,
// which slows this single-goroutine code about tenfold and finds nothing
// the short runs do not; the full runs are the ordinary `go test`.
const raceEnabled = true
