package main

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// An op is a blocking call (up, dial) run on a goroutine so that the C
// caller never blocks inside Go: it waits for the op's wait descriptor to
// become readable (the write end is closed on completion), collects the
// result, and frees the op. Cancel and free may come from any thread at any
// time; a result nobody collects is released by free, so no descriptor leaks.
type op struct {
	cancel context.CancelFunc
	waitR  int // polled by the caller; closed by free
	waitW  int // closed on completion

	mu    sync.Mutex
	done  bool
	freed bool
	res   opResult
}

// opResult is what an op produced: an error, or a descriptor the caller
// takes ownership of plus op-specific text (for dial: "remote local").
type opResult struct {
	err  error
	fd   int
	text string
	// discard, if set, undoes the rest of what the op made (a listener's
	// handle) when the result is released without being collected.
	discard func()
}

func (r *opResult) release() {
	closeFD(r.fd)
	r.fd = -1
	if r.discard != nil {
		r.discard()
		r.discard = nil
	}
}

var liveOps atomic.Int64

// startOp runs fn on a goroutine with a context derived from parent and
// cancelled by cancel/free; exit runs when the goroutine ends, so the owner
// (a server) can account for it.
func startOp(parent context.Context, fn func(ctx context.Context) opResult, exit func()) (*op, error) {
	r, w, err := pipe()
	if err != nil {
		exit()
		return nil, err
	}
	ctx, cancel := context.WithCancel(parent)
	o := &op{cancel: cancel, waitR: r, waitW: w, res: opResult{fd: -1}}
	liveOps.Add(1)
	go func() {
		defer exit()
		defer cancel()
		o.complete(runGuarded(ctx, fn))
	}()
	return o, nil
}

// runGuarded runs fn, turning a panic into an internal error: no panic may
// cross into the C caller's process.
func runGuarded(ctx context.Context, fn func(ctx context.Context) opResult) (res opResult) {
	defer func() {
		if p := recover(); p != nil {
			res = opResult{fd: -1, err: errorf(codeInternal, "internal error: %v\n%s", p, debug.Stack())}
		}
	}()
	return fn(ctx)
}

func (o *op) complete(res opResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = true
	o.res = res
	if o.freed {
		o.release()
	}
	closeFD(o.waitW)
}

// result returns the outcome once the op is done; the descriptor, if any,
// is handed over exactly once.
func (o *op) result() (opResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		return opResult{fd: -1}, errorf(codeInProgress, "operation still in progress")
	}
	res := o.res
	o.res.fd, o.res.discard = -1, nil // handed over
	return res, res.err
}

func (o *op) free() {
	o.cancel()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.freed {
		return
	}
	o.freed = true
	if o.done {
		o.release()
	}
}

// release closes everything the op still owns; called with mu held once
// the op is both done and freed.
func (o *op) release() {
	o.res.release()
	closeFD(o.waitR)
	liveOps.Add(-1)
}
