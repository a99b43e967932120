"""The async API on anyio (asyncio and trio): :class:`AsyncServer` and :class:`AsyncListener`.

Waiting happens in the event loop on descriptors: an operation's wait
descriptor for ``up``/``dial``, the listener's descriptor for ``accept``,
each connection's socket for its data. Worker threads are used only for the
short blocking calls ``start``, ``listen`` and ``aclose``; never per
connection or per pending accept.

Cancellation: cancelling ``up`` or ``dial`` (a cancel scope, a timeout, a
cancelled task) frees its operation at once, which cancels the Go side; a
connection that completes anyway is closed by the library. ``listen`` and
``start`` finish their (short) call shielded, so they never leak what they
made, and the cancellation is delivered when they return. ``aclose`` is
shielded: it always completes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar, overload

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ._base import ServerBase
from ._core import Connection, ListenerCore, Operation
from ._datagram import DatagramNetwork, StreamNetwork, is_datagram_network
from ._datagram_async import AsyncConnectedDatagramSocket, AsyncDatagramSocket
from ._exceptions import ClosedError
from ._integrations import AsyncIntegrations
from ._localapi import AsyncLocalAPIClient
from ._node_async import AsyncNodeInfoMethods, up_with_events
from ._node_info import WatchEvent
from ._services import Loopback, begin_listen_funnel, begin_listen_tls, listener_from_result, loopback
from ._stream import TailnetStream

__all__ = ["AsyncListener", "AsyncServer"]

T = TypeVar("T")


async def _finish(op: Operation) -> tuple[int, str]:
    """Await op in the event loop and collect it; on any exit free it."""
    try:
        await anyio.wait_readable(op.wait_fd)
        return op.result()
    finally:
        op.free()


async def _shielded_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a short blocking call in a worker thread, to completion."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(fn, *args)
    return result


def _stream(conn: Connection) -> TailnetStream:
    """Hand a connection to a stream (it then owns the descriptor)."""
    # A plain socket.socket: trio's wait_readable accepts no subclass.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=conn.fd)
    return TailnetStream(sock, conn.remote, conn.local, conn.fate)


class AsyncListener(anyio.abc.Listener[TailnetStream]):
    """Accepts tailnet connections as :class:`TailnetStream`; an :class:`anyio.abc.Listener`."""

    def __init__(self, core: ListenerCore) -> None:
        self._core = core

    @property
    def address(self) -> str:
        """The address it listens on, e.g. ":8080" (with the chosen port if 0 was asked for)."""
        return self._core.address

    async def accept(self) -> TailnetStream:
        """Wait for a connection.

        Raises :class:`anyio.ClosedResourceError` if this listener is closed
        (also while waiting) and :class:`anyio.BrokenResourceError` if its
        server closed it.
        """
        while True:
            try:
                conn = self._core.receive()
            except BlockingIOError:
                await anyio.wait_readable(self._core.sock)
                continue
            except ClosedError as exc:
                if self._core.closed:
                    raise anyio.ClosedResourceError from exc
                raise anyio.BrokenResourceError from exc
            return _stream(conn)

    async def serve(
        self, handler: Callable[[TailnetStream], Any], task_group: anyio.abc.TaskGroup | None = None
    ) -> None:
        """Accept forever, running ``handler(stream)`` in a task for each connection."""
        async with AsyncExitStack() as stack:
            if task_group is None:
                task_group = await stack.enter_async_context(anyio.create_task_group())
            while True:
                stream = await self.accept()
                task_group.start_soon(handler, stream)

    async def aclose(self) -> None:
        """Stop listening; a pending :meth:`accept` raises ClosedResourceError."""
        if not self._core.closed:
            anyio.notify_closing(self._core.sock)
        self._core.close()

    @property
    def extra_attributes(self) -> dict[Any, Callable[[], Any]]:
        """``SocketAttribute.raw_socket``: the listener's descriptor socket."""
        return {SocketAttribute.raw_socket: lambda: self._core.sock}

    def __repr__(self) -> str:
        state = "closed" if self._core.closed else "open"
        return f"<tailnet.AsyncListener {self.address} {state}>"


class AsyncServer(ServerBase, AsyncNodeInfoMethods, AsyncIntegrations):
    __doc__ = ServerBase.__doc__

    async def start(self) -> AsyncServer:
        """Start the node without waiting for it to join the tailnet."""
        await _shielded_in_thread(self._node.start)
        return self

    async def up(
        self, timeout: float | None = None, *, on_event: Callable[[WatchEvent], Any] | None = None
    ) -> AsyncServer:
        """Join the tailnet and wait until the node is running; returns self.

        Cancellable. ``on_event`` (a function or coroutine function) gets
        each event while waiting, e.g. :class:`~tailnet.LoginRequired`
        without an auth key; see :meth:`tailnet.Server.up`. Raises
        :class:`~tailnet.TailnetTimeout` after ``timeout`` seconds and
        :class:`~tailnet.ClosedError` if the server is closed meanwhile.
        """
        if on_event is None:
            await _finish(self._node.begin_up(timeout))
        else:
            await up_with_events(self._node, timeout, on_event)
        return self

    @overload
    async def dial(
        self, network: StreamNetwork, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetStream: ...
    @overload
    async def dial(
        self, network: DatagramNetwork, address: str | tuple[str, int], timeout: float | None = None
    ) -> AsyncConnectedDatagramSocket: ...
    @overload
    async def dial(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetStream | AsyncConnectedDatagramSocket: ...
    async def dial(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetStream | AsyncConnectedDatagramSocket:
        """Connect to ``address`` ("host:port" or (host, port)) on the tailnet.

        TCP gives an :class:`anyio.abc.SocketStream`, UDP (``"udp"``,
        ``"udp4"``, ``"udp6"``) an :class:`anyio.abc.ConnectedUDPSocket`.
        Cancellable; a connection completing after cancellation is closed,
        never leaked.
        """
        fd, text = await _finish(self._node.begin_dial(network, address, timeout))
        conn = Connection.parse(fd, text, self._node)
        if is_datagram_network(network):
            return AsyncConnectedDatagramSocket(conn.fd, conn.remote, conn.local)
        return _stream(conn)

    async def listen(self, network: str, address: str | tuple[str, int]) -> AsyncListener:
        """Listen for tailnet connections on ``address`` (":port" or "ip:port")."""
        return AsyncListener(await _shielded_in_thread(self._node.listen, network, address))

    async def listen_packet(self, network: str, address: str | tuple[str, int]) -> AsyncDatagramSocket:
        """Open a UDP socket on ``address`` ("ip:port" or ":port"); an :class:`anyio.abc.UDPSocket`."""
        return AsyncDatagramSocket(await _shielded_in_thread(self._node.listen_packet, network, address))

    async def listen_tls(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> AsyncListener:
        """Listen with TLS using the tailnet's certificate; see :meth:`tailnet.Server.listen_tls`.

        Cancellable like :meth:`up` (a listener made anyway is closed).
        """
        fd, text = await _finish(begin_listen_tls(self._node, network, address, timeout))
        return AsyncListener(listener_from_result(self._node, fd, text))

    async def listen_funnel(
        self,
        network: str,
        address: str | tuple[str, int],
        *,
        funnel_only: bool = False,
        timeout: float | None = None,
    ) -> AsyncListener:
        """Listen through Tailscale Funnel; see :meth:`tailnet.Server.listen_funnel`. Cancellable."""
        fd, text = await _finish(begin_listen_funnel(self._node, network, address, funnel_only, timeout))
        return AsyncListener(listener_from_result(self._node, fd, text))

    async def loopback(self) -> Loopback:
        """Start the node's SOCKS5 proxy and LocalAPI server (once); see :meth:`tailnet.Server.loopback`."""
        return await _shielded_in_thread(loopback, self._node)

    async def local_api(self) -> AsyncLocalAPIClient:
        """An async client for the node's LocalAPI (over :meth:`loopback`)."""
        return AsyncLocalAPIClient(self._node, await self.loopback())

    async def aclose(self) -> None:
        """Leave the tailnet: close listeners, connections and the node. Idempotent.

        Connections first finish delivering what was written to them, for
        up to the server's ``linger`` time (see :class:`Server`). Shielded
        from cancellation: it always completes.
        """
        op = self._node.begin_close()
        if op is None:
            return
        completed = False
        try:
            with anyio.CancelScope(shield=True):
                await anyio.wait_readable(op.wait_fd)
            completed = True
        finally:
            self._node.finish_close(op, completed=completed)

    async def __aenter__(self) -> AsyncServer:
        return await self.up()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
