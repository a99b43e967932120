package main

import (
	"errors"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/envknob"
	"tailscale.com/tsnet"
	"tailscale.com/wgengine/netstack"
)

// Two TCP settings of a node's netstack, set after Start for all its
// connections.

// defaultTimeWait is how long a closed TCP connection lingers in TIME_WAIT
// in a node's netstack. gVisor's default, 60 s, is Linux's 2*MSL, but
// gVisor keeps a whole endpoint per connection that long, and a node's
// Close aborts each of them: every connected or TIME_WAIT endpoint queues
// a RST on a 512-packet queue whose reader has stopped, so more than 512
// make tsnet's Close deadlock (docs/architecture.md; tailnet_close gives
// up after 5 s). In tests/soak.py, about 120 connections a second, 60 s
// meant some 7,000 such endpoints and a live Go heap of about 220 MB
// against 100 to 160 MB with 5 s. TIME_WAIT guards against stray segments
// of an old connection reaching a new one on the same ports; inside a
// WireGuard tunnel segments arrive within moments or never, so a few
// seconds keep that guarantee. TS_NETSTACK_TIME_WAIT (a Go duration)
// overrides it, e.g. to compare with gVisor's default in the soak.
const defaultTimeWait = 5 * time.Second

// defaultMaxRetries bounds how long unacknowledged data is retransmitted
// to a peer that stopped answering: with the retransmission timeout
// doubling from its 200 ms floor, 8 retries give up after about 100 s,
// where gVisor's default of 15 takes a quarter of an hour. It is the
// dead-peer bound for a connection with data in flight, as keepalive
// (deadpeer.go) is for an idle one. A TCP user timeout would bound both,
// but it also cuts a peer that is alive and acknowledging our window
// probes, only not reading for a while (a busy machine, a slow consumer):
// gVisor, like Linux, applies it to window probes too. Retries count only
// probes and segments that go unanswered. TS_NETSTACK_MAX_RETRIES (an
// integer) overrides it.
const defaultMaxRetries = 8

// tuneNetstack applies the TIME_WAIT time and the retransmission limit
// to the node's netstack (after Start).
func tuneNetstack(ts *tsnet.Server) error {
	impl, ok := ts.Sys().Netstack.Get().(*netstack.Impl)
	if !ok {
		return errors.New("no netstack")
	}
	timeWait := tcpip.TCPTimeWaitTimeoutOption(knobDuration("TS_NETSTACK_TIME_WAIT", defaultTimeWait))
	retries := tcpip.TCPMaxRetriesOption(knobInt("TS_NETSTACK_MAX_RETRIES", defaultMaxRetries))
	for _, opt := range []tcpip.SettableTransportProtocolOption{&timeWait, &retries} {
		if err := impl.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return errors.New(err.String())
		}
	}
	return nil
}

func knobInt(name string, def int) int {
	if n, err := strconv.Atoi(envknob.String(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// flushBound is how long a closing server waits for its netstack to hand
// the packets it has queued (the RSTs of aborted connections) to
// WireGuard.
const flushBound = 500 * time.Millisecond

// flushOutbound waits, for at most flushBound, until the node's netstack
// has handed every queued outbound packet on. tsnet's Close stops the
// queue's reader before anything else, so the RSTs close has just sent
// for the connections it aborted would otherwise be dropped, and their
// peers would learn of the abort only from their own timeouts.
func flushOutbound(ts *tsnet.Server) {
	queued := outboundQueued(ts)
	if queued == nil {
		return
	}
	deadline := time.Now().Add(flushBound)
	for queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// outboundQueued returns a function counting the packets in the node's
// netstack outbound queue, or nil. The queue (netstack.Impl.linkEP, a
// *linkEndpoint with NumQueued) is unexported, so it is read by
// reflection; TestEndpointInternals fails if it moves.
func outboundQueued(ts *tsnet.Server) func() int {
	impl, ok := ts.Sys().Netstack.Get().(*netstack.Impl)
	if !ok || impl == nil {
		return nil
	}
	f := reflect.ValueOf(impl).Elem().FieldByName("linkEP")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil
	}
	ep := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	num := ep.MethodByName("NumQueued")
	if !num.IsValid() || num.Type().NumIn() != 0 || num.Type().NumOut() != 1 || !num.Type().Out(0).ConvertibleTo(reflect.TypeFor[int]()) {
		return nil
	}
	return func() int { return int(num.Call(nil)[0].Int()) }
}
