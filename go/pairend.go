package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pairEnd is our end of a connection's socketpair, driven by Go's poller.
// It is an *os.File rather than a net.Conn: net.FileConn duplicates the
// descriptor and asks the kernel for its type and both addresses, five
// system calls per connection for nothing the bridge uses.
//
// On Linux it holds one byte the caller never wrote unread at the front
// of its receive queue for as long as the connection lives (the held
// byte, pairend_linux.go): then closing it makes the caller's reads fail
// with ECONNRESET (an abort), unless release read everything first (a
// clean end, the caller reads EOF).
type pairEnd struct {
	*os.File
	raw syscall.RawConn
}

// newPairEnd makes a connection's socketpair: ours, and the caller's
// descriptor (which it then owns).
func newPairEnd() (*pairEnd, int, error) {
	mine, theirs, err := socketpair(unix.SOCK_STREAM)
	if err != nil {
		return nil, -1, err
	}
	if err := holdByte(mine, theirs); err != nil {
		closeFD(mine)
		closeFD(theirs)
		return nil, -1, err
	}
	if err := unix.SetNonblock(mine, true); err != nil { // so os.NewFile uses the poller
		closeFD(mine)
		closeFD(theirs)
		return nil, -1, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(mine), "tailnet-conn")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		closeFD(theirs)
		return nil, -1, err
	}
	return &pairEnd{File: f, raw: raw}, theirs, nil
}

// copyTo writes what the caller sends to w until the caller's EOF, or,
// once draining reports true, until nothing more is queued. It returns nil
// then; an error of w's from remoteSideError, of ours from callerSideError.
func (p *pairEnd) copyTo(w io.Writer, buf []byte, draining func() bool) error {
	for {
		n, err := p.peekWait(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && draining() {
			n, err = p.peekNow(buf)
			if errors.Is(err, unix.EAGAIN) {
				return nil // all the caller had written is out
			}
		}
		if err != nil {
			return callerSideError(err)
		}
		if n == 0 {
			return nil
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return remoteSideError(err)
		}
		if err := p.consume(buf, n); err != nil {
			return callerSideError(err)
		}
	}
}

// peekWait waits for data from the caller and copies it into buf (without
// taking it off the queue: see consume). 0 bytes is the caller's EOF.
func (p *pairEnd) peekWait(buf []byte) (n int, err error) {
	rerr := p.raw.Read(func(fd uintptr) bool {
		n, err = peek(int(fd), buf)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

// peekNow is peekWait without the wait: EAGAIN if nothing is queued.
func (p *pairEnd) peekNow(buf []byte) (n int, err error) {
	cerr := p.raw.Control(func(fd uintptr) { n, err = peek(int(fd), buf) })
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

// consume takes n bytes that peek returned off the queue.
func (p *pairEnd) consume(buf []byte, n int) error {
	var err error
	cerr := p.raw.Control(func(fd uintptr) { err = discard(int(fd), buf, n) })
	if cerr != nil {
		return cerr
	}
	return err
}

// release reads whatever is left, the held byte included, so that closing
// ours leaves the caller at EOF rather than reset.
func (p *pairEnd) release() {
	buf := make([]byte, 4096)
	_ = p.raw.Control(func(fd uintptr) {
		for {
			if n, err := unix.Read(int(fd), buf); n <= 0 || err != nil {
				return
			}
		}
	})
}

// pending is how many bytes the caller wrote that were not sent on yet.
func (p *pairEnd) pending() int64 {
	var n int
	_ = p.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), inqIoctl); err == nil {
			n = v
		}
	})
	return max(int64(n-heldBytes), 0)
}

// CloseWrite half-closes: the caller reads EOF and can still write.
func (p *pairEnd) CloseWrite() error {
	var err error
	if cerr := p.raw.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_WR) }); cerr != nil {
		return cerr
	}
	return err
}
