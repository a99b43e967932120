package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import "context"

// tailnet_debug_panic exists to prove that no Go panic reaches the caller:
// tests call it and check that they get TAILNET_ERR_INTERNAL instead.

//export tailnet_debug_panic
func tailnet_debug_panic(h C.int64_t, where *C.char, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	switch w := goString(where); w {
	case "call":
		panic("tailnet_debug_panic in the call")
	case "op":
		s, err := serverForOp(h, opOut, waitFD)
		if err != nil {
			return fail(err, errbuf, errlen)
		}
		o, err := s.startOp(-1, func(context.Context) opResult { panic("tailnet_debug_panic in an operation") })
		return putOp(o, err, opOut, waitFD, errbuf, errlen)
	default:
		return fail(errorf(codeInvalid, "where must be \"call\" or \"op\", not %q", w), errbuf, errlen)
	}
}
