package main

import (
	"os"
	"runtime"
)

// The library runs its goroutines on one processor fewer than Go would
// (never fewer than one), unless the GOMAXPROCS environment variable is
// set when the library is loaded.
//
// Go sizes its scheduler to every CPU it may use, as if its goroutines
// were all the process ran. Here the Python thread does its share of
// every byte and every wakeup, on a CPU the scheduler counts as its own,
// and each goroutine woken makes the runtime wake another thread to look
// for work, which competes with the Python thread. On 2 CPUs one
// processor instead of two cut the CPU time of a round trip by about 30%
// and its context switches by almost half, on every API; one node per
// process moved as many bytes or more, two busy nodes in one process
// about 20% fewer (docs/performance.md, "Go's processors").
func init() {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	runtime.GOMAXPROCS(libraryProcs(runtime.GOMAXPROCS(0)))
}

// libraryProcs is the library's GOMAXPROCS for Go's default of n: one
// processor left to the interpreter.
func libraryProcs(n int) int {
	return max(1, n-1)
}
