package main

import (
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// checkDial validates dial arguments before any goroutine is started, so
// bad input fails fast and with a precise message.
func checkDial(network, addr string) error {
	if err := checkNetwork("dial", network); err != nil {
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
	if err := checkNetwork("listen", network); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errorf(codeInvalid, "listen: address %q must be :port or ip:port", addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return errorf(codeInvalid, "listen: host in %q must be empty or an IP address", addr)
	}
	return checkPort("listen", port, true)
}

func checkNetwork(verb, network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return errorf(codeInvalid, "%s: network must be tcp, tcp4 or tcp6, not %q", verb, network)
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
