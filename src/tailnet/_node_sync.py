"""Node information for the sync facade: whois, status, ping, watch.

:class:`NodeInfoMethods` is part of :class:`tailnet.Server`; the logic lives
in :mod:`tailnet._node_core`, and this module only waits (``poll``, so
Ctrl-C works and no thread is used).
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ._addresses import IPAddress
from ._core import Node
from ._exceptions import ClosedError
from ._node_core import (
    PING_TIMEOUT,
    RUNNING_EVENT,
    RUNNING_EVENT_GRACE,
    Pending,
    WatchCore,
    begin_ping,
    begin_status,
    begin_whois,
    open_watch,
)
from ._node_info import PeerIdentity, PingKind, PingResult, Status, WatchEvent
from ._wait import wait_readable, wait_socket

__all__ = ["NodeInfoMethods", "Watcher", "up_with_events"]

T = TypeVar("T")


def _complete(pending: Pending[T]) -> T:
    """Wait for a pending call and collect it; on any exit free its operation."""
    try:
        wait_readable(pending.op.wait_fd)
        return pending.collect()
    finally:
        pending.op.free()


class Watcher:
    """The events of a node, as they happen; returned by :meth:`Server.watch`.

    Iterating yields :class:`StateChanged`, :class:`LoginRequired` and
    :class:`BackendError` events (the first is the current state) until the
    watcher or its server closes. ``fileno()`` works with ``selectors``.
    """

    def __init__(self, core: WatchCore) -> None:
        self._core = core

    def receive(self, timeout: float | None = None) -> WatchEvent:
        """The next event.

        Raises :class:`~tailnet.ClosedError` once the watcher or its server
        is closed and :class:`~tailnet.TailnetTimeout` after ``timeout``
        seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._core.receive()
            except BlockingIOError:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not wait_socket(self._core.sock, remaining, "watch"):
                    raise ClosedError("the watcher is closed") from None  # by another thread

    def __iter__(self) -> Iterator[WatchEvent]:
        """Yield events until the watcher or its server closes."""
        while True:
            try:
                yield self.receive()
            except ClosedError:
                return

    def fileno(self) -> int:
        """A descriptor that is readable when :meth:`receive` will not block."""
        return self._core.sock.fileno()

    def close(self) -> None:
        """Stop watching. Idempotent."""
        self._core.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tailnet.Watcher {'closed' if self._core.closed else 'open'}>"


def up_with_events(node: Node, timeout: float | None, on_event: Callable[[WatchEvent], object]) -> None:
    """``up``, calling ``on_event`` in this thread with each event until the node runs."""
    core = open_watch(node)
    try:
        op = node.begin_up(timeout)
        try:
            running = _relay(core, on_event, op.wait_fd, None)
            wait_readable(op.wait_fd)
            op.result()
        finally:
            op.free()
        if not running:  # up's own check came first: the watch's RUNNING is on its way
            _relay(core, on_event, None, RUNNING_EVENT_GRACE)
    finally:
        core.close()


def _relay(
    core: WatchCore, on_event: Callable[[WatchEvent], object], stop_fd: int | None, timeout: float | None
) -> bool:
    """Pass events to on_event until RUNNING; whether it came.

    Stops early (False) when stop_fd is readable, the stream ends or
    timeout seconds pass.
    """
    poller = select.poll()
    poller.register(core.sock, select.POLLIN)
    if stop_fd is not None:
        poller.register(stop_fd, select.POLLIN)
    deadline = None if timeout is None else time.monotonic() + timeout
    stop = False
    while not stop:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = poller.poll(None if remaining is None else remaining * 1000)
        stop = any(fd == stop_fd for fd, _ in ready) or remaining == 0.0
        for event in core.ready():
            on_event(event)
            if event == RUNNING_EVENT:
                return True
        if core.ended:  # the server closed
            return False
    return False


class NodeInfoMethods:
    """The sync :class:`~tailnet.Server`'s whois, status, ping and watch."""

    _node: Node

    def whois(self, address: str | tuple[str, int] | IPAddress, timeout: float | None = None) -> PeerIdentity:
        """Who is behind a tailnet address, e.g. an accepted connection's peer.

        ``address`` is ``(ip, port)`` (as ``accept`` returns), ``"ip:port"``
        or an IP. Returns the node, its user, tags and capabilities as the
        control server reports them: use it to authorize callers. Raises
        :class:`~tailnet.PeerNotFound` if no node has that address.
        """
        return _complete(begin_whois(self._node, address, timeout))

    def status(self, timeout: float | None = None) -> Status:
        """This node, its peers and the tailnet (starts the node if needed)."""
        return _complete(begin_status(self._node, timeout))

    def ping(
        self,
        peer: str | IPAddress,
        kind: PingKind | str = PingKind.DISCO,
        timeout: float | None = PING_TIMEOUT,
    ) -> PingResult:
        """Ping a peer (a tailnet IP or its name) and report latency and path.

        ``kind``: ``"disco"`` (default; reports whether the path is direct
        or through which DERP region), ``"tsmp"`` or ``"icmp"``. A ping
        not answered within 1 s is sent again (then after 2, 4, 8 s), so
        one lost packet costs a retry, not a failure; the result is the
        first answer's. Raises :class:`~tailnet.PeerNotFound` for a peer
        this node does not know (one that joined moments ago may not be
        known yet) and :class:`~tailnet.TailnetTimeout` if no answer comes
        in ``timeout`` seconds.
        """
        return _complete(begin_ping(self._node, peer, kind, timeout))

    def watch(self) -> Watcher:
        """Watch the node's state changes and login URLs (starts the node if needed).

        ::

            with ts.watch() as events:
                for event in events:
                    if isinstance(event, tailnet.LoginRequired):
                        print("log in at", event.url)
                    elif event == tailnet.StateChanged(tailnet.BackendState.RUNNING):
                        break
        """
        return Watcher(open_watch(self._node))
