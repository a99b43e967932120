//go:build !linux

package main

// droppedRelocBytes: relocs_linux.go unmaps the relocation table; other
// systems keep it.
var droppedRelocBytes int64
