package main

import (
	"os"
	"runtime"
	"strconv"
)

// The library runs its goroutines on one processor fewer than Go would
// (never fewer than one) unless told otherwise when it is loaded:
//
//   - GOMAXPROCS, a positive number, is the Go runtime's own setting and
//     decides, as in any Go program;
//   - TAILNET_GOMAXPROCS, a positive number, sets it for the library
//     alone (not for Go programs the process starts), and "go" keeps Go's
//     default and Go's updates of it when a container's CPU limit changes.
//
// Go sizes its scheduler to every CPU it may use, as if its goroutines
// were all the process ran. Here the Python thread does its share of
// every byte and every wakeup, on a CPU the scheduler counts as its own,
// and each goroutine woken makes the runtime wake another thread to look
// for work, which competes with the Python thread. On a 2-CPU machine
// one processor instead of two cut a round trip's time by 20-30% on
// every API (its CPU time and context switches, measured on sync, by
// about 30% and 45%); two busy nodes in one process moved about 20%
// fewer bytes, and sync UDP up to 12% fewer datagrams
// (docs/performance.md, "Go's processors").
func init() {
	if _, ok := positive(os.Getenv("GOMAXPROCS")); ok {
		return // the runtime took it
	}
	mine := os.Getenv(gomaxprocsEnv)
	if mine == "go" {
		return
	}
	current := runtime.GOMAXPROCS(0) // Go's default
	n, ok := positive(mine)
	if !ok {
		n = libraryProcs(current)
	}
	if n != current { // setting it, even unchanged, stops Go's updates
		runtime.GOMAXPROCS(n)
	}
}

// gomaxprocsEnv is the library's own GOMAXPROCS setting (see init). Python
// refuses other values before it loads the library (_binding/library.py).
const gomaxprocsEnv = "TAILNET_GOMAXPROCS"

// libraryProcs is the library's GOMAXPROCS for Go's default of n: one
// processor left to the interpreter.
func libraryProcs(n int) int {
	return max(1, n-1)
}

// positive reads a positive whole number as the Go runtime reads
// GOMAXPROCS; anything else is not a setting.
func positive(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int(n), err == nil && n > 0
}
