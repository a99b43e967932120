package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
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
	raw      syscall.RawConn
	held     int          // bytes at the front of our queue that are the held byte, 0 or 1
	inFlight atomic.Int64 // bytes copyTo has taken off the queue and not yet written
}

// callerSendBuffer is the SO_SNDBUF asked for the caller's end (Linux
// caps it at net.core.wmem_max, then doubles it: 416 KiB by default,
// against 208 KiB unset). A writer blocked on a full buffer is woken only
// once what it has queued falls to a quarter of the buffer (unix_writable
// in net/unix/af_unix.c), and the held byte keeps its whole kernel buffer
// queued: with the default size, the 64 KiB buffers of sendfile and
// splice stayed above that quarter, and the writer slept forever. With 4
// KiB pages a quarter of this size is above any buffer a write or splice
// makes; with 64 KiB pages (some aarch64 and ppc64le kernels) it is not
// (docs/architecture.md).
const callerSendBuffer = 256 << 10

// newPairEnd makes a connection's socketpair: ours, and the caller's
// descriptor (which it then owns).
func newPairEnd() (*pairEnd, int, error) { return openPairEnd(holdByte) }

// openPairEnd is newPairEnd with the way to hold a byte given: tests pass
// one that holds nothing, as on a system without SO_PEEK_OFF.
func openPairEnd(hold func(mine, theirs int) (int, error)) (*pairEnd, int, error) {
	mine, theirs, err := socketpair(unix.SOCK_STREAM)
	if err != nil {
		return nil, -1, err
	}
	if err := unix.SetsockoptInt(theirs, unix.SOL_SOCKET, unix.SO_SNDBUF, callerSendBuffer); err != nil {
		closeFD(mine)
		closeFD(theirs)
		return nil, -1, fmt.Errorf("socketpair: SO_SNDBUF: %w", err)
	}
	held, err := hold(mine, theirs)
	if err != nil {
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
	return &pairEnd{File: f, raw: raw, held: held}, theirs, nil
}

// copyTo writes what the caller sends to w until the caller's EOF, or,
// once draining reports true, until nothing more is queued (and from then
// on the caller's writes fail: see takeLast). It returns nil
// then; an error of w's from remoteSideError, of ours from callerSideError.
// buf is the copy buffer.
func (p *pairEnd) copyTo(w io.Writer, buf *copyBuffer, draining func() bool) error {
	for {
		if buf.large != nil && p.pending() == 0 {
			buf.release() // about to wait: wait with the small one
		}
		data, err := p.takeWait(buf.get())
		if errors.Is(err, os.ErrDeadlineExceeded) && draining() {
			data, err = p.takeLast(buf.get())
			if errors.Is(err, unix.EAGAIN) {
				return nil // all the caller had written is out
			}
		}
		if err != nil {
			return callerSideError(err)
		}
		if len(data) == 0 {
			return nil
		}
		p.inFlight.Store(int64(len(data)))
		if _, err := w.Write(data); err != nil {
			return remoteSideError(err)
		}
		p.inFlight.Store(0)
		buf.used(len(data))
	}
}

// takeWait waits for data from the caller and takes it off the queue (see
// take). No data is the caller's EOF.
func (p *pairEnd) takeWait(buf []byte) (data []byte, err error) {
	rerr := p.raw.Read(func(fd uintptr) bool {
		data, err = p.take(int(fd), buf)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return nil, rerr
	}
	return data, err
}

// takeLast ends the caller's sending and takes what it wrote before: on
// Linux it shuts down our receiving side first (endSending), so that from
// then on the caller's writes fail with EPIPE instead of piling up where
// nobody reads them, then takes what is left. No data (and no error)
// means all the caller wrote is out; EAGAIN too, where nothing ends the
// caller's sending.
func (p *pairEnd) takeLast(buf []byte) (data []byte, err error) {
	cerr := p.raw.Control(func(fd uintptr) {
		if err = endSending(int(fd)); err == nil {
			data, err = p.take(int(fd), buf)
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return data, err
}

// take moves the caller's next data into buf and returns it: past the
// held byte if there is one (takeHeld), plainly if not. No data is the
// caller's EOF; EAGAIN means nothing is queued.
func (p *pairEnd) take(fd int, buf []byte) ([]byte, error) {
	if p.held == 0 {
		return takePlain(fd, buf)
	}
	return takeHeld(fd, buf)
}

// takePlain reads the caller's next data into buf, with nothing held to
// peek past.
func takePlain(fd int, buf []byte) ([]byte, error) {
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil, err
	}
	return buf[:n], nil
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

// pending is how many bytes the caller wrote that were not handed to the
// netstack yet.
func (p *pairEnd) pending() int64 {
	var n int
	_ = p.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), inqIoctl); err == nil {
			n = v
		}
	})
	return max(int64(n-p.held), 0) + p.inFlight.Load()
}

// CloseWrite half-closes: the caller reads EOF and can still write.
func (p *pairEnd) CloseWrite() error {
	var err error
	if cerr := p.raw.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_WR) }); cerr != nil {
		return cerr
	}
	return err
}
