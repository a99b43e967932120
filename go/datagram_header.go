package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// A packet socket (see datagram.go) prefixes each message with an address
// header, the source of a datagram it delivers or the destination of one it
// is given:
//
//	byte 0         n, the address length: 4 (IPv4) or 16 (IPv6)
//	bytes 1..n     the IP address, network byte order
//	2 bytes        the port, big-endian
//	the rest       the payload (may be empty)

// maxHeader is the longest address header (IPv6).
const maxHeader = 1 + 16 + 2

// prependHeader writes the header for from into buf just before off, where
// the payload starts, and returns the framed message (a suffix of buf).
func prependHeader(buf []byte, off int, from net.Addr) ([]byte, error) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("unexpected source address %T", from)
	}
	ap := ua.AddrPort()
	ip := ap.Addr().Unmap().AsSlice()
	start := off - (1 + len(ip) + 2)
	buf[start] = byte(len(ip))
	copy(buf[start+1:], ip)
	binary.BigEndian.PutUint16(buf[start+1+len(ip):], ap.Port())
	return buf[start:], nil
}

// parseHeader splits a framed message into its address and payload.
func parseHeader(msg []byte) (netip.AddrPort, []byte, error) {
	if len(msg) == 0 || (msg[0] != 4 && msg[0] != 16) || len(msg) < 1+int(msg[0])+2 {
		return netip.AddrPort{}, nil, errors.New("bad address header")
	}
	n := int(msg[0])
	addr, _ := netip.AddrFromSlice(msg[1 : 1+n])
	port := binary.BigEndian.Uint16(msg[1+n:])
	if port == 0 || !addr.Unmap().IsValid() || addr.Unmap().IsUnspecified() {
		return netip.AddrPort{}, nil, fmt.Errorf("bad destination %v port %d", addr, port)
	}
	return netip.AddrPortFrom(addr.Unmap(), port), msg[1+n+2:], nil
}
