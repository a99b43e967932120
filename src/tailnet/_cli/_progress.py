"""What the command line shows while it waits: progress, and the node's messages."""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from .._info import LoginRequired, StateChanged, WatchEvent

__all__ = ["Progress", "configure_logging"]

_CLEAR_LINE = "\r\033[K"


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes log records on their own line, clearing a progress line first on a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream.isatty():
            self.stream.write(_CLEAR_LINE)
        super().emit(record)


def configure_logging(verbosity: int) -> None:
    """Show the node's user-facing messages (the login URL) always, more with -v / -vv."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


class Progress:
    """``with Progress("joining the tailnet"):`` shows that a wait is going on, and for how long.

    On a terminal a status line counts the seconds; otherwise (a log file,
    a pipe) one line says what is awaited and another every ``every``
    seconds says it still is.
    """

    def __init__(self, what: str, stream: TextIO | None = None, every: float = 10.0) -> None:
        self._what = what
        self._stream = stream if stream is not None else sys.stderr
        self._every = every
        self._state = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tailnet-progress", daemon=True)
        self._start = 0.0

    def event(self, event: WatchEvent) -> None:
        """Show a node event (for ``up(on_event=...)``): its state, or that a login is awaited."""
        if isinstance(event, StateChanged):
            self.state(event.state.value)
        elif isinstance(event, LoginRequired):
            self.state("waiting for the login (URL above)")
        else:
            self.state(f"error: {event.message}")

    def state(self, text: str) -> None:
        """What is happening now: on the status line, or on a line of its own off a terminal."""
        with self._lock:
            if text == self._state:
                return
            self._state = text
        if not self._stream.isatty():
            self._write(f"{self._what}: {text}\n")

    def _run(self) -> None:
        tty = self._stream.isatty()
        interval = 0.25 if tty else self._every
        frames = "|/-\\"
        tick = 0
        if not tty:
            self._write(f"{self._what}...\n")
        while not self._done.wait(interval):
            tick += 1
            elapsed = time.monotonic() - self._start
            state = f" [{self._state}]" if self._state else ""
            if tty:
                self._write(f"{_CLEAR_LINE}{frames[tick % 4]} {self._what}...{state} {elapsed:.0f} s")
            else:
                self._write(f"still {self._what}{state} ({elapsed:.0f} s)\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()
        if self._stream.isatty():
            self._write(_CLEAR_LINE)
