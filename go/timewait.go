package main

import (
	"errors"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/tsnet"
	"tailscale.com/wgengine/netstack"
)

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

// shortenTimeWait sets the TIME_WAIT time on the node's netstack (after Start).
func shortenTimeWait(ts *tsnet.Server) error {
	impl, ok := ts.Sys().Netstack.Get().(*netstack.Impl)
	if !ok {
		return errors.New("no netstack")
	}
	opt := tcpip.TCPTimeWaitTimeoutOption(knobDuration("TS_NETSTACK_TIME_WAIT", defaultTimeWait))
	if err := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
		return errors.New(err.String())
	}
	return nil
}
