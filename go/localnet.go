//go:build !tailnet_no_localnet

package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// localnetConfig is the JSON accepted by tailnet_localnet_start.
type localnetConfig struct {
	// AuthKey, if set, is the only auth key the control server accepts.
	AuthKey string `json:"authkey"`
	// Interactive makes nodes without an auth key wait for an interactive
	// login, completed with tailnet_localnet_complete_auth.
	Interactive bool `json:"interactive"`
	// MagicDNSDomain is the tailnet's DNS suffix.
	MagicDNSDomain string `json:"magicdns_domain"`
	// AppCapabilities are granted to every node by every node, as a
	// policy grant {"src": ["*"], "dst": ["*"], "app": ...} would.
	AppCapabilities map[string][]json.RawMessage `json:"app_capabilities"`
	// HTTPS (default true) offers nodes TLS cert domains; Funnel (default
	// true) grants them Funnel on ports 443, 8443 and 10000 (localcerts.go).
	HTTPS  *bool `json:"https"`
	Funnel *bool `json:"funnel"`
	// Address is the IP address all three servers bind to and advertise
	// (control URL, DERP map); default 127.0.0.1.
	Address string `json:"address"`
	// ControlPort, DERPPort and STUNPort fix the ports (0: a free one).
	ControlPort int `json:"control_port"`
	DERPPort    int `json:"derp_port"`
	STUNPort    int `json:"stun_port"`
}

// localnet is a whole tailnet on one address (loopback by default):
// Tailscale's test control server, a DERP relay behind TLS, and a STUN
// server, each on its own port. It reaches nothing by itself; nodes come
// to it.
//
// It can be paused: every listener and connection closes, as if the
// servers had gone down, while the tailnet's state (nodes, keys) stays in
// memory; resume serves again on the same ports. That is what nodes see
// when a real control server restarts.
type localnet struct {
	addr    string
	control *testcontrol.Server
	ca      localCA
	derp    *derpserver.Server

	mu      sync.Mutex
	ports   [3]int // control, DERP, STUN; fixed once first bound
	paused  bool
	closed  bool
	http    *httptest.Server // the control server
	derpWeb *httptest.Server
	stun    net.PacketConn
	stunWG  sync.WaitGroup
	conns   connSet // every connection accepted since the last resume
}

const (
	loopback = "127.0.0.1"

	portControl = 0
	portDERP    = 1
	portSTUN    = 2
)

func parseLocalnetConfig(configJSON string) (localnetConfig, error) {
	cfg := localnetConfig{MagicDNSDomain: "tailnet.test", Address: loopback}
	if configJSON != "" {
		dec := json.NewDecoder(strings.NewReader(configJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, errorf(codeInvalid, "local tailnet config: %v", err)
		}
	}
	ip, err := netip.ParseAddr(cfg.Address)
	if err != nil || ip.Zone() != "" || ip.IsUnspecified() {
		return cfg, errorf(codeInvalid, "local tailnet address %q must be one IP address of this host", cfg.Address)
	}
	cfg.Address = ip.String()
	for _, p := range []int{cfg.ControlPort, cfg.DERPPort, cfg.STUNPort} {
		if p < 0 || p > 65535 {
			return cfg, errorf(codeInvalid, "local tailnet ports must be 0-65535, not %d", p)
		}
	}
	return cfg, nil
}

func startLocalnet(configJSON string) (*localnet, error) {
	cfg, err := parseLocalnetConfig(configJSON)
	if err != nil {
		return nil, err
	}
	n := &localnet{
		addr:  cfg.Address,
		ports: [3]int{cfg.ControlPort, cfg.DERPPort, cfg.STUNPort},
		derp:  derpserver.New(key.NewNode(), logger.Discard),
		control: &testcontrol.Server{
			DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
			MagicDNSDomain: cfg.MagicDNSDomain,
			RequireAuthKey: cfg.AuthKey,
			RequireAuth:    cfg.Interactive,
			Logf:           logger.Discard,
			// Nodes get the tags they advertise (tag ownership is not modeled).
			TagOwners: map[string][]string{},
			// Peers are reported online (testcontrol does not track sessions).
			AllOnline: true,
		},
	}
	if len(cfg.AppCapabilities) > 0 {
		n.control.SetGlobalAppCaps(appCaps(cfg.AppCapabilities))
	}
	cfg.applyServices(n.control)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.serveLocked(); err != nil {
		n.haltLocked()
		n.derp.Close()
		return nil, err
	}
	// The ports are known now: the DERP map and base URL can name them.
	n.control.DERPMap = n.derpMap()
	n.control.ExplicitBaseURL = n.url()
	return n, nil
}

// serveLocked binds the three ports (free ones if not fixed, then the same
// ones forever) and starts serving. The DERP server is HTTPS with a
// self-signed certificate: clients are told InsecureForTests.
func (n *localnet) serveLocked() error {
	controlLn, err := n.listenTCP(portControl)
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	n.http = &httptest.Server{Listener: controlLn, Config: &http.Server{
		Handler:  n.frontDoor(),
		ErrorLog: logger.StdLogger(logger.Discard),
	}}
	n.http.Start()
	derpLn, err := n.listenTCP(portDERP)
	if err != nil {
		return fmt.Errorf("DERP listener: %w", err)
	}
	n.derpWeb = &httptest.Server{Listener: derpLn, Config: &http.Server{
		Handler:      derpserver.Handler(n.derp),
		TLSNextProto: make(map[string]func(*http.Server, *tls.Conn, http.Handler)),
		ErrorLog:     logger.StdLogger(logger.Discard),
	}}
	n.derpWeb.StartTLS()
	n.stun, err = net.ListenPacket("udp", n.hostPort(portSTUN))
	if err != nil {
		return fmt.Errorf("STUN listener: %w", err)
	}
	n.ports[portSTUN] = n.stun.LocalAddr().(*net.UDPAddr).Port
	stunConn := n.stun
	n.stunWG.Go(func() { serveSTUN(stunConn) })
	return nil
}

// listenTCP listens on one of the ports, recording it if it was free, and
// tracks every connection it accepts so that pause can cut them all
// (including hijacked ones, which an http.Server forgets).
func (n *localnet) listenTCP(which int) (net.Listener, error) {
	ln, err := net.Listen("tcp", n.hostPort(which))
	if err != nil {
		return nil, err
	}
	n.ports[which] = ln.Addr().(*net.TCPAddr).Port
	return trackingListener{Listener: ln, conns: &n.conns}, nil
}

func (n *localnet) hostPort(which int) string {
	return net.JoinHostPort(n.addr, strconv.Itoa(n.ports[which]))
}

// haltLocked closes every listener and connection; the state stays.
func (n *localnet) haltLocked() {
	for _, srv := range []*httptest.Server{n.http, n.derpWeb} {
		if srv != nil {
			srv.Listener.Close()
		}
	}
	n.conns.closeAll()
	for _, srv := range []*httptest.Server{n.http, n.derpWeb} {
		if srv != nil {
			srv.Close() // waits for the handlers, whose connections are gone
		}
	}
	n.http, n.derpWeb = nil, nil
	if n.stun != nil {
		n.stun.Close()
		n.stunWG.Wait()
		n.stun = nil
	}
}

// pause takes the servers down (see localnet); resume brings them back.
func (n *localnet) pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errClosedLocalnet
	}
	if !n.paused {
		n.paused = true
		n.haltLocked()
	}
	return nil
}

func (n *localnet) resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errClosedLocalnet
	}
	if !n.paused {
		return nil
	}
	if err := n.serveLocked(); err != nil {
		n.haltLocked() // still paused; resume may be retried
		return errorf(codeAddrInUse, "resume the local tailnet: %v", err)
	}
	n.paused = false
	return nil
}

var errClosedLocalnet = errorf(codeClosed, "the local tailnet is closed")

// serveSTUN answers binding requests with the sender's address until c closes.
func serveSTUN(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		size, addr, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		txid, err := stun.ParseBindingRequest(buf[:size])
		if err != nil {
			continue
		}
		c.WriteTo(stun.Response(txid, ua.AddrPort()), addr)
	}
}

func (n *localnet) derpMap() *tailcfg.DERPMap {
	ipv4, ipv6 := n.addr, "none"
	if netip.MustParseAddr(n.addr).Is6() {
		ipv4, ipv6 = "none", n.addr
	}
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {
			RegionID:   1,
			RegionCode: "local",
			RegionName: "Local",
			Nodes: []*tailcfg.DERPNode{{
				Name:             "1a",
				RegionID:         1,
				HostName:         n.addr,
				IPv4:             ipv4,
				IPv6:             ipv6,
				STUNPort:         n.ports[portSTUN],
				DERPPort:         n.ports[portDERP],
				InsecureForTests: true,
				STUNTestIP:       n.addr,
			}},
		},
	}}
}

func (n *localnet) url() string {
	return "http://" + n.hostPort(portControl)
}

// info describes where the local tailnet listens, as JSON.
func (n *localnet) info() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, _ := json.Marshal(map[string]any{
		"control_url":  n.url(),
		"address":      n.addr,
		"control_port": n.ports[portControl],
		"derp_port":    n.ports[portDERP],
		"stun_port":    n.ports[portSTUN],
		"paused":       n.paused,
	})
	return string(b)
}

func (n *localnet) completeAuth(url string) error {
	if !n.control.CompleteAuth(url) {
		return errorf(codeInvalid, "no pending login at %q", url)
	}
	return nil
}

// denyFrom sets the tailnet's packet filter: every node drops connections
// that the named nodes originate, and allows all others. testcontrol builds
// a filter that lists source addresses only when some node is marked
// "unsigned, PeerAPI only" (as Funnel ingress nodes are), leaving that node
// out, so that is how a node is denied. Names must be of registered nodes.
func (n *localnet) denyFrom(hostnames []string) error {
	nodes := n.control.AllNodes()
	known := make(map[string]bool, len(nodes))
	for _, node := range nodes {
		known[node.Hostinfo.Hostname()] = true
	}
	denied := make(map[string]bool, len(hostnames))
	for _, h := range hostnames {
		if !known[h] {
			return errorf(codeInvalid, "no node named %q on the local tailnet", h)
		}
		denied[h] = true
	}
	for _, node := range nodes {
		n.control.SetUnsignedPeerAPIOnly(node.Key, denied[node.Hostinfo.Hostname()])
	}
	return nil
}

func (n *localnet) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	n.haltLocked()
	n.derp.Close()
}

func appCaps(caps map[string][]json.RawMessage) tailcfg.PeerCapMap {
	out := make(tailcfg.PeerCapMap, len(caps))
	for name, values := range caps {
		raw := make([]tailcfg.RawMessage, 0, len(values))
		for _, v := range values {
			raw = append(raw, tailcfg.RawMessage(v))
		}
		out[tailcfg.PeerCapability(name)] = raw
	}
	return out
}

// connSet holds the connections a trackingListener accepted.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (s *connSet) add(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[*trackedConn]struct{})
	}
	s.conns[c] = struct{}{}
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// trackingListener records each accepted connection in a connSet until it
// is closed.
type trackingListener struct {
	net.Listener
	conns *connSet
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, conns: l.conns}
	l.conns.add(tc)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	conns *connSet
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.conns.remove(c) })
	return c.Conn.Close()
}
