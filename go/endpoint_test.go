package main

import (
	"reflect"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TestEndpointInternals fails if a gVisor upgrade moves the field that
// sendQueued reads, instead of close's log silently counting 0 bytes.
func TestEndpointInternals(t *testing.T) {
	ep := &tcp.Endpoint{}
	f := reflect.ValueOf(ep).Elem().FieldByName("sndQueueInfo")
	if !f.IsValid() {
		t.Fatal("tcp.Endpoint has no sndQueueInfo field")
	}
	used := f.FieldByName("SndBufUsed")
	if !used.IsValid() || !used.CanInt() {
		t.Fatal("tcp.Endpoint.sndQueueInfo has no integer SndBufUsed field")
	}
	if got := sendQueued(ep); got != 0 {
		t.Fatalf("sendQueued of a new endpoint = %d, want 0", got)
	}
	if got := sendQueued(nil); got != 0 {
		t.Fatalf("sendQueued(nil) = %d, want 0", got)
	}
}
