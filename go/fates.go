package main

import (
	"errors"
	"strings"
	"sync"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Why a bridged connection ended other than cleanly (its fate), as the
// errors tailnet_conn_error reports.
var (
	// errDelivered: the server closed after the peer had acknowledged all
	// we sent, FIN included; what the peer might still send is refused.
	errDelivered = errorf(codeReset, "the tailnet server was closed")
	// errLingerOver: the server closed before the peer had acknowledged
	// everything sent within the linger time; the peer got a RST.
	errLingerOver = errorf(codeReset, "the tailnet server was closed before the peer had acknowledged "+
		"everything sent (the linger time ran out)")
	// errCallerGone: the caller closed its socket with data unread, or the
	// peer sent more after the caller had closed it: the peer gets a RST,
	// as from a kernel.
	errCallerGone = errorf(codeReset, "the socket was closed with data unread")
	// errCallerAbort: the caller asked for an abort (tailnet_conn_abort),
	// e.g. a forwarder whose other side was reset: the peer gets a RST.
	errCallerAbort   = errorf(codeReset, "the connection was aborted by this side")
	errPeerReset     = errorf(codeReset, "connection reset by the peer")
	errPeerTimeout   = errorf(codeTimeout, "the peer stopped answering (TCP keepalive or retransmissions)")
	errNetstackAbort = errorf(codeReset, "connection aborted by this node's network stack")
	errInternalAbort = errorf(codeInternal, "internal error in the connection's bridge (please report)")
	// errLostUnacknowledged: the netstack aborted the connection before the
	// peer had acknowledged everything, and no reason was left to read.
	errLostUnacknowledged = errorf(codeReset, "connection lost before the peer had acknowledged everything sent")
)

// gonet reports gVisor's errors as their text only.
var netstackErrors = map[string]error{
	(&tcpip.ErrConnectionReset{}).String():   errPeerReset,
	(&tcpip.ErrTimeout{}).String():           errPeerTimeout,
	(&tcpip.ErrConnectionAborted{}).String(): errNetstackAbort,
	(&tcpip.ErrAborted{}).String():           errNetstackAbort,
}

// remoteSideError turns an error of the tailnet side of a bridge into its
// fate (nil stays nil).
func remoteSideError(err error) error {
	if err == nil {
		return nil
	}
	for cause := err; cause != nil; cause = errors.Unwrap(cause) {
		if fate, ok := netstackErrors[cause.Error()]; ok {
			return fate
		}
	}
	fate := errorf(codeReset, "connection lost: %v", strings.TrimPrefix(err.Error(), "write: "))
	for cause := err; cause != nil; cause = errors.Unwrap(cause) {
		if netstackEchoes[cause.Error()] {
			return echoError{fate}
		}
	}
	return fate
}

// What gVisor says of an endpoint it has aborted once the reason has been
// reported to another call (bridge.endWith): a Write's, and a half-close's.
var netstackEchoes = map[string]bool{
	(&tcpip.ErrClosedForSend{}).String(): true,
	(&tcpip.ErrNotConnected{}).String():  true,
}

// An echoError is a tailnet-side fate that may only echo an abort whose
// reason went to the other copier (bridge.endWith).
type echoError struct{ error }

func (e echoError) Unwrap() error { return e.error }

// errEchoedEOF is the fate of a read that met end-of-file on a connection
// the netstack had aborted, if its reason was not found (bridge.endWith).
var errEchoedEOF = echoError{errorf(codeReset, "connection lost: end-of-file without the peer's FIN")}

// callerSideError turns an error of our socketpair end into a fate: the
// caller closed its socket (with data unread, or the peer then sent more).
func callerSideError(err error) error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return errCallerGone
	}
	return errorf(codeReset, "connection's socketpair failed: %v", err)
}

// fateLogSize bounds how many fates a server remembers.
const fateLogSize = 4096

// fateLog remembers why the server's most recent aborted connections
// ended, by connection number, for tailnet_conn_error.
type fateLog struct {
	mu    sync.Mutex
	fates map[int64]error
	order []int64 // ring of the ids in fates
	next  int
}

func (l *fateLog) record(id int64, fate error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fates == nil {
		l.fates = make(map[int64]error)
		l.order = make([]int64, 0, fateLogSize)
	}
	if len(l.order) < fateLogSize {
		l.order = append(l.order, id)
	} else {
		delete(l.fates, l.order[l.next])
		l.order[l.next] = id
		l.next = (l.next + 1) % fateLogSize
	}
	l.fates[id] = fate
}

// lookup returns why connection id was aborted, or nil if it was not (or
// is too long ago).
func (l *fateLog) lookup(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fates[id]
}
