// Package ring is a growable FIFO queue over a slice: push at the back, pop
// at the front, index in between, with no allocation once it has grown to
// its working size. Bounds are the caller's: it checks Len before Push.
package ring
