"""The C API's text and byte formats: what tailnet passes in, and parsing what comes back.

Pure functions (no library needed, so they are unit-tested on their own):
the strings and timeouts every call takes, the "REMOTE LOCAL ID" text of a
connection, the "HANDLE BOUND" text of a TLS or Funnel listener, address
lists, the backend state, the result of closing a server, and the
address header of a packet socket's messages. ``go/tailscale.h`` is the
reference for each.
"""

from __future__ import annotations

import ipaddress
import math
import struct

from .._addresses import Address, IPAddress
from .._exceptions import ConfigurationError, InternalError

__all__ = [
    "HEADER_MAX",
    "c_string",
    "decode_datagram",
    "encode_header",
    "format_address",
    "parse_addresses",
    "parse_close_result",
    "parse_connection",
    "parse_domains",
    "parse_hostport",
    "parse_ips",
    "parse_listener",
    "parse_state",
    "seconds",
    "timeout_ms",
]

#: Longest address header of a packet socket message (IPv6: 1 + 16 + 2).
HEADER_MAX = 1 + 16 + 2
_PORT = struct.Struct(">H")
#: How many source headers a cache of :func:`decode_datagram` holds.
_SOURCES_CACHED = 256


def c_string(what: str, value: str) -> bytes:
    """Encode a string for the C API: UTF-8 without NUL (C would cut it there).

    The message names the argument, never its value (it may be a secret).
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        data = value.encode()
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} must be text without unpaired surrogates") from None
    if b"\x00" in data:
        raise ConfigurationError(f"{what} must not contain NUL characters")
    return data


def timeout_ms(timeout: float | None) -> int:
    """A timeout in seconds (None: no limit) as the C API's milliseconds (-1: none)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ConfigurationError(f"timeout must be >= 0 seconds or None, not {timeout}")
    return -1 if math.isinf(timeout) else math.ceil(timeout * 1000)


def seconds(timeout: float | None) -> str:
    """A timeout for a message: "1 s", "0.25 s", "2.5 s" (not 0.9999614329999531 s)."""
    if timeout is None:
        return "no limit"
    if 0 < timeout < 0.001:
        return f"{timeout:.1g} s"
    return f"{round(timeout, 3):g} s"


def format_address(address: str | tuple[str, int]) -> str:
    """A user's dial/listen address ("host:port" or (host, port)) as "host:port"."""
    if isinstance(address, str):
        return address
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"address must be (host: str, port: int), not {address!r}")
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port {port} is out of range 0-65535")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    raise TypeError(f"address must be 'host:port' or (host, port), not {type(address).__name__}")


def parse_hostport(text: str) -> Address:
    """'100.64.0.1:80' or '[fd7a::1]:80' -> (ip, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not an ip:port: {text!r}")
    return host.strip("[]"), int(port)


def parse_connection(text: str) -> tuple[Address, Address, int | None]:
    """A connection's "REMOTE LOCAL ID" text (UDP: "REMOTE LOCAL"): its addresses and number.

    Raises :class:`ValueError` for anything else.
    """
    fields = text.split(" ")
    if len(fields) not in (2, 3):
        raise ValueError(f"not 'REMOTE LOCAL [ID]': {text!r}")
    number = None
    if len(fields) == 3:
        if not fields[2].isdigit():
            raise ValueError(f"not a connection number: {fields[2]!r}")
        number = int(fields[2])
    return parse_hostport(fields[0]), parse_hostport(fields[1]), number


def parse_listener(text: str) -> tuple[int, str]:
    """A TLS or Funnel listener's "HANDLE BOUND" text: its handle and the address it listens on."""
    handle, _, bound = text.partition(" ")
    if not handle.isdigit() or not bound:
        raise InternalError(f"unexpected listener description {text!r}")
    return int(handle), bound


def parse_ips(text: str) -> tuple[IPAddress, ...]:
    """A comma-separated IP list -> ipaddress objects."""
    return tuple(ipaddress.ip_address(ip) for ip in text.split(",") if ip)


def parse_domains(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (cert domains), empty for none."""
    return tuple(name for name in text.split(",") if name)


def parse_addresses(text: str) -> tuple[Address, ...]:
    """A comma-separated list of "ip:port" (a packet socket's bound addresses)."""
    return tuple(parse_hostport(address) for address in text.split(",") if address)


def parse_state(text: str) -> tuple[str, str | None]:
    """The backend state text "STATE [URL]": the state's name and the pending login URL."""
    state, _, url = text.partition(" ")
    return state, url or None


def parse_close_result(text: str) -> tuple[int, int]:
    """A close's "CONNS BYTES": connections the linger time cut, and their unacknowledged bytes."""
    conns, _, cut = text.partition(" ")
    if not conns.isdigit() or not cut.isdigit():
        raise InternalError(f"unexpected close result {text!r}")
    return int(conns), int(cut)


def encode_header(ip: IPAddress, port: int) -> bytes:
    """The address header of a packet socket message to (or from) ``ip``:``port``.

    One byte n (4 or 16), the n bytes of the IP, the port as two bytes big-endian.
    """
    packed = ip.packed
    return b"".join((bytes((len(packed),)), packed, _PORT.pack(port)))


def decode_datagram(message: bytes, sources: dict[bytes, Address] | None = None) -> tuple[bytes, Address]:
    """Split a packet socket message into its payload and source ``(ip, port)``.

    ``sources`` caches decoded headers (a peer sends many datagrams).
    Raises :class:`~tailnet.InternalError` for a malformed header.
    """
    n = message[0] if message else 0
    if n not in (4, 16) or len(message) < 1 + n + 2:
        raise InternalError(f"malformed datagram header {message[:HEADER_MAX]!r}")
    head = message[: 1 + n + 2]
    source = sources.get(head) if sources is not None else None
    if source is None:
        (port,) = _PORT.unpack_from(message, 1 + n)
        source = (str(ipaddress.ip_address(message[1 : 1 + n])), port)
        if sources is not None:
            if len(sources) >= _SOURCES_CACHED:
                sources.clear()
            sources[head] = source
    return message[1 + n + 2 :], source
