"""How the sync facade waits: in ``poll``, so Ctrl-C interrupts it at once.

Two helpers hold every wait of the sync API, so each delicate case lives
in one place: :func:`finish` (and :func:`complete`) wait for an operation
and free it however the wait ends; :func:`retry` runs a non-blocking
attempt until it succeeds, waiting for its socket in between, and notices
a close from another thread. :mod:`tailnet._waiting_async` is their
event-loop twin.

Ctrl-C: a signal interrupts a ``poll`` of the main thread, and Python then
raises KeyboardInterrupt. But a signal whose handler ran just before the
``poll`` began, or on another thread, interrupts nothing: Python has noted
it, and would raise it at its next bytecode, but the thread sleeps in the
kernel. Under load that happened to 4 of 167 children interrupted as
up() began (the node's log thread takes the GIL then, which widens the
window; docs/reliability.md). So the main thread waits in slices
of :data:`SIGNAL_CHECK` seconds, as psycopg does: a Ctrl-C is never lost,
and takes at most that long in this rare case. Other threads run no
signal handlers, and need no slices. Every wait of the sync API goes
through :func:`longest_sleep`, here and in :mod:`tailnet._watch_sync`.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from ._binding import formats
from ._exceptions import ClosedError, TailnetTimeout
from ._node import Operation, Pending

__all__ = [
    "SIGNAL_CHECK",
    "complete",
    "finish",
    "longest_sleep",
    "next_step",
    "retry",
    "sleep_forever",
    "wait_readable",
    "wait_socket",
    "wait_writable",
]

#: The longest the main thread sleeps in one ``poll``: how late a Ctrl-C
#: that arrived just before the ``poll`` began can be (see above).
SIGNAL_CHECK = 0.1

T = TypeVar("T")


def finish(op: Operation) -> tuple[int, str]:
    """Wait for op and collect it (its descriptor and text); on any exit (Ctrl-C too) free it."""
    try:
        wait_readable(op.wait_fd)
        return op.result()
    finally:
        op.free()


def complete(pending: Pending[T]) -> T:
    """Wait for a pending call and collect its parsed result; on any exit free its operation."""
    try:
        wait_readable(pending.op.wait_fd)
        return pending.collect()
    finally:
        pending.op.free()


def retry(
    attempt: Callable[[], T],
    sock: socket.socket,
    timeout: float | None,
    what: str,
    *,
    writable: bool = False,
    closed: str = "the socket is closed",
) -> T:
    """Run ``attempt`` until it does not raise BlockingIOError, waiting for ``sock`` in between.

    Raises :class:`TailnetTimeout` after ``timeout`` seconds, and
    :class:`ClosedError` (message ``closed``) once another thread has closed
    ``sock``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except BlockingIOError:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                usable = wait_socket(sock, remaining, what, writable=writable)
            except TailnetTimeout:  # it names the time remaining; the caller gave timeout
                raise timed_out(what, timeout) from None
            if not usable:
                raise ClosedError(closed) from None


def wait_readable(fd: int, timeout: float | None = None, what: str = "operation") -> None:
    """Block until fd is readable (or hung up).

    ``poll`` is interrupted by signals and Python then runs their handlers,
    so Ctrl-C raises KeyboardInterrupt here at once. Raises
    :class:`TailnetTimeout` after timeout seconds.
    """
    _wait(fd, select.POLLIN, timeout, what)


def wait_writable(fd: int, timeout: float | None = None, what: str = "operation") -> None:
    """Block until fd is writable (or hung up); as :func:`wait_readable`."""
    _wait(fd, select.POLLOUT, timeout, what)


def _wait(fd: int, events: int, timeout: float | None, what: str) -> None:
    poller = select.poll()
    poller.register(fd, events)
    deadline = None if timeout is None else time.monotonic() + timeout
    longest = longest_sleep()
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = next_step(remaining, longest)
        if poller.poll(None if step is None else step * 1000):
            return
        if remaining is not None and step is not None and remaining <= step:
            raise timed_out(what, timeout)


def sleep_forever() -> NoReturn:
    """Sleep until a signal's handler raises (Ctrl-C, or SIGTERM made into KeyboardInterrupt)."""
    longest = longest_sleep() or 3600.0
    while True:
        time.sleep(longest)


def longest_sleep() -> float | None:
    """How long one ``poll`` of this thread may last: :data:`SIGNAL_CHECK` on the main thread."""
    return SIGNAL_CHECK if threading.current_thread() is threading.main_thread() else None


def next_step(remaining: float | None, longest: float | None) -> float | None:
    """The next ``poll``'s timeout: what remains, at most ``longest`` (None: no limit)."""
    if remaining is None:
        return longest
    return remaining if longest is None else min(remaining, longest)


def timed_out(what: str, timeout: float | None) -> TailnetTimeout:
    """The error for a wait of ``timeout`` seconds that ran out."""
    return TailnetTimeout(f"{what} timed out after {formats.seconds(timeout)}")


#: How often a wait on a socket checks that no other thread closed it.
_RECHECK = 1.0


def wait_socket(sock: socket.socket, timeout: float | None, what: str, *, writable: bool = False) -> bool:
    """Wait until sock is readable (writable), hung up, or closed by another thread.

    Closing a descriptor does not wake a ``poll`` on it in another thread,
    and the freed number may at once be another file's, which poll would
    then watch instead, perhaps forever. Closes of tailnet sockets wake
    their waiters anyway (the library closes its end), but to be safe the
    wait also looks every second whether sock still has its descriptor.
    Returns False, without waiting further, once sock is closed; raises
    :class:`TailnetTimeout` after ``timeout`` seconds.
    """
    number = sock.fileno()
    if number < 0:
        return False
    poller = select.poll()
    poller.register(number, select.POLLOUT if writable else select.POLLIN)
    deadline = None if timeout is None else time.monotonic() + timeout
    longest = min(_RECHECK, longest_sleep() or _RECHECK)
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = longest if remaining is None else min(remaining, longest)
        if poller.poll(step * 1000):
            return True
        if sock.fileno() != number:  # closed meanwhile; the number may be another file's now
            return False
        if remaining is not None and remaining <= step:
            raise timed_out(what, timeout)
