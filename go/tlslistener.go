package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// tlsHandshakeTimeout bounds one TLS handshake, certificate fetch included
// (tsnet's LocalClient allows a minute for that).
const tlsHandshakeTimeout = 90 * time.Second

// tlsListener completes each connection's TLS handshake before Accept
// returns it, so the caller's socket carries plaintext from its first byte
// and a failed handshake (no certificate, a client giving up) never reaches
// the caller: it is logged and closed. Handshakes run concurrently, one
// goroutine each, so a slow client cannot hold up the others.
type tlsListener struct {
	inner  net.Listener // from tls.NewListener: Accept returns a *tls.Conn before its handshake
	log    *logSink
	ready  chan net.Conn
	ctx    context.Context // cancelled by Close or when inner fails
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept goroutine and every handshake
}

func (s *server) newTLSListener(inner net.Listener) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{inner: inner, log: s.log, ready: make(chan net.Conn), ctx: ctx, cancel: cancel}
	l.wg.Go(l.acceptLoop)
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.cancel()
	defer recoverGoroutine("TLS listener", l.log.debugf, func() {})
	for {
		c, err := l.inner.Accept()
		if err != nil {
			return
		}
		l.wg.Go(func() { l.handshake(c) })
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer recoverGoroutine("TLS handshake", l.log.debugf, func() { c.Close() })
	tc, ok := c.(*tls.Conn)
	if !ok {
		l.log.debugf("TLS listener: %T is not a TLS connection", c)
		c.Close()
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.report(tc, err)
		tc.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

// report logs a failed handshake: at the user-visible level when this node
// could not get its certificate (the operator must act), else in the
// verbose log (clients that give up or speak no TLS are routine).
func (l *tlsListener) report(c *tls.Conn, err error) {
	var ce *certError
	if errors.As(err, &ce) {
		l.log.infof("TLS connection from %v refused: %v", c.RemoteAddr(), err)
		return
	}
	l.log.debugf("TLS handshake with %v failed: %v", c.RemoteAddr(), err)
}

// Accept returns the next connection whose handshake succeeded. Once the
// listener is closed it waits for its goroutines, then fails.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		l.wg.Wait()
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	l.cancel()
	return l.inner.Close()
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }
