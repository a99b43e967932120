package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// defaultGCPercent is the library's GOGC. Most of a node's live heap is
// WireGuard's batch buffers (about 35 MiB, allocated when the device
// starts and mostly never touched), and Go's default of 100 lets as much
// garbage again pile up, and become resident, before each collection.
// 50 halves that allowance: 500 connections idle after 256 KiB each way
// (benchmarks/memory_connections.py) held 196 MiB of RSS with 100 and 144
// MiB with 50, and bulk throughput and CPU per byte did not change beyond
// the noise (docs/performance.md, Memory). At idle it changes nothing. The
// GOGC environment variable, as it is when the library is loaded, still
// decides when set.
const defaultGCPercent = 50

func init() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// gcPercent is the GOGC in force (-1 when off).
func gcPercent() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	return int64(s[0].Value.Uint64())
}
