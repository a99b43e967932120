"""Node information for the async facade: whois, status, ping, watch.

:class:`AsyncNodeInfoMethods` is part of :class:`tailnet.AsyncServer`; the
logic lives in :mod:`tailnet._node_core`, and this module only awaits
descriptors in the event loop (asyncio or trio, through anyio).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from ._addresses import IPAddress
from ._core import Node, Operation
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

__all__ = ["AsyncNodeInfoMethods", "AsyncWatcher", "up_with_events"]

T = TypeVar("T")


async def _complete(pending: Pending[T]) -> T:
    """Await a pending call in the event loop and collect it; on any exit free it."""
    try:
        await anyio.wait_readable(pending.op.wait_fd)
        return pending.collect()
    finally:
        pending.op.free()


async def _open_watch(node: Node) -> WatchCore:
    """open_watch in a worker thread (it may start the node), to completion."""
    with anyio.CancelScope(shield=True):
        core = await anyio.to_thread.run_sync(open_watch, node)
    return core


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
        while True:
            try:
                return self._core.receive()
            except BlockingIOError:
                await anyio.wait_readable(self._core.sock)
            except ClosedError as exc:
                if self._core.closed:
                    raise anyio.ClosedResourceError from exc
                raise anyio.EndOfStream from exc

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
        return f"<tailnet.AsyncWatcher {'closed' if self._core.closed else 'open'}>"


async def _deliver(on_event: Callable[[WatchEvent], Any], event: WatchEvent) -> None:
    result = on_event(event)
    if inspect.isawaitable(result):
        await result


async def up_with_events(node: Node, timeout: float | None, on_event: Callable[[WatchEvent], Any]) -> None:
    """``up``, calling (and awaiting, if async) ``on_event`` with each event until the node runs."""
    async with AsyncWatcher(await _open_watch(node)) as watcher:
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


class AsyncNodeInfoMethods:
    """The :class:`~tailnet.AsyncServer`'s whois, status, ping and watch."""

    _node: Node

    async def whois(
        self, address: str | tuple[str, int] | IPAddress, timeout: float | None = None
    ) -> PeerIdentity:
        """Who is behind a tailnet address, e.g. a stream's ``remote_address``.

        As :meth:`tailnet.Server.whois`; cancellable.
        """
        return await _complete(begin_whois(self._node, address, timeout))

    async def status(self, timeout: float | None = None) -> Status:
        """This node, its peers and the tailnet (starts the node if needed)."""
        return await _complete(begin_status(self._node, timeout))

    async def ping(
        self,
        peer: str | IPAddress,
        kind: PingKind | str = PingKind.DISCO,
        timeout: float | None = PING_TIMEOUT,
    ) -> PingResult:
        """Ping a peer and report latency and path; as :meth:`tailnet.Server.ping`, cancellable."""
        return await _complete(begin_ping(self._node, peer, kind, timeout))

    async def watch(self) -> AsyncWatcher:
        """Watch the node's state changes and login URLs (starts the node if needed).

        ::

            async with await ts.watch() as events:
                async for event in events:
                    ...
        """
        return AsyncWatcher(await _open_watch(self._node))
