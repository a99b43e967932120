package main

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
//
// It returns how many bytes it held: 0 where the kernel (or an emulator
// such as qemu-user) has no SO_PEEK_OFF for AF_UNIX, and then the copier
// reads plainly and an abort reaches the caller as EOF, as on other
// systems.
func holdByte(mine, theirs int) (int, error) {
	err := unix.SetsockoptInt(mine, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 1)
	if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("SO_PEEK_OFF: %w", err)
	}
	if _, err := unix.Write(theirs, []byte{0}); err != nil {
		return 0, fmt.Errorf("socketpair: %w", err)
	}
	return 1, nil
}

// takeHeld moves the caller's next data into buf and returns it. It peeks past
// the held byte into buf[1:], so the n bytes land in buf[1:n+1]; then it
// takes n bytes off the queue into buf[:n]: the held byte and the first
// n-1 it peeked, the same bytes again shifted by one, so buf[1:n+1] is
// unchanged. The last byte peeked stays at the front of the queue as the
// new held byte (already taken for sending), and the peek offset moves
// back by n with the bytes taken. No data (and no error) is the caller's
// EOF; EAGAIN means nothing is queued.
func takeHeld(fd int, buf []byte) ([]byte, error) {
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

// endSending makes the caller's further writes fail with EPIPE: Linux
// keeps what is already queued readable after SHUT_RD.
func endSending(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }
