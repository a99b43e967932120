package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"context"
	"strings"
)

// Exports of services.go: TLS and Funnel listeners, cert domains, loopback.

//export tailnet_listen_tls
func tailnet_listen_tls(h C.int64_t, network, addr *C.char, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	nw, ad := goString(network), goString(addr)
	if err == nil {
		err = checkListen(nw, ad)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), func(ctx context.Context) opResult { return s.listenTLS(ctx, nw, ad) })
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_listen_funnel
func tailnet_listen_funnel(h C.int64_t, network, addr *C.char, funnelOnly C.int, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	ad := goString(addr)
	var port uint16
	if err == nil {
		port, err = checkFunnel(goString(network), ad)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	only := funnelOnly != 0
	o, err := s.startOp(int64(timeoutMS), func(ctx context.Context) opResult { return s.listenFunnel(ctx, ad, port, only) })
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_cert_domains
func tailnet_cert_domains(h C.int64_t, buf *C.char, buflen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	var domains []string
	if err == nil {
		domains, err = s.certDomains()
	}
	if err == nil {
		copyOut(strings.Join(domains, ","), buf, buflen)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_loopback
func tailnet_loopback(h C.int64_t, addr *C.char, addrlen C.size_t, proxyCred *C.char, proxylen C.size_t, apiCred *C.char, apilen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("addr/proxy_cred/api_cred", addr == nil || proxyCred == nil || apiCred == nil)
	}
	if err == nil {
		err = needRoom(loopbackCredLen, proxylen, apilen)
	}
	var info loopbackInfo
	if err == nil {
		info, err = s.loopback()
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	copyOut(info.addr, addr, addrlen)
	copyOut(info.proxyCred, proxyCred, proxylen)
	copyOut(info.apiCred, apiCred, apilen)
	return fail(nil, errbuf, errlen)
}

// loopbackCredLen is the buffer each credential needs (32 hex digits + NUL):
// a truncated secret would fail every authentication, so short buffers are
// refused instead.
const loopbackCredLen = 33

func needRoom(need int, sizes ...C.size_t) error {
	for _, n := range sizes {
		if int(n) < need {
			return errorf(codeInvalid, "credential buffers must hold at least %d bytes", need)
		}
	}
	return nil
}
