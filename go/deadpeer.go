package main

import (
	"errors"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"tailscale.com/envknob"
)

// A tailnet peer can vanish without a word: its process is killed, its
// host loses power, the network between is cut. No FIN or RST ever comes,
// and netstack's defaults then keep a connection open for hours: dialed
// connections have no keepalive at all (a reader waits forever), accepted
// ones probe after two hours, and unacknowledged data is retransmitted for
// about fifteen minutes. So every connection we bridge gets keepalive
// probes: an idle connection's dead peer is noticed within
// idle + keepaliveProbes*interval (two minutes by default), and the
// caller's socket then fails with ECONNRESET (tailnet_conn_error says it
// timed out). With data in flight the retransmission limit bounds it
// instead (netstack.go): no TCP user timeout, which would also cut a peer
// that is alive but not reading.
//
// The times come from Tailscale's own knobs for this,
// TS_NETSTACK_KEEPALIVE_IDLE and TS_NETSTACK_KEEPALIVE_INTERVAL (Go
// durations), with shorter defaults than netstack's 2 h / 75 s.
const (
	defaultKeepaliveIdle     = 60 * time.Second
	defaultKeepaliveInterval = 15 * time.Second
	keepaliveProbes          = 4
)

// keepaliveTimes returns the idle time before the first probe and the
// time between probes.
func keepaliveTimes() (idle, interval time.Duration) {
	return knobDuration("TS_NETSTACK_KEEPALIVE_IDLE", defaultKeepaliveIdle),
		knobDuration("TS_NETSTACK_KEEPALIVE_INTERVAL", defaultKeepaliveInterval)
}

func knobDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(envknob.String(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// boundDeadPeer turns keepalive on for a netstack TCP endpoint (see
// above).
func boundDeadPeer(ep tcpip.Endpoint) error {
	if ep == nil {
		return errors.New("not a netstack TCP connection")
	}
	idle, interval := keepaliveTimes()
	idleOpt, intervalOpt := tcpip.KeepaliveIdleOption(idle), tcpip.KeepaliveIntervalOption(interval)
	for _, opt := range []tcpip.SettableSocketOption{&idleOpt, &intervalOpt} {
		if err := ep.SetSockOpt(opt); err != nil {
			return errors.New(err.String())
		}
	}
	if err := ep.SetSockOptInt(tcpip.KeepaliveCountOption, keepaliveProbes); err != nil {
		return errors.New(err.String())
	}
	ep.SocketOptions().SetKeepAlive(true)
	return nil
}
