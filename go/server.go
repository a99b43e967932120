package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/tsnet"
)

// server wraps a tsnet.Server with the lifecycle the C API promises: every
// call and every goroutine holds a reference taken through enter, close
// cancels them all and waits for them, and close may race anything,
// including a pending up, from any thread.
type server struct {
	ts  *tsnet.Server
	log *logSink

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every call in flight and every goroutine we own

	mu        sync.Mutex
	closed    bool
	started   bool // Start was called (so Close must be)
	running   bool // Start succeeded
	listeners map[*listener]struct{}
	bridges   map[*bridge]struct{}

	node nodeState    // backend state and login URL (watch.go)
	svc  serviceState // TLS, Funnel, loopback (services.go)
}

func newServer() *server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{
		ts:        &tsnet.Server{},
		log:       &logSink{},
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[*listener]struct{}),
		bridges:   make(map[*bridge]struct{}),
	}
	s.ts.Logf = s.log.debugf
	s.ts.UserLogf = s.log.infof
	return s
}

// enter takes a reference for a call or goroutine; the caller must call
// s.wg.Done when finished. It fails once close has begun.
func (s *server) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.wg.Add(1)
	return nil
}

// configure sets one option; only before the server has started.
func (s *server) configure(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.started {
		return errorf(codeInvalid, "option %q cannot change after the server has started", key)
	}
	ts := s.ts
	switch key {
	case "hostname":
		if err := validHostname(value); err != nil {
			return err
		}
		ts.Hostname = value
	case "dir":
		ts.Dir = value
	case "authkey":
		ts.AuthKey = value
		s.log.redact(value)
	case "control_url":
		if err := validControlURL(value); err != nil {
			return err
		}
		ts.ControlURL = value
	case "ephemeral":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return errorf(codeInvalid, "ephemeral must be true or false, not %q", value)
		}
		ts.Ephemeral = b
	case "tags":
		tags, err := parseTags(value)
		if err != nil {
			return err
		}
		ts.AdvertiseTags = tags
	case "port":
		p, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return errorf(codeInvalid, "port must be 0-65535, not %q", value)
		}
		ts.Port = uint16(p)
	default:
		return errorf(codeInvalid, "unknown option %q", key)
	}
	return nil
}

// start brings up the tsnet server (not yet connected to the tailnet).
// Callers hold a reference.
func (s *server) start() error {
	s.mu.Lock()
	if s.ts.Dir == "" || s.ts.Hostname == "" {
		s.mu.Unlock()
		return errorf(codeInvalid, "hostname and dir must be set before start")
	}
	s.started = true
	s.mu.Unlock()
	if err := s.ts.Start(); err != nil {
		return err
	}
	if err := shortenTimeWait(s.ts); err != nil { // see timewait.go
		s.log.debugf("TIME_WAIT left at netstack's default: %v", err)
	}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	s.startTracking()
	return nil
}

// up starts the server and waits until it is running or ctx ends.
func (s *server) up(ctx context.Context) opResult {
	if err := s.start(); err != nil {
		return opResult{fd: -1, err: err}
	}
	_, err := s.ts.Up(ctx)
	if err == nil {
		s.node.awaitState(ctx, ipn.Running.String()) // so state reads Running now
	}
	return opResult{fd: -1, err: s.ctxErr(ctx, err)}
}

// ctxErr explains an error caused by the end of ctx: "closed" when the
// server was closed, "timed out" when the deadline passed.
func (s *server) ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case s.ctx.Err() != nil:
		return errClosed
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errorf(codeTimeout, "timed out: %v", err)
	case errors.Is(ctx.Err(), context.Canceled):
		return errorf(codeCanceled, "canceled")
	}
	return err
}

// dial connects to addr on the tailnet and bridges the connection (a
// stream for TCP, a datagram socket for UDP: packet.go).
func (s *server) dial(ctx context.Context, network, addr string) opResult {
	if err := s.start(); err != nil {
		return opResult{fd: -1, err: err}
	}
	c, err := s.ts.Dial(ctx, network, addr)
	if err != nil {
		return opResult{fd: -1, err: s.ctxErr(ctx, fmt.Errorf("dial %s %s: %w", network, addr, err))}
	}
	text, err := connText(c)
	if err != nil {
		c.Close()
		return opResult{fd: -1, err: err}
	}
	var fd int
	if isPacketNetwork(network) {
		fd, err = s.bridgeDatagrams(c)
	} else {
		fd, err = s.bridge(c, text)
	}
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	return opResult{fd: fd, text: text}
}

// bridge hands c (described by its connText) to a new bridge owned by s and
// returns the caller's fd. It takes ownership of c.
func (s *server) bridge(c net.Conn, text string) (int, error) {
	if err := s.enter(); err != nil {
		c.Close()
		return -1, err
	}
	peer, _, _ := strings.Cut(text, " ")
	b, fd, err := newBridge(c, peer, s.log.debugf)
	if err != nil {
		s.wg.Done()
		return -1, err
	}
	s.mu.Lock()
	s.bridges[b] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	b.start(func(b *bridge) {
		s.mu.Lock()
		delete(s.bridges, b)
		s.mu.Unlock()
		s.wg.Done()
	})
	if closed { // close ran between enter and registration
		b.close()
	}
	return fd, nil
}

// close shuts everything down and waits for every goroutine we own.
// It is safe to call more than once and concurrently with anything.
func (s *server) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.close()
	}
	for b := range s.bridges {
		b.close()
	}
	started := s.started
	s.mu.Unlock()

	s.wg.Wait()
	if started {
		s.closeTSNet()
	}
	s.log.close()
}

// tsnetCloseBound is how long close waits for tsnet.Server.Close.
const tsnetCloseBound = 5 * time.Second

var stuckCloses atomic.Int64

// closeTSNet closes the tsnet server, but returns after tsnetCloseBound
// even if that has not finished. tailscale v1.102's netstack stops its
// packet writer before aborting TCP endpoints, and each abort queues a RST
// on a 512-packet queue: with more than 512 connected or TIME_WAIT
// endpoints (e.g. after serving many short connections within a minute)
// Close never returns. Then the stuck shutdown is left behind (counted in
// stuck_closes) rather than hanging the caller.
func (s *server) closeTSNet() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }() // a server whose Start failed half-way
		s.ts.Close()
	}()
	select {
	case <-done:
	case <-time.After(tsnetCloseBound):
		stuckCloses.Add(1)
		s.log.infof("tsnet.Server.Close did not finish within %v (many recent TCP connections; "+
			"a known netstack shutdown issue); continuing without it", tsnetCloseBound)
	}
}

func (s *server) ips() ([]netip.Addr, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.wg.Done()
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		return nil, nil
	}
	var out []netip.Addr
	ip4, ip6 := s.ts.TailscaleIPs()
	for _, ip := range []netip.Addr{ip4, ip6} {
		if ip.IsValid() {
			out = append(out, ip)
		}
	}
	return out, nil
}

func validHostname(h string) error {
	if h == "" || len(h) > 63 {
		return errorf(codeInvalid, "hostname must be 1-63 characters, got %d", len(h))
	}
	for i, r := range h {
		ok := r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok || (r == '-' && (i == 0 || i == len(h)-1)) {
			return errorf(codeInvalid, "hostname %q is not a DNS label: use letters, digits and inner hyphens", h)
		}
	}
	return nil
}

func validControlURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errorf(codeInvalid, "control URL %q must be an http:// or https:// URL with a host", v)
	}
	return nil
}

func parseTags(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	tags := strings.Split(v, ",")
	for _, t := range tags {
		name, ok := strings.CutPrefix(t, "tag:")
		if !ok || name == "" || validHostname(name) != nil {
			return nil, errorf(codeInvalid, "tag %q must look like tag:name (letters, digits, hyphens)", t)
		}
	}
	return tags, nil
}

// startOp runs fn as an op owned by s, with a timeout in milliseconds
// (negative: none).
func (s *server) startOp(timeoutMS int64, fn func(ctx context.Context) opResult) (*op, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	return startOp(s.ctx, func(ctx context.Context) opResult {
		ctx, cancel := withTimeout(ctx, timeoutMS)
		defer cancel()
		return fn(ctx)
	}, s.wg.Done)
}

// withTimeout returns a context for a call with a timeout in milliseconds;
// a negative timeout means none.
func withTimeout(ctx context.Context, ms int64) (context.Context, context.CancelFunc) {
	if ms < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
}
