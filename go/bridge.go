package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// bridgeBufSize is the copy buffer of each direction of a bridge.
const bridgeBufSize = 256 << 10

// bridge joins a tailnet connection to one end of a socketpair; the other
// end is handed to the caller. Two goroutines copy bytes, one a direction,
// passing half-closes through, and the bridge ends when both are done or
// when close is called.
type bridge struct {
	remote net.Conn // the tailnet side
	local  *pairEnd // our end of the socketpair
	done   chan struct{}
	logf   func(format string, args ...any)
	peer   string // for log lines; RemoteAddr is gone after a reset
}

// newBridge makes a bridge for remote (the peer's address given as text:
// RemoteAddr is nil once a connection is reset) and returns the caller's
// descriptor. It takes ownership of remote. Nothing runs until start.
func newBridge(remote net.Conn, peer string, logf func(string, ...any)) (*bridge, int, error) {
	if err := boundDeadPeer(remote); err != nil { // see deadpeer.go
		logf("connection with %s: no keepalive: %v", peer, err)
	}
	mine, theirs, err := socketpair(unix.SOCK_STREAM)
	if err != nil {
		remote.Close()
		return nil, -1, err
	}
	local, err := newPairEnd(mine)
	if err != nil {
		remote.Close()
		closeFD(theirs)
		return nil, -1, err
	}
	return &bridge{remote: remote, local: local, done: make(chan struct{}), logf: logf, peer: peer}, theirs, nil
}

// start runs the copiers; onDone runs once both have stopped, in the
// goroutine of the one that stops last (no third goroutine waits for them:
// with a thousand connections its stacks alone were megabytes).
func (b *bridge) start(onDone func(*bridge)) {
	var running atomic.Int32
	running.Store(2)
	finish := func() {
		if running.Add(-1) == 0 {
			b.close()
			close(b.done)
			onDone(b)
		}
	}
	go func() { defer finish(); b.pump(b.local, b.remote) }()
	go func() { defer finish(); b.pump(b.remote, b.local) }()
}

// copyBuffers recycles the copy buffers of finished pumps. A fresh buffer
// per direction per connection had to be zeroed and then collected: for
// short connections, most of the Go CPU time of setting one up.
var copyBuffers = sync.Pool{New: func() any {
	buf := make([]byte, bridgeBufSize)
	return &buf
}}

// pump copies src to dst until EOF, then half-closes dst. Any error other
// than EOF tears the whole bridge down so the other direction stops too.
func (b *bridge) pump(dst, src halfCloser) {
	defer recoverGoroutine("bridge", b.logf, b.close)
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *buf)
	if err == nil {
		err = closeWrite(dst)
		if err == nil {
			return
		}
	}
	b.logf("connection with %s: copy ended after %d bytes: %v", b.peer, n, err)
	b.close()
}

// close aborts both sides; the copiers then return.
func (b *bridge) close() {
	b.remote.Close()
	b.local.Close()
}

// halfCloser is either side of a bridge: a netstack connection or our
// socketpair end.
type halfCloser interface {
	io.Reader
	io.Writer
}

func closeWrite(c halfCloser) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("no half-close")
}

// pairEnd is our end of a connection's socketpair, driven by Go's poller.
// It is an *os.File rather than a net.Conn: net.FileConn duplicates the
// descriptor and asks the kernel for its type and both addresses, five
// system calls per connection for nothing the bridge uses.
type pairEnd struct{ *os.File }

// newPairEnd takes ownership of fd (closing it on error).
func newPairEnd(fd int) (*pairEnd, error) {
	if err := unix.SetNonblock(fd, true); err != nil { // so os.NewFile uses the poller
		closeFD(fd)
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	return &pairEnd{os.NewFile(uintptr(fd), "tailnet-conn")}, nil
}

// CloseWrite half-closes: the caller reads EOF and can still write.
func (p *pairEnd) CloseWrite() error {
	raw, err := p.SyscallConn()
	if err != nil {
		return err
	}
	var shutErr error
	if err := raw.Control(func(fd uintptr) { shutErr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return shutErr
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo so io.CopyBuffer uses our
// buffer (and its size) instead of a splice path that may pick its own.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

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
