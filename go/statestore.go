package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"tailscale.com/ipn"
)

// callerStore is an ipn.StateStore served by the C API's caller over a
// stream socket (tailnet_set_store): Go never calls into the caller, it
// sends a request and waits, for a bounded time, for the reply. The
// caller serves requests one at a time on a thread of its own.
//
// Frames (all integers big-endian), both ways: u32 length of the rest,
// u64 request number, then
//
//	request: u8 'R' or 'W', u16 key length, key, value ('W' only)
//	reply:   u8 status (storeOK, storeMissing, storeFailed), then the
//	         value (storeOK of an 'R') or an error message (storeFailed)
//
// A reply that comes after its request timed out is dropped: requests are
// numbered, so a slow store never answers the wrong one.
type callerStore struct {
	conn    net.Conn
	timeout time.Duration

	requests chan []byte // frames for the writer
	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup // the reader and the writer

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan storeReply

	failure atomic.Pointer[apiError] // the most recent failure, for start's error
}

type storeReply struct {
	status byte
	body   []byte
}

const (
	storeOK      = 0
	storeMissing = 1 // no value for the key
	storeFailed  = 2 // the caller's store raised: body is the message
	maxStoreKey  = 1<<16 - 1
	maxStoreBody = 64 << 20 // a frame larger than this is a broken peer, not state
)

// newCallerStore serves a store over a dup of fd with a timeout per call.
func newCallerStore(fd int, timeout time.Duration) (*callerStore, error) {
	if timeout <= 0 {
		return nil, errorf(codeInvalid, "state store timeout must be positive, not %v", timeout)
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, errorf(codeInvalid, "state store descriptor %d: %v", fd, err)
	}
	unix.CloseOnExec(dup)
	conn, err := fileConn(dup, "state-store")
	if err != nil {
		return nil, errorf(codeInvalid, "state store descriptor %d is not a socket: %v", fd, err)
	}
	c := &callerStore{
		conn:     conn,
		timeout:  timeout,
		requests: make(chan []byte, 16),
		done:     make(chan struct{}),
		waiting:  make(map[uint64]chan storeReply),
	}
	c.wg.Add(2)
	go c.write()
	go c.read()
	return c, nil
}

// String names the store in tailscale's log lines.
func (c *callerStore) String() string { return "tailnet.StateStore" }

// ReadState implements ipn.StateStore.
func (c *callerStore) ReadState(key ipn.StateKey) ([]byte, error) {
	r, err := c.call('R', key, nil)
	if err != nil {
		return nil, err
	}
	if r.status == storeMissing {
		return nil, ipn.ErrStateNotExist
	}
	return r.body, nil
}

// WriteState implements ipn.StateStore.
func (c *callerStore) WriteState(key ipn.StateKey, value []byte) error {
	_, err := c.call('W', key, value)
	return err
}

// call sends one request and waits for its reply, for at most c.timeout.
func (c *callerStore) call(op byte, key ipn.StateKey, value []byte) (storeReply, error) {
	if len(key) > maxStoreKey || len(value) > maxStoreBody {
		return storeReply{}, c.fail("state key %q or its value is too long for the state store", key)
	}
	id, reply := c.register()
	defer c.unregister(id)
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case c.requests <- encodeStoreRequest(id, op, key, value):
	case <-timer.C:
		return storeReply{}, c.timedOut(op, key)
	case <-c.done:
		return storeReply{}, errorf(codeState, "the state store is closed")
	}
	select {
	case r := <-reply:
		if r.status == storeFailed {
			return r, c.fail("the state store failed to %s %q: %s", opName(op), key, r.body)
		}
		if r.status != storeOK && r.status != storeMissing {
			return r, c.fail("the state store sent an unknown status %d", r.status)
		}
		return r, nil
	case <-timer.C:
		return storeReply{}, c.timedOut(op, key)
	case <-c.done:
		return storeReply{}, errorf(codeState, "the state store is closed")
	}
}

func opName(op byte) string {
	if op == 'R' {
		return "read"
	}
	return "write"
}

func (c *callerStore) timedOut(op byte, key ipn.StateKey) error {
	return c.fail("the state store did not %s %q within %v", opName(op), key, c.timeout)
}

// fail records and returns a state store error.
func (c *callerStore) fail(format string, args ...any) error {
	e := &apiError{code: codeState, msg: fmt.Sprintf(format, args...)}
	c.failure.Store(e)
	return e
}

// lastFailure is the most recent failure, or nil.
func (c *callerStore) lastFailure() error {
	if e := c.failure.Load(); e != nil {
		return e
	}
	return nil
}

func (c *callerStore) register() (uint64, chan storeReply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	ch := make(chan storeReply, 1)
	c.waiting[c.next] = ch
	return c.next, ch
}

func (c *callerStore) unregister(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting, id)
}

// write sends the queued requests until the store is closed.
func (c *callerStore) write() {
	defer c.wg.Done()
	for {
		select {
		case frame := <-c.requests:
			if _, err := c.conn.Write(frame); err != nil {
				c.stop()
				return
			}
		case <-c.done:
			return
		}
	}
}

// read delivers each reply to the call waiting for it, if any still is.
func (c *callerStore) read() {
	defer c.wg.Done()
	defer c.stop()
	r := bufio.NewReader(c.conn)
	for {
		id, reply, err := readStoreReply(r)
		if err != nil {
			return
		}
		c.mu.Lock()
		ch := c.waiting[id]
		c.mu.Unlock()
		if ch != nil {
			ch <- reply // buffered, and only one reply per number
		}
	}
}

func (c *callerStore) stop() { c.doneOnce.Do(func() { close(c.done) }) }

// close ends both goroutines and closes the socket, which the caller's
// thread reads as end-of-file.
func (c *callerStore) close() {
	c.stop()
	c.conn.Close()
	c.wg.Wait()
}

func encodeStoreRequest(id uint64, op byte, key ipn.StateKey, value []byte) []byte {
	n := 8 + 1 + 2 + len(key) + len(value)
	b := make([]byte, 0, 4+n)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, op)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

func readStoreReply(r io.Reader) (uint64, storeReply, error) {
	var head [4 + 8 + 1]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, storeReply{}, err
	}
	n := binary.BigEndian.Uint32(head[:4])
	if n < 9 || n-9 > maxStoreBody {
		return 0, storeReply{}, errors.New("state store: malformed reply")
	}
	body := make([]byte, n-9)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, storeReply{}, err
	}
	return binary.BigEndian.Uint64(head[4:12]), storeReply{status: head[12], body: body}, nil
}
