"""The blocking forwarder: :class:`Forwarder`, the async one run in an event-loop thread.

The relay (:mod:`tailnet._forward_async`) is written once: a
:class:`Forwarder` runs an :class:`~tailnet.AsyncForwarder` in an asyncio
event loop in a daemon thread of its own, one thread per forwarder
whatever the number of connections. anyio is imported when a forwarder is
made, not by ``import tailnet``. Forwarders left open are closed at
interpreter exit, before the servers.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from ._addresses import Address
from ._forward import LocalEndpoint
from ._node import Node
from ._public import present, qualified_name

if TYPE_CHECKING:
    from ._forward_async import AsyncForwarder

__all__ = ["Forwarder"]

#: Forwarders not closed yet, closed at interpreter exit (before the servers are).
_open: weakref.WeakSet[Forwarder] = weakref.WeakSet()


def _close_at_exit() -> None:
    for forwarder in list(_open):
        forwarder.close()


def _track(forwarder: Forwarder) -> None:
    """Close ``forwarder`` at exit if it is still open then.

    Registered with the first forwarder, after the servers' own exit hook
    (imported with ``tailnet``), so that it runs before it (atexit runs
    the last registered first): relays end before their node closes.
    """
    if not _open:
        atexit.unregister(_close_at_exit)
        atexit.register(_close_at_exit)
    _open.add(forwarder)


@present
class Forwarder:
    """A local endpoint relaying each connection to a tailnet service; from :meth:`Server.forward`.

    ::

        with ts.forward("db:5432") as fwd:
            host, port = fwd.address          # 127.0.0.1 and the chosen port
            conn = psycopg.connect(host=host, port=port, ...)

    It accepts and relays from the moment it is made, in a thread of its
    own, until :meth:`close` (or the end of the ``with`` block), which
    stops accepting, lets the connections still open finish for up to
    the server's ``linger`` seconds, then aborts the rest (both sides get
    a reset).
    """

    def __init__(self, node: Node, target: str, endpoint: LocalEndpoint, dial_timeout: float | None) -> None:
        from ._forward_async import AsyncForwarder

        self._forwarder: AsyncForwarder = AsyncForwarder(node, target, endpoint, dial_timeout)
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._stop: Callable[[], None] | None = None
        self._closed = False
        # A daemon thread, so that one left open cannot hold up the
        # interpreter's exit; _close_at_exit closes it first.
        self._thread = threading.Thread(target=self._run, name=f"tailnet forward {target}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            endpoint.close()
            raise self._failure
        _track(self)

    def _run(self) -> None:
        import anyio

        try:
            anyio.run(self._serve)
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor's thread
            self._failure = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        import anyio
        import anyio.from_thread
        import anyio.lowlevel

        stop = anyio.Event()
        token = anyio.lowlevel.current_token()
        async with self._forwarder:
            self._stop = lambda: anyio.from_thread.run_sync(stop.set, token=token)
            self._started.set()
            await stop.wait()

    @property
    def address(self) -> Address | str:
        """Where to connect: ``(host, port)`` for TCP (with the chosen port), or the socket path."""
        return self._forwarder.address

    @property
    def target(self) -> str:
        """The tailnet service connections are relayed to, as "host:port"."""
        return self._forwarder.target

    @property
    def connections(self) -> int:
        """How many connections are being relayed now."""
        return self._forwarder.connections

    def close(self) -> None:
        """Stop accepting, let open connections finish (up to ``linger``), abort the rest. Idempotent."""
        if not self._closed:
            self._closed = True
            _open.discard(self)
            if self._stop is not None and self._thread.is_alive():
                with contextlib.suppress(RuntimeError):  # its event loop has ended already
                    self._stop()
            self._thread.join()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{qualified_name(self)} {self.address} -> {self.target}>"
