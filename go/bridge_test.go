package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gvloopback "gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// netstackPair returns both ends of a TCP connection on a gVisor stack of
// its own (loopback only): the netstack side of a bridge, as tsnet's
// connections are, without a node; and the dialed end's waiter queue.
func netstackPair(t *testing.T) (dialed, accepted *gonet.TCPConn, events *waiter.Queue) {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	t.Cleanup(func() { s.Close(); s.Wait() })
	if err := s.CreateNIC(1, gvloopback.New()); err != nil {
		t.Fatal(err)
	}
	addr := tcpip.AddrFrom4([4]byte{127, 0, 0, 1})
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
	full := tcpip.FullAddress{NIC: 1, Addr: addr, Port: 80}
	ln, err := gonet.ListenTCP(s, full, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	events = new(waiter.Queue)
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, events)
	if terr != nil {
		t.Fatal(terr)
	}
	entry, connected := waiter.NewChannelEntry(waiter.WritableEvents)
	events.EventRegister(&entry)
	defer events.EventUnregister(&entry)
	if terr := ep.Connect(full); terr != nil {
		if _, started := terr.(*tcpip.ErrConnectStarted); !started {
			t.Fatal(terr)
		}
		<-connected
	}
	dialed = gonet.NewTCPConn(events, ep)
	c := <-got
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { dialed.Close(); c.Close() })
	return dialed, c.(*gonet.TCPConn), events
}

// resetByPeer makes peer abort the connection with a RST and returns once
// conn's endpoint is aborted, its reason (a reset) taken by one Read: what
// a bridge's other copier would have done.
func resetByPeer(t *testing.T, conn, peer *gonet.TCPConn) {
	t.Helper()
	resetConn(peer, tcpEndpoint(peer))
	conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard
	if _, err := conn.Read(make([]byte, 1)); err == nil || err == io.EOF || !errors.Is(remoteSideError(err), errPeerReset) {
		t.Fatalf("read after the peer's RST: %v, want the reset", err)
	}
	conn.SetReadDeadline(time.Time{})
	if s := tcp.EndpointState(tcpEndpoint(conn).State()); s != tcp.StateError {
		t.Fatalf("endpoint state after the RST: %v", s)
	}
}

// awaitAbort returns once the RST has reached ep (its reason untaken).
func awaitAbort(t *testing.T, ep tcpip.Endpoint, events *waiter.Queue) {
	t.Helper()
	entry, ch := waiter.NewChannelEntry(waiter.EventHUp | waiter.EventErr)
	events.EventRegister(&entry)
	defer events.EventUnregister(&entry)
	if tcp.EndpointState(ep.State()) == tcp.StateError {
		return
	}
	select {
	case <-ch:
	case <-time.After(time.Minute): // a hang guard
		t.Fatal("the RST never arrived")
	}
}

// unstartedBridge bridges conn without running its copiers.
func unstartedBridge(t *testing.T, conn net.Conn) *bridge {
	t.Helper()
	b, fd, err := newBridge(1, conn, "peer", &fateLog{}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.local.Close(); syscall.Close(fd) })
	return b
}

// TestAnAbortWhoseReasonWasTakenIsNoEOF: gVisor reports an aborted
// endpoint's reason once; the next Read returns io.EOF through gonet. A
// bridge whose other copier took the reason must still end in an abort
// (ECONNRESET for the caller), never a clean end-of-file. Before endWith,
// the caller read EOF here.
func TestAnAbortWhoseReasonWasTakenIsNoEOF(t *testing.T) {
	conn, peer, _ := netstackPair(t)
	resetByPeer(t, conn, peer)
	fates := &fateLog{}
	b, fd, err := newBridge(1, conn, "peer", fates, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing else will end it: the wait runs out.
	b.echoWait = 50 * time.Millisecond
	// Non-blocking, so that the read deadline below works.
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	caller := os.NewFile(uintptr(fd), "caller")
	defer caller.Close()
	done := make(chan struct{})
	b.start(func(*bridge) { close(done) })
	caller.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard
	n, err := caller.Read(make([]byte, 16))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("caller's read = %d, %v; want ECONNRESET", n, err)
	}
	caller.Close() // the outbound copier's EOF
	<-done
	var echo echoError
	if fate := fates.lookup(1); !errors.As(fate, &echo) || classify(fate) != codeReset {
		t.Fatalf("fate = %v, want a lost connection (reset)", fate)
	}
}

// TestAnEchoWaitsForTheReason: a copier that met only an echo leaves the
// fate to the other copier, which took the reason (a timeout stays a
// timeout); failing that, it asks the endpoint.
func TestAnEchoWaitsForTheReason(t *testing.T) {
	echo := remoteSideError(errors.New((&tcpip.ErrClosedForSend{}).String()))
	if _, ok := echo.(echoError); !ok {
		t.Fatalf("remoteSideError(closed for send) = %#v, want an echoError", echo)
	}
	if _, ok := remoteSideError(errors.New("no route to host")).(echoError); ok {
		t.Fatal("an error that is no echo was taken for one")
	}

	t.Run("the other copier's reason wins", func(t *testing.T) {
		conn, peer, _ := netstackPair(t)
		resetByPeer(t, conn, peer)
		b := unstartedBridge(t, conn)
		b.echoWait = time.Minute // the other copier must end it first
		go b.end(errPeerTimeout)
		b.endWith(echo)
		if b.fate != errPeerTimeout {
			t.Fatalf("fate = %v, want the other copier's %v", b.fate, errPeerTimeout)
		}
	})
	t.Run("untaken, the endpoint's reason", func(t *testing.T) {
		conn, peer, events := netstackPair(t)
		resetConn(peer, tcpEndpoint(peer))
		awaitAbort(t, tcpEndpoint(conn), events)
		b := unstartedBridge(t, conn)
		b.echoWait = time.Minute                      // the endpoint still has the reason: no wait
		b.endWith(remoteSideError(conn.CloseWrite())) // a half-close takes no reason
		if b.fate != errPeerReset {
			t.Fatalf("fate = %v, want %v", b.fate, errPeerReset)
		}
	})
}

// TestAResetBeforeTheAcknowledgementIsNoCleanEnd: the caller writes and
// closes; the bridge hands everything and the FIN to the netstack, then
// the peer, which has read none of it, resets the connection before it
// has acknowledged it all. The bridge must end in that abort, recorded
// for tailnet_conn_error, whichever goroutine meets it: settle (both
// copiers done), or the inbound copier still waiting for the peer's FIN.
// Before, delivery took an aborted endpoint for one that had delivered
// (gVisor's state after a RST is ERROR, or CLOSED in CLOSE-WAIT), and
// settle ended such a bridge cleanly.
func TestAResetBeforeTheAcknowledgementIsNoCleanEnd(t *testing.T) {
	for _, peerFIN := range []bool{true, false} {
		t.Run(fmt.Sprintf("peer FIN %v", peerFIN), func(t *testing.T) {
			conn, peer, _ := netstackPair(t)
			// A small receive window, so that most of what is written
			// below stays in our send queue, which takes it all.
			tcpEndpoint(peer).SocketOptions().SetReceiveBufferSize(4096, true)
			if peerFIN {
				if err := peer.CloseWrite(); err != nil { // the inbound copier ends first
					t.Fatal(err)
				}
			}
			fates := &fateLog{}
			b, fd, err := newBridge(1, conn, "peer", fates, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			caller := os.NewFile(uintptr(fd), "caller")
			done := make(chan struct{})
			b.start(func(*bridge) { close(done) })

			// More than the peer's receive window: the rest stays in our
			// send queue, unacknowledged, with the FIN behind it.
			if _, err := caller.Write(make([]byte, 256<<10)); err != nil {
				t.Fatal(err)
			}
			caller.Close()
			guard := time.After(time.Minute) // a hang guard
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for !b.sent.Load() {
				select {
				case <-tick.C:
				case <-guard:
					t.Fatal("the bridge never handed the FIN to the netstack")
				}
			}
			if delivered, _ := b.delivery(); delivered { // the window is closed: the FIN waits behind the data
				t.Fatalf("delivered in state %v; want data and FIN unacknowledged",
					tcp.EndpointState(tcpEndpoint(conn).State()))
			}

			resetConn(peer, tcpEndpoint(peer))
			select {
			case <-done:
			case <-guard:
				t.Fatal("the bridge never ended")
			}
			if b.fate != errPeerReset || fates.lookup(1) != errPeerReset {
				t.Fatalf("fate = %v, recorded %v; want %v", b.fate, fates.lookup(1), errPeerReset)
			}
		})
	}
}

// TestDeliveryOfAnAbortedEndpoint: an endpoint in ERROR has not delivered,
// and delivery keeps the reason it read (reading it clears it in gVisor),
// so that settle and a closing server, which may both ask, agree.
func TestDeliveryOfAnAbortedEndpoint(t *testing.T) {
	conn, peer, events := netstackPair(t)
	resetConn(peer, tcpEndpoint(peer))
	awaitAbort(t, tcpEndpoint(conn), events)
	b := unstartedBridge(t, conn)
	b.sent.Store(true) // as after the caller's data and FIN went to the netstack
	for range 2 {
		if delivered, fate := b.delivery(); delivered || fate != errPeerReset {
			t.Fatalf("delivery() = %v, %v; want false, %v", delivered, fate, errPeerReset)
		}
	}
}
