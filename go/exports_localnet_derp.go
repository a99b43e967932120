//go:build !tailnet_no_localnet

package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// derpMapJSON is the DERP map the local control server hands its nodes, as
// tailcfg.DERPMap JSON. Another control server (headscale) can hand out the
// same map, so its nodes use this relay and STUN server too.
func (n *localnet) derpMapJSON() (string, error) {
	b, err := json.Marshal(n.derpMap())
	if err != nil {
		return "", fmt.Errorf("DERP map: %w", err)
	}
	return string(b), nil
}

// copyOutWhole is copyOut for text that must not be truncated.
func copyOutWhole(s string, buf *C.char, size C.size_t) error {
	if buf == nil || int(size) <= len(s) {
		return errorf(codeInvalid, "output buffer too small: need %d bytes", len(s)+1)
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
	dst[copy(dst, s)] = 0
	return nil
}

//export tailnet_localnet_derp_map
func tailnet_localnet_derp_map(h C.int64_t, out *C.char, outlen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	text, err := n.derpMapJSON()
	if err == nil {
		err = copyOutWhole(text, out, outlen)
	}
	return fail(err, errbuf, errlen)
}
