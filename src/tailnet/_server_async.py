"""The async API on anyio (asyncio and trio): :class:`AsyncServer` and :class:`AsyncListener`.

It mirrors :mod:`tailnet._server_sync` name for name; each method is the
core's call plus an await of :mod:`tailnet._waiting_async`. Waiting happens
in the event loop on descriptors: an operation's wait descriptor for
``up``/``dial``/``aclose``, the listener's descriptor for ``accept``, each
connection's socket for its data. Worker threads are used only for the
short blocking calls ``start``, ``listen``, ``listen_packet``,
``loopback`` and ``watch``; never per connection or per pending accept.

Cancellation: cancelling ``up`` or ``dial`` (a cancel scope, a timeout, a
cancelled task) frees its operation at once, which cancels the Go side; a
connection that completes anyway is closed by the library. The short
calls finish shielded, so they never leak what they made, and the
cancellation is delivered when they return. ``aclose`` is shielded: it
always completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

import anyio
import anyio.abc
from anyio import TASK_STATUS_IGNORED
from anyio.abc import SocketAttribute, TaskStatus

from ._addresses import IPAddress
from ._datagram import DatagramNetwork, StreamNetwork, is_datagram_network
from ._datagram_async import AsyncConnectedDatagramSocket, AsyncDatagramSocket
from ._exceptions import UnsupportedError
from ._forward import LocalSpec, open_forward
from ._forward_async import AsyncForwarder
from ._info import PING_TIMEOUT, Loopback, PeerIdentity, PingKind, PingResult, Status, WatchEvent
from ._localapi_async import AsyncLocalAPIClient
from ._node import ListenerCore
from ._public import present, qualified_name
from ._server import ServerBase, core_of
from ._stream_async import TailnetStream, open_stream
from ._waiting_async import complete, finish, in_thread, retry
from ._watch_async import AsyncWatcher, open_watcher, up_with_events

if TYPE_CHECKING:
    from ._asgi_scope import ASGIApp
    from .aiohttp import TailnetConnector
    from .asgi import WSGIApp
    from .httpx import AsyncHTTPTransport

__all__ = ["AsyncListener", "AsyncServer"]


def _on_asyncio() -> bool:
    """Whether this runs in an asyncio event loop (else: trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@present
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
        core = self._core
        return open_stream(await retry(core.receive, core.sock, lambda: core.closed))

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
        return f"<{qualified_name(self)} {self.address} {state}>"


@present
class AsyncServer(ServerBase):
    """A Tailscale node in this process, with an async API on asyncio or trio (anyio).

    ::

        async with tailnet.AsyncServer(hostname="my-service") as ts:
            stream = await ts.dial("tcp", "other-node:8080")

    The same node as :class:`Server`, method for method and with the same
    arguments, but its calls are awaited: they wait in the event loop and
    can be cancelled. Connections are anyio streams (:class:`TailnetStream`).
    """

    __slots__ = ()

    async def start(self) -> AsyncServer:
        """Start the node without waiting for it to join the tailnet."""
        await in_thread(self._node.start)
        return self

    async def up(
        self, timeout: float | None = None, *, on_event: Callable[[WatchEvent], Any] | None = None
    ) -> AsyncServer:
        """Join the tailnet and wait until the node is running; returns self.

        Cancellable. ``on_event`` (a function or coroutine function) gets
        each event while waiting, e.g. :class:`~tailnet.LoginRequired`
        without an auth key; see :meth:`tailnet.Server.up`, also for its
        errors. Raises :class:`~tailnet.TailnetTimeout` after ``timeout``
        seconds and :class:`~tailnet.ClosedError` if the server is closed
        meanwhile.
        """
        if on_event is None:
            await finish(self._node.begin_up(timeout))
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
        never leaked. Names and addresses resolve as for
        :meth:`tailnet.Server.dial`.
        """
        conn = self._node.connection(*await finish(self._node.begin_dial(network, address, timeout)))
        if is_datagram_network(network):
            return AsyncConnectedDatagramSocket(conn.fd, conn.remote, conn.local)
        return open_stream(conn)

    async def listen(self, network: str, address: str | tuple[str, int]) -> AsyncListener:
        """Listen for tailnet connections on ``address`` (":port" or "ip:port")."""
        return AsyncListener(await in_thread(self._node.listen, network, address))

    async def listen_packet(self, network: str, address: str | tuple[str, int]) -> AsyncDatagramSocket:
        """Open a UDP socket on ``address`` ("ip:port" or ":port"); an :class:`anyio.abc.UDPSocket`."""
        return AsyncDatagramSocket(await in_thread(self._node.listen_packet, network, address))

    async def listen_tls(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> AsyncListener:
        """Listen with TLS using the tailnet's certificate; see :meth:`tailnet.Server.listen_tls`.

        Cancellable like :meth:`up` (a listener made anyway is closed).
        """
        op = self._node.begin_listen_tls(network, address, timeout)
        return AsyncListener(self._node.listener(*await finish(op)))

    async def listen_funnel(
        self,
        network: str,
        address: str | tuple[str, int],
        *,
        funnel_only: bool = False,
        timeout: float | None = None,
    ) -> AsyncListener:
        """Listen through Tailscale Funnel; see :meth:`tailnet.Server.listen_funnel`. Cancellable."""
        op = self._node.begin_listen_funnel(network, address, funnel_only, timeout)
        return AsyncListener(self._node.listener(*await finish(op)))

    async def loopback(self) -> Loopback:
        """Start the node's SOCKS5 proxy and LocalAPI server (once); see :meth:`tailnet.Server.loopback`."""
        return await in_thread(self._node.loopback)

    async def local_api(self) -> AsyncLocalAPIClient:
        """An async client for the node's LocalAPI (over :meth:`loopback`)."""
        return AsyncLocalAPIClient(self._node, await self.loopback())

    async def whois(
        self, address: str | tuple[str, int] | IPAddress, timeout: float | None = None
    ) -> PeerIdentity:
        """Who is behind a tailnet address, e.g. a stream's ``remote_address``.

        As :meth:`tailnet.Server.whois`; cancellable.
        """
        return await complete(self._node.begin_whois(address, timeout))

    async def status(self, timeout: float | None = None) -> Status:
        """This node, its peers and the tailnet (starts the node if needed)."""
        return await complete(self._node.begin_status(timeout))

    async def ping(
        self,
        peer: str | IPAddress,
        kind: PingKind | str = PingKind.DISCO,
        timeout: float | None = PING_TIMEOUT,
    ) -> PingResult:
        """Ping a peer and report latency and path; as :meth:`tailnet.Server.ping`, cancellable."""
        return await complete(self._node.begin_ping(peer, kind, timeout))

    async def watch(self) -> AsyncWatcher:
        """Watch the node's state changes and login URLs (starts the node if needed).

        ::

            async with await ts.watch() as events:
                async for event in events:
                    ...
        """
        return await open_watcher(self._node)

    def forward(
        self, target: str | tuple[str, int], local: LocalSpec = 0, *, timeout: float | None = None
    ) -> AsyncForwarder:
        """Relay connections to a local endpoint to the tailnet service ``target``.

        ::

            async with ts.forward("db:5432") as fwd:
                host, port = fwd.address
                conn = await psycopg.AsyncConnection.connect(host=host, port=port, user="app")

        It listens at once (so a taken port raises here); ``async with``
        (or ``await task_group.start(fwd.serve)``) accepts and relays, on
        asyncio or trio. Arguments as :meth:`tailnet.Server.forward`.
        """
        address, endpoint = open_forward(self._node, target, local, timeout)
        return AsyncForwarder(self._node, address, endpoint, timeout)

    def httpx_transport(self, **options: Any) -> AsyncHTTPTransport:
        """An :class:`httpx.AsyncHTTPTransport` dialing through this node (asyncio and trio).

        ``httpx.AsyncClient(transport=ts.httpx_transport())``; as
        :meth:`tailnet.Server.httpx_transport`. Needs ``tailnet[httpx]``.
        """
        from .httpx import AsyncHTTPTransport

        return AsyncHTTPTransport(self, **options)

    def aiohttp_connector(self, **options: Any) -> TailnetConnector:
        """An :class:`aiohttp.BaseConnector` dialing through this node (asyncio only).

        ``aiohttp.ClientSession(connector=ts.aiohttp_connector())`` then
        reaches ``http://peer-name:port/`` by MagicDNS name, never asking
        the system resolver. ``options`` are
        :class:`tailnet.aiohttp.TailnetConnector`'s. Under trio it raises
        :class:`~tailnet.UnsupportedError`. Needs ``tailnet[aiohttp]``.
        """
        if not _on_asyncio():
            raise UnsupportedError("aiohttp runs on asyncio only; under trio use ts.httpx_transport()")
        from .aiohttp import TailnetConnector

        return TailnetConnector(self, **options)

    async def serve_asgi(
        self,
        app: ASGIApp | str,
        port: int | AsyncListener = 80,
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """Serve an ASGI app on tailnet ``port`` until this server closes or cancellation.

        On asyncio it runs uvicorn (``tailnet[asgi]``), on trio hypercorn
        (``tailnet[hypercorn]``), each with the same scope: ``client`` is
        the peer's tailnet address and ``scope["extensions"]["tailnet"]``
        holds ``"peer"`` and ``"whois"`` (see :mod:`tailnet.asgi`).
        ``port`` is a port or an :class:`~tailnet.AsyncListener`.
        ``await task_group.start(ts.serve_asgi, app)`` returns once the app
        has started and connections are accepted. Cancelling shuts down
        gracefully (stop accepting, finish requests, lifespan shutdown)
        before the cancellation goes on. ``options`` are
        :class:`uvicorn.Config`'s under asyncio and
        :class:`hypercorn.config.Config`'s attributes under trio
        (``graceful_timeout``, ``keep_alive_timeout``, ...), except those
        choosing a socket.
        """
        if isinstance(port, AsyncListener):
            listener = port
        else:
            from ._asgi_scope import listen_address

            listener = await self.listen("tcp", listen_address(port, "AsyncListener"))
        if not _on_asyncio():
            try:
                from . import _asgi_trio
            except BaseException:
                core_of(listener).close()
                raise
            await _asgi_trio.serve(core_of(listener), app, self._node, task_status=task_status, **options)
            return
        from . import asgi

        await asgi.serve(listener, app, server=self, task_status=task_status, **options)

    async def serve_wsgi(
        self,
        app: WSGIApp,
        port: int | AsyncListener = 80,
        *,
        workers: int = 10,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """Serve a WSGI app on tailnet ``port``, as :meth:`serve_asgi` (a2wsgi, ``workers`` threads).

        Needs ``tailnet[wsgi]``.
        """
        if not _on_asyncio():
            raise UnsupportedError("WSGI apps are served through a2wsgi, which needs asyncio (this is trio)")
        from . import asgi

        await self.serve_asgi(asgi.from_wsgi(app, workers=workers), port, task_status=task_status, **options)

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
        try:
            return await self.up()
        except BaseException:  # __aexit__ will not run: close here (its store thread too)
            await self.aclose()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
