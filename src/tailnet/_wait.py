"""Blocking waits for the sync facade, interruptible by Ctrl-C."""

from __future__ import annotations

import select
import time

from ._exceptions import TailnetTimeout

__all__ = ["wait_readable", "wait_writable"]


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
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if poller.poll(None if remaining is None else remaining * 1000):
            return
        if remaining is not None and remaining <= 0:
            raise TailnetTimeout(f"{what} timed out after {timeout} s")
