"""The async facade's view of a node's events: :class:`AsyncWatcher` and ``up(on_event=...)``.

The non-blocking reader is :class:`~tailnet._watch.WatchCore`; this module
only awaits its descriptor in the event loop (asyncio or trio, through
anyio).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from ._info import WatchEvent
from ._node import Node, Operation
from ._public import present, qualified_name
from ._waiting_async import in_thread, retry
from ._watch import RUNNING_EVENT, RUNNING_EVENT_GRACE, WatchCore

__all__ = ["AsyncWatcher", "open_watcher", "up_with_events"]


async def open_watcher(node: Node) -> AsyncWatcher:
    """Watch a node's events (starting the node, in a worker thread: it may take a moment)."""
    return AsyncWatcher(await in_thread(node.watch))


@present
class AsyncWatcher:
    """The events of a node, as they happen; returned by :meth:`AsyncServer.watch`.

    ``async for event in watcher`` yields :class:`StateChanged`,
    :class:`LoginRequired` and :class:`BackendError` events (the first is
    the current state) until the watcher or its server closes.
    """

    def __init__(self, core: WatchCore) -> None:
        self._core = core

    async def receive(self) -> WatchEvent:
        """The next event.

        Raises :class:`anyio.EndOfStream` once the server has closed and
        :class:`anyio.ClosedResourceError` if this watcher is closed (also
        while waiting).
        """
        core = self._core
        return await retry(core.receive, core.sock, lambda: core.closed, ended=anyio.EndOfStream)

    def __aiter__(self) -> AsyncWatcher:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    def fileno(self) -> int:
        """The descriptor events arrive on."""
        return self._core.sock.fileno()

    async def aclose(self) -> None:
        """Stop watching; a pending :meth:`receive` raises ClosedResourceError. Idempotent."""
        if not self._core.closed:
            anyio.notify_closing(self._core.sock)
        self._core.close()

    async def __aenter__(self) -> AsyncWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{qualified_name(self)} {'closed' if self._core.closed else 'open'}>"


async def _deliver(on_event: Callable[[WatchEvent], Any], event: WatchEvent) -> None:
    result = on_event(event)
    if inspect.isawaitable(result):
        await result


async def up_with_events(node: Node, timeout: float | None, on_event: Callable[[WatchEvent], Any]) -> None:
    """``up``, calling (and awaiting, if async) ``on_event`` with each event until the node runs."""
    async with await open_watcher(node) as watcher:
        op = node.begin_up(timeout)
        try:
            await _relay_during_up(watcher, on_event, op)
        finally:
            op.free()


async def _relay_during_up(
    watcher: AsyncWatcher, on_event: Callable[[WatchEvent], Any], op: Operation
) -> None:
    """Relay events until RUNNING while op (an up) runs; raise op's or on_event's error, ungrouped."""
    errors: list[Exception] = []
    relayed = anyio.Event()  # RUNNING was delivered, or the stream ended

    async def relay() -> None:
        try:
            async for event in watcher:
                await _deliver(on_event, event)
                if event == RUNNING_EVENT:
                    break
        except Exception as exc:  # noqa: BLE001 - re-raised below, ungrouped
            errors.append(exc)
            tg.cancel_scope.cancel()
        finally:
            relayed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(relay)
        await anyio.wait_readable(op.wait_fd)
        try:
            op.result()
        except Exception as exc:  # noqa: BLE001 - re-raised below, ungrouped
            errors.append(exc)
        else:  # up's own check came first: the watch's RUNNING is on its way
            with anyio.move_on_after(RUNNING_EVENT_GRACE):
                await relayed.wait()
        tg.cancel_scope.cancel()
    if errors:
        raise errors[0]
