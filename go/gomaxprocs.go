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
// were all the process ran. Here they are not: the process's Python
// thread does its share of every byte and every wakeup, on a CPU the Go
// scheduler counts as its own. With a processor for each CPU, each
// goroutine woken (a copier, WireGuard's pipeline, the netstack) wakes a
// second thread to look for more work, which then competes with the
// Python thread for the CPU. On 2 CPUs (docs/performance.md, "Go's
// processors"), one processor cut a 1-byte round trip by about 30% and
// its CPU time by as much, on every API, and did not lower one node's
// throughput.
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
