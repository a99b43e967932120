package main

import (
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// bridgeBufSize is the copy buffer of each direction of a bridge while
// data keeps coming; quietBufSize the one it waits with (copyBuffer).
const (
	bridgeBufSize = 256 << 10
	quietBufSize  = 4 << 10
)

// A bridge joins a tailnet TCP connection ("remote") to one end of a
// socketpair ("local", ours); the caller holds the other end. Two
// goroutines copy bytes, one each way, and it keeps two promises
// (docs/reliability.md):
//
//   - Close delivers. What the caller wrote before it closed (or
//     half-closed) its socket is sent, then a FIN. The bridge stays with its
//     server until the peer has acknowledged all of it, so that the
//     server's close can wait for it (server.shutdown).
//   - An abort is an error. When the tailnet side ends in anything but the
//     peer's FIN (a reset, a vanished peer's timeout, the node closed,
//     the linger time over), the caller's reads fail with ECONNRESET rather
//     than reaching end-of-file. local keeps one byte the caller never sent
//     unread for this (pairend_linux.go): closing an AF_UNIX socket with
//     unread data makes its peer's reads fail with ECONNRESET, while a clean
//     end reads that byte first and the caller sees EOF.
//
// Why an abort happened is kept by the server (fates.go) for
// tailnet_conn_error, so the caller can tell a timeout from a reset.
type bridge struct {
	id     int64
	remote net.Conn
	ep     tcpip.Endpoint // remote's netstack endpoint; nil if it has none
	local  *pairEnd
	peer   string   // for log lines: RemoteAddr is gone after a reset
	fates  *fateLog // the server's, told before the caller can see an abort
	logf   func(format string, args ...any)

	draining atomic.Bool // the server is closing: send what the caller wrote so far, then a FIN
	sent     atomic.Bool // the caller's data and the FIN are with the netstack
	gotFIN   atomic.Bool // the peer's FIN reached the caller as EOF

	echoWait time.Duration // see endWith

	lostMu sync.Mutex // serializes delivery's look at the endpoint (settle and the server's close)
	lost   error      // what delivery found, once it found an abort

	endOnce sync.Once
	ended   chan struct{} // closed by end
	fate    error         // why it ended: nil for a clean end; read after ended is closed
	cut     int64         // bytes thrown away by an abort
}

// newBridge makes a bridge for remote (the peer's address given as text:
// RemoteAddr is nil once a connection is reset) and returns the caller's
// descriptor. It takes ownership of remote. Nothing runs until start.
func newBridge(id int64, remote net.Conn, peer string, fates *fateLog, logf func(string, ...any)) (*bridge, int, error) {
	ep := tcpEndpoint(remote)
	if err := boundDeadPeer(ep); err != nil { // see deadpeer.go
		logf("connection with %s: no keepalive: %v", peer, err)
	}
	local, theirs, err := newPairEnd()
	if err != nil {
		remote.Close()
		return nil, -1, err
	}
	b := &bridge{
		id: id, remote: remote, ep: ep, local: local, peer: peer, fates: fates, logf: logf,
		echoWait: echoWait, ended: make(chan struct{}),
	}
	return b, theirs, nil
}

// start runs the copiers; onDone runs once the bridge has ended (settle),
// in the goroutine of the copier that stops last (no third goroutine
// waits for them: with a thousand connections its stacks alone were
// megabytes).
func (b *bridge) start(onDone func(*bridge)) {
	var running atomic.Int32
	running.Store(2)
	finish := func() {
		if running.Add(-1) != 0 {
			return
		}
		defer onDone(b) // even after a panic below: close waits for it
		defer recoverGoroutine("connection", b.logf, b.abortAfterPanic)
		b.settle()
	}
	go func() { defer finish(); b.outbound() }()
	go func() { defer finish(); b.inbound() }()
}

// copyBuffers recycles the large copy buffers. A fresh buffer per
// direction per connection had to be zeroed and then collected: for short
// connections, most of the Go CPU time of setting one up.
var copyBuffers = sync.Pool{New: func() any {
	buf := make([]byte, bridgeBufSize)
	return &buf
}}

// A copyBuffer is what one direction of a bridge reads into: a small
// buffer of its own while the connection is quiet, and a large one from
// copyBuffers while reads keep filling the small one. Before a read that
// would wait (nothing queued), the copier gives the large one back. A
// copier spends most of its life blocked in a read; holding 256 KiB there
// cost every open connection 512 KiB of Go heap, resident once traffic
// had touched the pooled buffers (500 connection pairs in one process,
// idle after 256 KiB each way: 860 MiB of RSS), and a heap that size
// also let the GC wait that much longer.
type copyBuffer struct {
	quiet []byte
	large *[]byte // from copyBuffers, or nil
	pool  *sync.Pool
}

// newCopyBuffer returns a quiet buffer of size that grows into buffers
// from pool (or never, with a nil pool).
func newCopyBuffer(size int, pool *sync.Pool) *copyBuffer {
	return &copyBuffer{quiet: make([]byte, size), pool: pool}
}

// get is the buffer for the next read.
func (c *copyBuffer) get() []byte {
	if c.large != nil {
		return *c.large
	}
	return c.quiet
}

// used says that the last read into get() returned n bytes, and that they
// have been passed on: a full quiet buffer means more is coming, so the
// next read gets a large one; a read the quiet one would have held gives
// the large one back. (Full is one byte short when the pair end holds a
// byte: takeHeld reads into all but the first byte of its buffer.)
func (c *copyBuffer) used(n int) {
	full := len(c.quiet) - 1
	switch {
	case c.large == nil && n >= full && c.pool != nil:
		c.large = c.pool.Get().(*[]byte)
	case c.large != nil && n < full:
		c.release()
	}
}

// grow takes a large buffer now, with the first n bytes of the quiet one
// copied to its start, and returns it.
func (c *copyBuffer) grow(n int) []byte {
	c.large = c.pool.Get().(*[]byte)
	copy(*c.large, c.quiet[:n])
	return *c.large
}

// release gives the large buffer back, if it has one.
func (c *copyBuffer) release() {
	if c.large != nil {
		c.pool.Put(c.large)
		c.large = nil
	}
}

// outbound sends what the caller writes to the peer, then a FIN: after the
// caller's EOF, or once a draining server has sent everything the caller
// had written.
func (b *bridge) outbound() {
	defer recoverGoroutine("bridge", b.logf, func() { b.end(errInternalAbort) })
	buf := newCopyBuffer(quietBufSize, &copyBuffers)
	defer buf.release()
	err := b.local.copyTo(b.remote, buf, b.draining.Load)
	if err == nil {
		err = remoteSideError(closeWrite(b.remote))
	}
	if err != nil {
		b.endWith(err)
		return
	}
	b.sent.Store(true)
}

// inbound hands what the peer sends to the caller; the peer's FIN, and
// nothing else, becomes the caller's EOF.
func (b *bridge) inbound() {
	defer recoverGoroutine("bridge", b.logf, func() { b.end(errInternalAbort) })
	buf := newCopyBuffer(quietBufSize, &copyBuffers)
	defer buf.release()
	for {
		if buf.large != nil && b.ep != nil && b.ep.Readiness(waiter.ReadableEvents) == 0 {
			buf.release() // about to wait: wait with the small one
		}
		data := buf.get()
		n, err := b.remote.Read(data)
		if err == nil && n == len(data) && buf.large == nil && buf.pool != nil && b.ep != nil &&
			b.ep.Readiness(waiter.ReadableEvents) != 0 {
			// A burst after a wait filled the quiet buffer and more is
			// there: read it after those bytes, and write them together.
			data = buf.grow(n)
			m, rerr := b.remote.Read(data[n:])
			n, err = n+m, rerr
		}
		if n > 0 {
			if _, werr := b.local.Write(data[:n]); werr != nil {
				b.end(callerSideError(werr))
				return
			}
			buf.used(n)
		}
		// Through TLS, an echoed EOF in the middle of a record is
		// io.ErrUnexpectedEOF. (A FIN read just before an abort is taken
		// for an echo too: the abort did happen.)
		if (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) && b.aborted() {
			b.endWith(errEchoedEOF) // not the peer's FIN
			return
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.endWith(remoteSideError(err))
			return
		}
	}
	if b.isEnded() { // our own abort ended the read, not the peer's FIN
		return
	}
	if err := b.local.CloseWrite(); err != nil {
		b.end(callerSideError(err))
		return
	}
	b.gotFIN.Store(true)
}

// drain asks the bridge to finish as the server closes: the caller's data
// queued so far goes out, then a FIN. It wakes the outbound copier if it
// waits for the caller.
func (b *bridge) drain() {
	b.draining.Store(true)
	b.local.SetReadDeadline(time.Now())
}

// delivery reports whether the peer has acknowledged everything we sent,
// FIN included, and if it never will because the netstack aborted the
// connection first, why (the fate to end the bridge with). The reason is
// the one gVisor keeps for the next call on the endpoint, which reading
// it clears: so it is read under lostMu and kept, for settle and the
// server's close may both ask. A copier that met the abort took it and
// ends the bridge itself (endWith); then the fate is errLostUnacknowledged.
func (b *bridge) delivery() (delivered bool, fate error) {
	if !b.sent.Load() {
		return false, nil
	}
	if b.ep == nil {
		return true, nil
	}
	b.lostMu.Lock()
	defer b.lostMu.Unlock()
	if b.lost != nil {
		return false, b.lost
	}
	delivered, b.lost = b.lookAtEndpoint()
	return delivered, b.lost
}

// lookAtEndpoint is delivery's reading of the endpoint's state.
func (b *bridge) lookAtEndpoint() (delivered bool, fate error) {
	switch tcp.EndpointState(b.ep.State()) {
	case tcp.StateFinWait2, tcp.StateTimeWait:
		return true, nil
	case tcp.StateClose:
		// A clean end after LAST-ACK, or a RST in CLOSE-WAIT, which gVisor
		// turns into CLOSED with ErrAborted (tcp.Endpoint.handleReset) while
		// our data or FIN may still wait for the peer's window. (Any other
		// error is a soft one, from an ICMP message.)
		if _, reset := b.ep.LastError().(*tcpip.ErrAborted); reset {
			return false, errPeerReset
		}
		return true, nil
	case tcp.StateError:
		if reason := b.ep.LastError(); reason != nil {
			return false, remoteSideError(errors.New(reason.String()))
		}
		return false, errLostUnacknowledged
	}
	return false, nil
}

// end ends the bridge, once: cleanly (fate nil: everything was delivered
// both ways), as its server closes after our side was all delivered
// (errDelivered), or by aborting (any other fate: what was not delivered
// is cut). Unless the end is clean the peer gets a RST, so that it learns
// at once that nothing more will come or be read. After errDelivered that
// is harmless: the peer has acknowledged our FIN, and a RST in CLOSE_WAIT
// leaves its reader at EOF (in gVisor as in Linux). The copiers are woken;
// settle then closes the caller's end. Only the first call counts.
func (b *bridge) end(fate error) {
	b.endOnce.Do(func() {
		b.fate = fate
		if fate != nil {
			b.fates.record(b.id, fate)
		}
		switch fate {
		case nil:
			b.remote.Close() // all acknowledged: nothing more is sent
		case errDelivered:
			resetConn(b.remote, b.ep)
		default:
			b.cut = b.local.pending() + sendQueued(b.ep)
			resetConn(b.remote, b.ep)
		}
		close(b.ended)
		now := time.Now()
		b.local.SetDeadline(now)
		b.remote.SetDeadline(now)
	})
}

// echoWait bounds how long a copier that met only the echo of an abort
// waits for the other copier to end the bridge with its reason (endWith):
// that one is on its way from the netstack call that returned it.
const echoWait = 2 * time.Second

// endWith ends the bridge with the fate a copier met. gVisor reports an
// aborted endpoint's reason once, to the first Read or Write after the
// abort (tcp.Endpoint.hardErrorLocked); later calls meet only an echo of
// it: "endpoint is closed for send", or through gonet io.EOF, which is no
// FIN. A copier that meets an echo asks the endpoint for the reason
// (LastError: the reason if no call has taken it, else, after a timeout,
// the timeout); failing that, it leaves the ending to the other copier,
// which took the reason, so that the caller learns it (a timeout is
// TimeoutError, not a reset) and never reads end-of-file for an abort.
// It waits for that at most b.echoWait.
func (b *bridge) endWith(fate error) {
	var echo echoError
	if b.aborted() && errors.As(fate, &echo) {
		if reason := b.ep.LastError(); reason != nil {
			fate = remoteSideError(errors.New(reason.String()))
		} else {
			select {
			case <-b.ended:
				return
			case <-time.After(b.echoWait):
			}
		}
	}
	b.end(fate)
}

// aborted reports whether the netstack has aborted the connection (a
// reset, a timeout, an abort of its own), whichever copier learnt why.
func (b *bridge) aborted() bool {
	return b.ep != nil && tcp.EndpointState(b.ep.State()) == tcp.StateError
}

// abortAfterPanic ends a bridge whose settle panicked: the peer gets a
// RST and the caller ECONNRESET, as for any abort, never a clean end.
func (b *bridge) abortAfterPanic() {
	b.end(errInternalAbort)
	b.remote.Close()
	b.local.Close()
}

func (b *bridge) isEnded() bool {
	select {
	case <-b.ended:
		return true
	default:
		return false
	}
}

// settle runs when both copiers have stopped. A bridge whose copiers both
// finished cleanly waits until the peer has acknowledged everything (or
// the server aborts it) and the caller then reads EOF. After an abort the
// caller's end is closed with the held byte unread, so the caller reads
// ECONNRESET, unless the peer's FIN had reached it and our side was all
// delivered.
func (b *bridge) settle() {
	for wait := time.Millisecond; !b.isEnded(); wait = min(2*wait, 100*time.Millisecond) {
		if delivered, fate := b.delivery(); delivered || fate != nil {
			b.end(fate) // nil: a clean end
			break
		}
		select {
		case <-b.ended:
		case <-time.After(wait):
		}
	}
	b.end(nil) // a clean end, unless something ended it first
	if b.fate == nil || b.fate == errDelivered && b.gotFIN.Load() {
		b.local.release()
	}
	b.local.Close()
	if b.fate != nil && b.fate != errDelivered && b.fate != errCallerGone {
		b.logf("connection with %s aborted: %v", b.peer, b.fate)
	}
}

type closeWriter interface{ CloseWrite() error }

// closeWrite sends a FIN after the data written so far (over TLS, after a
// close_notify alert, which is all tls.Conn.CloseWrite sends).
func closeWrite(c net.Conn) error {
	cw, ok := c.(closeWriter)
	if !ok {
		return errors.New("no half-close")
	}
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if inner, ok := tc.NetConn().(closeWriter); ok {
			return inner.CloseWrite()
		}
	}
	return nil
}

// connText is the "REMOTE LOCAL" text for c, or an error if c was reset
// already (gVisor connections lose their addresses then).
func connText(c net.Conn) (string, error) {
	remote, local := c.RemoteAddr(), c.LocalAddr()
	if remote == nil || local == nil {
		return "", errorf(codeRefused, "connection reset before it could be used")
	}
	return remote.String() + " " + local.String(), nil
}

// recoverGoroutine keeps a panic in a goroutine we own from killing the
// host process: it is logged and cleanup runs instead.
func recoverGoroutine(what string, logf func(string, ...any), cleanup func()) {
	if p := recover(); p != nil {
		logf("internal error in %s goroutine (please report): %v\n%s", what, p, debug.Stack())
		cleanup()
	}
}
