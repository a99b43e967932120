package main

import (
	"os"
	"strings"
	"testing"
)

// readSink gives a logSink a pipe and returns a function that closes the
// sink and returns every line it wrote.
func readSink(t *testing.T, verbose bool) (*logSink, func() []string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &logSink{}
	if err := l.setFD(7, int(w.Fd()), verbose); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return l, func() []string {
		l.close()
		defer r.Close()
		b := make([]byte, 1<<16)
		n, _ := r.Read(b)
		return strings.Split(strings.TrimSuffix(string(b[:n]), "\n"), "\n")
	}
}

func TestTsnetLoginHintIsVerboseAndLoginfIsItsOwnLevel(t *testing.T) {
	l, lines := readSink(t, false)
	l.userf("To start this tsnet server, restart with TS_AUTHKEY set, or go to: %s", "http://x/a/1")
	l.userf("tsnet starting with hostname %q", "n")
	l.loginf("http://x/a/1")
	got := lines()
	want := []string{`7 I tsnet starting with hostname "n"`, "7 L http://x/a/1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}
