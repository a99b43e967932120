//go:build !tailnet_no_localnet

package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

// Exports of localcerts.go: the local tailnet's stand-in for ACME.

//export tailnet_localnet_ca
func tailnet_localnet_ca(h C.int64_t, buf *C.char, buflen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	var pem string
	if err == nil {
		pem, err = n.caPEM()
	}
	if err == nil && int(buflen) <= len(pem) {
		err = errorf(codeInvalid, "the CA certificate needs a buffer of %d bytes", len(pem)+1)
	}
	if err == nil {
		copyOut(pem, buf, buflen)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_localnet_install_cert
func tailnet_localnet_install_cert(h C.int64_t, dir, domain *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	n, err := lookup[*localnet](int64(h))
	if err == nil {
		err = n.installCert(goString(dir), goString(domain))
	}
	return fail(err, errbuf, errlen)
}
