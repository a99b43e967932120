//go:build !tailnet_no_localnet

package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import "strings"

// The local tailnet (tailnet.testing) is part of the library unless it is
// built with the tailnet_no_localnet tag.

//export tailnet_localnet_start
func tailnet_localnet_start(config *C.char, out *C.int64_t, url *C.char, urllen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	if err := needOut("out", out == nil); err != nil {
		return fail(err, errbuf, errlen)
	}
	n, err := startLocalnet(goString(config))
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	*out = C.int64_t(newHandle(n))
	copyOut(n.url(), url, urllen)
	return fail(nil, errbuf, errlen)
}

//export tailnet_localnet_complete_auth
func tailnet_localnet_complete_auth(h C.int64_t, url *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		err = n.completeAuth(goString(url))
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_localnet_close
func tailnet_localnet_close(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		dropHandle(int64(h))
		n.close()
	}
	return fail(err, nil, 0)
}

//export tailnet_localnet_info
func tailnet_localnet_info(h C.int64_t, buf *C.char, buflen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		copyOut(n.info(), buf, buflen)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_localnet_deny_from
func tailnet_localnet_deny_from(h C.int64_t, hostnames *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		var names []string
		if s := goString(hostnames); s != "" {
			names = strings.Split(s, ",")
		}
		err = n.denyFrom(names)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_localnet_pause
func tailnet_localnet_pause(h C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		err = n.pause()
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_localnet_resume
func tailnet_localnet_resume(h C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		err = n.resume()
	}
	return fail(err, errbuf, errlen)
}
