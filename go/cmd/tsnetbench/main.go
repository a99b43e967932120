// Command tsnetbench runs tailnet's benchmark workloads on Go's own tsnet,
// or on plain loopback TCP/UDP (the machine's ceiling), so that every
// figure the Python benchmarks measure has a Go figure from the same run.
// The harness in benchmarks/ starts it; the workloads, and their Python
// twins, are specified in benchmarks/README.md.
//
//	tsnetbench server -system tsnet|loopback
//	tsnetbench client -system tsnet|loopback -host IP -workloads ... [sizes]
//	tsnetbench memory -system tsnet|loopback -host IP -conns N
//	tsnetbench idle   (one idle node, for benchmarks/memory.py)
//
// A server (node B) runs the benchmark services and prints
// {"host": IP, "startup_ms": ...} once they listen; it serves until its
// standard input closes. A client (node A, in another process) runs the
// workloads against it and prints one JSON object of figures. Each node is
// a process of its own, as applications run: two upstream tsnet nodes in
// one process reset each other's connections under load (gVisor's GRO, see
// docs/packaging.md).
//
// Nodes join the control server named by $TS_CONTROL_URL (and use
// $TS_AUTHKEY if set): the harness runs a local tailnet and passes its
// environment.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tsnetbench server|client|memory [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = cmdServer(os.Args[2:])
	case "client":
		err = cmdClient(os.Args[2:])
	case "memory":
		err = cmdMemory(os.Args[2:])
	case "idle":
		err = cmdIdle(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (server, client, memory, idle)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsnetbench:", err)
		os.Exit(1)
	}
	// No tsnet.Server.Close: after many short connections tailscale
	// v1.102's netstack can stall in Close (docs/architecture.md), and
	// nothing is measured after this point.
	os.Exit(0)
}

// emit prints v as one line of JSON on standard output.
func emit(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}
