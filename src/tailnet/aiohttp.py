"""aiohttp over the tailnet: a client connector and a site for ``aiohttp.web`` apps.

::

    async with tailnet.AsyncServer("bot") as ts:
        async with aiohttp.ClientSession(connector=ts.aiohttp_connector()) as session:
            await session.post("http://monitor:8080/report", json=report)

    async with tailnet.AsyncServer("monitor") as ts:
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        await tailnet.aiohttp.TailnetSite(runner, await ts.listen("tcp", ":8080"), server=ts).start()
        # in a handler: tailnet.aiohttp.whois(request) is the caller's PeerIdentity

:class:`TailnetConnector` *is* an :class:`aiohttp.BaseConnector`:
aiohttp's own pooling, keep-alive, limits and request handling, with each
connection dialed through the tailnet node (as aiohttp's ``UnixConnector``
dials a Unix socket). Host names are tailnet IPs or MagicDNS names, short
or fully qualified; they are never sent to the system resolver. A failed
dial raises :class:`aiohttp.ClientConnectorError` whose ``os_error`` is the
tailnet exception (:class:`~tailnet.PeerNotFound` for an unknown name,
:class:`~tailnet.ConnectionRefused`, :class:`~tailnet.TailnetTimeout`...).

:class:`TailnetSite` is an :class:`aiohttp.web.BaseSite` serving a runner's
app on a tailnet listener. A tailnet listener hands over accepted
connections rather than being a listening socket, so the site runs an
accept loop and gives each connection to
:meth:`asyncio.loop.connect_accepted_socket` with the runner's request
handler. ``request.remote`` is the peer's tailnet IP and
:func:`whois` gives the caller's :class:`~tailnet.PeerIdentity`.

aiohttp runs on asyncio only: under trio, both raise
:class:`~tailnet.UnsupportedError`. Needs ``pip install 'tailnet[aiohttp]'``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from ._accepted import AcceptedProtocol, AcceptLoop
from ._asgi_scope import Callers
from ._exceptions import ConfigurationError, UnsupportedError
from ._info import PeerIdentity
from ._logs import LOGGER
from ._node import ListenerCore
from ._optional import missing
from ._server import core_of, node_of
from ._stream_sync import TailnetSocket
from ._waiting_async import finish

try:
    import aiohttp
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - exercised by a test in a clean interpreter
    raise missing("aiohttp", "aiohttp", "tailnet.aiohttp") from exc

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

    from ._server_async import AsyncListener, AsyncServer
    from ._server_sync import Listener, Server

__all__ = ["TailnetConnector", "TailnetSite", "whois"]

#: Connector options that pick a network path of their own, which the tailnet replaces.
_REJECTED_OPTIONS = ("local_addr", "resolver", "family", "socket_factory", "happy_eyeballs_delay")


def _require_asyncio(what: str) -> asyncio.AbstractEventLoop:
    """The running asyncio loop, or :class:`~tailnet.UnsupportedError` (under trio, or no loop)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        message = f"{what} needs asyncio (aiohttp runs on asyncio only; this is not asyncio)"
        raise UnsupportedError(message) from None


class TailnetConnector(aiohttp.BaseConnector):
    """An :class:`aiohttp.BaseConnector` dialing its connections through an :class:`~tailnet.AsyncServer`.

    Args:
        server: The node to dial from (it must be up to connect).
        ssl: For ``https://`` URLs: an :class:`ssl.SSLContext`, True
            (verify with the default context) or False (do not verify);
            a request's own ``ssl=`` wins.
        **options: :class:`aiohttp.BaseConnector` options (``limit``,
            ``limit_per_host``, ``keepalive_timeout``, ``force_close``...).
            Options of :class:`aiohttp.TCPConnector` that choose a network
            path (``local_addr``, ``resolver``, ``family``...) raise
            :class:`~tailnet.ConfigurationError`.

    Make it inside a running asyncio loop (as any aiohttp connector); under
    trio it raises :class:`~tailnet.UnsupportedError`.
    """

    def __init__(self, server: AsyncServer, *, ssl: ssl.SSLContext | bool = True, **options: Any) -> None:
        _require_asyncio("tailnet.aiohttp.TailnetConnector")
        for name in _REJECTED_OPTIONS:
            if name in options:
                raise ConfigurationError(
                    f"a tailnet connector dials through its node; {name!r} does not apply"
                )
        super().__init__(**options)
        self._tailnet = server
        self._ssl_option = ssl

    def _ssl_context(self, req: ClientRequest) -> ssl.SSLContext | None:
        if not req.is_ssl():
            return None
        chosen = req.ssl if isinstance(req.ssl, ssl.SSLContext) or req.ssl is False else self._ssl_option
        if isinstance(chosen, ssl.SSLContext):
            return chosen
        context = ssl.create_default_context()
        if chosen is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _create_connection(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        if req.proxy is not None:  # e.g. trust_env=True with $HTTP_PROXY set
            raise ConfigurationError(
                f"a tailnet connector dials through its node; it cannot use the proxy {req.proxy}"
            )
        host, port = req.url.raw_host, req.url.port
        if host is None or port is None:
            raise aiohttp.InvalidURL(req.url)
        node = node_of(self._tailnet)
        context = self._ssl_context(req)
        try:
            conn = node.connection(*await finish(node.begin_dial("tcp", (host, port), timeout.sock_connect)))
        except OSError as exc:  # every tailnet dial error is one (TailnetTimeout is a TimeoutError)
            raise aiohttp.ClientConnectorError(req.connection_key, exc) from exc
        sock = TailnetSocket.adopt_connection(conn)
        try:
            _, protocol = await self._loop.create_connection(
                self._factory, sock=sock, ssl=context, server_hostname=host if context else None
            )
        except ssl.CertificateError as exc:
            sock.close()
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl.SSLError as exc:
            sock.close()
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except BaseException:
            sock.close()
            raise
        return protocol


#: The caller of each connection a :class:`TailnetSite` serves, by its request handler.
_CALLERS: dict[object, PeerIdentity | None] = {}


def whois(request: web.BaseRequest) -> PeerIdentity | None:
    """Who sent ``request``: the caller's :class:`~tailnet.PeerIdentity`, looked up once per connection.

    None if the request did not come through a :class:`TailnetSite` made
    with ``server=``, or if the lookup failed.
    """
    return _CALLERS.get(request.protocol)


class _Connection(AcceptedProtocol):
    """Passes everything to aiohttp's request handler; forgets the caller when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, sock: TailnetSocket, identity: PeerIdentity | None) -> None:
        super().__init__(inner, sock)
        _CALLERS[inner] = identity

    def connection_lost(self, exc: Exception | None) -> None:
        _CALLERS.pop(self._inner, None)
        super().connection_lost(exc)


class _Acceptor(AcceptLoop):
    """Takes an :class:`asyncio.Server`'s place in the site: accepts from the tailnet listener."""

    def __init__(self, site: TailnetSite) -> None:
        self._site = site
        self.sockets: tuple[()] = ()
        super().__init__(site._listener)

    async def _connect(self, sock: TailnetSocket) -> None:
        await self._site._connect(sock)

    def _listener_closed(self) -> None:
        LOGGER.info("tailnet listener %s closed: the aiohttp site stops accepting", self._listener.address)


class TailnetSite(web.BaseSite):
    """Serves an :class:`aiohttp.web.AppRunner`'s app on a tailnet listener.

    Args:
        runner: A runner after ``await runner.setup()``.
        listener: An :class:`~tailnet.AsyncListener` (or
            :class:`~tailnet.Listener`); the site takes it over and closes
            it when it stops.
        server: The listener's node: with it, each connection's caller is
            looked up once (whois) for :func:`whois`.
        ssl_context: Serve HTTPS with this context.

    ``await site.start()`` starts accepting; ``await runner.cleanup()``
    stops the site (closing the listener), lets requests in progress
    finish (the runner's ``shutdown_timeout``) and closes connections.
    Under trio, making one raises :class:`~tailnet.UnsupportedError`.
    """

    __slots__ = ("_callers", "_listener")

    def __init__(
        self,
        runner: web.BaseRunner,
        listener: AsyncListener | Listener,
        *,
        server: AsyncServer | Server | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        _require_asyncio("tailnet.aiohttp.TailnetSite")
        from ._server_async import AsyncListener
        from ._server_sync import Listener

        if not isinstance(listener, AsyncListener | Listener):
            raise TypeError(
                f"listener must be a tailnet AsyncListener or Listener, not {type(listener).__name__}"
            )
        core: ListenerCore = core_of(listener)
        super().__init__(runner, ssl_context=ssl_context)
        self._listener = core
        self._callers = Callers(None if server is None else node_of(server))

    @property
    def name(self) -> str:
        """The site's URL, with the listener's address (e.g. "http://tailnet:8080")."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://tailnet{self._listener.address}"

    async def start(self) -> None:
        """Start accepting connections on the tailnet listener."""
        await super().start()
        self._server = _Acceptor(self)  # type: ignore[assignment]

    async def _connect(self, sock: TailnetSocket) -> None:
        """Name the caller, then hand the connection to the runner's request handler."""
        handler = self._runner.server
        peer = sock.getpeername()
        try:
            if handler is None:  # the runner was cleaned up meanwhile
                raise ConnectionAbortedError("the aiohttp runner is shut down")
            await self._callers.resolve(peer)
            identity = self._callers.get(peer)
            self._callers.forget(peer)
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _Connection(handler(), sock, identity), sock, ssl=self._ssl_context
            )
        except (OSError, asyncio.TimeoutError) as exc:  # e.g. a failed TLS handshake
            LOGGER.info("connection from %s failed: %s", peer, exc)
            sock.close()
        except asyncio.CancelledError:
            sock.close()
            raise
