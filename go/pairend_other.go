//go:build !linux

package main

import "golang.org/x/sys/unix"

// Without Linux's SO_PEEK_OFF and its reset-on-close of AF_UNIX sockets
// nothing is held: the copier reads plainly, and an abort reaches the
// caller as EOF (the caller can ask tailnet_conn_error; docs/reliability.md).
const heldBytes = 0

// inqIoctl asks how many bytes a socket's receive queue holds: FIONREAD,
// _IOR('f', 127, int) on macOS and the BSDs (x/sys/unix does not name it).
const inqIoctl = 0x4004667f

func holdByte(mine, theirs int) error { return nil }

// take reads the caller's next data into buf: nothing is held here, so
// there is nothing to peek past. No data is the caller's EOF.
func take(fd int, buf []byte) ([]byte, error) {
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil, err
	}
	return buf[:n], nil
}
