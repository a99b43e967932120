package main

import (
	"net/netip"
	"testing"

	"tailscale.com/net/tsdial"
)

// TestMagicDNSResolverInternals fails if a tailscale upgrade moves the
// dialer's map resolver that dialTarget reads, instead of unknown tailnet
// names silently reaching the host's resolver again.
func TestMagicDNSResolverInternals(t *testing.T) {
	d := &tsdial.Dialer{}
	if mapResolver(d) != nil {
		t.Fatal("a new dialer has a map resolver")
	}
	want := netip.MustParseAddr("100.64.0.1")
	d.SetResolveMagicDNS(func(hostname, network string) (netip.Addr, bool) {
		return want, hostname == "peer"
	})
	resolve := mapResolver(d)
	if resolve == nil {
		t.Fatal("tsdial.Dialer.resolveMagicDNS was not found")
	}
	if ip, ok := resolve("peer", "tcp"); !ok || ip != want {
		t.Fatalf("resolve(peer) = %v, %v", ip, ok)
	}
	if _, ok := resolve("other", "tcp"); ok {
		t.Fatal("resolve(other) succeeded")
	}
}

func TestIsTailnetName(t *testing.T) {
	for _, c := range []struct {
		name, suffix string
		want         bool
	}{
		{"nohost", "", true},
		{"nohost", "tail1234.ts.net", true},
		{"nohost.tail1234.ts.net", "tail1234.ts.net", true},
		{"nohost.tail1234.ts.net", "tail1234.ts.net.", true},
		{"a.b.tail1234.ts.net", "Tail1234.TS.net", true},
		{"tail1234.ts.net", "tail1234.ts.net", true},
		{"example.com", "tail1234.ts.net", false},
		{"nohost.tail1234.ts.net", "", false},
		{"xtail1234.ts.net", "tail1234.ts.net", false},
	} {
		if got := isTailnetName(c.name, c.suffix); got != c.want {
			t.Errorf("isTailnetName(%q, %q) = %v, want %v", c.name, c.suffix, got, c.want)
		}
	}
}
