"""An accepted tailnet connection as an asyncio protocol sees it, on any event loop.

Shared by the servers that hand tailnet connections to
``loop.connect_accepted_socket`` (:mod:`tailnet.asgi`,
:mod:`tailnet.aiohttp`); imports neither's library.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import anyio

from ._node import ListenerCore
from ._stream_sync import TailnetSocket
from ._waiting_async import retry

__all__ = ["AcceptLoop", "AcceptedProtocol", "TailnetTransport"]


class TailnetTransport:
    """A transport reporting tailnet addresses: the real one, with the connection's peer and sock names.

    asyncio's own loop asks the socket (a :class:`TailnetSocket`, which
    answers with tailnet addresses), but uvloop asks the descriptor, an
    ``AF_UNIX`` socketpair end with no address; this answers the same on both.
    """

    def __init__(self, transport: asyncio.BaseTransport, sock: TailnetSocket) -> None:
        self._transport = transport
        self._sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._sock.getpeername()
        if name == "sockname":
            return self._sock.getsockname()
        if name == "socket":
            return self._sock
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class AcceptedProtocol(asyncio.Protocol):
    """Passes everything to a server's own protocol, handing it a :class:`TailnetTransport`.

    Subclasses extend :meth:`connection_lost` to forget what they keep per
    connection.
    """

    def __init__(self, inner: asyncio.Protocol, sock: TailnetSocket) -> None:
        self._inner = inner
        self._sock = sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The server's protocol reports the peer's tailnet IP on any loop.
        self._inner.connection_made(TailnetTransport(transport, self._sock))  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class AcceptLoop:
    """Takes an :class:`asyncio.Server`'s place: accepts from a tailnet listener until it closes.

    It has the two methods a server's shutdown calls on an
    :class:`asyncio.Server`, ``close`` and ``wait_closed``. Each accepted
    connection is set up (:meth:`_connect`) in a task of its own, so a
    slow TLS handshake holds up no other connection. Create it on the
    running event loop.
    """

    def __init__(self, listener: ListenerCore) -> None:
        self._listener = listener
        self._setups: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _connect(self, sock: TailnetSocket) -> None:
        """Hand one accepted connection to the server; it owns ``sock``."""
        raise NotImplementedError

    def _listener_closed(self) -> None:
        """Called when the listener closed under the loop (its node closed)."""

    async def _run(self) -> None:
        listener = self._listener
        loop = asyncio.get_running_loop()
        try:
            while True:
                conn = await retry(listener.receive, listener.sock, lambda: listener.closed)
                sock = TailnetSocket.adopt_connection(conn)
                setup = loop.create_task(self._connect(sock))
                self._setups.add(setup)
                setup.add_done_callback(functools.partial(self._setup_done, sock))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._listener_closed()
        finally:
            listener.close()

    def _setup_done(self, sock: TailnetSocket, setup: asyncio.Task[None]) -> None:
        """Forget a finished setup; close its socket if it was cancelled.

        ``_connect`` closes the socket when it is cancelled, but a task
        cancelled before its first step never runs it: without this, a
        connection accepted just as the server closes would keep its
        descriptor until garbage collection.
        """
        self._setups.discard(setup)
        if setup.cancelled():
            sock.close()

    def close(self) -> None:
        """Stop accepting (the listener closes) and close connections still being set up."""
        self._task.cancel()
        for setup in self._setups:
            setup.cancel()

    async def wait_closed(self) -> None:
        """Wait until the accept loop has ended."""
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
