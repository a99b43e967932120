package main

import (
	"errors"
	"strconv"
	"time"

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
