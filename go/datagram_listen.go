package main

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// listenPacket opens a packet socket on addr and returns it with the
// caller's descriptor and the bound addresses ("ip:port" separated by
// commas). An empty or unspecified host means every tailnet IP of this node
// in network's families: "udp" both IPv4 and IPv6, on one port.
func (s *server) listenPacket(network, addr string) (*dgramSocket, int, string, error) {
	if err := s.enter(); err != nil {
		return nil, -1, "", err
	}
	defer s.wg.Done()
	if err := s.start(); err != nil {
		return nil, -1, "", err
	}
	ips, port, err := s.packetAddrs(network, addr)
	if err != nil {
		return nil, -1, "", err
	}
	conns, bound, err := s.openPacketConns(ips, port)
	if err != nil {
		return nil, -1, "", errorf(classifyListen(err), "listen_packet %s %s: %v", network, addr, err)
	}
	d, fd, err := s.startDgram(conns, true)
	if err != nil {
		return nil, -1, "", err
	}
	return d, fd, bound, nil
}

// packetAddrs resolves a listen_packet address (checked by
// checkListenPacket) to the IPs to bind.
func (s *server) packetAddrs(network, addr string) ([]netip.Addr, uint16, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err == nil && !ap.Addr().IsUnspecified() {
		ip := ap.Addr().Unmap()
		if !familyOK(network, ip) {
			return nil, 0, errorf(codeInvalid, "listen_packet: %v is not an address of network %s", ip, network)
		}
		return []netip.Addr{ip}, ap.Port(), nil
	}
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseUint(portText, 10, 16) // checked by checkListenPacket
	var ips []netip.Addr
	v4, v6 := s.ts.TailscaleIPs()
	for _, ip := range []netip.Addr{v4, v6} {
		if ip.IsValid() && familyOK(network, ip) {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, 0, errorf(codeInvalid,
			"listen_packet %s %s: this node has no tailnet IP of that family yet (bring it up first, or give an IP)",
			network, addr)
	}
	return ips, uint16(port), nil
}

func familyOK(network string, ip netip.Addr) bool {
	switch network {
	case "udp4":
		return ip.Is4()
	case "udp6":
		return ip.Is6()
	}
	return true
}

// dualPortTries bounds the retries when port 0 was asked for on two
// addresses and the port chosen for the first is taken on the second.
const dualPortTries = 8

// openPacketConns binds port on every ip (the same port on each; 0 picks
// one) and returns the conns and their addresses as text.
func (s *server) openPacketConns(ips []netip.Addr, port uint16) ([]net.PacketConn, string, error) {
	var err error
	for range dualPortTries {
		var conns []net.PacketConn
		conns, err = s.bindAll(ips, port)
		if err == nil {
			return conns, packetBound(conns), nil
		}
		if port != 0 || len(ips) < 2 || classify(err) != codeAddrInUse {
			break
		}
	}
	return nil, "", err
}

// bindAll binds port on every ip; with port 0 the first bind picks it.
func (s *server) bindAll(ips []netip.Addr, port uint16) ([]net.PacketConn, error) {
	var conns []net.PacketConn
	for _, ip := range ips {
		network := "udp6"
		if ip.Is4() {
			network = "udp4"
		}
		pc, err := s.ts.ListenPacket(network, netip.AddrPortFrom(ip, port).String())
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, pc)
		if local, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			port = uint16(local.Port)
		}
	}
	return conns, nil
}

func packetBound(conns []net.PacketConn) string {
	var out []string
	for _, pc := range conns {
		if local, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			out = append(out, netip.AddrPortFrom(local.AddrPort().Addr().Unmap(), uint16(local.Port)).String())
		}
	}
	return strings.Join(out, ",")
}
