package main

import (
	"reflect"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/wgengine/netstack"
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

// TestNetstackQueueInternals fails if a tailscale upgrade moves what
// flushOutbound reads (netstack.Impl.linkEP and its NumQueued), instead of
// a closing server silently dropping its last RSTs again.
func TestNetstackQueueInternals(t *testing.T) {
	f, ok := reflect.TypeFor[netstack.Impl]().FieldByName("linkEP")
	if !ok || f.Type.Kind() != reflect.Pointer {
		t.Fatal("netstack.Impl has no linkEP pointer field")
	}
	m, ok := f.Type.MethodByName("NumQueued")
	if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0).Kind() != reflect.Int {
		t.Fatalf("netstack.Impl.linkEP has no NumQueued() int method")
	}
}
