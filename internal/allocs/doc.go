// Package allocs counts heap allocations for the tests that prove a hot
// path allocates nothing (STYLE.md: the cores' per-packet paths at 0 B/op
// and 0 allocs/op in steady state).
//
// runtime.MemStats counts every goroutine's allocations. Under -race, on a
// loaded machine, the runtime's own background work (a GC worker, the
// scavenger, a parallel test) allocates now and then while a measured loop
// runs, and a naive before/after count fails a test whose code allocated
// nothing. Mallocs measures as testing.AllocsPerRun does, on one P with the
// collector off, and keeps the least of a few attempts: an allocation on
// the measured path shows in every attempt, a stray one in few.
package allocs
