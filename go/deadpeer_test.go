//go:build !tailnet_no_localnet

package main

import (
	"context"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"tailscale.com/envknob"
	"tailscale.com/tsnet"
)

// TestDeadPeerOptions checks that both ends of a tailnet connection, the
// dialed one and the accepted one, expose their gVisor endpoint (read by
// reflection in tcpEndpoint) and take the keepalive options. If a gVisor
// upgrade moves the field, this fails instead of connections silently
// losing their dead-peer bound. Needs a network namespace with a
// non-loopback interface (scripts/in-netns), like every node.
func TestDeadPeerOptions(t *testing.T) {
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	envknob.Setenv("TS_NO_LOGS_NO_SUPPORT", "true")
	envknob.Setenv("TS_NETSTACK_KEEPALIVE_IDLE", "7s")
	n, err := startLocalnet("")
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node := func(name string) *tsnet.Server {
		s := &tsnet.Server{Hostname: name, Dir: t.TempDir(), ControlURL: n.url(), Ephemeral: true, Logf: func(string, ...any) {}}
		if _, err := s.Up(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := node("keepalive-a"), node("keepalive-b")
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	dialed, err := a.Dial(ctx, "tcp", "keepalive-b:80")
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	var served net.Conn
	select {
	case served = <-accepted:
		defer served.Close()
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": served} {
		if err := boundDeadPeer(tcpEndpoint(c)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ep := tcpEndpoint(c)
		var idle tcpip.KeepaliveIdleOption
		if err := ep.GetSockOpt(&idle); err != nil || time.Duration(idle) != 7*time.Second {
			t.Errorf("%s: keepalive idle %v (%v), want 7s", name, time.Duration(idle), err)
		}
		if !ep.SocketOptions().GetKeepAlive() {
			t.Errorf("%s: keepalive is off", name)
		}
	}
	if tcpEndpoint(&net.TCPConn{}) != nil {
		t.Error("a kernel TCP connection has no gVisor endpoint")
	}
}
