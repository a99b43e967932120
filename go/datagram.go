package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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
// header (datagram_header.go), the source of a datagram it delivers or the
// destination of one it is given. listen_packet binds its addresses and
// port in datagram_listen.go.
//
// Empty datagrams are real datagrams. To tell an empty message from
// end-of-file, our end (and the caller's, for a connected socket) has
// SO_PASSCRED set: Linux then attaches credentials to every message read
// there, so a read of zero bytes without them is end-of-file
// (datagram_linux.go; elsewhere an empty datagram reads as end-of-file).
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

func isRefused(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || strings.Contains(err.Error(), "connection was refused")
}
