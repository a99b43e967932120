package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tsnet"
)

// The services of tsnet beyond plain listen/dial: TLS listeners with the
// tailnet's certificates (tsnet.Server.ListenTLS, CertDomains), Funnel
// listeners (ListenFunnel, FunnelOnly) and the loopback SOCKS5 proxy plus
// LocalAPI server (Loopback).
//
// ListenTLS and ListenFunnel are operations: they wait for the node to be
// running, check what the control server offers, and fetch the
// certificate once, so a tailnet without certificates or without Funnel
// fails at listen time with codeNoCert or codeNoFunnel rather than at the
// first handshake. Connections are handed over after their TLS handshake
// (tlslistener.go): the caller's socket carries plaintext.

// serviceState is the part of a server the services keep.
type serviceState struct {
	mu   sync.Mutex
	loop *loopbackInfo // set by the first successful Loopback

	// funnel admits one tsnet ListenFunnel at a time: each rewrites the
	// node's serve config (AllowFunnel), and concurrent rewrites conflict.
	funnelOnce sync.Once
	funnel     chan struct{}
}

func (st *serviceState) funnelSlot() chan struct{} {
	st.funnelOnce.Do(func() { st.funnel = make(chan struct{}, 1) })
	return st.funnel
}

// loopbackInfo is what tsnet.Server.Loopback returns. The credentials are
// secrets: they are redacted from the server's log.
type loopbackInfo struct {
	addr      string // 127.0.0.1:port
	proxyCred string // SOCKS5 password (user "tsnet")
	apiCred   string // LocalAPI basic-auth password
}

// upStatus starts the node and waits until it runs, returning its status.
func (s *server) upStatus(ctx context.Context) (*ipnstate.Status, error) {
	if err := s.start(); err != nil {
		return nil, err
	}
	st, err := s.ts.Up(ctx)
	if err != nil {
		return nil, s.ctxErr(ctx, err)
	}
	return st, nil
}

// tlsDomain is the domain ListenTLS serves, or why the tailnet offers none.
func tlsDomain(st *ipnstate.Status) (string, error) {
	if len(st.CertDomains) == 0 {
		return "", errorf(codeNoCert, "the control server offers this node no TLS certificate domains: "+
			"HTTPS certificates are not enabled for the tailnet (on Tailscale: admin console, DNS page, "+
			"HTTPS Certificates; https://tailscale.com/s/https)")
	}
	if st.CurrentTailnet == nil || !st.CurrentTailnet.MagicDNSEnabled {
		return "", errorf(codeNoCert, "TLS certificates need MagicDNS, which is off for the tailnet "+
			"(on Tailscale: admin console, DNS page; https://tailscale.com/s/https)")
	}
	return st.CertDomains[0], nil
}

// fetchCert gets (and caches) the certificate for domain, so that a
// missing certificate is reported when listening, not at each handshake.
func (s *server) fetchCert(ctx context.Context, domain string) error {
	lc, err := s.ts.LocalClient()
	if err != nil {
		return err
	}
	if _, _, err := lc.CertPair(ctx, domain); err != nil {
		if ctx.Err() != nil {
			return s.ctxErr(ctx, err)
		}
		return errorf(codeNoCert, "no TLS certificate for %s: %v", domain, err)
	}
	return nil
}

// certError is a failure to get a certificate during a handshake.
type certError struct {
	name string
	err  error
}

func (e *certError) Error() string {
	return fmt.Sprintf("no TLS certificate for %q: %v", e.name, e.err)
}

// getCert is the GetCertificate of our TLS listeners: the tailnet's
// certificate for the name the client asked for (SNI). A bare host name
// is expanded to the node's cert domain it starts, as tsnet does.
func (s *server) getCert(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(hi.ServerName, ".")
	if name == "" {
		return nil, errors.New("the client sent no server name (SNI): connect with the node's DNS name")
	}
	if !strings.Contains(name, ".") {
		for _, d := range s.ts.CertDomains() {
			if strings.HasPrefix(d, name+".") {
				name = d
				break
			}
		}
	}
	lc, err := s.ts.LocalClient()
	if err != nil {
		return nil, &certError{name, err}
	}
	certPEM, keyPEM, err := lc.CertPair(hi.Context(), name)
	if err != nil {
		return nil, &certError{name, err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &certError{name, err}
	}
	return &cert, nil
}

func (s *server) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: s.getCert}
}

// listenTLS is the operation behind tailnet_listen_tls.
func (s *server) listenTLS(ctx context.Context, network, addr string) opResult {
	st, err := s.upStatus(ctx)
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	domain, err := tlsDomain(st)
	if err == nil {
		err = s.fetchCert(ctx, domain)
	}
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	return s.serveResult(func() (net.Listener, error) {
		raw, err := s.ts.Listen(network, addr)
		if err != nil {
			return nil, errorf(classifyListen(err), "listen_tls %s %s: %v", network, addr, err)
		}
		return s.newTLSListener(tls.NewListener(raw, s.tlsConfig())), nil
	})
}

// checkFunnel validates ListenFunnel's arguments: tcp, ":port".
func checkFunnel(network, addr string) (uint16, error) {
	if network != "tcp" {
		return 0, errorf(codeInvalid, "listen_funnel: network must be tcp, not %q", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return 0, errorf(codeInvalid, "listen_funnel: address %q must be :port (Funnel serves the node's own name)", addr)
	}
	if err := checkPort("listen_funnel", port, false); err != nil {
		return 0, err
	}
	n, _ := strconv.ParseUint(port, 10, 16)
	return uint16(n), nil
}

// funnelDomain checks that the tailnet lets this node use Funnel on port
// and returns the domain it would serve.
func funnelDomain(st *ipnstate.Status, port uint16) (string, error) {
	if st.Self == nil {
		return "", errorf(codeNoFunnel, "Funnel: the node has no status yet")
	}
	if err := ipn.CheckFunnelAccess(port, st.Self); err != nil {
		return "", errorf(codeNoFunnel, "the tailnet does not allow Funnel here: %v", err)
	}
	if len(st.CertDomains) == 0 {
		return "", errorf(codeNoFunnel, "the tailnet does not allow Funnel here: Funnel needs HTTPS "+
			"certificates, and the control server offers this node no cert domains (https://tailscale.com/s/https)")
	}
	return st.CertDomains[0], nil
}

// listenFunnel is the operation behind tailnet_listen_funnel.
func (s *server) listenFunnel(ctx context.Context, addr string, port uint16, funnelOnly bool) opResult {
	st, err := s.upStatus(ctx)
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	domain, err := funnelDomain(st, port)
	if err == nil {
		err = s.fetchCert(ctx, domain)
	}
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	return s.serveResult(func() (net.Listener, error) {
		ln, err := s.tsnetListenFunnel(ctx, addr, funnelOnly)
		if err != nil {
			return nil, err
		}
		return s.newTLSListener(ln), nil
	})
}

// tsnetListenFunnel calls tsnet.Server.ListenFunnel, which waits for the
// node with context.Background(): it cannot be cancelled. The node runs
// already (upStatus), so that wait normally returns at once; if the node
// stopped meanwhile, the call is left to finish on its own goroutine (it
// ends when tsnet closes, and closes any listener it made) so that our
// close never waits for it. Calls are serialised per server (funnelSlot).
func (s *server) tsnetListenFunnel(ctx context.Context, addr string, funnelOnly bool) (net.Listener, error) {
	opts := []tsnet.FunnelOption{tsnet.FunnelTLSConfig(s.tlsConfig())}
	if funnelOnly {
		opts = append(opts, tsnet.FunnelOnly())
	}
	type result struct {
		ln  net.Listener
		err error
	}
	slot := s.svc.funnelSlot()
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, s.ctxErr(ctx, ctx.Err())
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-slot }()
		ln, err := s.ts.ListenFunnel("tcp", addr, opts...)
		done <- result{ln, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, errorf(classifyFunnel(r.err), "listen_funnel %s: %v", addr, r.err)
		}
		return r.ln, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.ln != nil {
				r.ln.Close()
			}
		}()
		return nil, s.ctxErr(ctx, ctx.Err())
	}
}

func classifyFunnel(err error) int {
	if strings.Contains(err.Error(), "Funnel not available") || strings.Contains(err.Error(), "not allowed for funnel") {
		return codeNoFunnel
	}
	return classifyListen(err)
}

// serveResult runs open as a listener owned by s (see listener.go) and
// describes it as an op result: the caller's descriptor, and the text
// "HANDLE BOUND" (the listener handle and the address it listens on). A
// result nobody collects closes the listener and drops its handle.
func (s *server) serveResult(open func() (net.Listener, error)) opResult {
	ln, fd, err := s.serve(open)
	if err != nil {
		return opResult{fd: -1, err: err}
	}
	h := newHandle(ln)
	return opResult{
		fd:   fd,
		text: fmt.Sprintf("%d %s", h, ln.ln.Addr()),
		discard: func() {
			dropHandle(h)
			ln.close()
		},
	}
}

// certDomains is tsnet.Server.CertDomains: empty until the node runs.
func (s *server) certDomains() ([]string, error) {
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
	return s.ts.CertDomains(), nil
}

// loopback is tsnet.Server.Loopback, made safe to call concurrently (tsnet
// checks and sets its loopback listener without a lock) and with its
// credentials redacted from the log.
func (s *server) loopback() (loopbackInfo, error) {
	if err := s.enter(); err != nil {
		return loopbackInfo{}, err
	}
	defer s.wg.Done()
	s.svc.mu.Lock()
	defer s.svc.mu.Unlock()
	if s.svc.loop != nil {
		return *s.svc.loop, nil
	}
	if err := s.start(); err != nil {
		return loopbackInfo{}, err
	}
	addr, proxyCred, apiCred, err := s.ts.Loopback()
	if err != nil {
		return loopbackInfo{}, fmt.Errorf("loopback: %w", err)
	}
	s.log.redact(proxyCred)
	s.log.redact(apiCred)
	s.svc.loop = &loopbackInfo{addr: addr, proxyCred: proxyCred, apiCred: apiCred}
	return *s.svc.loop, nil
}
