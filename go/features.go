package main

import "tailscale.com/feature/buildfeatures"

// The library is built with ts_omit_* tags (build_libtailscale.py) that
// drop tailscale features a library node never uses. Dropping one it does
// use would still build, and fail only at run time; these lines turn that
// into a compile error instead. Each map has the key false twice when its
// feature is omitted: "duplicate key false in map literal" names the line.
//
// Needs nothing gated: DERP, whois, status and ping through the LocalAPI,
// the SOCKS5 loopback proxy, tags, ephemeral nodes, login (all core).
var (
	_ = map[bool]int{false: 0, buildfeatures.HasNetstack: 1}      // every connection: userspace TCP/UDP
	_ = map[bool]int{false: 0, buildfeatures.HasDNS: 1}           // dialing peers by MagicDNS name
	_ = map[bool]int{false: 0, buildfeatures.HasIPNBus: 1}        // tsnet's Up and state watching
	_ = map[bool]int{false: 0, buildfeatures.HasACME: 1}          // ListenTLS: certificates
	_ = map[bool]int{false: 0, buildfeatures.HasServe: 1}         // ListenFunnel: serve config
	_ = map[bool]int{false: 0, buildfeatures.HasPeerAPIServer: 1} // Funnel ingress arrives over PeerAPI
)
