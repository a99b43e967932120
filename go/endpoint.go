package main

import (
	"net"
	"reflect"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// The netstack side of a bridged connection: its gVisor endpoint, read
// for the things gonet.TCPConn does not offer (socket options, state,
// unacknowledged bytes). gVisor is pinned by go.sum, and
// TestDeadPeerOptions and TestEndpointInternals fail if a field moves.

// tcpEndpoint returns the gVisor endpoint behind a netstack connection
// (or a TLS connection over one), or nil. gonet.TCPConn keeps it in an
// unexported field, so it is read by reflection.
func tcpEndpoint(c net.Conn) tcpip.Endpoint {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = tc.NetConn()
	}
	gc, ok := c.(*gonet.TCPConn)
	if !ok || gc == nil {
		return nil
	}
	f := reflect.ValueOf(gc).Elem().FieldByName("ep")
	if !f.IsValid() || f.Type() != reflect.TypeFor[tcpip.Endpoint]() {
		return nil
	}
	ep, _ := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(tcpip.Endpoint)
	return ep
}

// sendQueued is how many bytes ep holds that the peer has not
// acknowledged (gVisor's sndQueueInfo.SndBufUsed, which no option
// reports), or 0 if that cannot be read. For a log line: read unlocked.
func sendQueued(ep tcpip.Endpoint) int64 {
	if ep == nil {
		return 0
	}
	v := reflect.ValueOf(ep)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return 0
	}
	f := v.Elem().FieldByName("sndQueueInfo")
	if !f.IsValid() {
		return 0
	}
	if used := f.FieldByName("SndBufUsed"); used.IsValid() && used.CanInt() {
		return used.Int()
	}
	return 0
}

// resetConn aborts c with a RST (SO_LINGER 0, then close), as a kernel
// does for a socket closed with unread data.
func resetConn(c net.Conn, ep tcpip.Endpoint) {
	if ep != nil {
		ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // no TLS alert: it is an abort
		c = tc.NetConn()
	}
	c.Close()
}
