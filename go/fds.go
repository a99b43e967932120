package main

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketpair returns two connected AF_UNIX sockets of the given type, both
// close-on-exec and blocking. The caller owns both descriptors.
func socketpair(typ int) (a, b int, err error) {
	// ForkLock keeps a concurrent fork+exec in Go from inheriting the
	// descriptors before they are marked close-on-exec (portable to systems
	// without SOCK_CLOEXEC).
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds[0], fds[1], nil
}

// pipe returns a close-on-exec pipe.
func pipe() (r, w int, err error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return p[0], p[1], nil
}

// fileConn turns a raw socket descriptor into a net.Conn driven by Go's
// poller. It takes ownership of fd (closing it) whatever happens.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close() // FileConn dups the descriptor.
	return net.FileConn(f)
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
