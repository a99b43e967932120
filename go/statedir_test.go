package main

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestStateDirError(t *testing.T) {
	dir := "/var/lib/node"
	inside := func(errno error) error {
		return fmt.Errorf("tsnet: logpolicy: %w", &fs.PathError{Op: "open", Path: dir + "/tailscaled.log.conf", Err: errno})
	}
	for _, errno := range []error{syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.ENOSPC} {
		if got := classify(stateDirError(dir, inside(errno))); got != codeStateDir {
			t.Errorf("%v in the state dir: code %d, want codeStateDir", errno, got)
		}
	}
	for _, err := range []error{
		inside(syscall.EIO), // not one the caller can fix
		&fs.PathError{Op: "open", Path: "/etc/other", Err: syscall.EACCES}, // elsewhere
		&fs.PathError{Op: "open", Path: "/var/lib/node-2/x", Err: syscall.EROFS},
		errors.New("no path"),
	} {
		if got := stateDirError(dir, err); got != err {
			t.Errorf("stateDirError(%v) = %v, want it unchanged", err, got)
		}
	}
}
