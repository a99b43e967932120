//go:build !linux

package main

// Without Linux's SO_PEEK_OFF and its reset-on-close of AF_UNIX sockets
// nothing is held: the copier reads plainly, and an abort reaches the
// caller as EOF (the caller can ask tailnet_conn_error; docs/reliability.md).

// inqIoctl asks how many bytes a socket's receive queue holds: FIONREAD,
// _IOR('f', 127, int) on macOS and the BSDs (x/sys/unix does not name it).
const inqIoctl = 0x4004667f

func holdByte(mine, theirs int) (int, error) { return 0, nil }

// takeHeld is never called here: holdByte holds nothing.
func takeHeld(fd int, buf []byte) ([]byte, error) { return takePlain(fd, buf) }

// endSending does nothing here: shutting down a socket's receiving side
// on macOS and the BSDs discards what is queued (sorflush), and later
// writes are dropped rather than refused.
func endSending(fd int) error { return nil }
