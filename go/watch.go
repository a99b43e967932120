package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"tailscale.com/ipn"
)

// Node events: the backend's state changes, login URLs and errors, read
// from tsnet's IPN bus (LocalClient.WatchIPNBus). Each server reads the
// bus in one goroutine it owns, the tracker: it keeps the latest state
// and login URL (nodeState) so that reading them never blocks, logs each
// new login URL the moment it is known, and only then hands the event to
// every watch descriptor (JSON lines, one goroutine per descriptor,
// stopped when the server closes or the caller closes its end). So an
// event never reaches Python before the state it reports can be read.

// nodeEvent is one event; exactly one field is set. On a watch
// descriptor it is one line of JSON.
type nodeEvent struct {
	State    string `json:"state,omitempty"`
	LoginURL string `json:"login_url,omitempty"`
	Error    string `json:"error,omitempty"`
}

// watchMask asks for the current state first, and no network maps.
const watchMask = ipn.NotifyInitialState | ipn.NotifyNoNetMap

func eventsOf(n *ipn.Notify) []nodeEvent {
	var out []nodeEvent
	if n.ErrMessage != nil {
		out = append(out, nodeEvent{Error: *n.ErrMessage})
	}
	if n.State != nil {
		out = append(out, nodeEvent{State: n.State.String()})
	}
	if n.BrowseToURL != nil && *n.BrowseToURL != "" {
		out = append(out, nodeEvent{LoginURL: *n.BrowseToURL})
	}
	return out
}

// watchBus passes the node's events to emit until ctx ends, the bus fails
// or emit fails. The node must have been started.
func (s *server) watchBus(ctx context.Context, emit func(nodeEvent) error) error {
	lc, err := s.ts.LocalClient()
	if err != nil {
		return err
	}
	w, err := lc.WatchIPNBus(ctx, watchMask)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		n, err := w.Next()
		if err != nil {
			return err
		}
		for _, ev := range eventsOf(&n) {
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
}

// nodeState is the backend state and pending login URL last seen, and
// the watches the tracker hands each event to.
type nodeState struct {
	mu       sync.Mutex
	tracking bool
	stopped  bool   // the tracking goroutine has ended
	failure  string // why, if the bus failed while the server was open
	state    string
	loginURL string
	changed  chan struct{} // if not nil, closed at the next change
	watches  map[*watchQueue]struct{}
}

// apply records ev, then queues it for every watch.
func (ns *nodeState) apply(ev nodeEvent) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	switch {
	case ev.LoginURL != "":
		ns.loginURL = ev.LoginURL
	case ev.State != "":
		ns.state = ev.State
		if ev.State != ipn.NeedsLogin.String() && ev.State != ipn.NoState.String() {
			ns.loginURL = "" // logged in (or stopped): the URL is spent
		}
	}
	ns.notifyLocked()
	for q := range ns.watches {
		q.push(ev)
	}
}

// stop records that tracking has ended (failure: why, "" if the server
// closed) and ends every watch.
func (ns *nodeState) stop(failure string) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.stopped = true
	ns.failure = failure
	ns.notifyLocked()
	for q := range ns.watches {
		q.end(failure)
	}
}

// subscribe returns a new watch's queue, holding the current state (and
// login URL) first if the tracker has seen one; the tracker's first event
// brings it otherwise.
func (ns *nodeState) subscribe() *watchQueue {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	q := &watchQueue{wake: make(chan struct{}, 1)}
	if ns.state != "" {
		q.push(nodeEvent{State: ns.state})
		if ns.loginURL != "" {
			q.push(nodeEvent{LoginURL: ns.loginURL})
		}
	}
	if ns.stopped {
		q.end(ns.failure)
		return q
	}
	if ns.watches == nil {
		ns.watches = make(map[*watchQueue]struct{})
	}
	ns.watches[q] = struct{}{}
	return q
}

func (ns *nodeState) unsubscribe(q *watchQueue) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	delete(ns.watches, q)
}

func (ns *nodeState) notifyLocked() {
	if ns.changed != nil {
		close(ns.changed)
		ns.changed = nil
	}
}

func (ns *nodeState) get() (state, loginURL string) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.state == "" {
		return ipn.NoState.String(), ns.loginURL
	}
	return ns.state, ns.loginURL
}

// trackerLagBound bounds how long up waits for the tracker to catch up.
const trackerLagBound = 5 * time.Second

// awaitState waits until the tracked state is want, tracking has stopped,
// ctx ends or bound passes (0: no bound). up uses it, bounded by
// trackerLagBound, so that the state reads Running once up has returned:
// tsnet's Up and the tracker read the bus independently, and the
// tracker's copy of an event may come a moment later.
func (ns *nodeState) awaitState(ctx context.Context, want string, bound time.Duration) {
	var expired <-chan time.Time
	if bound > 0 {
		timer := time.NewTimer(bound)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		ns.mu.Lock()
		if ns.state == want || ns.stopped {
			ns.mu.Unlock()
			return
		}
		if ns.changed == nil {
			ns.changed = make(chan struct{})
		}
		changed := ns.changed
		ns.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-expired:
			return
		}
	}
}

// startTracking starts, once, the goroutine keeping s.node current. Called
// when the node has started.
func (s *server) startTracking() {
	s.node.mu.Lock()
	already := s.node.tracking
	s.node.tracking = true
	s.node.mu.Unlock()
	if already || s.enter() != nil {
		return
	}
	go func() {
		defer s.wg.Done()
		failure := "watching the node stopped: internal error" // unless it ends as below
		defer func() { s.node.stop(failure) }()
		defer recoverGoroutine("state tracker", s.log.debugf, func() {})
		announced := "" // the login URL last logged
		err := s.watchBus(s.ctx, func(ev nodeEvent) error {
			if ev.LoginURL != "" && ev.LoginURL != announced {
				announced = ev.LoginURL
				s.log.loginf(ev.LoginURL)
			}
			s.node.apply(ev)
			return nil
		})
		if s.ctx.Err() == nil {
			s.log.debugf("tailnet: state tracking stopped: %v", err)
			failure = "watching the node failed: " + err.Error()
		} else {
			failure = ""
		}
	}()
}

// state reports the backend state and the pending login URL ("" if none).
func (s *server) state() (state, loginURL string, err error) {
	if err := s.enter(); err != nil {
		return "", "", err
	}
	defer s.wg.Done()
	state, loginURL = s.node.get()
	return state, loginURL, nil
}

// watch starts the node if needed and returns a new caller-owned
// descriptor (one end of a SOCK_STREAM socketpair) that receives the
// node's events as JSON lines, starting with the current state.
func (s *server) watch() (int, error) {
	if err := s.enter(); err != nil {
		return -1, err
	}
	fd, c, err := s.newWatch()
	if err != nil {
		s.wg.Done()
		return -1, err
	}
	go s.runWatch(c)
	return fd, nil
}

func (s *server) newWatch() (int, net.Conn, error) {
	if err := s.start(); err != nil {
		return -1, nil, err
	}
	mine, theirs, err := socketpair(unix.SOCK_STREAM)
	if err != nil {
		return -1, nil, err
	}
	c, err := fileConn(mine, "tailnet-watch")
	if err != nil {
		closeFD(theirs)
		return -1, nil, err
	}
	return theirs, c, nil
}

// runWatch writes events to c until the server closes, the caller closes
// its end, or the bus fails (reported as a last "error" event). It owns
// the reference taken by watch.
func (s *server) runWatch(c net.Conn) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// Closing c ends a write to a caller that does not read, and the read
	// below.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(io.Discard, c) // ends when the caller closes its end
		cancel()
	})
	defer wg.Wait()
	defer c.Close()
	defer recoverGoroutine("watch", s.log.debugf, func() {})
	q := s.node.subscribe()
	defer s.node.unsubscribe(q)
	relayEvents(ctx, q, c)
}

// relayEvents writes the events queued on q to c until ctx ends, a write
// fails or tracking ends (its failure, if any, as a last "error" event).
func relayEvents(ctx context.Context, q *watchQueue, c net.Conn) {
	for {
		events, ended, failure := q.take()
		for _, ev := range events {
			if writeEvent(c, ev) != nil {
				return
			}
		}
		if ended {
			if failure != "" && ctx.Err() == nil {
				writeEvent(c, nodeEvent{Error: failure})
			}
			return
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}

// watchQueue holds the events the tracker has handed one watch and its
// goroutine has not written yet.
type watchQueue struct {
	mu      sync.Mutex
	events  []nodeEvent
	ended   bool
	failure string
	wake    chan struct{} // capacity 1: something to take
}

func (q *watchQueue) push(ev nodeEvent) {
	q.mu.Lock()
	q.events = append(q.events, ev)
	q.mu.Unlock()
	q.signal()
}

func (q *watchQueue) end(failure string) {
	q.mu.Lock()
	q.ended, q.failure = true, failure
	q.mu.Unlock()
	q.signal()
}

func (q *watchQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the queued events (emptying the queue), whether the watch
// has ended, and why.
func (q *watchQueue) take() (events []nodeEvent, ended bool, failure string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	events, q.events = q.events, nil
	return events, q.ended, q.failure
}

func writeEvent(c net.Conn, ev nodeEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}
