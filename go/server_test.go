package main

import (
	"strings"
	"testing"
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
