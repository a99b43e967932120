package main

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newTestPair makes a pair end and wraps the caller's descriptor.
func newTestPair(t *testing.T) (*pairEnd, *os.File) {
	t.Helper()
	return newTestPairHolding(t, holdByte)
}

// holdNothing is holdByte on a system without SO_PEEK_OFF (qemu-user).
func holdNothing(mine, theirs int) (int, error) { return 0, nil }

// newTestPairHolding is newTestPair with the way to hold a byte given.
func newTestPairHolding(t *testing.T, hold func(mine, theirs int) (int, error)) (*pairEnd, *os.File) {
	t.Helper()
	p, theirs, err := openPairEnd(hold)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	caller := os.NewFile(uintptr(theirs), "caller")
	t.Cleanup(func() { caller.Close() })
	return p, caller
}

// drainPair runs copyTo into a buffer until it returns.
func drainPair(t *testing.T, p *pairEnd, draining func() bool) (*bytes.Buffer, error) {
	t.Helper()
	var out bytes.Buffer
	err := p.copyTo(&out, newCopyBuffer(7, nil), draining) // a small buffer: many rounds
	return &out, err
}

func never() bool { return false }

// TestPairEndDeliversThenEOF: what the caller writes before closing comes
// out whole, and a clean end (release) leaves the caller at EOF.
func TestPairEndDeliversThenEOF(t *testing.T) {
	p, caller := newTestPair(t)
	want := bytes.Repeat([]byte("0123456789"), 1000)
	if _, err := caller.Write(want); err != nil {
		t.Fatal(err)
	}
	unix.Shutdown(int(caller.Fd()), unix.SHUT_WR)
	out, err := drainPair(t, p, never)
	if err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("copyTo = %d bytes, %v; want %d bytes, nil", out.Len(), err, len(want))
	}
	if got := p.pending(); got != 0 {
		t.Fatalf("pending after the caller's EOF = %d, want 0", got)
	}
	p.release()
	p.Close()
	if n, err := caller.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("caller read after a clean end: %d, %v; want EOF", n, err)
	}
}

// TestPairEndAbortIsReset: closing ours without release makes the caller's
// read fail with ECONNRESET, after the data it had not read yet, even
// when the caller half-closed first.
func TestPairEndAbortIsReset(t *testing.T) {
	for _, halfClosed := range []bool{false, true} {
		p, caller := newTestPair(t)
		if p.held == 0 {
			t.Skip("no SO_PEEK_OFF here (qemu-user): see TestPairEndWithoutPeekOff")
		}
		if halfClosed {
			unix.Shutdown(int(caller.Fd()), unix.SHUT_WR)
		}
		if _, err := p.Write([]byte("tail")); err != nil {
			t.Fatal(err)
		}
		p.Close()
		buf := make([]byte, 16)
		n, err := caller.Read(buf)
		if string(buf[:n]) != "tail" || err != nil {
			t.Fatalf("half-closed %v: first read %q, %v; want the data", halfClosed, buf[:n], err)
		}
		if _, err := caller.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("half-closed %v: read after abort: %v; want ECONNRESET", halfClosed, err)
		}
	}
}

// TestPairEndDrain: once draining, copyTo sends what is queued and returns
// without waiting for the caller's EOF; the caller's later writes fail
// (EPIPE) rather than queue where nobody reads them.
func TestPairEndDrain(t *testing.T) {
	p, caller := newTestPair(t)
	if _, err := caller.Write([]byte("queued before close")); err != nil {
		t.Fatal(err)
	}
	p.SetReadDeadline(time.Now())
	out, err := drainPair(t, p, func() bool { return true })
	if err != nil || out.String() != "queued before close" {
		t.Fatalf("drain: %q, %v", out.String(), err)
	}
	if got := p.pending(); got != 0 {
		t.Fatalf("pending after drain = %d, want 0", got)
	}
	if _, err := caller.Write([]byte("after")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a write after the drain: %v, want EPIPE", err)
	}
	if got := p.pending(); got != 0 {
		t.Fatalf("pending after a refused write = %d, want 0", got)
	}
}

// TestPairEndCallerResets: a caller closing with data unread is the
// caller's reset, not its EOF.
func TestPairEndCallerResets(t *testing.T) {
	p, caller := newTestPair(t)
	if _, err := p.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	caller.Write([]byte("sent"))
	caller.Close()
	out, err := drainPair(t, p, never)
	if out.String() != "sent" || err != errCallerGone {
		t.Fatalf("copyTo after the caller's reset: %q, %v; want \"sent\", errCallerGone", out.String(), err)
	}
}

// TestPairEndWithoutPeekOff: where SO_PEEK_OFF is missing nothing is held;
// the data still comes out whole with the caller's EOF, pending counts
// what is queued, and an abort reaches the caller as EOF (documented).
func TestPairEndWithoutPeekOff(t *testing.T) {
	p, caller := newTestPairHolding(t, holdNothing)
	if p.held != 0 {
		t.Fatalf("held = %d, want 0", p.held)
	}
	caller.Write([]byte("queued"))
	if got := p.pending(); got != 6 {
		t.Fatalf("pending = %d, want 6", got)
	}
	unix.Shutdown(int(caller.Fd()), unix.SHUT_WR)
	out, err := drainPair(t, p, never)
	if out.String() != "queued" || err != nil {
		t.Fatalf("copyTo: %q, %v; want \"queued\", nil", out.String(), err)
	}
	p.Write([]byte("tail"))
	p.Close()
	buf := make([]byte, 16)
	if n, err := caller.Read(buf); string(buf[:n]) != "tail" || err != nil {
		t.Fatalf("first read %q, %v; want the data", buf[:n], err)
	}
	if n, err := caller.Read(buf); n != 0 || err == nil || errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the close: %d, %v; want EOF", n, err)
	}
}

// TestCopyBufferGrowsWhileFullAndShrinksWhenQuiet: a copier waits with
// its small buffer, takes a large one while reads fill the small one
// (held or not), and gives it back after a read the small one would hold.
func TestCopyBufferGrowsWhileFullAndShrinksWhenQuiet(t *testing.T) {
	pool := &sync.Pool{New: func() any { b := make([]byte, 64); return &b }}
	c := newCopyBuffer(8, pool)
	steps := []struct {
		n    int
		want int // len(get()) after used(n)
	}{
		{3, 8}, {8, 64}, {64, 64}, {20, 64}, {2, 8}, {7, 64}, {1, 8},
	}
	for i, s := range steps {
		c.used(s.n)
		if got := len(c.get()); got != s.want {
			t.Fatalf("step %d: after a read of %d, buffer of %d bytes; want %d", i, s.n, got, s.want)
		}
	}
	c.used(8)
	c.release()
	if c.large != nil || len(c.get()) != 8 {
		t.Fatalf("after release: large %v, buffer %d bytes; want none, 8", c.large != nil, len(c.get()))
	}
	copy(c.get(), "abcdefgh")
	if got := c.grow(5); len(got) != 64 || string(got[:5]) != "abcde" || len(c.get()) != 64 {
		t.Fatalf("grow(5) = %q... (%d bytes); want the quiet buffer's first 5 bytes in a large one", got[:5], len(got))
	}
	c.release()
	fixed := newCopyBuffer(7, nil)
	fixed.used(7)
	if len(fixed.get()) != 7 {
		t.Fatal("a copy buffer without a pool grew")
	}
}
