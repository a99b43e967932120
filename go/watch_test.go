package main

import (
	"slices"
	"testing"

	"tailscale.com/ipn"
)

// A watch gets an event only after the state it reports can be read, in
// the bus's order; a late watch starts from the state so far; the end
// of tracking ends every watch, with the bus's failure.
func TestWatchesFollowTheTrackedState(t *testing.T) {
	var ns nodeState
	early := ns.subscribe()
	if events, ended, _ := early.take(); len(events) != 0 || ended {
		t.Fatalf("before any event: %v, ended %v", events, ended)
	}
	needsLogin, url := ipn.NeedsLogin.String(), "http://127.0.0.1:1/auth/x"
	ns.apply(nodeEvent{State: needsLogin})
	ns.apply(nodeEvent{LoginURL: url})
	want := []nodeEvent{{State: needsLogin}, {LoginURL: url}}
	if events, _, _ := early.take(); !slices.Equal(events, want) {
		t.Fatalf("early watch got %v, want %v", events, want)
	}
	if state, got := ns.get(); state != needsLogin || got != url {
		t.Fatalf("state %q, login URL %q", state, got)
	}
	if events, _, _ := ns.subscribe().take(); !slices.Equal(events, want) {
		t.Fatalf("late watch started with %v, want %v", events, want)
	}

	ns.stop("watching the node failed: gone")
	if _, ended, failure := early.take(); !ended || failure != "watching the node failed: gone" {
		t.Fatalf("after stop: ended %v, failure %q", ended, failure)
	}
	after := ns.subscribe()
	if events, ended, failure := after.take(); !slices.Equal(events, want) || !ended || failure == "" {
		t.Fatalf("watch after stop: %v, ended %v, failure %q", events, ended, failure)
	}
}
