"""The forwarder: a local endpoint whose connections are relayed to a tailnet service.

:class:`AsyncForwarder` is what :meth:`tailnet.AsyncServer.forward`
returns; :class:`tailnet.Forwarder` (:mod:`tailnet._forward_sync`) runs
the same one in an event-loop thread of its own.

Each local connection gets one tailnet connection, dialed when it is
accepted, and a :class:`~tailnet._relay.Relay` that copies both ways and
keeps the promises of tailnet's sockets across it. A dial that fails
aborts the local connection (a RST for TCP).
"""

from __future__ import annotations

import contextlib
from types import TracebackType

import anyio
import anyio.abc
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from ._addresses import Address
from ._exceptions import TailnetError
from ._forward import LocalEndpoint
from ._logs import LOGGER
from ._node import Node
from ._public import present, qualified_name
from ._relay import Relay, reset_on_close
from ._stream_async import open_stream
from ._waiting_async import finish

__all__ = ["AsyncForwarder"]


@present
class AsyncForwarder:
    """A local endpoint relaying each connection to a tailnet service; from :meth:`AsyncServer.forward`.

    ::

        async with ts.forward("db:5432") as fwd:
            host, port = fwd.address          # 127.0.0.1 and the chosen port
            conn = await psycopg.AsyncConnection.connect(host=host, port=port, ...)

    It listens from the moment it is made; ``async with`` (or
    :meth:`serve` in a task group of yours) accepts and relays. Leaving
    the block stops accepting, lets the connections still open finish
    for up to the server's ``linger`` seconds, then aborts the rest (both
    sides get a reset).
    """

    def __init__(self, node: Node, target: str, endpoint: LocalEndpoint, dial_timeout: float | None) -> None:
        self._node = node
        self._target = target
        self._endpoint = endpoint
        self._dial_timeout = dial_timeout
        self._relays: set[Relay] = set()
        self._stack: contextlib.AsyncExitStack | None = None
        self._serving: anyio.CancelScope | None = None
        self._idle: anyio.Event | None = None  # while closing: set when the last relay ends

    @property
    def address(self) -> Address | str:
        """Where to connect: ``(host, port)`` for TCP (with the chosen port), or the socket path."""
        return self._endpoint.address

    @property
    def target(self) -> str:
        """The tailnet service connections are relayed to, as "host:port"."""
        return self._target

    @property
    def connections(self) -> int:
        """How many connections are being relayed now."""
        return len(self._relays)

    async def serve(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Accept and relay until cancelled; then close as leaving ``async with`` does.

        ``await task_group.start(fwd.serve)`` returns once it is accepting.
        """
        listener = await anyio.abc.SocketListener.from_socket(self._endpoint.sock)
        async with anyio.create_task_group() as relays:
            try:
                with anyio.CancelScope() as self._serving:
                    task_status.started()
                    while True:
                        local = await listener.accept()
                        relays.start_soon(self._relay, local)
            finally:
                with anyio.CancelScope(shield=True):
                    await listener.aclose()
                    self._endpoint.close()
                    await self._finish()

    async def _relay(self, local: anyio.abc.SocketStream) -> None:
        try:
            conn = self._node.connection(
                *await finish(self._node.begin_dial("tcp", self._target, self._dial_timeout))
            )
        except (OSError, TailnetError) as exc:
            LOGGER.warning("forward to %s: %s", self._target, exc)
            reset_on_close(local)
            await local.aclose()
            return
        relay = Relay(local, open_stream(conn))
        self._relays.add(relay)
        try:
            await relay.run()
        finally:
            self._relays.discard(relay)
            if not self._relays and self._idle is not None:
                self._idle.set()

    async def _finish(self) -> None:
        """Give open connections the linger time to end, then abort the rest."""
        linger = self._node.config.linger
        if self._relays:
            self._idle = anyio.Event()
            with anyio.move_on_after(linger):
                await self._idle.wait()
        if self._relays:
            LOGGER.warning(
                "forwarder to %s closed with %d connection(s) open after the linger time (%g s): aborted",
                self._target,
                len(self._relays),
                linger,
            )
            for relay in list(self._relays):
                relay.abort()

    def close_soon(self) -> None:
        """Stop accepting; :meth:`serve` then ends as it does when cancelled."""
        if self._serving is not None:
            self._serving.cancel()

    async def __aenter__(self) -> AsyncForwarder:
        async with contextlib.AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.serve)
            stack.push_async_callback(self._stop)
            self._stack = stack.pop_all()
        return self

    async def _stop(self) -> None:
        self.close_soon()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<{qualified_name(self)} {self.address} -> {self._target}>"
