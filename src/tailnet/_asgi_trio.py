"""Serving ASGI apps under trio, with hypercorn's trio worker.

uvicorn (:mod:`tailnet.asgi`) needs asyncio; under trio,
:meth:`tailnet.AsyncServer.serve_asgi` runs hypercorn instead. As with
uvicorn, only the listening socket is replaced: hypercorn's own
per-connection server (``hypercorn.trio.tcp_server.TCPServer``: HTTP/1.1,
HTTP/2, WebSockets, keep-alive, timeouts), lifespan and graceful
shutdown run unchanged, and an accept loop hands each tailnet connection
to a new ``TCPServer`` through a small adapter giving the trio stream
interface it reads (``receive_some``, ``send_all``, ``send_eof``, and a
``socket`` reporting tailnet addresses). Each scope carries the same
``scope["extensions"]["tailnet"]`` (peer and whois) as under uvicorn.

hypercorn exposes no public API for serving connections accepted
elsewhere, so this follows the structure of its trio worker
(``hypercorn.trio.run.worker_serve``); ``tests/test_http_servers.py``
checks it against the pinned minimum. Needs
``pip install 'tailnet[hypercorn]'``.
"""

from __future__ import annotations

import importlib
from typing import Any

import anyio
import anyio.abc
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from ._addresses import Address
from ._asgi_scope import ASGIApp, Callers, peer_extension
from ._exceptions import ConfigurationError
from ._logs import LOGGER
from ._node import ListenerCore, Node
from ._optional import missing
from ._stream_async import TailnetStream, open_stream
from ._waiting_async import retry

try:
    import trio
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.config import Config
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.trio.statsd import StatsdLogger
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
except ImportError as exc:
    raise missing("hypercorn", "hypercorn", "serving ASGI apps under trio") from exc

__all__ = ["serve"]

#: hypercorn options that choose sockets of hypercorn's own; the tailnet listener replaces them.
_SOCKET_OPTIONS = ("bind", "insecure_bind", "quic_bind", "certfile", "keyfile", "ca_certs")


def _address(stream: TailnetStream, attribute: Any) -> Address:
    host, port = stream.extra(attribute)
    return str(host), int(port)


class _Addresses:
    """The ``socket`` hypercorn asks a stream for: the family and the tailnet addresses."""

    def __init__(self, stream: TailnetStream) -> None:
        self.family = stream.extra(anyio.abc.SocketAttribute.family)
        self._peer = _address(stream, anyio.abc.SocketAttribute.remote_address)
        self._local = _address(stream, anyio.abc.SocketAttribute.local_address)

    def getpeername(self) -> Address:
        return self._peer

    def getsockname(self) -> Address:
        return self._local


class _TrioStream:
    """A :class:`TailnetStream` with the trio stream methods and exceptions hypercorn expects."""

    def __init__(self, stream: TailnetStream) -> None:
        self._stream = stream
        self.socket = _Addresses(stream)

    async def receive_some(self, max_bytes: int) -> bytes:
        try:
            return await self._stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except anyio.BrokenResourceError as exc:
            raise trio.BrokenResourceError from exc
        except anyio.ClosedResourceError as exc:
            raise trio.ClosedResourceError from exc

    async def send_all(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except anyio.BrokenResourceError as exc:
            raise trio.BrokenResourceError from exc
        except anyio.ClosedResourceError as exc:
            raise trio.ClosedResourceError from exc
        except anyio.BusyResourceError as exc:
            raise trio.BusyResourceError from exc

    async def send_eof(self) -> None:
        try:
            await self._stream.send_eof()
        except anyio.BrokenResourceError as exc:
            raise trio.BrokenResourceError from exc
        except anyio.ClosedResourceError as exc:
            raise trio.ClosedResourceError from exc

    async def aclose(self) -> None:
        await self._stream.aclose()


def _config(options: dict[str, Any]) -> Config:
    config = Config()
    for name, value in options.items():
        if name in _SOCKET_OPTIONS:
            raise ConfigurationError(
                f"hypercorn's {name!r} option does not apply: the app is served on a tailnet listener"
            )
        if name.startswith("_") or not hasattr(config, name):
            raise ConfigurationError(f"{name!r} is not a hypercorn configuration option")
        setattr(config, name, value)
    config.set_statsd_logger_class(StatsdLogger)
    return config


def _load(app: ASGIApp | str) -> ASGIApp:
    if not isinstance(app, str):
        return app
    module, _, attribute = app.partition(":")
    if not module or not attribute:
        raise ConfigurationError(f"an app import string is 'module:attribute', not {app!r}")
    loaded: ASGIApp = getattr(importlib.import_module(module), attribute)
    return loaded


async def serve(
    listener: ListenerCore,
    app: ASGIApp | str,
    node: Node | None,
    *,
    task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve ``app`` on ``listener`` with hypercorn under trio, until it closes or cancellation.

    Cancellation shuts down gracefully, as under uvicorn: stop accepting,
    let requests finish (``graceful_timeout``, hypercorn's option), run
    the lifespan shutdown; then the cancellation goes on. The listener is
    closed however it ends.
    """
    try:
        config = _config(options)
        loaded = _load(app)
    except BaseException:
        listener.close()
        raise
    stop = trio.Event()
    finished = trio.Event()

    async def run(*, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        # Shielded: an outer cancellation reaches it only as `stop`, so that it shuts down gracefully.
        with trio.CancelScope(shield=True):
            try:
                await _serve(listener, loaded, node, config, stop=stop, task_status=task_status)
            finally:
                listener.close()
                finished.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        task_status.started()
        try:
            await finished.wait()
        finally:
            stop.set()


async def _serve(
    listener: ListenerCore,
    app: ASGIApp,
    node: Node | None,
    config: Config,
    *,
    stop: trio.Event,
    task_status: TaskStatus[None],
) -> None:
    callers = Callers(node)
    wrapped = ASGIWrapper(peer_extension(app, callers))  # type: ignore[arg-type]
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)

    async def connection(stream: TailnetStream) -> None:
        peer = _address(stream, anyio.abc.SocketAttribute.remote_address)
        await callers.resolve(peer)
        try:
            await TCPServer(wrapped, config, context, state.copy(), _TrioStream(stream))  # type: ignore[arg-type]
        finally:
            callers.forget(peer)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptor:
                acceptor.start_soon(_cancel_on, stop, acceptor.cancel_scope)
                task_status.started()
                LOGGER.info("serving http on tailnet %s (hypercorn, trio)", listener.address)
                try:
                    while True:
                        conn = await retry(listener.receive, listener.sock, lambda: listener.closed)
                        connections.start_soon(connection, open_stream(conn))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    LOGGER.info("tailnet listener %s closed: stopping the server", listener.address)
                acceptor.cancel_scope.cancel()
            listener.close()
            await context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
