package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// stateDirError explains a failure of tsnet's Start to write its state
// directory (Python checks the directory first, but it can change, and C
// callers have no such check): a read-only file system, missing
// permissions or a full disk are the caller's to fix, not a bug. Other
// errors are returned unchanged.
func stateDirError(dir string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) || !within(dir, pe.Path) {
		return err
	}
	var fix string
	switch {
	case errors.Is(err, syscall.EROFS):
		fix = "it is on a read-only file system: mount it read-write or pass another state_dir"
	case errors.Is(err, fs.ErrPermission):
		fix = "this process may not write it: fix its owner or mode, or pass another state_dir"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		fix = "the disk is full: free some space or pass another state_dir"
	default:
		return err
	}
	return errorf(codeStateDir, "state dir %s cannot be written (%v); %s", dir, err, fix)
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
