"""The synchronous UDP sockets: :class:`DatagramSocket` and :class:`TailnetDatagramSocket`."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from typing import Any

from ._addresses import Address
from ._binding import formats
from ._datagram import CREDENTIALS_SPACE, PacketCore, check_not_end, check_payload
from ._exceptions import ConfigurationError
from ._public import present, qualified_name
from ._stream_sync import TailnetAddressedSocket
from ._waiting_sync import retry

__all__ = ["DatagramSocket", "TailnetDatagramSocket"]


@present
class DatagramSocket:
    """A UDP socket on the tailnet, bound to this node; returned by ``Server.listen_packet``.

    Like an unconnected :class:`socket.socket` of type ``SOCK_DGRAM``:
    :meth:`sendto` sends one datagram to a tailnet ``(ip, port)`` and
    :meth:`recvfrom` returns one datagram with its sender's tailnet
    address. Boundaries are kept: each datagram arrives whole and apart.
    Blocking, with an optional timeout (:meth:`settimeout`).
    """

    def __init__(self, core: PacketCore) -> None:
        self._core = core
        self._timeout: float | None = None

    @property
    def addresses(self) -> tuple[Address, ...]:
        """Every tailnet ``(ip, port)`` the socket is bound to (IPv4 first)."""
        return self._core.addresses

    def getsockname(self) -> Address:
        """The first bound tailnet ``(ip, port)`` (IPv4 if bound); see :attr:`addresses`."""
        return self._core.addresses[0]

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._core.closed

    def settimeout(self, timeout: float | None) -> None:
        """Seconds :meth:`recvfrom` and :meth:`sendto` may wait (None: forever)."""
        formats.timeout_ms(timeout)  # validate
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        """The timeout set with :meth:`settimeout`."""
        return self._timeout

    def sendto(self, data: bytes | bytearray | memoryview, address: tuple[str, int] | str) -> int:
        """Send ``data`` as one datagram to ``address``, a tailnet ``(ip, port)``; returns its size.

        Raises :class:`~tailnet.DatagramTooLarge` beyond the tailnet's limit
        (``tailnet.MAX_DATAGRAM`` over IPv4, ``tailnet.MAX_DATAGRAM6`` over
        IPv6), :class:`~tailnet.ConfigurationError` for an address that is
        not an IP of a family this socket has, and
        :class:`~tailnet.ClosedError` once the socket or server is closed.
        """
        core = self._core
        return retry(lambda: core.send(data, address), core.sock, self._timeout, "sendto", writable=True)

    def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Wait for one datagram; returns ``(data, (ip, port))`` of its sender.

        As with a socket, a datagram longer than ``bufsize`` is cut to it.
        Raises :class:`~tailnet.TailnetTimeout` after the timeout and
        :class:`~tailnet.ClosedError` once the socket or server is closed
        (also while waiting, e.g. when another thread closes it).
        """
        if isinstance(bufsize, bool) or not isinstance(bufsize, int):
            raise TypeError(f"bufsize must be an int, not {type(bufsize).__name__}")
        if bufsize < 0:
            raise ConfigurationError(f"bufsize must be >= 0, not {bufsize}")
        data, sender = retry(self._core.receive, self._core.sock, self._timeout, "recvfrom")
        return data[:bufsize], sender

    def fileno(self) -> int:
        """A descriptor that is readable when :meth:`recvfrom` will not block (selectors)."""
        return self._core.sock.fileno()

    def close(self) -> None:
        """Close the socket; its port is free at once. Idempotent."""
        self._core.close()

    def __enter__(self) -> DatagramSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        bound = ",".join(formats.format_address(a) for a in self.addresses)
        return f"<{qualified_name(self)} {bound} {state}>"


@present
class TailnetDatagramSocket(TailnetAddressedSocket):
    """A connected UDP socket on the tailnet: a real :class:`socket.socket`.

    Returned by ``Server.dial("udp", ...)``. Each ``send`` is one datagram
    to the peer and each ``recv`` returns one datagram from it, boundaries
    kept (underneath it is an ``AF_UNIX SOCK_SEQPACKET`` socket that tailnet
    bridges to the tailnet, so it works with ``selectors`` and timeouts).
    :meth:`getpeername` and :meth:`getsockname` report tailnet addresses.

    Beyond a plain socket: sending more than the tailnet carries raises
    :class:`~tailnet.DatagramTooLarge`; receiving after the server has
    closed raises :class:`~tailnet.ClosedError` (a received ``b""`` is an
    empty datagram); and :meth:`close` shuts the socket down first, so a
    ``recv`` blocked in another thread returns.
    """

    __slots__ = ()
    descriptor_type = socket.SOCK_SEQPACKET

    def _check_size(self, data: object) -> None:
        check_payload(data, ipaddress.ip_address(self.getpeername()[0]))

    def send(self, data: Any, flags: int = 0, /) -> int:
        """Send one datagram to the peer; DatagramTooLarge beyond the tailnet's limit."""
        self._check_size(data)
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        """Send one datagram to the peer (as :meth:`send`)."""
        self._check_size(data)
        super().sendall(data, flags)

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """One datagram from the peer (cut to ``bufsize``); ClosedError once the server closed."""
        data, ancdata, _, _ = self.recvmsg(bufsize, CREDENTIALS_SPACE, flags)
        check_not_end(len(data), ancdata)
        return data

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Address]:
        """As :meth:`recv`, with the peer's tailnet address."""
        return self.recv(bufsize, flags), self.getpeername()

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        """As :meth:`recv`, into ``buffer``; returns the number of bytes."""
        view = memoryview(buffer).cast("B")
        if nbytes:
            view = view[:nbytes]
        n, ancdata, _, _ = self.recvmsg_into([view], CREDENTIALS_SPACE, flags)
        check_not_end(n, ancdata)
        return n

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> tuple[int, Address]:
        """As :meth:`recv_into`, with the peer's tailnet address."""
        return self.recv_into(buffer, nbytes, flags), self.getpeername()

    def close(self) -> None:
        """Shut the socket down (waking a blocked ``recv``) and close it."""
        if hasattr(self, "_tailnet_peer") and self.fileno() >= 0:
            with contextlib.suppress(OSError):
                self.shutdown(socket.SHUT_RDWR)
        super().close()
