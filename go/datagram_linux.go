package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// credentialsSpace is the ancillary buffer for one SCM_CREDENTIALS message.
var credentialsSpace = unix.CmsgSpace(unix.SizeofUcred)

// passCredentials sets SO_PASSCRED on our end and, for a connected socket
// (whose messages may be empty), on the caller's too, so both can tell an
// empty datagram (it comes with credentials) from end-of-file (without).
func passCredentials(mine, theirs int, both bool) error {
	fds := []int{mine}
	if both {
		fds = append(fds, theirs)
	}
	for _, fd := range fds {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			return fmt.Errorf("SO_PASSCRED: %w", err)
		}
	}
	return nil
}
