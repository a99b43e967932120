package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// cmdMemory measures this process's resident memory with one idle node
// (rss_idle_mb), then with conns connections open to the server's sink
// (rss_conns_mb). On loopback there is no node: the first figure is the
// bare process.
func cmdMemory(args []string) error {
	fs := flag.NewFlagSet("memory", flag.ExitOnError)
	system := fs.String("system", "tsnet", "tsnet or loopback")
	host := fs.String("host", "", "the server's address")
	conns := fs.Int("conns", 1000, "connections to hold open")
	settle := fs.Duration("settle", time.Second, "pause before each reading")
	fs.Parse(args)
	n, _, err := newNetwork(*system, "memory")
	if err != nil {
		return err
	}
	m := map[string]float64{}
	time.Sleep(*settle)
	m["rss_idle_mb"] = rssMiB()
	open := make([]net.Conn, 0, *conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range *conns {
		c, err := n.dial(*host, portSink)
		if err != nil {
			return fmt.Errorf("connection %d: %w", len(open)+1, err)
		}
		open = append(open, c)
	}
	time.Sleep(*settle)
	m["rss_conns_mb"] = rssMiB()
	return emit(m)
}

// rssMiB is this process's resident set size (VmRSS) in MiB, or -1.
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return -1
}
