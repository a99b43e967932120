package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"time"

	"tailscale.com/envknob"
)

// Every exported function follows one pattern: look up handles, check
// output pointers, do the work, report errors through (errbuf, errlen) and
// the return code, and never let a panic escape (guard).

//export tailnet_new
func tailnet_new(out *C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	if err := needOut("out", out == nil); err != nil {
		return fail(err, errbuf, errlen)
	}
	*out = C.int64_t(newHandle(newServer()))
	return fail(nil, errbuf, errlen)
}

//export tailnet_set
func tailnet_set(h C.int64_t, key, value *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = s.configure(goString(key), goString(value))
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_set_logfd
func tailnet_set_logfd(h C.int64_t, fd C.int, verbose C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = s.log.setFD(int64(h), int(fd), verbose != 0)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_set_store
func tailnet_set_store(h C.int64_t, fd C.int, timeoutMS C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = s.setStore(int(fd), time.Duration(timeoutMS)*time.Millisecond)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_start
func tailnet_start(h C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = s.enter()
	}
	if err == nil {
		err = s.start()
		s.wg.Done()
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_up
func tailnet_up(h C.int64_t, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), s.up)
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_dial
func tailnet_dial(h C.int64_t, network, addr *C.char, timeoutMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	nw, ad := goString(network), goString(addr)
	if err == nil {
		err = checkDial(nw, ad)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	o, err := s.startOp(int64(timeoutMS), func(ctx context.Context) opResult { return s.dial(ctx, nw, ad) })
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

// serverForOp looks up a server for a call that starts an operation.
func serverForOp(h C.int64_t, opOut *C.int64_t, waitFD *C.int) (*server, error) {
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("op/wait_fd", opOut == nil || waitFD == nil)
	}
	return s, err
}

func putOp(o *op, err error, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) C.int {
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	*opOut = C.int64_t(newHandle(o))
	*waitFD = C.int(o.waitR)
	return fail(nil, errbuf, errlen)
}

//export tailnet_op_result
func tailnet_op_result(h C.int64_t, fdOut *C.int, text *C.char, textlen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	if fdOut != nil {
		*fdOut = -1
	}
	o, err := lookup[*op](int64(h))
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	res, err := o.result()
	if fdOut != nil {
		*fdOut = C.int(res.fd)
	} else {
		res.release() // the caller did not want it
	}
	copyOut(res.text, text, textlen)
	return fail(err, errbuf, errlen)
}

//export tailnet_op_cancel
func tailnet_op_cancel(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	o, err := lookup[*op](int64(h))
	if err == nil {
		o.cancel()
	}
	return fail(err, nil, 0)
}

//export tailnet_op_free
func tailnet_op_free(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	o, err := lookup[*op](int64(h))
	if err == nil {
		dropHandle(int64(h))
		o.free()
	}
	return fail(err, nil, 0)
}

//export tailnet_listen
func tailnet_listen(h C.int64_t, network, addr *C.char, lnOut *C.int64_t, fdOut *C.int, bound *C.char, boundlen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("listener/fd", lnOut == nil || fdOut == nil)
	}
	nw, ad := goString(network), goString(addr)
	if err == nil {
		err = checkListen(nw, ad)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	ln, fd, err := s.listen(nw, ad)
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	*lnOut = C.int64_t(newHandle(ln))
	*fdOut = C.int(fd)
	copyOut(ln.ln.Addr().String(), bound, boundlen)
	return fail(nil, errbuf, errlen)
}

//export tailnet_listener_close
func tailnet_listener_close(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	ln, err := lookup[*listener](int64(h))
	if err == nil {
		dropHandle(int64(h))
		ln.close()
	}
	return fail(err, nil, 0)
}

//export tailnet_ips
func tailnet_ips(h C.int64_t, buf *C.char, buflen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	addrs, err := s.ips()
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	var ips []string
	for _, ip := range addrs {
		ips = append(ips, ip.String())
	}
	copyOut(strings.Join(ips, ","), buf, buflen)
	return fail(nil, errbuf, errlen)
}

//export tailnet_shutdown
func tailnet_shutdown(h C.int64_t, lingerMS C.int64_t, opOut *C.int64_t, waitFD *C.int, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := serverForOp(h, opOut, waitFD)
	if err == nil && lingerMS < 0 {
		err = errorf(codeInvalid, "linger must be >= 0 ms, not %d", lingerMS)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	linger := time.Duration(lingerMS) * time.Millisecond
	// Not one of s's operations: close waits for those.
	o, err := startOp(context.Background(), func(ctx context.Context) opResult {
		cut := s.close(ctx, linger)
		return opResult{fd: -1, text: fmt.Sprintf("%d %d", cut.conns, cut.bytes)}
	}, func() {})
	return putOp(o, err, opOut, waitFD, errbuf, errlen)
}

//export tailnet_close
func tailnet_close(h C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		s.close(context.Background(), 0)
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_free
func tailnet_free(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	s, err := lookup[*server](int64(h))
	if err == nil {
		dropHandle(int64(h))
		s.close(context.Background(), 0)
	}
	return fail(err, nil, 0)
}

//export tailnet_conn_error
func tailnet_conn_error(h C.int64_t, conn C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = s.connError(int64(conn))
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_conn_abort
func tailnet_conn_abort(h C.int64_t, conn C.int64_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		s.abortConn(int64(conn))
	}
	return fail(err, errbuf, errlen)
}

//export tailnet_setenv
func tailnet_setenv(key, value *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	k := goString(key)
	if !strings.HasPrefix(k, "TS_") {
		return fail(errorf(codeInvalid, "only TS_* variables can be set, not %q", k), errbuf, errlen)
	}
	if k == "TS_AUTHKEY" || k == "TS_AUTH_KEY" { // envknob would log it, unredacted, to tsnet's log files
		return fail(errorf(codeInvalid, "pass the auth key with tailnet_set(server, \"authkey\", ...), not %s", k), errbuf, errlen)
	}
	envknob.Setenv(k, goString(value))
	return fail(nil, errbuf, errlen)
}

//export tailnet_debug_counter
func tailnet_debug_counter(name *C.char, out *C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	if out == nil {
		return codeInvalid
	}
	v, err := debugCounter(goString(name))
	if err == nil {
		*out = C.int64_t(v)
	}
	return fail(err, nil, 0)
}

//export tailnet_debug_dump_goroutines
func tailnet_debug_dump_goroutines(path *C.char, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	return fail(dumpGoroutines(goString(path)), errbuf, errlen)
}
