package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cmdServer runs the benchmark services until standard input closes.
func cmdServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	system := fs.String("system", "tsnet", "tsnet or loopback")
	chunk := fs.Int("chunk", 256<<10, "read size of the sink")
	fs.Parse(args)
	n, took, err := newNetwork(*system, "server")
	if err != nil {
		return err
	}
	counter := &udpCounter{}
	services := []struct {
		port   int
		hello  []byte
		handle func(net.Conn)
	}{
		{portEcho, nil, func(c net.Conn) { echo(c, *chunk) }},
		{portSink, nil, func(c net.Conn) { sink(c, *chunk) }},
		{portGreet, []byte{1}, func(c net.Conn) { drain(c, 64) }},
		{portControl, nil, counter.control},
	}
	for _, s := range services {
		ln, err := n.listen(s.port)
		if err != nil {
			return fmt.Errorf("listen on %d: %w", s.port, err)
		}
		go serve(ln, s.hello, s.handle)
	}
	pc, err := n.listenPacket(portUDP)
	if err != nil {
		return fmt.Errorf("listen for datagrams: %w", err)
	}
	go counter.serve(pc)
	if err := emit(map[string]any{"host": n.host(), "startup_ms": ms(took)}); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// serve runs handle on each connection in a goroutine of its own, after
// writing hello (if any) as it accepts.
func serve(ln net.Listener, hello []byte, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if hello != nil {
			if _, err := c.Write(hello); err != nil {
				c.Close()
				continue
			}
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// echo writes back whatever it reads.
func echo(c net.Conn, chunk int) {
	buf := make([]byte, chunk)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
	}
}

// sink reads to EOF, then writes 1 byte: the sender's "all received".
func sink(c net.Conn, chunk int) {
	if drain(c, chunk) == nil {
		c.Write([]byte{1})
	}
}

// drain reads c to EOF.
func drain(c net.Conn, chunk int) error {
	buf := make([]byte, chunk)
	for {
		_, err := c.Read(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// udpCounter counts the datagrams of a round (begun and ended over a TCP
// control connection) and answers 1-byte datagrams, which warm the path.
type udpCounter struct {
	mu          sync.Mutex
	size        int
	n           int
	first, last time.Time
}

func (u *udpCounter) serve(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if k == 1 {
			pc.WriteTo(buf[:1], from)
			continue
		}
		now := time.Now()
		u.mu.Lock()
		if k == u.size {
			if u.n == 0 {
				u.first = now
			}
			u.n++
			u.last = now
		}
		u.mu.Unlock()
	}
}

// udpQuiet ends a round: no datagram for this long after "end".
const udpQuiet = 500 * time.Millisecond

// control speaks the round protocol: "begin SIZE" starts counting
// datagrams of SIZE bytes ("ok"); "end SENT" waits until SENT have come or
// none for udpQuiet, then answers "RECEIVED SECONDS" (first to last).
func (u *udpCounter) control(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		num, err := strconv.Atoi(arg)
		if err != nil {
			fmt.Fprintf(c, "error bad line %q\n", line)
			return
		}
		switch verb {
		case "begin":
			u.mu.Lock()
			u.size, u.n = num, 0
			u.mu.Unlock()
			fmt.Fprintf(c, "ok\n")
		case "end":
			n, d := u.await(num)
			fmt.Fprintf(c, "%d %.9f\n", n, d.Seconds())
		default:
			fmt.Fprintf(c, "error unknown verb %q\n", verb)
			return
		}
	}
}

// await waits for want datagrams or udpQuiet without one.
func (u *udpCounter) await(want int) (int, time.Duration) {
	asked := time.Now()
	for {
		u.mu.Lock()
		n, first, last := u.n, u.first, u.last
		u.mu.Unlock()
		quietSince := asked
		if last.After(asked) {
			quietSince = last
		}
		if n >= want || time.Since(quietSince) > udpQuiet {
			if n == 0 {
				return 0, 0
			}
			return n, last.Sub(first)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
