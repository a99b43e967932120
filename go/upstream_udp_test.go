//go:build !tailnet_no_localnet

package main

import (
	"net/netip"
	"testing"
	"time"

	"tailscale.com/tsnet"
)

// TestUpstreamIPv6Fragments documents, with plain tsnet and none of our
// bridging, why IPv6 datagrams are limited to 1232 bytes (maxDatagram6):
// a tsnet node loses every IPv6 datagram that needs fragmenting, while
// IPv4 ones are fragmented and reassembled. The receiver's
// wgengine/netstack/gro.RXChecksumOffload checks the UDP checksum of an
// IPv6 first fragment as if it were the whole datagram and drops it.
// If this test fails, upstream has fixed it and maxDatagram6 can grow.
// (Same result with GRO and without it, ts_omit_gro.)
//
//	scripts/in-netns sh -c 'cd go && TAILNET_UPSTREAM_TESTS=1 go test -run TestUpstreamIPv6Fragments -v .'
func TestUpstreamIPv6Fragments(t *testing.T) {
	a, b := tsnetPair(t, "TAILNET_UPSTREAM_TESTS", true)
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
