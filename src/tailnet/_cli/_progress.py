"""What the command line shows while it waits: progress, the login URL, and the node's messages."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from .._info import BackendError, BackendState, LoginRequired, StateChanged, WatchEvent

__all__ = ["Progress", "configure_logging"]

_CLEAR_LINE = "\r\033[K"

#: The spinner's frames, one more every _TICK seconds. Ticks per second
#: must not be a multiple of the frames: at 0.25 s the spinner looked the
#: same every second, as if it had stopped.
_FRAMES = "|/-\\"
_TICK = 0.15

#: What a node in each state is doing, as a phrase; None: say nothing new.
_DOING = {
    BackendState.NO_STATE: None,
    BackendState.NEEDS_LOGIN: None,  # passing while an auth key is used; the URL says more
    BackendState.IN_USE_OTHER_USER: "in use by another user",
    BackendState.NEEDS_MACHINE_AUTH: "waiting for an administrator to approve this device",
    BackendState.STOPPED: "stopped",
    BackendState.STARTING: "logged in, connecting",
    BackendState.RUNNING: "running",
}

_AWAITING_LOGIN = "waiting for you to log in"

#: Login URLs the command line showed itself; their log records are not printed again.
_shown_urls: set[str] = set()
_showing = threading.Event()  # set while a Progress shows a node's events


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes log records on their own line, clearing a progress line first on a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream.isatty():
            self.stream.write(_CLEAR_LINE)
        super().emit(record)


def _not_shown_yet(record: logging.LogRecord) -> bool:
    """Drop a login URL's log record when a Progress shows (or showed) that URL."""
    url = getattr(record, "login_url", None)
    return url is None or not (_showing.is_set() or url in _shown_urls)


def configure_logging(verbosity: int) -> None:
    """Show the node's user-facing messages (the login URL) always, more with -v / -vv."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_not_shown_yet)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


class Progress:
    """``with Progress("web", "joining the tailnet"):`` shows that a wait goes on, and what it waits for.

    On a terminal a spinner line says what the node is doing and counts the
    seconds. Elsewhere (a log file, a pipe) each change is a sentence of its
    own, and every ``every`` seconds one more says the wait goes on. A login
    URL is shown once, on lines of its own (with a QR code on a terminal,
    if the ``qr`` extra is installed).
    """

    def __init__(self, name: str, doing: str, stream: TextIO | None = None, every: float = 10.0) -> None:
        self._name = name
        self._doing = doing
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._every = every
        self._state = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tailnet-progress", daemon=True)
        self._start = 0.0

    def event(self, event: WatchEvent) -> None:
        """Show a node event (for ``up(on_event=...)``)."""
        if isinstance(event, StateChanged):
            if (doing := _DOING.get(event.state)) is not None:
                self.state(doing)
        elif isinstance(event, LoginRequired):
            self.login(event.url)
        elif isinstance(event, BackendError):
            self._line(f"{self._name}: the node reports an error: {event.message}")

    def shown_elsewhere(self, url: str) -> None:
        """Note that the command shows this login URL itself (e.g. in a status): do not show it here."""
        with self._lock:
            _shown_urls.add(url)

    def login(self, url: str) -> None:
        """Show a login URL (once: again only if it changes), then wait for the login."""
        with self._lock:
            if url in _shown_urls:
                return
            _shown_urls.add(url)
        text = f"{self._name}: to join the tailnet, log in at:\n  {url}"
        if self._tty:
            with contextlib.suppress(ImportError):  # no qr extra: no QR code
                text += "\n" + LoginRequired(url).qr().rstrip("\n")
        self._line(text)
        self.state(_AWAITING_LOGIN)

    def state(self, text: str) -> None:
        """What is happening now: on the spinner line, or as a sentence of its own."""
        with self._lock:
            if text == self._state:
                return
            self._state = text
        if not self._tty:
            self._line(f"{self._name}: {text}.")

    def _line(self, text: str) -> None:
        """Write whole lines (on a terminal, over the spinner line, which the next tick redraws)."""
        self._write(f"{_CLEAR_LINE if self._tty else ''}{text}\n")

    def _run(self) -> None:
        tick = 0
        while not self._done.wait(_TICK if self._tty else self._every):
            tick += 1
            elapsed = time.monotonic() - self._start
            if self._tty:
                state = f", {self._state}" if self._state else "..."
                frame = _FRAMES[tick % len(_FRAMES)]
                self._write(f"{_CLEAR_LINE}{frame} {self._name}: {self._doing}{state} ({elapsed:.0f} s)")
            else:
                self._write(f"{self._name}: still {self._state or self._doing} ({elapsed:.0f} s).\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        _showing.set()
        if not self._tty:  # first, before any event
            self._write(f"{self._name}: {self._doing}...\n")
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()
        _showing.clear()
        if self._tty:
            self._write(_CLEAR_LINE)
