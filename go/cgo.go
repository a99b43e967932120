package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"runtime/debug"
	"unsafe"
)

// goString copies a C string; NULL reads as "".
func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// copyOut writes s into buf as a NUL-terminated string, truncating if buf
// is short. A NULL or empty buffer is left alone.
func copyOut(s string, buf *C.char, size C.size_t) {
	if buf == nil || size == 0 {
		return
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
	n := copy(dst[:len(dst)-1], s)
	dst[n] = 0
}

// fail reports err through the caller's buffer and returns its code.
func fail(err error, buf *C.char, size C.size_t) C.int {
	if err == nil {
		copyOut("", buf, size)
		return codeOK
	}
	copyOut(err.Error(), buf, size)
	return C.int(classify(err))
}

// guard turns a panic in an exported function into codeInternal. Use as
// `defer guard(&rc, errbuf, errlen)` with a named result rc.
func guard(rc *C.int, buf *C.char, size C.size_t) {
	if p := recover(); p != nil {
		*rc = fail(errorf(codeInternal, "internal error: %v\n%s", p, debug.Stack()), buf, size)
	}
}

func needOut(name string, isNil bool) error {
	if isNil {
		return errorf(codeInvalid, "%s must not be NULL", name)
	}
	return nil
}
