"""The sync facade's view of a node's events: :class:`Watcher` and ``up(on_event=...)``.

The non-blocking reader is :class:`~tailnet._watch.WatchCore`; this module
only waits (``poll``, so Ctrl-C works and no thread is used).
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator

from ._exceptions import ClosedError
from ._info import WatchEvent
from ._node import Node
from ._public import present, qualified_name
from ._waiting_sync import longest_sleep, next_step, retry, wait_readable
from ._watch import RUNNING_EVENT, RUNNING_EVENT_GRACE, WatchCore

__all__ = ["Watcher", "up_with_events"]


@present
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
        return retry(self._core.receive, self._core.sock, timeout, "watch", closed="the watcher is closed")

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
        return f"<{qualified_name(self)} {'closed' if self._core.closed else 'open'}>"


def up_with_events(node: Node, timeout: float | None, on_event: Callable[[WatchEvent], object]) -> None:
    """``up``, calling ``on_event`` in this thread with each event until the node runs."""
    core = node.watch()
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
    longest = longest_sleep()  # on the main thread, slices: a Ctrl-C is never lost
    stop = False
    while not stop:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = next_step(remaining, longest)
        ready = poller.poll(None if step is None else step * 1000)
        expired = deadline is not None and time.monotonic() >= deadline
        stop = expired or any(fd == stop_fd for fd, _ in ready)
        for event in core.ready():
            on_event(event)
            if event == RUNNING_EVENT:
                return True
        if core.ended:  # the server closed
            return False
    return False
