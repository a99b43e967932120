package main

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// listener accepts tailnet connections and passes each to the caller over a
// SOCK_SEQPACKET socketpair: one message per connection, its payload the
// text "remote local" and its ancillary data the connection's descriptor
// (SCM_RIGHTS), so the address can never be matched to the wrong socket.
type listener struct {
	ln   net.Listener
	ch   *net.UnixConn // our end of the socketpair
	once sync.Once
}

// listen starts a listener owned by s; it returns the caller's end.
func (s *server) listen(network, addr string) (*listener, int, error) {
	if err := s.enter(); err != nil {
		return nil, -1, err
	}
	ln, fd, err := s.newListener(network, addr)
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

func (s *server) newListener(network, addr string) (*listener, int, error) {
	if err := s.start(); err != nil {
		return nil, -1, err
	}
	tln, err := s.ts.Listen(network, addr)
	if err != nil {
		return nil, -1, errorf(classifyListen(err), "listen %s %s: %v", network, addr, err)
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

// acceptLoop hands connections to the caller until the listener closes.
func (s *server) acceptLoop(ln *listener) {
	defer ln.close()
	for {
		c, err := ln.ln.Accept()
		if err != nil {
			return
		}
		fd, err := s.bridge(c)
		if err != nil {
			return
		}
		payload := []byte(c.RemoteAddr().String() + " " + c.LocalAddr().String())
		_, _, err = ln.ch.WriteMsgUnix(payload, unix.UnixRights(fd), nil)
		closeFD(fd) // the message holds its own reference
		if err != nil {
			return
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
