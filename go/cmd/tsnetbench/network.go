package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"tailscale.com/tsnet"
)

// Ports of the benchmark services on the server (the same in Python). The
// greeter writes 1 byte as it accepts, then reads to EOF: the client closes
// first, so it, not the server, holds TIME_WAIT.
const (
	portEcho    = 5001 // echoes bytes: the warm-up and the round trips
	portSink    = 5002 // reads to EOF, then writes 1 byte and closes
	portGreet   = 5003 // writes 1 byte, then reads to EOF and closes
	portUDP     = 5004 // counts datagrams; answers 1-byte ones
	portControl = 5005 // "begin" / "end N" of a datagram round
)

// network is where a process listens and dials: its own tsnet node, or
// the host's loopback interface.
type network interface {
	listen(port int) (net.Listener, error)
	listenPacket(port int) (net.PacketConn, error)
	dial(host string, port int) (net.Conn, error)
	// host is the address other processes reach this one at.
	host() string
}

// dialTimeout bounds every dial.
const dialTimeout = 30 * time.Second

// newNetwork sets up system's network; for tsnet it brings a node up and
// returns how long that took, from constructing tsnet.Server to Running.
func newNetwork(system, role string) (network, time.Duration, error) {
	switch system {
	case "loopback":
		return loopback{}, 0, nil
	case "tsnet":
		return startNode(role)
	}
	return nil, 0, fmt.Errorf("unknown system %q (tsnet, loopback)", system)
}

type tsnetNetwork struct {
	s  *tsnet.Server
	ip netip.Addr
}

func startNode(role string) (*tsnetNetwork, time.Duration, error) {
	dir, err := os.MkdirTemp("", "tsnetbench-")
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	s := &tsnet.Server{
		Hostname:   fmt.Sprintf("go-%s-%d", role, os.Getpid()),
		Dir:        dir,
		ControlURL: os.Getenv("TS_CONTROL_URL"),
		AuthKey:    os.Getenv("TS_AUTHKEY"),
		Ephemeral:  true,
		Logf:       debugLogf(role),
		UserLogf:   debugLogf(role),
	}
	if _, err := s.Up(ctx); err != nil {
		return nil, 0, fmt.Errorf("node up: %w", err)
	}
	took := time.Since(start)
	ip, _ := s.TailscaleIPs()
	if !ip.IsValid() {
		return nil, 0, fmt.Errorf("node has no IPv4 address")
	}
	return &tsnetNetwork{s: s, ip: ip}, took, nil
}

// debugLogf logs a node's lines to stderr when $TSNETBENCH_VERBOSE is set.
func debugLogf(role string) func(string, ...any) {
	if os.Getenv("TSNETBENCH_VERBOSE") == "" {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, role+": "+format+"\n", args...)
	}
}

func (n *tsnetNetwork) listen(port int) (net.Listener, error) {
	return n.s.Listen("tcp", ":"+strconv.Itoa(port))
}

func (n *tsnetNetwork) listenPacket(port int) (net.PacketConn, error) {
	return n.s.ListenPacket("udp", netip.AddrPortFrom(n.ip, uint16(port)).String())
}

func (n *tsnetNetwork) dial(host string, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return n.s.Dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
}

func (n *tsnetNetwork) host() string { return n.ip.String() }

type loopback struct{}

const loopbackHost = "127.0.0.1"

func (loopback) listen(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(loopbackHost, strconv.Itoa(port)))
}

func (loopback) listenPacket(port int) (net.PacketConn, error) {
	return net.ListenPacket("udp", net.JoinHostPort(loopbackHost, strconv.Itoa(port)))
}

func (loopback) dial(host string, port int) (net.Conn, error) {
	return net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), dialTimeout)
}

func (loopback) host() string { return loopbackHost }

// udpAddr is host:port as the *net.UDPAddr both tsnet's and the kernel's
// packet conns accept.
func udpAddr(host string, port int) (*net.UDPAddr, error) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, err
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}
