package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Datagram (UDP) sockets keep their boundaries by travelling as messages of
// an AF_UNIX SOCK_SEQPACKET socketpair: one message, one datagram, in both
// directions. SEQPACKET rather than SOCK_DGRAM because a SOCK_DGRAM pair
// never tells one end that the other closed: with SEQPACKET the caller's
// close reaches us as end-of-file and ours reaches the caller the same way.
//
// A connected socket (tailnet_dial "udp") carries bare payloads. A packet
// socket (tailnet_listen_packet) prefixes each message with an address
// header, the source of a datagram it delivers or the destination of one it
// is given:
//
//	byte 0         n, the address length: 4 (IPv4) or 16 (IPv6)
//	bytes 1..n     the IP address, network byte order
//	2 bytes        the port, big-endian
//	the rest       the payload (may be empty)
//
// Empty datagrams are real datagrams. To tell an empty message from
// end-of-file, our end (and the caller's, for a connected socket) has
// SO_PASSCRED set: Linux then attaches credentials to every message read
// there, so a read of zero bytes without them is end-of-file
// (packet_linux.go; elsewhere an empty datagram reads as end-of-file).
//
// A message we cannot send (larger than maxDatagram, a bad header, an
// address family the socket has no address for, or refused by the network
// stack) is dropped, logged, and counted in droppedDatagrams: a datagram
// socket has no channel to report an error for one message. The Python
// package checks all of these before sending.

const (
	// maxDatagram is the largest payload sent or delivered: the largest UDP
	// payload over IPv4 (65535 - 20 - 8). Above 1252 bytes (the tailnet
	// MTU, 1280, less the headers) the network stack fragments it.
	maxDatagram = 65507
	// maxDatagram6 is the largest payload sent over IPv6: what fits the
	// tailnet MTU unfragmented (1280 - 40 - 8). Tailscale v1.102.5's
	// netstack drops the first fragment of every fragmented IPv6 packet it
	// receives (wgengine/netstack/gro.RXChecksumOffload checks the UDP
	// checksum of that fragment alone), so a larger IPv6 datagram would be
	// sent and then silently lost by any tsnet peer; this one too.
	maxDatagram6 = 1232
	// maxHeader is the longest address header (IPv6).
	maxHeader = 1 + 16 + 2
	// readSize is the read buffer: any UDP payload fits, so nothing is
	// truncated unseen.
	readSize = 1 << 16
)

// maxPayload is the largest datagram we send to addr.
func maxPayload(addr netip.Addr) int {
	if addr.Unmap().Is4() {
		return maxDatagram
	}
	return maxDatagram6
}

var droppedDatagrams atomic.Int64

// dgramSocket joins tailnet UDP endpoints to our end of a SEQPACKET pair.
type dgramSocket struct {
	conns  []net.PacketConn // one per address family (packet socket), or the one connected conn
	framed bool             // messages carry the address header
	ch     *net.UnixConn    // our end of the socketpair
	raw    syscall.RawConn  // ch's descriptor, for recvmsg (see readMsg)
	logf   func(format string, args ...any)

	closed atomic.Bool
	once   sync.Once
}

// newDgramSocket makes the socketpair for conns and returns the caller's
// descriptor. It takes ownership of conns. Nothing runs until startDgram.
func newDgramSocket(conns []net.PacketConn, framed bool, logf func(string, ...any)) (*dgramSocket, int, error) {
	d := &dgramSocket{conns: conns, framed: framed, logf: logf}
	mine, theirs, err := socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		d.closeConns()
		return nil, -1, err
	}
	if err := passCredentials(mine, theirs, !framed); err != nil {
		d.closeConns()
		closeFD(mine)
		closeFD(theirs)
		return nil, -1, err
	}
	c, err := fileConn(mine, "tailnet-udp")
	if err != nil {
		d.closeConns()
		closeFD(theirs)
		return nil, -1, err
	}
	d.ch = c.(*net.UnixConn)
	if d.raw, err = d.ch.SyscallConn(); err != nil {
		d.close()
		closeFD(theirs)
		return nil, -1, err
	}
	return d, theirs, nil
}

// startDgram runs a datagram socket for conns owned by s: one goroutine per
// conn delivers datagrams to the caller, one sends the caller's. The socket
// ends when the caller closes its end, on close, or when s closes.
func (s *server) startDgram(conns []net.PacketConn, framed bool) (*dgramSocket, int, error) {
	if err := s.enter(); err != nil {
		closeAll(conns)
		return nil, -1, err
	}
	d, fd, err := newDgramSocket(conns, framed, s.log.debugf)
	if err != nil {
		s.wg.Done()
		return nil, -1, err
	}
	stop := context.AfterFunc(s.ctx, d.close) // runs at once if s is closing
	var wg sync.WaitGroup
	for _, pc := range conns {
		wg.Go(func() { d.fromTailnet(pc) })
	}
	wg.Go(d.toTailnet)
	go func() {
		wg.Wait()
		stop()
		s.wg.Done()
	}()
	return d, fd, nil
}

// bridgeDatagrams hands a dialed UDP connection to a new connected datagram
// socket and returns the caller's descriptor. It takes ownership of c.
func (s *server) bridgeDatagrams(c net.Conn) (int, error) {
	pc, ok := c.(net.PacketConn)
	if !ok {
		c.Close()
		return -1, errorf(codeInternal, "dialed UDP connection %T is not a PacketConn", c)
	}
	_, fd, err := s.startDgram([]net.PacketConn{pc}, false)
	return fd, err
}

// fromTailnet delivers the datagrams pc receives to the caller.
func (d *dgramSocket) fromTailnet(pc net.PacketConn) {
	defer recoverGoroutine("udp", d.logf, d.close)
	defer d.close()
	buf := make([]byte, maxHeader+readSize)
	off := 0
	if d.framed {
		off = maxHeader // room to put the header in front
	}
	for {
		n, from, err := pc.ReadFrom(buf[off:])
		if err != nil {
			if d.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if isRefused(err) { // ICMP port unreachable for an earlier send
				continue
			}
			d.logf("udp: receive: %v", err)
			return
		}
		if n > maxDatagram {
			d.drop("received %d bytes from %v, more than %d", n, from, maxDatagram)
			continue
		}
		msg := buf[off : off+n]
		if d.framed {
			msg, err = prependHeader(buf[:off+n], off, from)
			if err != nil {
				d.drop("received from %v: %v", from, err)
				continue
			}
		}
		if _, err := d.ch.Write(msg); err != nil {
			return // the caller closed its end
		}
	}
}

// toTailnet sends the caller's messages until it closes its end.
func (d *dgramSocket) toTailnet() {
	defer recoverGoroutine("udp", d.logf, d.close)
	defer d.close()
	buf := make([]byte, maxHeader+readSize)
	oob := make([]byte, credentialsSpace)
	for {
		n, truncated, err := d.readMsg(buf, oob)
		if err != nil { // end-of-file, or closed
			return
		}
		if truncated {
			d.drop("message of more than %d bytes", len(buf))
			continue
		}
		if err := d.send(buf[:n]); err != nil {
			d.drop("%v", err)
		}
	}
}

// readMsg reads one message from the caller: its length and whether it
// was truncated; io.EOF once the caller has closed its end. (Not
// ReadMsgUnix: Go reports any zero-length read of a SEQPACKET socket as
// io.EOF, and an empty datagram is not one; only the missing credentials
// tell, see SO_PASSCRED above.)
func (d *dgramSocket) readMsg(buf, oob []byte) (n int, truncated bool, err error) {
	var oobn, flags int
	var rerr error
	err = d.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, false, err
	case rerr != nil:
		return 0, false, rerr
	case n == 0 && oobn == 0:
		return 0, false, io.EOF
	}
	return n, flags&unix.MSG_TRUNC != 0, nil
}

// send sends one message from the caller.
func (d *dgramSocket) send(msg []byte) error {
	if !d.framed {
		conn := d.conns[0].(net.Conn)
		if err := checkPayload(conn.RemoteAddr(), len(msg)); err != nil {
			return err
		}
		return writeDatagram(conn, func() error { _, err := conn.Write(msg); return err })
	}
	to, payload, err := parseHeader(msg)
	if err != nil {
		return err
	}
	if err := checkPayload(net.UDPAddrFromAddrPort(to), len(payload)); err != nil {
		return err
	}
	pc := d.connFor(to.Addr())
	if pc == nil {
		return fmt.Errorf("no local address of %v's family to send from", to.Addr())
	}
	return writeDatagram(pc, func() error { _, err := pc.WriteTo(payload, net.UDPAddrFromAddrPort(to)); return err })
}

// udpWriteWait bounds each try of a datagram write; see writeDatagram.
const udpWriteWait = 50 * time.Millisecond

// writeDatagram runs write (one datagram into gVisor) under a short write
// deadline and tries again after a timeout. gVisor's gonet UDPConn waits
// for "writable" by subscribing only after a write has found the send
// buffer full, so a wakeup that comes in between is lost, and with nothing
// else in flight the write would wait forever (the benchmarks' Go client
// hung so about once in five rounds of 50,000 datagrams). A retried write
// finds the drained buffer and goes through.
func writeDatagram(c interface{ SetWriteDeadline(time.Time) error }, write func() error) error {
	for {
		if err := c.SetWriteDeadline(time.Now().Add(udpWriteWait)); err != nil {
			return err
		}
		err := write()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
}

// checkPayload refuses a datagram of n bytes that to cannot receive.
func checkPayload(to net.Addr, n int) error {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return fmt.Errorf("unexpected peer address %T", to)
	}
	if limit := maxPayload(ua.AddrPort().Addr()); n > limit {
		return fmt.Errorf("datagram of %d bytes to %v exceeds the maximum of %d", n, to, limit)
	}
	return nil
}

// connFor is the conn whose local address has addr's family.
func (d *dgramSocket) connFor(addr netip.Addr) net.PacketConn {
	for _, pc := range d.conns {
		if local, ok := pc.LocalAddr().(*net.UDPAddr); ok && local.AddrPort().Addr().Unmap().Is4() == addr.Is4() {
			return pc
		}
	}
	return nil
}

func (d *dgramSocket) drop(format string, args ...any) {
	droppedDatagrams.Add(1)
	d.logf("udp: dropped a datagram: "+format, args...)
}

// close stops the socket: the caller's end reads end-of-file and the
// tailnet endpoints are released (their ports are free once close returns).
func (d *dgramSocket) close() {
	d.once.Do(func() {
		d.closed.Store(true)
		d.closeConns()
		d.ch.Close()
	})
}

func (d *dgramSocket) closeConns() { closeAll(d.conns) }

func closeAll(conns []net.PacketConn) {
	for _, pc := range conns {
		pc.Close()
	}
}

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

func isRefused(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || strings.Contains(err.Error(), "connection was refused")
}

// ---- listen_packet ----------------------------------------------------------

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
