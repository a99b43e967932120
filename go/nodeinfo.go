package main

import (
	"cmp"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

// The JSON that whois, status and ping deliver. It is our own compact
// schema, not tailscale's structs, so the Python types built from it stay
// stable across tailscale versions. Field names are snake_case; times are
// ISO 8601 (RFC 3339 with microseconds); absent values are omitted, never null. docs/c-api.md lists
// the schema.

type jsonUser struct {
	ID          int64  `json:"id"`
	LoginName   string `json:"login_name"`
	DisplayName string `json:"display_name"`
}

// jsonNode describes a node, this one or a peer.
type jsonNode struct {
	ID         string    `json:"id"`       // stable node ID
	Name       string    `json:"name"`     // MagicDNS short name: what you dial
	Hostname   string    `json:"hostname"` // the hostname the node reported
	DNSName    string    `json:"dns_name"` // FQDN, no trailing dot
	IPs        []string  `json:"ips"`
	Online     bool      `json:"online"`
	OS         string    `json:"os"`
	Tags       []string  `json:"tags"`
	User       *jsonUser `json:"user,omitempty"`
	LastSeen   string    `json:"last_seen,omitempty"`
	DERPRegion string    `json:"derp_region,omitempty"` // home DERP region code
}

// jsonPeer is a peer as status sees it: a node plus the path to it.
type jsonPeer struct {
	jsonNode
	Path          string `json:"path"` // "direct", "peer-relay", "derp" or "none"
	Endpoint      string `json:"endpoint,omitempty"`
	PeerRelay     string `json:"peer_relay,omitempty"`
	Active        bool   `json:"active"`
	RxBytes       int64  `json:"rx_bytes"`
	TxBytes       int64  `json:"tx_bytes"`
	LastHandshake string `json:"last_handshake,omitempty"`
}

type jsonStatus struct {
	State          string     `json:"state"`
	LoginURL       string     `json:"login_url,omitempty"`
	MagicDNSSuffix string     `json:"magicdns_suffix"`
	Tailnet        string     `json:"tailnet"`
	Version        string     `json:"version"`
	Health         []string   `json:"health"`
	Self           jsonNode   `json:"self"`
	Peers          []jsonPeer `json:"peers"`
}

type jsonWhoIs struct {
	Node         jsonNode                   `json:"node"`
	User         jsonUser                   `json:"user"`
	Capabilities map[string]json.RawMessage `json:"capabilities"`
}

type jsonPing struct {
	IP             string  `json:"ip"`
	NodeIP         string  `json:"node_ip"`
	NodeName       string  `json:"node_name"`
	Kind           string  `json:"kind"`
	LatencySeconds float64 `json:"latency_seconds"`
	Path           string  `json:"path"` // "direct", "peer-relay", "derp" or "unknown" (TSMP/ICMP)
	Endpoint       string  `json:"endpoint,omitempty"`
	PeerRelay      string  `json:"peer_relay,omitempty"`
	DERPRegionID   int     `json:"derp_region_id,omitempty"`
	DERPRegionCode string  `json:"derp_region_code,omitempty"`
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errorf(codeInternal, "encoding result: %v", err)
	}
	return string(b), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	// Microseconds and a numeric offset: what Python's
	// datetime.fromisoformat reads on every supported version.
	return t.UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// shortName is the first label of a MagicDNS name, else the hostname.
func shortName(dnsName, hostname string) string {
	if label, _, _ := strings.Cut(dnsName, "."); label != "" {
		return label
	}
	return hostname
}

func userJSON(p tailcfg.UserProfile) jsonUser {
	return jsonUser{ID: int64(p.ID), LoginName: p.LoginName, DisplayName: p.DisplayName}
}

func peerStatusNode(p *ipnstate.PeerStatus, users map[tailcfg.UserID]tailcfg.UserProfile) jsonNode {
	n := jsonNode{
		ID:         string(p.ID),
		Name:       shortName(p.DNSName, p.HostName),
		Hostname:   p.HostName,
		DNSName:    strings.TrimSuffix(p.DNSName, "."),
		IPs:        addrStrings(p.TailscaleIPs),
		Online:     p.Online,
		OS:         p.OS,
		Tags:       []string{},
		LastSeen:   formatTime(p.LastSeen),
		DERPRegion: p.Relay,
	}
	if p.Tags != nil {
		n.Tags = p.Tags.AsSlice()
	}
	if u, ok := users[p.UserID]; ok {
		uj := userJSON(u)
		n.User = &uj
	}
	return n
}

// peerPath names the path traffic to a peer takes now: a direct UDP path
// if one is known, else a peer relay, else the peer's home DERP region.
func peerPath(p *ipnstate.PeerStatus) string {
	switch {
	case p.CurAddr != "":
		return "direct"
	case p.PeerRelay != "":
		return "peer-relay"
	case p.Relay != "":
		return "derp"
	}
	return "none"
}

func statusJSON(st *ipnstate.Status) jsonStatus {
	out := jsonStatus{
		State:    st.BackendState,
		LoginURL: st.AuthURL,
		Version:  st.Version,
		Health:   append([]string{}, st.Health...),
		Peers:    []jsonPeer{},
	}
	if t := st.CurrentTailnet; t != nil {
		out.MagicDNSSuffix, out.Tailnet = t.MagicDNSSuffix, t.Name
	}
	self := &ipnstate.PeerStatus{} // always set by LocalBackend; never nil here
	if st.Self != nil {
		self = st.Self
	}
	out.Self = peerStatusNode(self, st.User)
	out.Self.IPs = addrStrings(st.TailscaleIPs)
	for _, k := range st.Peers() {
		p := st.Peer[k]
		out.Peers = append(out.Peers, jsonPeer{
			jsonNode:      peerStatusNode(p, st.User),
			Path:          peerPath(p),
			Endpoint:      p.CurAddr,
			PeerRelay:     p.PeerRelay,
			Active:        p.Active,
			RxBytes:       p.RxBytes,
			TxBytes:       p.TxBytes,
			LastHandshake: formatTime(p.LastHandshake),
		})
	}
	slices.SortFunc(out.Peers, func(a, b jsonPeer) int {
		return cmp.Or(cmp.Compare(a.DNSName, b.DNSName), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func whoIsJSON(w *apitype.WhoIsResponse) jsonWhoIs {
	out := jsonWhoIs{Capabilities: map[string]json.RawMessage{}}
	if w.UserProfile != nil {
		out.User = userJSON(*w.UserProfile)
	}
	if n := w.Node; n != nil {
		hostname := n.Hostinfo.Hostname()
		out.Node = jsonNode{
			ID:       string(n.StableID),
			Name:     shortName(n.Name, hostname),
			Hostname: hostname,
			DNSName:  strings.TrimSuffix(n.Name, "."),
			IPs:      prefixAddrs(n.Addresses),
			Online:   n.Online != nil && *n.Online,
			OS:       n.Hostinfo.OS(),
			Tags:     append([]string{}, n.Tags...),
			User:     &out.User,
		}
		if n.LastSeen != nil {
			out.Node.LastSeen = formatTime(*n.LastSeen)
		}
	}
	for name, values := range w.CapMap {
		out.Capabilities[string(name)] = capValues(values)
	}
	return out
}

func prefixAddrs(prefixes []netip.Prefix) []string {
	out := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		if p.IsSingleIP() {
			out = append(out, p.Addr().String())
		}
	}
	return out
}

// capValues turns a capability's raw JSON values into one JSON array; a
// value that is not valid JSON is passed on as a string.
func capValues(values []tailcfg.RawMessage) json.RawMessage {
	items := make([]json.RawMessage, 0, len(values))
	for _, v := range values {
		if json.Valid([]byte(v)) {
			items = append(items, json.RawMessage(v))
			continue
		}
		s, _ := json.Marshal(string(v))
		items = append(items, s)
	}
	b, _ := json.Marshal(items)
	return b
}

func pingJSON(kind string, r *ipnstate.PingResult) jsonPing {
	out := jsonPing{
		IP:             r.IP,
		NodeIP:         r.NodeIP,
		NodeName:       shortName(r.NodeName, r.NodeName),
		Kind:           kind,
		LatencySeconds: r.LatencySeconds,
		Endpoint:       r.Endpoint,
		PeerRelay:      r.PeerRelay,
		DERPRegionID:   r.DERPRegionID,
		DERPRegionCode: r.DERPRegionCode,
	}
	switch {
	case r.Endpoint != "":
		out.Path = "direct"
	case r.PeerRelay != "":
		out.Path = "peer-relay"
	case r.DERPRegionID != 0:
		out.Path = "derp"
	default:
		out.Path = "unknown" // TSMP and ICMP pings do not report the path
	}
	return out
}
