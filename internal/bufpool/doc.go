// Package bufpool is a size-classed free list of byte slices for one owner
// goroutine (no locks): the session core takes frame buffers from it and
// gives them back, so steady-state traffic allocates nothing.
//
// Classes are powers of two from 256 B to 8 MiB. Each class keeps at most
// MaxFree buffers and the pool at most MaxFreeBytes in all; a buffer given
// back beyond either bound is left to the garbage collector, so an idle pool
// never holds more than MaxFreeBytes.
package bufpool
