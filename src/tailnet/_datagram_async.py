"""The async UDP sockets on anyio: :class:`AsyncDatagramSocket` and :class:`AsyncConnectedDatagramSocket`.

Both wait in the event loop on the socket's own descriptor (no thread).
Closing one (``aclose``) wakes its pending ``receive`` with
:class:`anyio.ClosedResourceError`; when the server closes, pending and
later calls raise :class:`anyio.BrokenResourceError`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

from ._addresses import Address
from ._binding import formats
from ._datagram import PacketCore, check_payload, family_of, receive_connected_nowait, send_nowait
from ._exceptions import ClosedError
from ._public import present, qualified_name
from ._waiting_async import retry

__all__ = ["AsyncConnectedDatagramSocket", "AsyncDatagramSocket"]


@present
class AsyncDatagramSocket(anyio.abc.UDPSocket):
    """A UDP socket on the tailnet; an :class:`anyio.abc.UDPSocket`.

    Returned by ``AsyncServer.listen_packet``. ``receive()`` returns
    ``(data, (ip, port))`` of one datagram; ``send((data, (ip, port)))``
    (or ``sendto(data, ip, port)``) sends one. Boundaries are kept.
    ``extra(SocketAttribute.local_address)`` is the first bound tailnet
    address; :attr:`addresses` has them all.
    """

    def __init__(self, core: PacketCore) -> None:
        self._core = core
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    @property
    def addresses(self) -> tuple[Address, ...]:
        """Every tailnet ``(ip, port)`` the socket is bound to (IPv4 first)."""
        return self._core.addresses

    @property
    def _raw_socket(self) -> socket.socket:
        return self._core.sock

    def _closed(self) -> bool:
        return self._core.closed

    async def receive(self) -> tuple[bytes, Address]:
        """Wait for one datagram; returns ``(data, (ip, port))`` of its sender."""
        with self._receive_guard:
            await anyio.lowlevel.checkpoint()
            return await retry(self._core.receive, self._core.sock, self._closed)

    async def send(self, item: tuple[bytes, tuple[str, int]]) -> None:
        """Send ``(data, (ip, port))`` as one datagram.

        Raises :class:`~tailnet.DatagramTooLarge` beyond the tailnet's limit
        and :class:`~tailnet.ConfigurationError` for a bad address.
        """
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"send takes (data, (ip, port)), not {item!r}")
        data, address = item
        with self._send_guard:
            await anyio.lowlevel.checkpoint()
            await retry(lambda: self._core.send(data, address), self._core.sock, self._closed, writable=True)

    async def aclose(self) -> None:
        """Close the socket; a pending :meth:`receive` raises ClosedResourceError."""
        if not self._core.closed:
            anyio.notify_closing(self._core.sock)
        self._core.close()
        await anyio.lowlevel.checkpoint()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Tailnet addresses in place of the socketpair's."""
        local = self._core.addresses[0]
        return {
            SocketAttribute.family: lambda: family_of(local[0]),
            SocketAttribute.local_address: lambda: local,
            SocketAttribute.local_port: lambda: local[1],
            SocketAttribute.raw_socket: lambda: self._core.sock,
        }

    def __repr__(self) -> str:
        state = "closed" if self._core.closed else "open"
        bound = ",".join(formats.format_address(a) for a in self.addresses)
        return f"<{qualified_name(self)} {bound} {state}>"


@present
class AsyncConnectedDatagramSocket(anyio.abc.ConnectedUDPSocket):
    """A connected UDP socket on the tailnet; an :class:`anyio.abc.ConnectedUDPSocket`.

    Returned by ``AsyncServer.dial("udp", ...)``. ``send(data)`` sends one
    datagram to the peer, ``receive()`` returns one from it (``b""`` is an
    empty datagram). ``extra(SocketAttribute.remote_address)`` is the
    peer's tailnet ``(ip, port)``, ``local_address`` this node's.
    """

    def __init__(self, fd: int, peer: Address, local: Address) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fd)
        self._sock.setblocking(False)
        self._peer = peer
        self._local = local
        self._peer_ip = ipaddress.ip_address(peer[0])
        self._is_closed = False
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    def _closed(self) -> bool:
        return self._is_closed

    def _receive_nowait(self) -> bytes:
        if self._is_closed:
            raise ClosedError("the socket is closed")
        return receive_connected_nowait(self._sock)

    def _send_nowait(self, data: bytes) -> None:
        if self._is_closed:
            raise ClosedError("the socket is closed")
        try:
            send_nowait(self._sock, data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ClosedError("the tailnet server closed this socket") from exc

    async def receive(self) -> bytes:
        """Wait for one datagram from the peer."""
        with self._receive_guard:
            await anyio.lowlevel.checkpoint()
            return await retry(self._receive_nowait, self._sock, self._closed)

    async def send(self, item: bytes) -> None:
        """Send ``item`` as one datagram; DatagramTooLarge beyond the tailnet's limit."""
        check_payload(item, self._peer_ip)
        with self._send_guard:
            await anyio.lowlevel.checkpoint()
            await retry(lambda: self._send_nowait(item), self._sock, self._closed, writable=True)

    async def aclose(self) -> None:
        """Close the socket; a pending :meth:`receive` raises ClosedResourceError."""
        if not self._is_closed:
            self._is_closed = True
            anyio.notify_closing(self._sock)
            self._sock.close()
        await anyio.lowlevel.checkpoint()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Tailnet addresses in place of the socketpair's."""
        return {
            SocketAttribute.family: lambda: family_of(self._peer[0]),
            SocketAttribute.local_address: lambda: self._local,
            SocketAttribute.local_port: lambda: self._local[1],
            SocketAttribute.remote_address: lambda: self._peer,
            SocketAttribute.remote_port: lambda: self._peer[1],
            SocketAttribute.raw_socket: lambda: self._sock,
        }

    def __repr__(self) -> str:
        return f"<{qualified_name(self)} local={self._local} peer={self._peer}>"
