package main

import "runtime/metrics"

// goMemoryClasses maps the go_* debug counters to the runtime/metrics
// memory classes they sum: where the Go runtime's memory goes, read
// without a collection (benchmarks/memory.py reports them beside the
// process's RSS). Together they are /memory/classes/total:bytes.
var goMemoryClasses = map[string][]string{
	// Live and not yet collected heap objects.
	"go_heap_bytes": {"/memory/classes/heap/objects:bytes"},
	// Heap memory that is mapped and may be resident but holds no object:
	// room the heap keeps for growth, until the scavenger returns it.
	"go_heap_free_bytes": {"/memory/classes/heap/free:bytes", "/memory/classes/heap/unused:bytes"},
	// Heap memory returned to the system (mapped, not resident).
	"go_heap_released_bytes": {"/memory/classes/heap/released:bytes"},
	// Goroutine stacks.
	"go_stack_bytes": {"/memory/classes/heap/stacks:bytes", "/memory/classes/os-stacks:bytes"},
	// The runtime's own structures: span and cache metadata, GC bitmaps,
	// profiling buckets, and the rest.
	"go_runtime_bytes": {
		"/memory/classes/metadata/mcache/free:bytes",
		"/memory/classes/metadata/mcache/inuse:bytes",
		"/memory/classes/metadata/mspan/free:bytes",
		"/memory/classes/metadata/mspan/inuse:bytes",
		"/memory/classes/metadata/other:bytes",
		"/memory/classes/profiling/buckets:bytes",
		"/memory/classes/other:bytes",
	},
	// Everything the Go runtime has mapped (resident or not).
	"go_total_bytes": {"/memory/classes/total:bytes"},
}

// goMemory reads one of goMemoryClasses' counters.
func goMemory(name string) (int64, bool) {
	classes, ok := goMemoryClasses[name]
	if !ok {
		return 0, false
	}
	samples := make([]metrics.Sample, len(classes))
	for i, c := range classes {
		samples[i].Name = c
	}
	metrics.Read(samples)
	var sum int64
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			sum += int64(s.Value.Uint64())
		}
	}
	return sum, true
}
