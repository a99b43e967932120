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
// start after it (SO_PEEK_OFF 1). From then on the copier reads by
// peeking and then takes off the queue one byte fewer than it peeked
// (take): the byte left at the front is one already taken for sending,
// and the queue is never empty. Closing ours therefore
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

// take moves the caller's next data into buf and returns it. It peeks past
// the held byte into buf[1:], so the n bytes land in buf[1:n+1]; then it
// takes n bytes off the queue into buf[:n]: the held byte and the first
// n-1 it peeked, the same bytes again shifted by one, so buf[1:n+1] is
// unchanged. The last byte peeked stays at the front of the queue as the
// new held byte (already taken for sending), and the peek offset moves
// back by n with the bytes taken. No data (and no error) is the caller's
// EOF; EAGAIN means nothing is queued.
func take(fd int, buf []byte) ([]byte, error) {
	n, err := peek(fd, buf[1:])
	if err != nil || n == 0 {
		return nil, err
	}
	for taken := 0; taken < n; {
		k, err := unix.Read(fd, buf[taken:n])
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return nil, fmt.Errorf("socketpair: %d bytes vanished from the queue", n-taken)
		}
		taken += k
	}
	return buf[1 : n+1], nil
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
