package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuthKeyWithWhitespaceIsRefused(t *testing.T) {
	s := newServer()
	defer s.close(t.Context(), 0)
	for _, key := range []string{"tskey-abc\n", " tskey-abc", "tskey\tabc"} {
		err := s.configure("authkey", key)
		if classify(err) != codeInvalid {
			t.Errorf("configure(authkey, %q) = %v, want codeInvalid", key, err)
		}
		if err != nil && strings.Contains(err.Error(), "tskey") {
			t.Errorf("the message shows the key: %v", err)
		}
	}
	if err := s.configure("authkey", "tskey-abc"); err != nil {
		t.Errorf("a clean key: %v", err)
	}
}

// A server whose tsnet Start failed early (before tsnet set up its
// subsystems) still closes, and closes again.
func TestCloseAfterAFailedStart(t *testing.T) {
	s := newServer()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.configure("hostname", "failed-start"); err != nil {
		t.Fatal(err)
	}
	if err := s.configure("dir", notADir); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err == nil {
		t.Fatal("start succeeded in a directory that is a file")
	}
	for i := range 2 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.close(context.Background(), time.Second)
		}()
		select {
		case <-done:
		case <-time.After(60 * time.Second): // a hang, not slowness
			t.Fatalf("close %d did not return", i+1)
		}
	}
}

// A start after close has begun is refused, so no tsnet node is left
// running that close would not close.
func TestStartAfterCloseIsRefused(t *testing.T) {
	s := newServer()
	if err := s.configure("hostname", "late-start"); err != nil {
		t.Fatal(err)
	}
	// Were it to start after all, it must not reach Tailscale's servers.
	if err := s.configure("control_url", "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.configure("dir", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	s.close(context.Background(), 0)
	if err := s.start(); !errors.Is(err, errClosed) {
		t.Fatalf("start after close = %v, want errClosed", err)
	}
}
