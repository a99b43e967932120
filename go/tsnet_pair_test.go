//go:build !tailnet_no_localnet

package main

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"tailscale.com/envknob"
	"tailscale.com/tsnet"
)

// tsnetPair starts a local tailnet and two plain tsnet nodes on it, a and
// b, with none of our bridging: the opt-in tests that pin down upstream
// behaviour use it. It returns once each node knows the other, and skips
// the test unless the environment variable optIn is set. closeNodes false
// leaves the nodes open at the end (the process exits soon after):
// tsnet's Close can hang after many recent connections, which is not what
// such a test is about.
func tsnetPair(t *testing.T, optIn string, closeNodes bool) (a, b *tsnet.Server) {
	t.Helper()
	if os.Getenv(optIn) == "" {
		t.Skipf("set %s=1", optIn)
	}
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	envknob.Setenv("TS_NO_LOGS_NO_SUPPORT", "true")
	n, err := startLocalnet("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	node := func(name string) *tsnet.Server {
		s := &tsnet.Server{Hostname: name, Dir: t.TempDir(), ControlURL: n.url(), Ephemeral: true, Logf: func(string, ...any) {}}
		if closeNodes {
			t.Cleanup(func() { s.Close() })
		}
		if _, err := s.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b = node("a"), node("b")
	waitKnows(t, a, b)
	waitKnows(t, b, a)
	return a, b
}

// waitKnows waits until node's map lists peer: until then a packet to
// peer is dropped, which the tests would read as upstream behaviour.
func waitKnows(t *testing.T, node, peer *tsnet.Server) {
	t.Helper()
	ip, _ := peer.TailscaleIPs()
	lc, err := node.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st, err := lc.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Peer {
			if slices.Contains(p.TailscaleIPs, ip) {
				return
			}
		}
	}
	t.Fatalf("%s never learned of %s", node.Hostname, peer.Hostname)
}
