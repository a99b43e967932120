"""httpx over the tailnet: transports whose connections are tailnet connections.

::

    with tailnet.Server("client") as ts, httpx.Client(transport=ts.httpx_transport()) as client:
        client.get("http://other-node:8080/")          # MagicDNS short name or FQDN

    async with tailnet.AsyncServer("client") as ts:
        async with httpx.AsyncClient(transport=ts.httpx_transport()) as client:
            await client.get("http://other-node:8080/")

:class:`HTTPTransport` *is* an :class:`httpx.HTTPTransport` (and
:class:`AsyncHTTPTransport` an :class:`httpx.AsyncHTTPTransport`): httpx's
own request handling, connection pooling, HTTP/2, TLS and error mapping,
with every connection dialed through the tailnet node instead of the host's
network stack. Underneath are httpcore network backends
(:class:`NetworkBackend`, :class:`AsyncNetworkBackend`), usable on their own
with ``httpcore.ConnectionPool(network_backend=...)``.

Needs ``pip install 'tailnet[httpx]'``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ._addresses import Address
from ._exceptions import ConfigurationError, InternalError
from ._optional import missing

try:
    import httpcore
    import httpx
except ImportError as exc:  # pragma: no cover - exercised by a test in a clean interpreter
    raise missing("httpx", "httpx", "tailnet.httpx") from exc

if TYPE_CHECKING:
    from ._server_async import AsyncServer
    from ._server_sync import Server
    from ._stream_async import TailnetStream

__all__ = ["AsyncHTTPTransport", "AsyncNetworkBackend", "HTTPTransport", "NetworkBackend"]

#: Transport options that pick a network path of their own, which a tailnet transport replaces.
_REJECTED_OPTIONS = ("proxy", "uds", "local_address", "socket_options")


def _readable_now(sock: socket.socket) -> bool:
    """Whether reading would not block: on an idle pooled connection, the peer closed it."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


#: What a failed tailnet stream raises, on the sync and the async side.
_BROKEN = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


@contextlib.contextmanager
def _translated(timeout: type[Exception], error: type[Exception]) -> Iterator[None]:
    """Raise httpcore's ``timeout`` or ``error`` for a stream's timeout or failure."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc)) from exc
    except _BROKEN as exc:
        raise error(str(exc)) from exc


def _check_options(options: dict[str, Any]) -> None:
    for name in _REJECTED_OPTIONS:
        if options.get(name) is not None:
            raise ConfigurationError(
                f"a tailnet transport dials through its node; the {name!r} option does not apply"
            )


class _Stream(httpcore.NetworkStream):
    """One tailnet connection (or a TLS session over one), as httpcore reads and writes it."""

    def __init__(self, sock: socket.socket, local: Address, peer: Address) -> None:
        self._sock = sock
        self._local = local
        self._peer = peer

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._sock.settimeout(timeout)
        with _translated(httpcore.ReadTimeout, httpcore.ReadError):
            return self._sock.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._sock.settimeout(timeout)
        with _translated(httpcore.WriteTimeout, httpcore.WriteError):
            self._sock.sendall(buffer)

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._sock.settimeout(timeout)
        try:
            tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:  # ssl.SSLError is an OSError
            self._sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        return _Stream(tls, self._local, self._peer)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable_now(self._sock)
        return {
            # An SSLSocket answers what httpcore asks of an SSLObject (ALPN, certificate).
            "ssl_object": self._sock if isinstance(self._sock, ssl.SSLSocket) else None,
            "socket": self._sock,
            "client_addr": self._local,
            "server_addr": self._peer,
        }.get(info)


class NetworkBackend(httpcore.NetworkBackend):
    """An httpcore network backend that dials through a :class:`tailnet.Server`.

    Hosts are tailnet IPs or MagicDNS names (short or fully qualified).
    """

    def __init__(self, server: Server) -> None:
        self._server = server

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Dial ``host:port`` on the tailnet (``local_address`` and ``socket_options`` do not apply)."""
        with _translated(httpcore.ConnectTimeout, httpcore.ConnectError):
            sock = self._server.dial("tcp", (host, port), timeout=timeout)
        return _Stream(sock, sock.getsockname(), sock.getpeername())

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Not on a tailnet: raises :class:`httpcore.ConnectError`."""
        raise httpcore.ConnectError("a tailnet backend cannot connect to a Unix socket")


class _AsyncStream(httpcore.AsyncNetworkStream):
    """One tailnet connection (or a TLS session over one) on anyio, as httpcore uses it."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            with _translated(httpcore.ReadTimeout, httpcore.ReadError), anyio.fail_after(timeout):
                return await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _translated(httpcore.WriteTimeout, httpcore.WriteError), anyio.fail_after(timeout):
            await self._stream.send(buffer)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                tls = await TLSStream.wrap(
                    self._stream,
                    ssl_context=ssl_context,
                    hostname=server_hostname,
                    standard_compatible=False,
                )
        except TimeoutError as exc:
            await anyio.aclose_forcefully(self._stream)
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            await anyio.aclose_forcefully(self._stream)
            raise httpcore.ConnectError(str(exc)) from exc
        return _AsyncStream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._stream.extra(TLSAttribute.ssl_object, None)
        if info == "is_readable":
            sock = self._stream.extra(SocketAttribute.raw_socket, None)
            return sock is not None and _readable_now(sock)
        attribute = {
            "socket": SocketAttribute.raw_socket,
            "client_addr": SocketAttribute.local_address,
            "server_addr": SocketAttribute.remote_address,
        }.get(info)
        return None if attribute is None else self._stream.extra(attribute, None)


class AsyncNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore async network backend that dials through a :class:`tailnet.AsyncServer`.

    Runs on asyncio and trio (it is built on anyio, like the server).
    """

    def __init__(self, server: AsyncServer) -> None:
        self._server = server

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Dial ``host:port`` on the tailnet (``local_address`` and ``socket_options`` do not apply)."""
        with _translated(httpcore.ConnectTimeout, httpcore.ConnectError):
            stream: TailnetStream = await self._server.dial("tcp", (host, port), timeout=timeout)
        return _AsyncStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Not on a tailnet: raises :class:`httpcore.ConnectError`."""
        raise httpcore.ConnectError("a tailnet backend cannot connect to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        """Sleep in the running event loop (httpcore's retries use it)."""
        await anyio.sleep(seconds)


def _use_backend(pool: object, backend: NetworkBackend | AsyncNetworkBackend) -> None:
    """Point the connection pool httpx built at our network backend.

    httpx (0.28) builds its pool without a way to pass a network backend
    (encode/httpx#3749 would add one), so the one attribute is swapped
    right after construction, before any connection exists.
    """
    if not isinstance(pool, httpcore.ConnectionPool | httpcore.AsyncConnectionPool) or not hasattr(
        pool, "_network_backend"
    ):
        raise InternalError(f"unsupported httpx version {httpx.__version__}: no connection pool to attach to")
    pool._network_backend = backend


class HTTPTransport(httpx.HTTPTransport):
    """An :class:`httpx.HTTPTransport` whose connections go over the tailnet.

    Args:
        server: The node to dial from (it must be up to connect).
        **options: Any :class:`httpx.HTTPTransport` option (``verify``,
            ``http2``, ``limits``, ``retries``, ...) except those choosing a
            network path of their own (``proxy``, ``uds``,
            ``local_address``, ``socket_options``), which raise
            :class:`~tailnet.ConfigurationError`.
    """

    def __init__(self, server: Server, **options: Any) -> None:
        _check_options(options)
        super().__init__(**options)
        _use_backend(self._pool, NetworkBackend(server))


class AsyncHTTPTransport(httpx.AsyncHTTPTransport):
    """An :class:`httpx.AsyncHTTPTransport` whose connections go over the tailnet (asyncio and trio).

    Args:
        server: The node to dial from (it must be up to connect).
        **options: As for :class:`HTTPTransport`.
    """

    def __init__(self, server: AsyncServer, **options: Any) -> None:
        _check_options(options)
        super().__init__(**options)
        _use_backend(self._pool, AsyncNetworkBackend(server))
