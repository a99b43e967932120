package main

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync/atomic"
	"unsafe"

	"tailscale.com/ipn"
	"tailscale.com/net/tsaddr"
	"tailscale.com/net/tsdial"
)

// Names in a dial. tsnet's Dial looks a name up in the node's map (its
// MagicDNS names, short or full, and the tailnet's extra DNS records) and,
// failing that, asks the host's resolver, so a mistyped node name left the
// tailnet, waited for the resolver and failed with its error. A name only
// the tailnet can answer, a single label or a name in the tailnet's
// MagicDNS domain, is therefore looked up in the map alone here: a name
// the map lacks fails at once. Other names go to tsnet unchanged (the
// host's resolver, or the exit node's DNS when one is in use). Likewise an
// address in Tailscale's ranges (100.64.0.0/10, fd7a:115c:a1e0::/48) that
// no node has or routes fails at once, where tsnet would dial it through
// the host's own network.

// magicDNSResolver is the function tsnet's dialer resolves map names with
// (tsdial.Dialer.resolveMagicDNS: LocalBackend.resolveMagicDNS, which takes
// a lowercase name without a trailing dot). The field is unexported, so it
// is read by reflection; TestMagicDNSResolverInternals fails if it moves.
type magicDNSResolver = func(hostname, network string) (netip.Addr, bool)

func mapResolver(d *tsdial.Dialer) magicDNSResolver {
	if d == nil {
		return nil
	}
	f := reflect.ValueOf(d).Elem().FieldByName("resolveMagicDNS")
	if !f.IsValid() || f.Type() != reflect.TypeFor[atomic.Pointer[func(string, string) (netip.Addr, bool)]]() {
		return nil
	}
	p := (*atomic.Pointer[func(string, string) (netip.Addr, bool)])(unsafe.Pointer(f.UnsafeAddr()))
	if fn := p.Load(); fn != nil {
		return *fn
	}
	return nil
}

// dialTarget returns the address to give tsnet's Dial for addr: a name in
// the node's map becomes its address, other names and IPs stay as they
// are, and a name only the tailnet can answer that is not in the map is a
// codeUnreachable error. The node must be running (its map is current).
func (s *server) dialTarget(ctx context.Context, network, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errorf(codeInvalid, "dial: address %q must be host:port", addr)
	}
	d := s.ts.Sys().Dialer.Get()
	if ip, err := netip.ParseAddr(host); err == nil {
		if tsaddr.IsTailscaleIP(ip) && d.UseNetstackForIP != nil && !d.UseNetstackForIP(ip) {
			return "", errorf(codeUnreachable, "dial %s %s: no node of the tailnet has the address %s "+
				"(a node that joined moments ago may not be in this node's map yet)", network, addr, ip)
		}
		return addr, nil
	}
	resolve := mapResolver(d)
	if resolve == nil {
		s.log.debugf("tailnet: tsnet's map resolver was not found; %q goes to tsnet's Dial", host)
		return addr, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, ok := resolve(name, network); ok {
		return net.JoinHostPort(ip.String(), port), nil
	}
	suffix := s.magicDNSSuffix(ctx)
	if !isTailnetName(name, suffix) {
		return addr, nil
	}
	if _, ok := resolve(name, "tcp"); ok { // a node, but not of this family
		return "", errorf(codeUnreachable, "dial %s %s: node %q has no %s address", network, addr, host, family(network))
	}
	return "", errorf(codeUnreachable, "dial %s %s: no node named %q on the tailnet "+
		"(a node that joined moments ago may not be in this node's map yet)", network, addr, host)
}

// isTailnetName reports whether name (lowercase, no trailing dot) is one
// only the tailnet can answer: a single DNS label, or a name in the
// tailnet's MagicDNS domain (suffix, "" if unknown).
func isTailnetName(name, suffix string) bool {
	if !strings.Contains(name, ".") {
		return true
	}
	suffix = strings.ToLower(strings.Trim(suffix, "."))
	return suffix != "" && (name == suffix || strings.HasSuffix(name, "."+suffix))
}

// magicDNSSuffix is the tailnet's MagicDNS domain, or "" if the node does
// not know one.
func (s *server) magicDNSSuffix(ctx context.Context) string {
	lc, err := s.ts.LocalClient()
	if err != nil {
		return ""
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil || st.CurrentTailnet == nil {
		return ""
	}
	return st.CurrentTailnet.MagicDNSSuffix
}

func family(network string) string {
	switch {
	case strings.HasSuffix(network, "4"):
		return "IPv4"
	case strings.HasSuffix(network, "6"):
		return "IPv6"
	}
	return "IP"
}

// awaitRunning waits until the node is running, as tsnet's Dial does
// before it looks a name up, or until ctx ends (its error).
func (s *server) awaitRunning(ctx context.Context) error {
	s.node.awaitState(ctx, ipn.Running.String(), 0)
	if state, _ := s.node.get(); state != ipn.Running.String() {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errorf(codeUnreachable, "dial: the node is %s, not running", state)
	}
	return nil
}
