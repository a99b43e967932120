//go:build !tailnet_no_localnet

package main

import (
	"crypto/tls"
	"encoding/json"

	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
}

// localnet is a whole tailnet on loopback: Tailscale's test control server,
// a DERP relay behind TLS, and a STUN server, each on a free port of
// 127.0.0.1. It reaches nothing outside this machine.
type localnet struct {
	control *testcontrol.Server
	http    *httptest.Server
	ca      localCA
	derp    *derpserver.Server
	derpWeb *httptest.Server
	stun    net.PacketConn
	stunWG  sync.WaitGroup
	once    sync.Once
}

const loopback = "127.0.0.1"

func startLocalnet(configJSON string) (*localnet, error) {
	cfg := localnetConfig{MagicDNSDomain: "tailnet.test"}
	if configJSON != "" {
		if err := json.Unmarshal([]byte(configJSON), &cfg); err != nil {
			return nil, errorf(codeInvalid, "local tailnet config: %v", err)
		}
	}
	n := &localnet{}
	if err := n.startRelay(); err != nil {
		n.close()
		return nil, err
	}
	n.control = &testcontrol.Server{
		DERPMap:        n.derpMap(),
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: cfg.MagicDNSDomain,
		RequireAuthKey: cfg.AuthKey,
		RequireAuth:    cfg.Interactive,
		Logf:           logger.Discard,
		// Nodes get the tags they advertise (tag ownership is not modeled).
		TagOwners: map[string][]string{},
		// Peers are reported online (testcontrol does not track sessions).
		AllOnline: true,
	}
	if len(cfg.AppCapabilities) > 0 {
		n.control.SetGlobalAppCaps(appCaps(cfg.AppCapabilities))
	}
	cfg.applyServices(n.control)
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		n.close()
		return nil, fmt.Errorf("control listener: %w", err)
	}
	n.http = &httptest.Server{Listener: ln, Config: &http.Server{Handler: withNoACME(n.control)}}
	n.http.Start()
	n.control.HTTPTestServer = n.http
	return n, nil
}

// startRelay starts DERP (HTTPS, self-signed: clients are told
// InsecureForTests) and STUN.
func (n *localnet) startRelay() error {
	n.derp = derpserver.New(key.NewNode(), logger.Discard)
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return fmt.Errorf("DERP listener: %w", err)
	}
	n.derpWeb = &httptest.Server{Listener: ln, Config: &http.Server{
		Handler:      derpserver.Handler(n.derp),
		TLSNextProto: make(map[string]func(*http.Server, *tls.Conn, http.Handler)),
		ErrorLog:     logger.StdLogger(logger.Discard),
	}}
	n.derpWeb.StartTLS()
	n.stun, err = net.ListenPacket("udp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return fmt.Errorf("STUN listener: %w", err)
	}
	n.stunWG.Go(n.serveSTUN)
	return nil
}

// serveSTUN answers binding requests with the sender's address.
func (n *localnet) serveSTUN() {
	buf := make([]byte, 1500)
	for {
		size, addr, err := n.stun.ReadFrom(buf)
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
		n.stun.WriteTo(stun.Response(txid, ua.AddrPort()), addr)
	}
}

func (n *localnet) derpMap() *tailcfg.DERPMap {
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {
			RegionID:   1,
			RegionCode: "local",
			RegionName: "Local",
			Nodes: []*tailcfg.DERPNode{{
				Name:             "1a",
				RegionID:         1,
				HostName:         loopback,
				IPv4:             loopback,
				IPv6:             "none",
				STUNPort:         n.stun.LocalAddr().(*net.UDPAddr).Port,
				DERPPort:         n.derpWeb.Listener.Addr().(*net.TCPAddr).Port,
				InsecureForTests: true,
				STUNTestIP:       loopback,
			}},
		},
	}}
}

func (n *localnet) url() string { return n.http.URL }

func (n *localnet) completeAuth(url string) error {
	if !n.control.CompleteAuth(url) {
		return errorf(codeInvalid, "no pending login at %q", url)
	}
	return nil
}

func (n *localnet) close() {
	n.once.Do(func() {
		if n.http != nil {
			n.http.CloseClientConnections()
			n.http.Close()
		}
		if n.derpWeb != nil {
			n.derpWeb.CloseClientConnections()
			n.derpWeb.Close()
		}
		if n.derp != nil {
			n.derp.Close()
		}
		if n.stun != nil {
			n.stun.Close()
			n.stunWG.Wait()
		}
	})
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
