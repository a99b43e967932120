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
	"unicode"
	"unicode/utf8"

	"tailscale.com/ipn"
	"tailscale.com/ipn/store/mem"
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
	conns     atomic.Int64 // numbers the bridged connections (tailnet_conn_error)
	fates     fateLog      // why recent connections were aborted

	closing closeState

	store *callerStore // a state store the caller serves (statestore.go), or nil

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
		closing:   closeState{done: make(chan struct{}), hurry: make(chan struct{})},
	}
	s.ts.Logf = s.log.debugf
	s.ts.UserLogf = s.log.userf
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
	case "store":
		if value != "mem" {
			return errorf(codeInvalid, "store must be \"mem\" (or use tailnet_set_store), not %q", value)
		}
		if ts.Store != nil {
			return errorf(codeInvalid, "the server already has a state store")
		}
		ts.Store = new(mem.Store)
	case "authkey":
		s.log.redact(value)
		if i := strings.IndexFunc(value, unicode.IsSpace); i >= 0 {
			r, _ := utf8.DecodeRuneInString(value[i:])
			return errorf(codeInvalid, "authkey contains whitespace (%q at byte %d of %d); auth keys have none: strip it",
				r, i+1, len(value))
		}
		ts.AuthKey = value
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

// setStore makes the caller, served over fd, the server's state store
// (statestore.go); only before the server has started.
func (s *server) setStore(fd int, timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errClosed
	case s.started:
		return errorf(codeInvalid, "the state store cannot change after the server has started")
	case s.ts.Store != nil:
		return errorf(codeInvalid, "the server already has a state store")
	}
	c, err := newCallerStore(fd, timeout)
	if err != nil {
		return err
	}
	s.store = c
	s.ts.Store = c
	return nil
}

// start brings up the tsnet server (not yet connected to the tailnet).
// With a store and no dir, tsnet writes nothing to disk (our patch to
// tsnet, see build_libtailscale.py). Callers hold a reference.
func (s *server) start() error {
	s.mu.Lock()
	if s.closed { // a close waiting for our caller would not close what we start
		s.mu.Unlock()
		return errClosed
	}
	if s.ts.Hostname == "" || (s.ts.Dir == "" && s.ts.Store == nil) {
		s.mu.Unlock()
		return errorf(codeInvalid, "hostname, and dir or a state store, must be set before start")
	}
	if _, ok := s.ts.Store.(*mem.Store); ok && !s.ts.Ephemeral {
		s.mu.Unlock()
		return errorf(codeInvalid, "a memory store needs an ephemeral node: "+
			"a node that forgets its identity at exit would leave a stale node behind on every run")
	}
	s.started = true
	s.mu.Unlock()
	if err := s.ts.Start(); err != nil {
		if s.store != nil && s.store.lastFailure() != nil { // tsnet's error says which call failed
			return errorf(codeState, "%v", err)
		}
		return stateDirError(s.ts.Dir, err)
	}
	if err := tuneNetstack(s.ts); err != nil { // see netstack.go
		s.log.debugf("TIME_WAIT and retransmissions left at netstack's defaults: %v", err)
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
		s.node.awaitState(ctx, ipn.Running.String(), trackerLagBound) // so state reads Running now
	}
	return opResult{fd: -1, err: s.ctxErr(ctx, s.authError(err))} // explain.go
}

// ctxErr explains an error caused by the end of ctx: "closed" when the
// server was closed, "timed out" (and what the node waited for) when the
// deadline passed.
func (s *server) ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case s.ctx.Err() != nil:
		return errClosed
	case deadlinePassed(ctx):
		return s.timeoutError(err)
	case errors.Is(ctx.Err(), context.Canceled):
		return errorf(codeCanceled, "canceled")
	}
	return err
}

// dial connects to addr on the tailnet and bridges the connection (a
// stream for TCP, a datagram socket for UDP: datagram.go).
func (s *server) dial(ctx context.Context, network, addr string) opResult {
	if err := s.start(); err != nil {
		return opResult{fd: -1, err: err}
	}
	if err := s.awaitRunning(ctx); err != nil {
		return opResult{fd: -1, err: s.ctxErr(ctx, fmt.Errorf("dial %s %s: %w", network, addr, err))}
	}
	target, err := s.dialTarget(ctx, network, addr) // names.go
	if err != nil {
		return opResult{fd: -1, err: s.ctxErr(ctx, err)}
	}
	c, err := s.ts.Dial(ctx, network, target)
	if err != nil {
		return opResult{fd: -1, err: s.ctxErr(ctx, fmt.Errorf("dial %s %s: %w", network, addr, err))}
	}
	text, err := connText(c)
	if err != nil {
		c.Close()
		return opResult{fd: -1, err: err}
	}
	if isPacketNetwork(network) {
		fd, err := s.bridgeDatagrams(c)
		if err != nil {
			return opResult{fd: -1, err: err}
		}
		return opResult{fd: fd, text: text}
	}
	fd, text, err := s.bridge(c, text)
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	return opResult{fd: fd, text: text}
}

// bridge hands c (described by its connText) to a new bridge owned by s and
// returns the caller's fd and the text "REMOTE LOCAL ID" that goes with it.
// It takes ownership of c.
func (s *server) bridge(c net.Conn, text string) (int, string, error) {
	if err := s.enter(); err != nil {
		c.Close()
		return -1, "", err
	}
	peer, _, _ := strings.Cut(text, " ")
	b, fd, err := newBridge(s.conns.Add(1), c, peer, &s.fates, s.log.debugf)
	if err != nil {
		s.wg.Done()
		return -1, "", err
	}
	s.mu.Lock()
	s.bridges[b] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	b.start(s.bridgeEnded)
	if closed { // close ran between enter and registration
		b.end(errLingerOver)
	}
	return fd, text + " " + strconv.FormatInt(b.id, 10), nil
}

// bridgeEnded unregisters a bridge that has ended.
func (s *server) bridgeEnded(b *bridge) {
	s.mu.Lock()
	delete(s.bridges, b)
	s.mu.Unlock()
	s.wg.Done()
}

// connError returns why connection id was aborted, or nil.
func (s *server) connError(id int64) error {
	return s.fates.lookup(id)
}

// abortConn aborts connection id if it is still bridged: the peer gets a
// RST and the caller's socket reads ECONNRESET. A connection that has
// ended already is left as it ended.
func (s *server) abortConn(id int64) {
	s.mu.Lock()
	var found *bridge
	for b := range s.bridges {
		if b.id == id {
			found = b
			break
		}
	}
	s.mu.Unlock()
	if found != nil {
		found.end(errCallerAbort)
	}
}

// closeState coordinates closers: the first one closes, the others wait
// for it, and any of them can cut the linger short.
type closeState struct {
	once      sync.Once
	done      chan struct{} // closed when the first close has finished
	hurry     chan struct{} // closed to end the linger at once
	hurryOnce sync.Once
	cut       cutStats
}

// cutStats counts what a close aborted after the linger time.
type cutStats struct{ conns, bytes int64 }

// close closes the server: every caller waits until it is closed, and the
// first one's result is what the server's connections lost. ctx ending,
// or a concurrent close with no linger, cuts the linger short. It is safe
// to call more than once and concurrently with anything.
func (s *server) close(ctx context.Context, linger time.Duration) cutStats {
	if linger <= 0 {
		s.hurryClose()
	}
	s.closing.once.Do(func() {
		defer close(s.closing.done) // even after a panic: later closes must not wait forever
		stop := context.AfterFunc(ctx, s.hurryClose)
		defer stop()
		s.closing.cut = s.shutdown(linger)
	})
	<-s.closing.done
	return s.closing.cut
}

func (s *server) hurryClose() { s.closing.hurryOnce.Do(func() { close(s.closing.hurry) }) }

// hurried reports whether the linger has been cut short.
func (s *server) hurried() bool {
	select {
	case <-s.closing.hurry:
		return true
	default:
		return false
	}
}

// shutdown stops accepting, lets every connection finish delivering what
// the caller wrote (see bridge) for up to linger, aborts the rest, then
// closes the node and waits for every goroutine we own.
func (s *server) shutdown(linger time.Duration) cutStats {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.close()
	}
	if !s.hurried() { // close hurries a linger of 0 before it gets here
		// A held connection closes as a kernel's does at exit: FIN after
		// what was written. With no linger there is no time for that,
		// and a FIN sent now could be acknowledged before awaitBridges
		// looks, so the abort would reach the peer as end-of-file.
		for b := range s.bridges {
			b.drain()
		}
	}
	s.mu.Unlock()

	cut := s.awaitBridges(linger)
	s.wg.Wait()
	// Only now: a call holding a reference may have started tsnet (start
	// refuses once closed is set, so none can after this).
	s.mu.Lock()
	started, running := s.started, s.running
	s.mu.Unlock()
	if running {
		flushOutbound(s.ts) // the RSTs of what awaitBridges aborted
	}
	if started { // tsnet may hold resources even if its Start failed
		s.closeTSNet()
	}
	if s.store != nil {
		s.store.close()
	}
	s.log.close()
	return cut
}

// awaitBridges waits until every bridge has delivered what its caller
// wrote, ending each as it does, for at most linger; then it aborts the
// rest and counts what they lost. It polls: nothing in the netstack
// announces that a FIN was acknowledged.
func (s *server) awaitBridges(linger time.Duration) cutStats {
	deadline := time.NewTimer(linger)
	defer deadline.Stop()
	for wait := time.Millisecond; ; wait = min(2*wait, 20*time.Millisecond) {
		pending := s.liveBridges()
		if len(pending) == 0 {
			return cutStats{}
		}
		for _, b := range pending {
			switch delivered, fate := b.delivery(); {
			case delivered:
				b.end(errDelivered)
			case fate != nil && fate != errLostUnacknowledged:
				b.end(fate) // aborted before the peer acknowledged it all
			} // errLostUnacknowledged: a copier took the reason, and ends the bridge with it
		}
		select {
		case <-deadline.C:
		case <-s.closing.hurry:
		case <-time.After(wait):
			continue
		}
		break
	}
	var cut cutStats
	for _, b := range s.liveBridges() {
		b.end(errLingerOver)
		if b.fate == errLingerOver {
			cut.conns++
			cut.bytes += b.cut
		}
	}
	return cut
}

func (s *server) liveBridges() []*bridge {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*bridge, 0, len(s.bridges))
	for b := range s.bridges {
		out = append(out, b)
	}
	return out
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
