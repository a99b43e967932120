package main

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// listener accepts tailnet connections and passes each to the caller over a
// SOCK_SEQPACKET socketpair: one message per connection, its payload the
// text "REMOTE LOCAL ID" and its ancillary data the connection's descriptor
// (SCM_RIGHTS), so the address can never be matched to the wrong socket.
type listener struct {
	ln   net.Listener
	ch   *net.UnixConn // our end of the socketpair
	once sync.Once
}

// listen starts a listener owned by s; it returns the caller's end.
func (s *server) listen(network, addr string) (*listener, int, error) {
	return s.serve(func() (net.Listener, error) {
		if err := s.start(); err != nil {
			return nil, err
		}
		tln, err := s.ts.Listen(network, addr)
		if err != nil {
			return nil, errorf(classifyListen(err), "listen %s %s: %v", network, addr, err)
		}
		return tln, nil
	})
}

// serve hands the connections of the listener that open makes to the
// caller (see listener); it returns the caller's end.
func (s *server) serve(open func() (net.Listener, error)) (*listener, int, error) {
	if err := s.enter(); err != nil {
		return nil, -1, err
	}
	ln, fd, err := s.newListener(open)
	if err != nil {
		s.wg.Done()
		return nil, -1, err
	}
	var wg sync.WaitGroup
	wg.Go(func() { ln.watch() })
	wg.Go(func() { s.acceptLoop(ln) })
	go func() {
		wg.Wait()
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		s.wg.Done()
	}()
	return ln, fd, nil
}

func (s *server) newListener(open func() (net.Listener, error)) (*listener, int, error) {
	tln, err := open()
	if err != nil {
		return nil, -1, err
	}
	mine, theirs, err := socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		tln.Close()
		return nil, -1, err
	}
	c, err := fileConn(mine, "tailnet-listener")
	if err != nil {
		tln.Close()
		closeFD(theirs)
		return nil, -1, err
	}
	ln := &listener{ln: tln, ch: c.(*net.UnixConn)}
	s.mu.Lock()
	s.listeners[ln] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		ln.close()
	}
	return ln, theirs, nil
}

func classifyListen(err error) int {
	if c := classify(err); c != codeInternal {
		return c
	}
	return codeInvalid // tsnet rejects bad addresses with plain errors
}

// listenBacklog is how many accepted connections may wait for the caller.
// tsnet closes (resets) a connection its listener has not taken within a
// second, and a SEQPACKET socket holds only a few messages, so connections
// are taken from tsnet at once and wait here, as in a kernel's accept queue.
const listenBacklog = 4096

// acceptLoop takes connections from tsnet as fast as they come; deliver
// hands them to the caller. A connection arriving to a full backlog is
// closed.
func (s *server) acceptLoop(ln *listener) {
	backlog := make(chan net.Conn, listenBacklog)
	var wg sync.WaitGroup
	wg.Go(func() { s.deliver(ln, backlog) })
	defer wg.Wait()
	defer close(backlog)
	defer ln.close() // unblocks deliver
	defer recoverGoroutine("listener", s.log.debugf, func() {})
	for {
		c, err := ln.ln.Accept()
		if err != nil {
			return
		}
		select {
		case backlog <- c:
		default:
			s.log.debugf("listener backlog full: dropping connection from %v", c.RemoteAddr())
			c.Close()
		}
	}
}

// deliver bridges each connection and sends it to the caller: one message
// "REMOTE LOCAL ID" carrying the descriptor. Once sending fails (the caller
// closed its end) the rest are closed.
func (s *server) deliver(ln *listener, backlog <-chan net.Conn) {
	defer recoverGoroutine("listener", s.log.debugf, ln.close)
	failed := false
	for c := range backlog {
		if failed {
			c.Close()
			continue
		}
		text, err := connText(c)
		if err != nil { // reset while it waited: nobody to hand it to
			c.Close()
			continue
		}
		fd, text, err := s.bridge(c, text)
		if err == nil {
			_, _, err = ln.ch.WriteMsgUnix([]byte(text), unix.UnixRights(fd), nil)
			closeFD(fd) // the message holds its own reference
		}
		if err != nil {
			failed = true
			ln.close()
		}
	}
}

// watch closes the listener when the caller closes its end (reads see EOF:
// the caller never writes).
func (ln *listener) watch() {
	buf := make([]byte, 1)
	for {
		_, err := ln.ch.Read(buf)
		if err != nil {
			ln.close()
			return
		}
	}
}

func (ln *listener) close() {
	ln.once.Do(func() {
		ln.ln.Close()
		ln.ch.Close()
	})
}
