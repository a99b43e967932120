package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// heldBytes is how many bytes at the front of our receive queue are the
// held byte rather than the caller's data.
const heldBytes = 1

// inqIoctl asks how many bytes a socket's receive queue holds.
const inqIoctl = unix.SIOCINQ

// holdByte puts the held byte at the front of our receive queue (writing
// it from the caller's end before the caller has it) and makes every peek
// start after it (SO_PEEK_OFF 1). From then on the copier reads by peeking
// and takes bytes off the queue only after they are sent on, always one
// fewer than it peeked (consume): the byte left at the front is one that
// was sent already, and the queue is never empty. Closing ours therefore
// always leaves unread data behind, which Linux reports to the caller as
// ECONNRESET (net/unix/af_unix.c, unix_release_sock), whatever the caller
// did meanwhile, a half-close included; release empties the queue first
// when the end is clean.
func holdByte(mine, theirs int) error {
	if _, err := unix.Write(theirs, []byte{0}); err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	if err := unix.SetsockoptInt(mine, unix.SOL_SOCKET, unix.SO_PEEK_OFF, heldBytes); err != nil {
		return fmt.Errorf("SO_PEEK_OFF: %w", err)
	}
	return nil
}

// peek copies queued data after the peek offset into buf without taking it
// off the queue, and moves the offset past it.
func peek(fd int, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])),
		uintptr(len(buf)), unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// discard takes n bytes off the front of the queue (using buf as scratch):
// the held byte and the first n-1 bytes of the n just peeked and sent, so
// the last of them becomes the held byte. The peek offset moves back by n
// with them.
func discard(fd int, buf []byte, n int) error {
	for n > 0 {
		k, err := unix.Read(fd, buf[:n])
		if err != nil {
			return err
		}
		if k == 0 {
			return fmt.Errorf("socketpair: %d bytes vanished from the queue", n)
		}
		n -= k
	}
	return nil
}
