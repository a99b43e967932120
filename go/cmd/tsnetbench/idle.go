package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime/metrics"
)

// cmdIdle is benchmarks/memory.py's Go process: one node, idle after up,
// so that the harness can read its memory from outside (/proc/PID/smaps).
// It speaks one line at a time: it prints {"phase": "started"} and waits
// for a line, brings its node up and prints {"phase": "up"}, then answers
// each further line with the Go runtime's memory classes (the same sums
// as the library's go_* debug counters), until its standard input closes.
func cmdIdle(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("idle takes no flags")
	}
	in := bufio.NewScanner(os.Stdin)
	if err := emit(map[string]string{"phase": "started"}); err != nil {
		return err
	}
	if !in.Scan() {
		return nil
	}
	if _, _, err := startNode("idle"); err != nil {
		return err
	}
	if err := emit(map[string]string{"phase": "up"}); err != nil {
		return err
	}
	for in.Scan() {
		if err := emit(goMemory()); err != nil {
			return err
		}
	}
	return nil
}

// goMemoryClasses: the library's go/memstats.go, for the same figures.
var goMemoryClasses = map[string][]string{
	"go_heap_bytes":          {"/memory/classes/heap/objects:bytes"},
	"go_heap_free_bytes":     {"/memory/classes/heap/free:bytes", "/memory/classes/heap/unused:bytes"},
	"go_heap_released_bytes": {"/memory/classes/heap/released:bytes"},
	"go_stack_bytes":         {"/memory/classes/heap/stacks:bytes", "/memory/classes/os-stacks:bytes"},
	"go_runtime_bytes": {
		"/memory/classes/metadata/mcache/free:bytes",
		"/memory/classes/metadata/mcache/inuse:bytes",
		"/memory/classes/metadata/mspan/free:bytes",
		"/memory/classes/metadata/mspan/inuse:bytes",
		"/memory/classes/metadata/other:bytes",
		"/memory/classes/profiling/buckets:bytes",
		"/memory/classes/other:bytes",
	},
	"go_total_bytes": {"/memory/classes/total:bytes"},
}

// goMemory reads goMemoryClasses.
func goMemory() map[string]uint64 {
	out := map[string]uint64{}
	for name, classes := range goMemoryClasses {
		samples := make([]metrics.Sample, len(classes))
		for i, c := range classes {
			samples[i].Name = c
		}
		metrics.Read(samples)
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				out[name] += s.Value.Uint64()
			}
		}
	}
	return out
}
