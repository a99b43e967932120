//go:build !tailnet_no_localnet

package main

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"tailscale.com/envknob"
	"tailscale.com/tsnet"
)

// TestUpstreamIPv6Fragments documents, with plain tsnet and none of our
// bridging, why IPv6 datagrams are limited to 1232 bytes (maxDatagram6):
// a tsnet node loses every IPv6 datagram that needs fragmenting, while
// IPv4 ones are fragmented and reassembled. The receiver's
// wgengine/netstack/gro.RXChecksumOffload checks the UDP checksum of an
// IPv6 first fragment as if it were the whole datagram and drops it.
// If this test fails, upstream has fixed it and maxDatagram6 can grow.
// (Same result with and without the library's ts_omit_gro tag.)
//
//	scripts/in-netns sh -c 'cd go && TAILNET_UPSTREAM_TESTS=1 go test -tags ts_omit_gro -run TestUpstreamIPv6Fragments -v .'
func TestUpstreamIPv6Fragments(t *testing.T) {
	if os.Getenv("TAILNET_UPSTREAM_TESTS") == "" {
		t.Skip("set TAILNET_UPSTREAM_TESTS=1")
	}
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	n, err := startLocalnet("")
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	mk := func(name string) *tsnet.Server {
		s := &tsnet.Server{Hostname: name, Dir: t.TempDir(), ControlURL: n.url(), Ephemeral: true, Logf: func(string, ...any) {}}
		if _, err := s.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := mk("a"), mk("b")
	for _, tc := range []struct {
		v6     bool
		size   int
		arrive bool
	}{
		{false, 1252, true}, {false, 1253, true}, {false, 65507, true},
		{true, 1232, true}, {true, 1233, false}, {true, 1400, false},
	} {
		if got := sendOne(t, a, b, tc.v6, tc.size); got != tc.arrive {
			t.Errorf("IPv6 %v, %d bytes: arrived %v, want %v", tc.v6, tc.size, got, tc.arrive)
		}
	}
}

// sendOne sends one datagram of size bytes from a to b and reports whether
// it arrived within a few seconds.
func sendOne(t *testing.T, a, b *tsnet.Server, v6 bool, size int) bool {
	a4, a6 := a.TailscaleIPs()
	b4, b6 := b.TailscaleIPs()
	src, dst := a4, b4
	if v6 {
		src, dst = a6, b6
	}
	pa, err := a.ListenPacket("udp", netip.AddrPortFrom(src, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := b.ListenPacket("udp", netip.AddrPortFrom(dst, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if _, err := pa.WriteTo(make([]byte, size), pb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	pb.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1<<16)
	got, _, err := pb.ReadFrom(buf)
	return err == nil && got == size
}
