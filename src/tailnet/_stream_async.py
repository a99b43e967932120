"""The async stream of a tailnet TCP connection: :class:`TailnetStream`, an anyio ``SocketStream``."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import SocketAttribute, SocketStream

from ._addresses import Address
from ._node import Connection, ConnectionFate
from ._public import present, qualified_name

__all__ = ["TailnetStream", "open_stream"]

_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


def open_stream(conn: Connection) -> TailnetStream:
    """Hand a TCP connection to a stream (it then owns the descriptor)."""
    # A plain socket.socket: trio's wait_readable accepts no subclass.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=conn.fd)
    return TailnetStream(sock, conn.remote, conn.local, conn.fate)


@present
class TailnetStream(SocketStream):
    """An :class:`anyio.abc.SocketStream` carrying one tailnet TCP connection.

    Reads and writes go straight to the connection's descriptor, waiting for
    readiness in the event loop (``anyio.wait_readable``/``wait_writable``:
    no thread). ``extra(SocketAttribute.remote_address)`` is the peer's
    tailnet ``(ip, port)``, ``local_address`` this node's, and ``family`` is
    ``AF_INET`` or ``AF_INET6`` accordingly; ``raw_socket`` is the
    descriptor's socket (an ``AF_UNIX`` socketpair end).

    One task may receive while another sends; two tasks receiving (or
    sending) at once get :class:`anyio.BusyResourceError`. :meth:`aclose`
    from another task wakes a pending receive or send with
    :class:`anyio.ClosedResourceError`.

    As with TCP, :meth:`aclose` delivers what was sent before it, and only
    the peer's close is :class:`anyio.EndOfStream`. A connection aborted
    on the tailnet side raises :class:`anyio.BrokenResourceError` caused
    by a :class:`~tailnet.ConnectionReset` or (the peer stopped answering,
    when receiving) a :class:`~tailnet.ConnectionTimedOut`.
    """

    def __init__(
        self, sock: socket.socket, peer: Address, local: Address, fate: ConnectionFate | None = None
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._peer = peer
        self._local = local
        self._fate = fate
        self._closed = False
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes``; ``anyio.EndOfStream`` after the peer's EOF."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            # As trio's and anyio's own socket streams: try first, and yield
            # only if the data was there already (shielded, so it is not
            # lost); otherwise the wait is the checkpoint. A round of the
            # event loop before every receive was a quarter of the CPU of a
            # round trip on trio (docs/performance.md).
            await anyio.lowlevel.checkpoint_if_cancelled()
            waited = False
            while True:
                try:
                    data = self._sock.recv(max_bytes)
                except BlockingIOError:
                    await anyio.wait_readable(self._sock)
                    waited = True
                    continue
                except OSError as exc:
                    error, cause = self._error(exc, reading=True)
                    raise error from cause
                if not waited:
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                if not data:
                    raise anyio.EndOfStream
                return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item``."""
        with self._send_guard:
            # Yield first: a shielded yield after sending (as for receive)
            # costs more on asyncio than the round it would save.
            await anyio.lowlevel.checkpoint()
            view = memoryview(item)
            while view:
                try:
                    sent = self._sock.send(view)
                except BlockingIOError:
                    await anyio.wait_writable(self._sock)
                    continue
                except OSError as exc:
                    error, cause = self._error(exc, reading=False)
                    raise error from cause
                view = view[sent:]

    async def send_eof(self) -> None:
        """Half-close: the peer reads EOF, and this side can still receive."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            error, cause = self._error(exc, reading=False)
            raise error from cause

    async def abort(self) -> None:
        """Abort the connection, as a TCP socket closed with ``SO_LINGER`` 0 does.

        What was not yet delivered is dropped and the peer gets a reset:
        its reads raise :class:`~tailnet.ConnectionReset` (an error, never
        end-of-file). Then the stream is closed. Use :meth:`aclose` to
        deliver.
        """
        self.reset()
        await self.aclose()

    def reset(self) -> None:
        """Send the peer a reset without closing the stream (the first step of :meth:`abort`)."""
        if self._fate is not None and not self._closed:
            self._fate.abort()

    async def aclose(self) -> None:
        """Close the connection; a receive or send pending in another task ends."""
        if not self._closed:
            self._closed = True
            # Wake waiters (and drop their loop registrations) before the
            # descriptor number is freed for reuse.
            anyio.notify_closing(self._sock)
            self._sock.close()
        await anyio.lowlevel.checkpoint()

    def _error(self, exc: OSError, *, reading: bool) -> tuple[Exception, BaseException]:
        """The anyio exception for an error of the descriptor, and its cause.

        An abort is :class:`anyio.BrokenResourceError` caused by a
        :class:`~tailnet.ConnectionReset` or
        :class:`~tailnet.ConnectionTimedOut` saying why (as the sync
        socket raises them).
        """
        if self._closed or exc.errno in _CLOSED_ERRNOS:
            return anyio.ClosedResourceError(), exc
        if self._fate is not None and isinstance(exc, ConnectionResetError | BrokenPipeError):
            return anyio.BrokenResourceError(), self._fate.error(exc, reading=reading)
        return anyio.BrokenResourceError(), exc

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The socket attributes, with tailnet addresses in place of the socketpair's."""
        version = ipaddress.ip_address(self._peer[0]).version
        return {
            SocketAttribute.raw_socket: lambda: self._sock,
            SocketAttribute.family: lambda: socket.AF_INET if version == 4 else socket.AF_INET6,
            SocketAttribute.remote_address: lambda: self._peer,
            SocketAttribute.remote_port: lambda: self._peer[1],
            SocketAttribute.local_address: lambda: self._local,
            SocketAttribute.local_port: lambda: self._local[1],
        }

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{qualified_name(self)} local={self._local} peer={self._peer}{state}>"
