//go:build !linux

package main

import "golang.org/x/sys/unix"

// Without Linux's SO_PEEK_OFF and its reset-on-close of AF_UNIX sockets
// nothing is held: the copier reads plainly, and an abort reaches the
// caller as EOF (the caller can ask tailnet_conn_error; docs/reliability.md).
const heldBytes = 0

// inqIoctl asks how many bytes a socket's receive queue holds.
const inqIoctl = unix.FIONREAD

func holdByte(mine, theirs int) error { return nil }

// peek reads (takes) data: nothing is held here, so there is nothing to
// peek past.
func peek(fd int, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	return unix.Read(fd, buf)
}

// discard has nothing to do: peek took the data already.
func discard(fd int, buf []byte, n int) error { return nil }
