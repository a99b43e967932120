package main

import (
	"errors"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/tsnet"
	"tailscale.com/wgengine/netstack"
)

// timeWait is how long a closed TCP connection lingers in TIME_WAIT in a
// node's netstack. gVisor's default, 60 s, is Linux's 2*MSL, but where
// Linux keeps a small TIME_WAIT record gVisor keeps the whole endpoint:
// about 230 KB each here. A node closing 100 connections a second held
// 1.7 GB that way (tests/soak.py), and more than 512 of them make tsnet's
// Close deadlock (docs/architecture.md). TIME_WAIT guards against stray
// segments of an old connection reaching a new one on the same ports;
// inside a WireGuard tunnel segments arrive within moments or never, so a
// few seconds keep that guarantee.
const timeWait = 5 * time.Second

// shortenTimeWait sets timeWait on the node's netstack (after Start).
func shortenTimeWait(ts *tsnet.Server) error {
	impl, ok := ts.Sys().Netstack.Get().(*netstack.Impl)
	if !ok {
		return errors.New("no netstack")
	}
	opt := tcpip.TCPTimeWaitTimeoutOption(timeWait)
	if err := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
		return errors.New(err.String())
	}
	return nil
}
