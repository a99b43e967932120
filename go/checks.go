package main

import (
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
)

// checkDial validates dial arguments before any goroutine is started, so
// bad input fails fast and with a precise message.
func checkDial(network, addr string) error {
	if err := checkNetwork("dial", network, "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errorf(codeInvalid, "dial: address %q must be host:port", addr)
	}
	if host == "" {
		return errorf(codeInvalid, "dial: address %q has no host", addr)
	}
	return checkPort("dial", port, false)
}

// checkListen validates listen arguments: ":port" or "ip:port".
func checkListen(network, addr string) error {
	if isPacketNetwork(network) {
		return errorf(codeInvalid, "listen: network %q is for datagrams: use listen_packet", network)
	}
	if err := checkNetwork("listen", network, "tcp", "tcp4", "tcp6"); err != nil {
		return err
	}
	return checkListenAddr("listen", addr)
}

// checkListenPacket validates listen_packet arguments: ":port" or "ip:port".
func checkListenPacket(network, addr string) error {
	if err := checkNetwork("listen_packet", network, "udp", "udp4", "udp6"); err != nil {
		return err
	}
	return checkListenAddr("listen_packet", addr)
}

func checkListenAddr(verb, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errorf(codeInvalid, "%s: address %q must be :port or ip:port", verb, addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return errorf(codeInvalid, "%s: host in %q must be empty or an IP address", verb, addr)
	}
	return checkPort(verb, port, true)
}

// checkNetwork accepts only the networks listed.
func checkNetwork(verb, network string, allowed ...string) error {
	if slices.Contains(allowed, network) {
		return nil
	}
	return errorf(codeInvalid, "%s: network must be %s, not %q", verb, strings.Join(allowed, ", "), network)
}

// isPacketNetwork reports whether network is a datagram (UDP) network.
func isPacketNetwork(network string) bool {
	return network == "udp" || network == "udp4" || network == "udp6"
}

func checkPort(verb, port string, zeroOK bool) error {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || strings.HasPrefix(port, "+") || (n == 0 && !zeroOK) {
		return errorf(codeInvalid, "%s: port %q must be a number from 1 to 65535", verb, port)
	}
	return nil
}

// debugCounter reports process-wide counters used by leak tests.
func debugCounter(name string) (int64, error) {
	switch name {
	case "goroutines":
		return int64(runtime.NumGoroutine()), nil
	case "ops":
		return liveOps.Load(), nil
	case "handles":
		return liveHandles(), nil
	case "stuck_closes":
		return stuckCloses.Load(), nil
	case "dropped_datagrams":
		return droppedDatagrams.Load(), nil
	case "heap_bytes": // live Go heap, after a collection: for leak tests
		// FreeOSMemory collects and then returns the free heap to the
		// system, so the process's RSS read next counts what is held,
		// not what the scavenger has yet to give back.
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc), nil
	}
	if name == "dropped_reloc_bytes" {
		return droppedRelocBytes, nil
	}
	if name == "gc_percent" {
		return gcPercent(), nil
	}
	if name == "gomaxprocs" {
		return int64(runtime.GOMAXPROCS(0)), nil
	}
	if v, ok := goMemory(name); ok {
		return v, nil
	}
	return 0, errorf(codeInvalid, "unknown counter %q", name)
}

// dumpGoroutines writes every goroutine's stack to path, for diagnosing
// hangs.
func dumpGoroutines(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return errorf(codeInvalid, "dump goroutines: %v", err)
	}
	defer f.Close()
	return pprof.Lookup("goroutine").WriteTo(f, 2)
}
