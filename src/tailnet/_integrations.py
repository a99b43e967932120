"""The servers' methods for HTTP libraries: httpx clients, ASGI and WSGI apps.

Mixed into :class:`~tailnet.Server` and :class:`~tailnet.AsyncServer`
(same names, sync and async). Each imports its optional dependency only
when called: :class:`~tailnet.MissingDependencyError` names the extra to
install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from ._async import AsyncListener, AsyncServer
    from ._sync import Listener, Server
    from .asgi import ASGIApp, WSGIApp
    from .httpx import AsyncHTTPTransport, HTTPTransport

__all__ = ["AsyncIntegrations", "SyncIntegrations"]


def _port(port: object, listener_type: type) -> str | None:
    """The address to listen on (":port"), or None if ``port`` is already a listener of the right kind."""
    if isinstance(port, listener_type):
        return None
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int or a {listener_type.__name__}, not {type(port).__name__}")
    return f":{port}"


class SyncIntegrations:
    """What :class:`~tailnet.Server` offers HTTP libraries."""

    def httpx_transport(self, **options: Any) -> HTTPTransport:
        """An :class:`httpx.HTTPTransport` dialing through this node.

        ``httpx.Client(transport=ts.httpx_transport())`` then reaches
        ``http://peer-name:8080/`` by MagicDNS name or tailnet IP.
        ``options`` are :class:`httpx.HTTPTransport`'s (``verify``,
        ``http2``, ``limits``, ``retries``, ...). Needs ``tailnet[httpx]``.
        """
        from .httpx import HTTPTransport

        return HTTPTransport(cast("Server", self), **options)

    def serve_asgi(self, app: ASGIApp | str, port: int | Listener = 80, **options: Any) -> None:
        """Serve an ASGI app (Starlette, FastAPI, ...) with uvicorn on tailnet ``port``; blocks.

        ``port`` is a port to listen on, or a :class:`~tailnet.Listener`
        you made (connections made meanwhile wait for the server). Returns
        when this server closes; Ctrl-C (in the main thread) shuts down
        gracefully, then raises KeyboardInterrupt. ``options`` are
        :class:`uvicorn.Config`'s except ``host``/``port``. Each scope's
        ``client`` is the peer's tailnet address, also in
        ``scope["extensions"]["tailnet"]["peer"]``, and
        ``scope["extensions"]["tailnet"]["whois"]`` says who is calling (a
        :class:`~tailnet.PeerIdentity`, see :mod:`tailnet.asgi`). Needs
        ``tailnet[asgi]``.
        """
        from . import asgi
        from ._sync import Listener

        server = cast("Server", self)
        address = _port(port, Listener)
        listener = cast("Listener", port) if address is None else server.listen("tcp", address)
        asgi.run(listener, app, server=server, **options)

    def serve_wsgi(
        self, app: WSGIApp, port: int | Listener = 80, *, workers: int = 10, **options: Any
    ) -> None:
        """Serve a WSGI app (Flask, Django, ...) on tailnet ``port``; blocks, like :meth:`serve_asgi`.

        Runs on uvicorn through a2wsgi with ``workers`` threads;
        ``environ["tailnet.peer"]`` is the peer's tailnet ``(ip, port)`` and
        ``environ["tailnet.whois"]`` its :class:`~tailnet.PeerIdentity`.
        Needs ``tailnet[wsgi]``.
        """
        from . import asgi

        self.serve_asgi(asgi.from_wsgi(app, workers=workers), port, **options)


class AsyncIntegrations:
    """What :class:`~tailnet.AsyncServer` offers HTTP libraries."""

    def httpx_transport(self, **options: Any) -> AsyncHTTPTransport:
        """An :class:`httpx.AsyncHTTPTransport` dialing through this node (asyncio and trio).

        ``httpx.AsyncClient(transport=ts.httpx_transport())``; as
        :meth:`tailnet.Server.httpx_transport`. Needs ``tailnet[httpx]``.
        """
        from .httpx import AsyncHTTPTransport

        return AsyncHTTPTransport(cast("AsyncServer", self), **options)

    async def serve_asgi(
        self,
        app: ASGIApp | str,
        port: int | AsyncListener = 80,
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """Serve an ASGI app with uvicorn on tailnet ``port`` until this server closes or cancellation.

        ``port`` is a port or an :class:`~tailnet.AsyncListener`.
        ``await task_group.start(ts.serve_asgi, app)`` returns once the app
        has started and connections are accepted. Cancelling shuts down
        gracefully (stop accepting, finish requests, lifespan shutdown)
        before the cancellation goes on. uvicorn needs asyncio: under trio
        this raises :class:`~tailnet.UnsupportedError`. As
        :meth:`tailnet.Server.serve_asgi` otherwise. Needs ``tailnet[asgi]``.
        """
        from . import asgi
        from ._async import AsyncListener

        server = cast("AsyncServer", self)
        address = _port(port, AsyncListener)
        listener = cast("AsyncListener", port) if address is None else await server.listen("tcp", address)
        await asgi.serve(listener, app, server=server, task_status=task_status, **options)

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
        from . import asgi

        await self.serve_asgi(asgi.from_wsgi(app, workers=workers), port, task_status=task_status, **options)
