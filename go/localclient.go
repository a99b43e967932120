package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

// Node information through tsnet's LocalClient (the in-process LocalAPI):
// whois, status and ping. Each runs as an operation whose text is JSON in
// our own schema (nodeinfo.go).

// localClient starts the node if needed and returns its LocalAPI client.
func (s *server) localClient() (*local.Client, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	return s.ts.LocalClient()
}

func failed(err error) opResult { return opResult{fd: -1, err: err} }

// jsonResult is a successful op result whose text is v as JSON.
func jsonResult(v any) opResult {
	text, err := encodeJSON(v)
	return opResult{fd: -1, text: text, err: err}
}

// checkWhoIs validates a whois address: "ip:port" or "ip".
func checkWhoIs(addr string) error {
	if _, err := netip.ParseAddrPort(addr); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(addr); err == nil {
		return nil
	}
	return errorf(codeInvalid, "whois: address %q must be ip:port or ip", addr)
}

// whois identifies the node (and its user) behind a tailnet address.
func (s *server) whois(ctx context.Context, addr string) opResult {
	lc, err := s.localClient()
	if err != nil {
		return failed(err)
	}
	w, err := lc.WhoIs(ctx, addr)
	if errors.Is(err, local.ErrPeerNotFound) {
		return failed(errorf(codeNotFound, "whois %s: no node of the tailnet has this address", addr))
	}
	if err != nil {
		return failed(s.ctxErr(ctx, fmt.Errorf("whois %s: %w", addr, err)))
	}
	return jsonResult(whoIsJSON(w))
}

// status reports this node, its peers and the tailnet.
func (s *server) status(ctx context.Context) opResult {
	lc, err := s.localClient()
	if err != nil {
		return failed(err)
	}
	st, err := lc.Status(ctx)
	if err != nil {
		return failed(s.ctxErr(ctx, fmt.Errorf("status: %w", err)))
	}
	return jsonResult(statusJSON(st))
}

// pingTypes maps the C API's ping kinds to tailscale's.
var pingTypes = map[string]tailcfg.PingType{
	"disco": tailcfg.PingDisco,
	"tsmp":  tailcfg.PingTSMP,
	"icmp":  tailcfg.PingICMP,
}

func checkPing(target, kind string) error {
	if target == "" {
		return errorf(codeInvalid, "ping: no peer given")
	}
	if _, ok := pingTypes[kind]; !ok {
		return errorf(codeInvalid, "ping: kind must be disco, tsmp or icmp, not %q", kind)
	}
	return nil
}

// ping pings a peer (a tailnet IP or a peer's name) until one ping is
// answered.
func (s *server) ping(ctx context.Context, target, kind string) opResult {
	lc, err := s.localClient()
	if err != nil {
		return failed(err)
	}
	ip, err := resolvePeer(ctx, lc, target)
	if err != nil {
		return failed(s.ctxErr(ctx, err))
	}
	r, err := pingUntilAnswered(ctx, lc, ip, pingTypes[kind])
	if err != nil {
		return failed(s.ctxErr(ctx, fmt.Errorf("ping %s: %w", target, err)))
	}
	if err := pingError(target, r); err != nil {
		return failed(err)
	}
	return jsonResult(pingJSON(kind, r))
}

// firstPingWait is how long the first ping waits for its answer before
// another is sent; each retry waits twice as long, up to maxPingWait. A
// ping is one packet, and one can be lost, e.g. by a peer that has just
// joined, so the ping is repeated until one is answered or ctx ends.
const (
	firstPingWait = time.Second
	maxPingWait   = 8 * time.Second
)

func pingUntilAnswered(ctx context.Context, lc *local.Client, ip netip.Addr, kind tailcfg.PingType) (*ipnstate.PingResult, error) {
	wait := firstPingWait
	for {
		attempt, cancel := context.WithTimeout(ctx, wait)
		r, err := lc.Ping(attempt, ip, kind)
		expired := errors.Is(attempt.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil || ctx.Err() != nil || !expired {
			return r, err
		}
		wait = min(2*wait, maxPingWait)
	}
}

func pingError(target string, r *ipnstate.PingResult) error {
	switch {
	case r.Err == "":
		return nil
	case r.IsLocalIP:
		return errorf(codeInvalid, "ping %s: that is this node's own address", target)
	case strings.Contains(r.Err, "no matching peer"):
		return errorf(codeNotFound, "ping %s: no peer has this address", target)
	}
	return errorf(codeUnreachable, "ping %s: %s", target, r.Err)
}

// resolvePeer turns a ping target into an IP: an IP as is, else the
// address of the peer with that name (MagicDNS short name, FQDN or
// reported hostname), IPv4 preferred.
func resolvePeer(ctx context.Context, lc *local.Client, target string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(target); err == nil {
		return ip, nil
	}
	st, err := lc.Status(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ping %s: status: %w", target, err)
	}
	want := strings.TrimSuffix(strings.ToLower(target), ".")
	for _, k := range st.Peers() {
		p := st.Peer[k]
		dns := strings.ToLower(strings.TrimSuffix(p.DNSName, "."))
		if want == dns || want == shortName(dns, "") || want == strings.ToLower(p.HostName) {
			if ip, ok := preferIPv4(p.TailscaleIPs); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errorf(codeNotFound, "ping %s: no peer has this name", target)
}

func preferIPv4(ips []netip.Addr) (netip.Addr, bool) {
	for _, ip := range ips {
		if ip.Is4() {
			return ip, true
		}
	}
	if len(ips) > 0 {
		return ips[0], true
	}
	return netip.Addr{}, false
}
