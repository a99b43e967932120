//go:build !tailnet_no_localnet

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burstConns is how many echo connections TestBurst makes: enough that
// the unfixed GRO fails it (it resets from a few in ten thousand to a few
// in a thousand), few enough for the default suite.
const burstConns = 8000

// TestBurst is the regression test of our fix to gVisor's GRO.Flush: two
// plain tsnet nodes in one process, none of our bridging, burstConns echo
// connections of 64 KiB (50 dials at a time), GRO on. Unfixed, Flush
// delivers one packet per bucket and the GRO object goes back to a
// process-wide pool with the rest, where the other node picks it up and
// delivers them to its own stack, which resets the connection
// (google/gvisor#14081, docs/packaging.md). Built as the library is built
// (build_libtailscale.py's patched gVisor) every echo is intact.
// tests/test_gro.py runs it so, in the default suite; by hand:
//
//	./dev test tests/test_gro.py
//
// Built against the unpatched gVisor (a plain `go test`), it fails:
//
//	scripts/in-netns sh -c 'cd go && TAILNET_BURST_TEST=1 go test -run TestBurst -v .'
func TestBurst(t *testing.T) {
	a, b := tsnetPair(t, "TAILNET_BURST_TEST", false)
	ln, err := b.Listen("tcp", ":11")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.(interface{ CloseWrite() error }).CloseWrite(); c.Close() }()
		}
	}()
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	var bad atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for range burstConns {
		wg.Go(func() {
			sem <- struct{}{}
			// Dial and echo are bounded: a connection the bug stalls counts
			// as bad instead of hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := a.Dial(ctx, "tcp", "b:11")
			<-sem
			if err != nil {
				bad.Add(1)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			go func() { c.Write(payload); c.(interface{ CloseWrite() error }).CloseWrite() }()
			got, _ := io.ReadAll(c)
			if !bytes.Equal(got, payload) {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("bad: %d", bad.Load())
	if bad.Load() > 0 {
		t.Errorf("%d of %d failed", bad.Load(), burstConns)
	}
}
