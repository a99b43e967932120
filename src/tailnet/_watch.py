"""Watching a node's events without blocking: :class:`WatchCore`.

The library writes a node's events to a descriptor, one JSON line each
(``tailnet_watch``); :class:`WatchCore` reads them without blocking, and
each facade waits for the descriptor in its own way (:mod:`tailnet._watch_sync`,
:mod:`tailnet._watch_async`). ``up(on_event=...)`` relays these events
until the node runs (:data:`RUNNING_EVENT`).
"""

from __future__ import annotations

import contextlib
import socket

from ._exceptions import ClosedError
from ._info import BackendState, StateChanged, WatchEvent, parse_event

__all__ = ["RUNNING_EVENT", "RUNNING_EVENT_GRACE", "WatchCore"]

#: The event ``up(on_event=...)`` relays events until.
RUNNING_EVENT = StateChanged(BackendState.RUNNING)

#: Once ``up`` has succeeded, how long ``up(on_event=...)`` waits for its
#: watch to report RUNNING too. Both read the node's events independently,
#: so the watch's copy can arrive a moment later; this bound only guards
#: against a watch that stopped.
RUNNING_EVENT_GRACE = 10.0


class WatchCore:
    """The descriptor the library writes a node's events to, one JSON line each."""

    __slots__ = ("_buffer", "_closed", "_ended", "sock")

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fd)
        self.sock.setblocking(False)
        self._buffer = b""
        self._ended = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def ended(self) -> bool:
        """Whether the library has ended the stream (its server closed)."""
        return self._ended

    def receive(self) -> WatchEvent:
        """The next event; BlockingIOError if none has arrived.

        Raises :class:`ClosedError` once the stream has ended (the server
        closed) or this watcher was closed.
        """
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                return parse_event(line)
            if self._closed:
                raise ClosedError("the watcher is closed")
            if self._ended:
                raise ClosedError("the tailnet server is closed")
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                raise
            except OSError as exc:
                raise ClosedError(f"the watcher is closed ({exc.strerror})") from exc
            if not chunk:
                self._ended = True
            self._buffer += chunk

    def ready(self) -> list[WatchEvent]:
        """Every event that has already arrived."""
        events: list[WatchEvent] = []
        while True:
            try:
                events.append(self.receive())
            except (BlockingIOError, ClosedError):
                return events

    def close(self) -> None:
        """Stop watching; a receive waiting in another thread wakes up. Idempotent."""
        self._closed = True
        with contextlib.suppress(OSError):  # shutdown wakes every poll on this socket
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
