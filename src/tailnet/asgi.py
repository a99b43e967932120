"""Serve ASGI and WSGI applications on the tailnet with uvicorn.

Most users call :meth:`tailnet.Server.serve_asgi` /
:meth:`tailnet.AsyncServer.serve_asgi` (and ``serve_wsgi``); this module is
what they run, usable directly with a listener of your own.

How: uvicorn serves each connection with an :class:`asyncio.Protocol`
(h11 or httptools, websockets). A tailnet listener is not a listening
socket: accepted connections arrive as descriptors on a ``SOCK_SEQPACKET``
socket, so uvicorn cannot ``accept()`` on it and ``loop.create_server``
cannot use it. asyncio's documented way to serve a connection accepted
elsewhere is :meth:`asyncio.loop.connect_accepted_socket`, so tailnet runs
uvicorn's own :class:`uvicorn.Server` (lifespan, protocols, keep-alive,
graceful shutdown, signals) and replaces only the part that creates
listening sockets: an accept loop hands each tailnet connection to
``connect_accepted_socket`` with uvicorn's protocol class. No HTTP is parsed
here.

Each protocol sees a transport that reports the tailnet addresses, so the
ASGI scope's ``client`` is the peer's tailnet ``(ip, port)`` and ``server``
this node's, on any event loop (uvloop included). The scope also carries
the extension ``scope["extensions"]["tailnet"]``, a dict with:

``"peer"``
    the peer's tailnet ``(ip, port)``, taken from the connection (not from
    ``X-Forwarded-For``, even when uvicorn's proxy headers are trusted).
``"whois"``
    who is calling: the :class:`~tailnet.PeerIdentity` (node, user, tags,
    capabilities) the control server vouches for, looked up once per
    connection when it is accepted; None if the lookup failed or no server
    was given. Use it to authorize requests.

WSGI applications are served through a2wsgi's ``WSGIMiddleware`` on the
same stack; their environ has ``environ["tailnet.peer"]`` and
``environ["tailnet.whois"]`` (and ``REMOTE_ADDR``/``REMOTE_PORT`` are the
tailnet peer's).

uvicorn needs asyncio: under trio, :func:`serve` runs hypercorn's trio
server instead (``pip install 'tailnet[hypercorn]'``), with the same
extension; WSGI apps (a2wsgi) need asyncio. Needs
``pip install 'tailnet[asgi]'`` (``'tailnet[wsgi]'`` for WSGI).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from ._accepted import AcceptedProtocol, AcceptLoop
from ._asgi_scope import EXTENSION, WHOIS_TIMEOUT, ASGIApp, Callers, listen_address, peer_extension
from ._exceptions import ConfigurationError
from ._logs import LOGGER
from ._node import ListenerCore, Node
from ._optional import missing
from ._server import core_of, node_of
from ._stream_sync import TailnetSocket

try:
    import uvicorn
except ImportError as exc:
    raise missing("uvicorn", "asgi", "tailnet.asgi") from exc

if TYPE_CHECKING:
    from ._server_async import AsyncListener, AsyncServer
    from ._server_sync import Listener, Server

__all__ = [
    "EXTENSION",
    "WHOIS_TIMEOUT",
    "WSGI_PEER_KEY",
    "WSGI_WHOIS_KEY",
    "ASGIApp",
    "from_wsgi",
    "listen_address",
    "run",
    "serve",
]

StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The WSGI environ key holding the peer's tailnet ``(ip, port)``.
WSGI_PEER_KEY = "tailnet.peer"
#: The WSGI environ key holding the caller's :class:`~tailnet.PeerIdentity` (or None).
WSGI_WHOIS_KEY = "tailnet.whois"

#: uvicorn options that choose a socket of uvicorn's own; the tailnet listener replaces them.
_SOCKET_OPTIONS = ("host", "port", "uds", "fd")


class _TailnetProtocol(AcceptedProtocol):
    """Passes everything to uvicorn's protocol; forgets the caller when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, sock: TailnetSocket, callers: Callers) -> None:
        super().__init__(inner, sock)
        self._callers = callers

    def connection_lost(self, exc: Exception | None) -> None:
        self._callers.forget(self._sock.getpeername())
        super().connection_lost(exc)


class _Acceptor(AcceptLoop):
    """Takes uvicorn's listening servers' place: accepts tailnet connections for its protocols.

    uvicorn's shutdown calls ``close`` and ``wait_closed`` on it as on an
    :class:`asyncio.Server`. When the listener closes underneath it (its
    node closed), it asks uvicorn to shut down.
    """

    def __init__(
        self,
        listener: ListenerCore,
        protocol: Callable[[], asyncio.Protocol],
        server: _Uvicorn,
        callers: Callers,
    ) -> None:
        self._protocol = protocol
        self._server = server
        self._callers = callers
        super().__init__(listener)

    def _listener_closed(self) -> None:
        LOGGER.info("tailnet listener %s closed: stopping the server", self._listener.address)
        self._server.should_exit = True

    async def _connect(self, sock: TailnetSocket) -> None:
        """Name the caller, then hand the connection to a new uvicorn protocol (after TLS, if any)."""
        loop = asyncio.get_running_loop()
        peer = sock.getpeername()
        try:
            await self._callers.resolve(peer)
            await loop.connect_accepted_socket(
                lambda: _TailnetProtocol(self._protocol(), sock, self._callers),
                sock,
                ssl=self._server.config.ssl,
            )
        except (OSError, asyncio.TimeoutError) as exc:  # e.g. a failed TLS handshake
            LOGGER.info("connection from %s failed: %s", peer, exc)
            self._callers.forget(peer)
            sock.close()
        except asyncio.CancelledError:
            self._callers.forget(peer)
            sock.close()
            raise


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, accepting from a tailnet listener instead of a socket of its own."""

    def __init__(
        self,
        config: uvicorn.Config,
        listener: ListenerCore,
        callers: Callers,
        on_started: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._listener = listener
        self._callers = callers
        self._on_started = on_started

    async def serve(self, sockets: list[Any] | None = None) -> None:
        """Uvicorn's ``serve``; the listener is closed when it ends, however it ends."""
        try:
            await super().serve()
        finally:
            self._listener.close()

    async def startup(self, sockets: list[Any] | None = None) -> None:
        """Uvicorn's startup (lifespan, server state) with the tailnet listener for a socket."""
        await super().startup(sockets=[])  # no listening socket of uvicorn's own
        if not self.started:
            return
        protocol_class: Callable[..., asyncio.Protocol] = self.config.http_protocol_class
        protocol = functools.partial(
            protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        self.servers.append(_Acceptor(self._listener, protocol, self, self._callers))  # type: ignore[arg-type]
        scheme = "https" if self.config.ssl else "http"
        LOGGER.info("serving %s on tailnet %s", scheme, self._listener.address)
        self._on_started()


def _server(
    app: ASGIApp | str,
    listener: ListenerCore,
    node: Node | None,
    options: dict[str, Any],
    on_started: Callable[[], object] = lambda: None,
) -> _Uvicorn:
    """Uvicorn's server for the app on the listener (closing the listener if it cannot be made)."""
    try:
        for name in _SOCKET_OPTIONS:
            if name in options:
                raise ConfigurationError(
                    f"uvicorn's {name!r} option does not apply: the app is served on a tailnet listener"
                )
        config = uvicorn.Config(app, **options)
        config.load()
    except BaseException:
        listener.close()
        raise
    callers = Callers(node)
    # Outermost, so the extension reflects the connection even when uvicorn's
    # proxy-headers middleware rewrites scope["client"] from a trusted proxy.
    config.loaded_app = peer_extension(config.loaded_app, callers)
    return _Uvicorn(config, listener, callers, on_started)


def _node(server: Server | AsyncServer | None) -> Node | None:
    return None if server is None else node_of(server)


async def serve(
    listener: AsyncListener | Listener,
    app: ASGIApp | str,
    *,
    server: Server | AsyncServer | None = None,
    task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve an ASGI app on a tailnet listener until it closes (the listener is closed afterwards).

    Args:
        listener: Where to accept connections; serving takes it over.
        app: An ASGI 3 application, or an import string ("module:app") as
            uvicorn accepts.
        server: The listener's node: with it, each connection's caller is
            looked up (whois) for the scope's ``"whois"`` entry.
        task_status: For ``await task_group.start(serve, ...)``, which
            returns once the app has started (lifespan startup done) and
            connections are being accepted.
        **options: :class:`uvicorn.Config` options (``log_level``,
            ``timeout_graceful_shutdown``, ``ssl_certfile``, ...) except
            ``host``/``port``/``uds``/``fd``.

    Ends when the listener closes, on Ctrl-C/SIGTERM (uvicorn's
    handling, in the main thread), or when cancelled; each stops
    accepting, lets requests in progress finish (bounded by
    ``timeout_graceful_shutdown``) and runs the lifespan shutdown. It
    also ends when its node closes, but that closes the connections
    first, as a process exit would: a response still being sent is cut
    short (the client reads end-of-file after what was sent). To let
    responses finish, cancel ``serve`` or close the listener, then the
    node.
    Under trio it is hypercorn that serves, and ``options`` are
    :class:`hypercorn.config.Config` attributes.
    """
    core = core_of(listener)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio: no asyncio loop in this thread; hypercorn serves instead
        try:
            from . import _asgi_trio
        except BaseException:
            core.close()
            raise
        await _asgi_trio.serve(core, app, _node(server), task_status=task_status, **options)
        return
    started: asyncio.Future[None] = loop.create_future()

    def on_started() -> None:
        if not started.done():
            started.set_result(None)

    uvicorn_server = _server(app, core, _node(server), options, on_started)
    task = loop.create_task(uvicorn_server.serve())
    try:
        await asyncio.wait((task, started), return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            task_status.started()
        await asyncio.shield(task)
    finally:
        started.cancel()
        if not task.done():  # cancelled: shut down gracefully, as on Ctrl-C
            uvicorn_server.should_exit = True
            with anyio.CancelScope(shield=True):
                await task


def run(listener: Listener, app: ASGIApp | str, *, server: Server | None = None, **options: Any) -> None:
    """Blocking :func:`serve`, in an event loop of its own (uvicorn's ``loop`` option picks it)."""
    _server(app, core_of(listener), _node(server), options).run()


def _wsgi_peer(app: WSGIApp) -> WSGIApp:
    """Add ``environ["tailnet.peer"]`` and ``["tailnet.whois"]`` from the ASGI scope a2wsgi passes along."""

    def with_peer(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        scope = environ.get("asgi.scope") or {}
        extension = (scope.get("extensions") or {}).get(EXTENSION)
        if extension is not None:
            environ[WSGI_PEER_KEY] = extension["peer"]
            environ[WSGI_WHOIS_KEY] = extension["whois"]
        return app(environ, start_response)

    return with_peer


def from_wsgi(app: WSGIApp, *, workers: int = 10) -> ASGIApp:
    """An ASGI app running a WSGI app in a pool of ``workers`` threads (a2wsgi).

    Its environ carries ``environ["tailnet.peer"]`` and
    ``environ["tailnet.whois"]`` (see :mod:`tailnet.asgi`). Needs
    ``pip install 'tailnet[wsgi]'``.
    """
    try:
        from a2wsgi import WSGIMiddleware
    except ImportError as exc:
        raise missing("a2wsgi", "wsgi", "serving WSGI apps") from exc
    if not callable(app):
        raise TypeError(f"app must be a WSGI callable, not {type(app).__name__}")
    asgi: ASGIApp = WSGIMiddleware(_wsgi_peer(app), workers=workers)  # type: ignore[arg-type, assignment]
    return asgi
