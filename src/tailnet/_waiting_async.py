"""How the async facade waits: on descriptors in the event loop (anyio: asyncio and trio).

The twin of :mod:`tailnet._waiting_sync`: :func:`finish` (and
:func:`complete`) await an operation and free it however the wait ends
(cancellation included, which then cancels the Go side); :func:`retry`
runs a non-blocking attempt until it succeeds, awaiting its socket in
between, and turns the core's :class:`~tailnet.ClosedError` into anyio's
exceptions: ``ClosedResourceError`` if this object was closed, else
``ended`` (``BrokenResourceError`` by default: its server closed it).
:func:`in_thread` runs the few short blocking calls in a worker thread.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._exceptions import ClosedError
from ._node import Operation, Pending

__all__ = ["complete", "finish", "in_thread", "retry"]

T = TypeVar("T")


async def finish(op: Operation) -> tuple[int, str]:
    """Await op in the event loop and collect it; on any exit free it."""
    try:
        await anyio.wait_readable(op.wait_fd)
        return op.result()
    finally:
        op.free()


async def complete(pending: Pending[T]) -> T:
    """Await a pending call in the event loop and collect its parsed result; on any exit free it."""
    try:
        await anyio.wait_readable(pending.op.wait_fd)
        return pending.collect()
    finally:
        pending.op.free()


async def retry(
    attempt: Callable[[], T],
    sock: socket.socket,
    closed: Callable[[], bool],
    *,
    writable: bool = False,
    ended: type[Exception] = anyio.BrokenResourceError,
) -> T:
    """Run ``attempt`` until it does not raise BlockingIOError, awaiting ``sock`` in between.

    ``closed()`` says whether the object itself was closed (then
    :class:`anyio.ClosedResourceError`); a :class:`~tailnet.ClosedError`
    otherwise means its server ended it (``ended``). An OSError from a
    descriptor closed under the call is ClosedResourceError too.
    """
    wait: Callable[[socket.socket], Awaitable[None]]
    wait = anyio.wait_writable if writable else anyio.wait_readable
    while True:
        try:
            return attempt()
        except BlockingIOError:
            await wait(sock)
        except ClosedError as exc:
            if closed():
                raise anyio.ClosedResourceError from exc
            raise ended from exc
        except OSError as exc:
            if closed():
                raise anyio.ClosedResourceError from exc
            raise


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a short blocking call in a worker thread, to completion (shielded from cancellation)."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(fn, *args)
    return result
