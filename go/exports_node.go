package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import "context"

// Node information: whois, status, ping (operations whose text is JSON,
// read whole with tailnet_op_text), the backend state, and watch
// descriptors. The Go side is in localclient.go, nodeinfo.go and watch.go.

//export tailnet_whois
func tailnet_whois(h C.int64_t, addr *C.char, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	a := goString(addr)
	s, err := serverForOp(h, opOut, waitFD)
	if err == nil {
		err = checkWhoIs(a)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), func(ctx context.Context) opResult { return s.whois(ctx, a) })
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_status
func tailnet_status(h C.int64_t, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), s.status)
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_ping
func tailnet_ping(h C.int64_t, target, kind *C.char, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	t, k := goString(target), goString(kind)
	s, err := serverForOp(h, opOut, waitFD)
	if err == nil {
		err = checkPing(t, k)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), func(ctx context.Context) opResult { return s.ping(ctx, t, k) })
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_op_text
func tailnet_op_text(h C.int64_t, buf *C.char, buflen C.size_t, needed *C.size_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	if needed == nil {
		return codeInvalid
	}
	o, err := lookup[*op](int64(h))
	if err != nil {
		return fail(err, nil, 0)
	}
	text, err := o.text()
	if err != nil {
		return fail(err, nil, 0)
	}
	putText(text, buf, buflen, needed)
	return codeOK
}

//export tailnet_state
func tailnet_state(h C.int64_t, buf *C.char, buflen C.size_t, needed *C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("needed", needed == nil)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	state, url, err := s.state()
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	if url != "" {
		state += " " + url
	}
	putText(state, buf, buflen, needed)
	return fail(nil, errbuf, errlen)
}

//export tailnet_watch
func tailnet_watch(h C.int64_t, fdOut *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("fd", fdOut == nil)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	fd, err := s.watch()
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	*fdOut = C.int(fd)
	return fail(nil, errbuf, errlen)
}

// putText writes s and its NUL into buf only if both fit, and always sets
// *needed to that size, so a caller with a short buffer retries with a
// larger one: text is never silently truncated.
func putText(s string, buf *C.char, size C.size_t, needed *C.size_t) {
	*needed = C.size_t(len(s) + 1)
	if int(size) < len(s)+1 {
		copyOut("", buf, size)
		return
	}
	copyOut(s, buf, size)
}

// text returns a finished op's text (for JSON results, the whole JSON);
// unlike result it hands nothing over, so it may be called again.
func (o *op) text() (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		return "", errorf(codeInProgress, "operation still in progress")
	}
	return o.res.text, nil
}
