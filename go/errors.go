package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Return codes shared with tailscale.h (TAILNET_OK, TAILNET_ERR_*):
// TestReturnCodesMatchTheHeader in errors_test.go fails if the two lists
// differ in a name or a value.
const (
	codeOK          = 0
	codeInvalid     = -1
	codeBadHandle   = -2
	codeClosed      = -3
	codeTimeout     = -4
	codeCanceled    = -5
	codeRefused     = -6
	codeUnreachable = -7
	codeAuth        = -8
	codeInProgress  = -9
	codeAddrInUse   = -10
	codeNotFound    = -11
	codeReset       = -12 // a connection was reset or aborted (tailnet_conn_error)
	codeState       = -13 // statestore.go: the caller's state store failed or did not answer
	codeNoCert      = -20 // services.go: no TLS certificate for this node
	codeNoFunnel    = -21 // services.go: the tailnet does not allow Funnel here
	codeStateDir    = -22 // start: the state dir cannot be written (statedir.go)
	codeInternal    = -99
)

// apiError is an error with the return code C callers see.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errClosed is returned by every call on a server that has been closed.
var errClosed = errorf(codeClosed, "server is closed")

// classify maps any error to a return code.
func classify(err error) int {
	var ae *apiError
	switch {
	case err == nil:
		return codeOK
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, net.ErrClosed):
		return codeClosed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return codeTimeout
	case errors.Is(err, context.Canceled):
		return codeCanceled
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return codeRefused
	case errors.Is(err, syscall.EADDRINUSE):
		return codeAddrInUse
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return codeUnreachable
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return codeUnreachable
	}
	// gVisor and tsnet report some conditions only as text.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "connection was refused"):
		return codeRefused
	case strings.Contains(msg, "address already in use"), strings.Contains(msg, "port is in use"),
		strings.Contains(msg, "listener already open"):
		return codeAddrInUse
	case strings.Contains(msg, "authkey"), strings.Contains(msg, "invalid key"),
		strings.Contains(msg, "auth key"):
		// headscale says "invalid authkey", "authkey expired", "authkey
		// already used", "invalid pre auth key".
		return codeAuth
	case strings.Contains(msg, "no such host"), strings.Contains(msg, "unknown host"),
		strings.Contains(msg, "no route"), strings.Contains(msg, "unreachable"):
		return codeUnreachable
	case strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "timed out"):
		return codeTimeout
	}
	return codeInternal
}
