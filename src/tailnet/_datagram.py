"""UDP: what the sync and async datagram sockets share.

The library hands over each UDP socket as an ``AF_UNIX SOCK_SEQPACKET``
descriptor on which one message is one datagram, so datagram boundaries
survive in both directions (see ``go/tailscale.h``):

- a *connected* socket (``dial("udp", ...)``) carries bare payloads; an
  empty datagram is an empty message, and end-of-file (the server closed)
  is told apart from one by the credentials the kernel attaches to every
  message on that descriptor (``SO_PASSCRED``, set by the library);
- a *packet* socket (``listen_packet``) prefixes each payload with an
  address header: one byte n (4 or 16), the n-byte IP address, the port
  as two bytes big-endian. Read: the datagram's source. Written: its
  destination.

Nothing here waits: sends and receives raise :class:`BlockingIOError`
and each facade does its own waiting, as for listeners.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal

from ._addresses import Address, IPAddress
from ._binding import calls, formats
from ._exceptions import ClosedError, ConfigurationError, DatagramTooLarge

__all__ = [
    "CREDENTIALS_SPACE",
    "DATAGRAM_NETWORKS",
    "MAX_DATAGRAM",
    "MAX_DATAGRAM6",
    "DatagramNetwork",
    "PacketCore",
    "StreamNetwork",
    "check_not_end",
    "check_payload",
    "family_of",
    "is_datagram_network",
    "parse_destination",
    "receive_connected_nowait",
    "send_nowait",
]

#: Largest UDP payload over IPv4 (the IPv4 UDP maximum; above 1252 bytes
#: the datagram is IP-fragmented to the tailnet MTU). ``TAILNET_MAX_DATAGRAM``.
MAX_DATAGRAM = 65507
#: Largest UDP payload over IPv6: what fits the 1280-byte tailnet MTU.
#: Tailscale v1.102.5's netstack loses fragmented IPv6 packets, so a larger
#: IPv6 datagram would vanish on the way. ``TAILNET_MAX_DATAGRAM6``.
MAX_DATAGRAM6 = 1232
#: The networks that make datagram sockets.
DATAGRAM_NETWORKS = frozenset({"udp", "udp4", "udp6"})
#: For typing ``dial``: which networks give streams, which datagram sockets.
StreamNetwork = Literal["tcp", "tcp4", "tcp6"]
DatagramNetwork = Literal["udp", "udp4", "udp6"]

_RECEIVE_SIZE = formats.HEADER_MAX + MAX_DATAGRAM
#: Ancillary buffer for a connected socket's ``recvmsg``: room for the
#: SCM_CREDENTIALS message (struct ucred: three 32-bit fields).
CREDENTIALS_SPACE = socket.CMSG_SPACE(12)
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
#: The flags of every non-blocking send, as a plain int: OR-ing the enum
#: members cost microseconds per datagram.
_SEND_NOWAIT = int(socket.MSG_DONTWAIT | _SEND_FLAGS)
_SERVER_CLOSED = "the tailnet server closed this socket"


def is_datagram_network(network: object) -> bool:
    """Whether ``network`` names UDP ("udp", "udp4", "udp6")."""
    return isinstance(network, str) and network in DATAGRAM_NETWORKS


def family_of(ip: str) -> socket.AddressFamily:
    """``AF_INET`` or ``AF_INET6`` for an IP address."""
    return socket.AF_INET if ipaddress.ip_address(ip).version == 4 else socket.AF_INET6


def _limit(ip: IPAddress) -> int:
    return MAX_DATAGRAM if ip.version == 4 else MAX_DATAGRAM6


def check_payload(data: object, ip: IPAddress) -> int:
    """The size of ``data`` (a bytes-like object) if ``ip`` can be sent that much.

    Raises :class:`TypeError` for anything but bytes-like data and
    :class:`DatagramTooLarge` beyond the limit of ``ip``'s family.
    """
    try:
        size = memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a datagram must be bytes-like, not {type(data).__name__}") from None
    limit = _limit(ip)
    if size > limit:
        why = (
            ""
            if ip.version == 4
            else " (IPv6 datagrams must fit the tailnet MTU unfragmented: tsnet loses IPv6 fragments)"
        )
        raise DatagramTooLarge(
            f"a datagram of {size} bytes is longer than the {limit} bytes IPv{ip.version} "
            f"carries on the tailnet{why}"
        )
    return size


def parse_destination(address: object) -> tuple[IPAddress, int]:
    """A destination ``(ip, port)`` or ``"ip:port"`` as an IP and a port (1-65535).

    The host must be an IP address: names are resolved by ``dial``, not per datagram.
    """
    if isinstance(address, str):
        host, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ConfigurationError(f"address {address!r} must be 'ip:port'")
        host, port = host.removeprefix("[").removesuffix("]"), int(port_text)
    elif isinstance(address, tuple) and len(address) == 2:
        host, port = address
        if isinstance(host, IPAddress):
            host = str(host)
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"address must be (ip: str, port: int), not {address!r}")
    else:
        raise TypeError(f"address must be (ip, port) or 'ip:port', not {type(address).__name__}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigurationError(
            f"{host!r} is not an IP address: send datagrams to tailnet IPs "
            "(dial('udp', 'name:port') resolves a name once)"
        ) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"port {port} is out of range 1-65535")
    if ip.is_unspecified:
        raise ConfigurationError(f"cannot send to the unspecified address {ip}")
    return ip, port


def _cache_key(address: object) -> object:
    """``address`` if it may be remembered as an already checked destination, else None.

    Only exact ``str`` and ``(str, int)``: equality must not let ``(ip, True)``
    pass for ``(ip, 1)``.
    """
    if type(address) is str:
        return address
    if type(address) is tuple and len(address) == 2 and type(address[0]) is str and type(address[1]) is int:
        return address
    return None


def check_not_end(size: int, ancdata: list[tuple[int, int, bytes]]) -> None:
    """Raise :class:`ClosedError` if a connected socket's ``recvmsg`` read end-of-file.

    Every datagram, even an empty one, comes with credentials
    (``SO_PASSCRED``); end-of-file, once the server has closed the socket
    (or it was shut down), comes with nothing.
    """
    if not size and not ancdata:
        raise ClosedError(_SERVER_CLOSED)


def receive_connected_nowait(sock: socket.socket) -> bytes:
    """One datagram from a connected socket; BlockingIOError if none is queued."""
    data, ancdata, _, _ = sock.recvmsg(_RECEIVE_SIZE, CREDENTIALS_SPACE, socket.MSG_DONTWAIT)
    check_not_end(len(data), ancdata)
    return data


def send_nowait(sock: socket.socket, message: bytes | bytearray | memoryview) -> None:
    """Send one message; BlockingIOError if the socket buffer is full."""
    sock.send(message, _SEND_NOWAIT)


class PacketCore:
    """A packet socket: its handle, descriptor and bound addresses (module docstring)."""

    __slots__ = ("_closed", "_handle", "_last", "_sources", "addresses", "sock")

    def __init__(self, handle: int, fd: int, bound: str) -> None:
        self._handle = handle
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fd)
        self.sock.setblocking(False)
        self._closed = False
        # The last destination, checked, and its header: a socket usually
        # sends to one peer many times, and parsing its address each time
        # was most of the Python time of a send.
        self._last: tuple[object, IPAddress, bytes] | None = None
        self._sources: dict[bytes, Address] = {}
        #: The bound tailnet addresses, IPv4 first.
        self.addresses: tuple[Address, ...] = formats.parse_addresses(bound)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def destination(self, address: object) -> tuple[IPAddress, int]:
        """Check a destination against the families this socket has bound."""
        ip, port = parse_destination(address)
        if not any(ipaddress.ip_address(host).version == ip.version for host, _ in self.addresses):
            bound = ", ".join(host for host, _ in self.addresses)
            raise ConfigurationError(
                f"cannot send to {ip}: this socket has no IPv{ip.version} address ({bound})"
            )
        return ip, port

    def send(self, data: bytes | bytearray | memoryview, address: object) -> int:
        """Send one datagram; BlockingIOError if the socket buffer is full.

        Raises :class:`ClosedError` once the socket or its server is closed.
        """
        last, key = self._last, _cache_key(address)
        if last is not None and key is not None and last[0] == key:
            _, ip, head = last
        else:
            ip, port = self.destination(address)
            head = formats.encode_header(ip, port)
            if key is not None:
                self._last = (key, ip, head)
        size = check_payload(data, ip)
        self._check_open()
        try:
            send_nowait(self.sock, b"".join((head, data)))
        except BlockingIOError:
            raise
        except OSError as exc:
            raise self._closed_error(exc) from exc
        return size

    def receive(self) -> tuple[bytes, Address]:
        """Take one datagram and its source; BlockingIOError if none is queued.

        Raises :class:`ClosedError` once the socket or its server is closed.
        """
        self._check_open()
        try:
            message = self.sock.recv(_RECEIVE_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            raise
        except OSError as exc:
            raise self._closed_error(exc) from exc
        if not message:  # end-of-file: every datagram has a header
            raise self._closed_error(None)
        return formats.decode_datagram(message, self._sources)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the socket is closed")

    def _closed_error(self, exc: OSError | None) -> ClosedError:
        if self._closed:
            return ClosedError("the socket is closed")
        detail = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
        return ClosedError(_SERVER_CLOSED + detail)

    def close(self) -> None:
        """Close the socket: its ports are free when this returns. Idempotent.

        A receive blocked on the descriptor in another thread wakes up.
        """
        if self._closed:
            return
        self._closed = True
        calls.packet_close(self._handle)  # our end now reads end-of-file
        self.sock.close()
