package main

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// handles maps the int64 handles given to C to the Go objects they name.
// Handles are never reused within a process, so a stale handle can never
// reach a newer object.
var handles struct {
	mu   sync.Mutex
	next atomic.Int64
	m    map[int64]any
}

func newHandle(v any) int64 {
	h := handles.next.Add(1)
	handles.mu.Lock()
	defer handles.mu.Unlock()
	if handles.m == nil {
		handles.m = make(map[int64]any)
	}
	handles.m[h] = v
	return h
}

func dropHandle(h int64) {
	handles.mu.Lock()
	defer handles.mu.Unlock()
	delete(handles.m, h)
}

// lookup returns the object behind h if it is a T.
func lookup[T any](h int64) (T, error) {
	handles.mu.Lock()
	v, ok := handles.m[h]
	handles.mu.Unlock()
	t, isT := v.(T)
	if !ok || !isT {
		var zero T
		return zero, &apiError{code: codeBadHandle, msg: fmt.Sprintf("unknown %T handle %d", zero, h)}
	}
	return t, nil
}

func liveHandles() int64 {
	handles.mu.Lock()
	defer handles.mu.Unlock()
	return int64(len(handles.m))
}
