package allocs

import (
	"runtime"
	"runtime/debug"
)

// Mallocs runs f attempts times (at least once) and returns the fewest heap
// allocations one run made, each run on one P with the collector off.
func Mallocs(attempts int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	best := ^uint64(0)
	for range max(attempts, 1) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		best = min(best, after.Mallocs-before.Mallocs)
		if best == 0 {
			break
		}
	}
	return best
}
