package main

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// logSink forwards a server's log lines to a descriptor chosen by the
// caller, one line per record: "<handle> <level> <text>\n", level I for
// user-facing messages, L for a login URL (the text is the URL alone,
// once per URL: see loginf) and D for tsnet's verbose log.
// A goroutine does the writing through a bounded queue, so a slow reader
// costs dropped lines, never a stalled node. Known secrets are redacted.
type logSink struct {
	mu      sync.Mutex
	handle  int64
	verbose bool
	secrets []string
	queue   chan string
	done    chan struct{}
}

// maxLogLine keeps each write below PIPE_BUF so lines from several servers
// sharing one pipe never interleave.
const maxLogLine = 4000

// setFD starts forwarding to a dup of fd. It may be called once.
func (l *logSink) setFD(handle int64, fd int, verbose bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queue != nil {
		return errorf(codeInvalid, "the log descriptor is already set")
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		return errorf(codeInvalid, "log descriptor %d: %v", fd, err)
	}
	unix.CloseOnExec(dup)
	// Never block on a reader that stopped: a full pipe drops lines.
	// (O_NONBLOCK is shared with the caller's descriptor: it only writes.)
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return errorf(codeInternal, "log descriptor: %v", err)
	}
	l.handle, l.verbose = handle, verbose
	l.queue = make(chan string, 1024)
	l.done = make(chan struct{})
	go l.run(l.queue, l.done, dup)
	return nil
}

func (l *logSink) run(queue <-chan string, done chan<- struct{}, fd int) {
	defer close(done)
	defer unix.Close(fd)
	for line := range queue {
		_, err := unix.Write(fd, []byte(line))
		if err != nil && err != unix.EAGAIN {
			for range queue { // reader gone: drain until close
			}
			return
		}
	}
}

func (l *logSink) redact(secret string) {
	if secret == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.secrets = append(l.secrets, secret)
}

func (l *logSink) infof(format string, args ...any)  { l.emit('I', format, args) }
func (l *logSink) debugf(format string, args ...any) { l.emit('D', format, args) }

// loginf announces a login URL the node waits on. The state tracker calls
// it as soon as the URL is known, and again only when it changes.
func (l *logSink) loginf(url string) { l.emit('L', "%s", []any{url}) }

// tsnetLoginHint starts the line tsnet's AuthLoop logs every 5 s while a
// login is pending ("To start this tsnet server, restart with TS_AUTHKEY
// set, or go to: URL"): late (the first at about 5 s), repeated, and
// advice for a Go program's user. loginf replaces it.
const tsnetLoginHint = "To start this tsnet server"

// userf is tsnet's UserLogf: its user-facing lines, but the login hint,
// which goes to the verbose log.
func (l *logSink) userf(format string, args ...any) {
	if strings.HasPrefix(format, tsnetLoginHint) {
		l.debugf(format, args...)
		return
	}
	l.infof(format, args...)
}

func (l *logSink) emit(level byte, format string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queue == nil || (level == 'D' && !l.verbose) {
		return
	}
	text := fmt.Sprintf(format, args...)
	for _, s := range l.secrets {
		text = strings.ReplaceAll(text, s, "[redacted]")
	}
	text = strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", " | ")
	line := fmt.Sprintf("%d %c %s", l.handle, level, text)
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	select {
	case l.queue <- line + "\n":
	default: // the reader lags: drop the line
	}
}

// close stops the writer goroutine after it has flushed the queue.
func (l *logSink) close() {
	l.mu.Lock()
	queue, done := l.queue, l.done
	l.queue = nil
	l.mu.Unlock()
	if queue != nil {
		close(queue)
		<-done
	}
}
