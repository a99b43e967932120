//go:build !tailnet_no_localnet

package main

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzArguments feeds arbitrary strings to everything that parses the C
// API's string arguments before any work is done: dial and listen
// and datagram addresses, networks, server options (hostname, control URL, tags,
// ports, ...) and the local tailnet's JSON config. Each must return nil or
// an *apiError with TAILNET_ERR_INVALID, never panic, and what it accepts
// must really be valid. One target covers them all (which picks the
// parser) so that a short run in CI reaches each of them:
//
//	cd go && go test -run '^$' -fuzz FuzzArguments -fuzztime 30s .
func FuzzArguments(f *testing.F) {
	seeds := []struct {
		which uint8
		a, b  string
	}{
		{0, "tcp", "host:80"}, {0, "tcp6", "[fd7a::1]:65535"}, {0, "udp", "x:1"}, {0, "tcp", ":80"},
		{0, "tcp", "h:0"}, {0, "tcp", "h:+1"}, {0, "tcp", "h:65536"}, {0, "tcp", "[::1"}, {0, "tcp", "h:\x00"},
		{1, "tcp", ":0"}, {1, "tcp4", "100.64.0.1:7"}, {1, "tcp", "name:80"}, {1, "tcp", "[fe80::1%eth0]:1"},
		{2, "hostname", "ok-name"}, {2, "hostname", "-bad"}, {2, "hostname", strings.Repeat("a", 64)},
		{2, "control_url", "https://c.example"}, {2, "control_url", "ftp://x"}, {2, "control_url", "http://"},
		{2, "tags", "tag:a,tag:b"}, {2, "tags", "tag:"}, {2, "tags", ",,"}, {2, "ephemeral", "TRUE"},
		{2, "port", "65535"}, {2, "port", "-1"}, {2, "dir", "/tmp/x"}, {2, "authkey", "tskey-\x00"}, {2, "nope", ""},
		{3, `{"address": "10.0.0.1", "control_port": 1}`, ""}, {3, `{"address": "::"}`, ""},
		{3, `{"derp_port": 70000}`, ""}, {3, `{"bogus": 1}`, ""}, {3, `[]`, ""}, {3, `{"authkey": 5}`, ""},
		{4, "goroutines", ""}, {4, "nope", ""},
		{5, "udp", ":53"}, {5, "udp6", "[::]:0"}, {5, "tcp", ":1"}, {0, "udp4", "h:53"}, {1, "udp", ":1"},
	}
	for _, s := range seeds {
		f.Add(s.which, s.a, s.b)
	}
	f.Fuzz(func(t *testing.T, which uint8, a, b string) {
		var err error
		switch which % 6 {
		case 0:
			err = checkDial(a, b)
			if err == nil {
				checkAcceptedAddress(t, a, b, false)
			}
		case 1:
			err = checkListen(a, b)
			if err == nil {
				checkAcceptedAddress(t, a, b, true)
			}
		case 2:
			err = newServer().configure(a, b)
			if err == nil {
				checkAcceptedOption(t, a, b)
			}
		case 3:
			var cfg localnetConfig
			cfg, err = parseLocalnetConfig(a)
			if err == nil && (cfg.ControlPort < 0 || cfg.ControlPort > 65535 || cfg.Address == "") {
				t.Fatalf("accepted config %q as %+v", a, cfg)
			}
		case 5:
			err = checkListenPacket(a, b)
			if err == nil {
				checkAcceptedAddress(t, a, b, true)
			}
		case 4:
			if a == "heap_bytes" {
				return // a full GC per call: slow, and not parsing
			}
			_, err = debugCounter(a)
		}
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != codeInvalid {
			t.Fatalf("parser %d (%q, %q): want an invalid-argument error, got %T %v", which%6, a, b, err, err)
		}
		if ae.msg == "" {
			t.Fatalf("parser %d (%q, %q): empty error message", which%6, a, b)
		}
	})
}

// checkAcceptedAddress: an accepted address really is host:port with a
// port in range, and a known network.
func checkAcceptedAddress(t *testing.T, network, addr string, listen bool) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		t.Fatalf("accepted network %q", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("accepted %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !listen) {
		t.Fatalf("accepted port %q in %q", port, addr)
	}
	if listen && host != "" && net.ParseIP(host) == nil {
		t.Fatalf("listen accepted host %q", host)
	}
	if !listen && host == "" {
		t.Fatalf("dial accepted an empty host in %q", addr)
	}
}

// checkAcceptedOption: what configure accepted is well formed.
func checkAcceptedOption(t *testing.T, key, value string) {
	switch key {
	case "hostname":
		if validHostname(value) != nil || strings.ContainsAny(value, "./\x00 ") {
			t.Fatalf("accepted hostname %q", value)
		}
	case "control_url":
		u, err := url.Parse(value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("accepted control URL %q", value)
		}
	case "tags":
		for _, tag := range strings.Split(value, ",") {
			if value != "" && (!strings.HasPrefix(tag, "tag:") || len(tag) == len("tag:")) {
				t.Fatalf("accepted tag %q in %q", tag, value)
			}
		}
	case "ephemeral":
		if _, err := strconv.ParseBool(value); err != nil {
			t.Fatalf("accepted ephemeral %q", value)
		}
	case "port":
		if p, err := strconv.Atoi(value); err != nil || p < 0 || p > 65535 {
			t.Fatalf("accepted port %q", value)
		}
	case "dir", "authkey":
	default:
		t.Fatalf("accepted unknown option %q", key)
	}
}
