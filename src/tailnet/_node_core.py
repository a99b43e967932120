"""The blocking core of node information: whois, status, ping, state, watching.

Like :mod:`tailnet._core` (whose :class:`~tailnet._core.Node` these
functions extend), nothing here waits: whois, status and ping return a
:class:`Pending` (an operation plus the parser of its JSON) that each facade
waits for in its own way, and :class:`WatchCore` reads events without
blocking from the descriptor the library writes them to.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._addresses import IPAddress, format_address
from ._core import Node, Operation, c_string, read_text, timeout_ms
from ._errors import ErrorBuffer, raise_for_code
from ._exceptions import ClosedError, ConfigurationError
from ._library import ffi, lib
from ._node_info import (
    BackendState,
    PeerIdentity,
    PingKind,
    PingResult,
    StateChanged,
    Status,
    WatchEvent,
    parse_event,
    parse_ping,
    parse_status,
    parse_whois,
)

__all__ = [
    "PING_TIMEOUT",
    "RUNNING_EVENT",
    "RUNNING_EVENT_GRACE",
    "Pending",
    "WatchCore",
    "begin_ping",
    "begin_status",
    "begin_whois",
    "node_state",
    "open_watch",
]

T = TypeVar("T")

#: Default deadline of a ping, in seconds: an unanswered disco ping never
#: completes by itself.
PING_TIMEOUT = 10.0

#: The event ``up(on_event=...)`` relays events until.
RUNNING_EVENT = StateChanged(BackendState.RUNNING)

#: Once ``up`` has succeeded, how long ``up(on_event=...)`` waits for its
#: watch to report RUNNING too. Both read the node's events independently,
#: so the watch's copy can arrive a moment later; this bound only guards
#: against a watch that stopped.
RUNNING_EVENT_GRACE = 10.0


@dataclass(frozen=True)
class Pending(Generic[T]):
    """An operation whose JSON text becomes a T once it has finished."""

    op: Operation
    parse: Callable[[str], T]

    def collect(self) -> T:
        """The result of the finished operation; raises its error."""
        self.op.result()
        return self.parse(self.op.text())


def _whois_address(address: object) -> str:
    """An accepted connection's peer ((ip, port)), "ip:port", or an IP."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(address)
    if isinstance(address, str | tuple):
        return format_address(address)
    raise TypeError(f"address must be (ip, port), 'ip:port' or an IP, not {type(address).__name__}")


def begin_whois(
    node: Node, address: str | tuple[str, int] | IPAddress, timeout: float | None
) -> Pending[PeerIdentity]:
    """Start a whois of ``address``."""
    addr = _whois_address(address)
    op = node._begin(lib().tailnet_whois, c_string("address", addr), timeout_ms(timeout))
    return Pending(op, parse_whois)


def begin_status(node: Node, timeout: float | None) -> Pending[Status]:
    """Start reading the node's status."""
    return Pending(node._begin(lib().tailnet_status, timeout_ms(timeout)), parse_status)


def begin_ping(
    node: Node, peer: str | IPAddress, kind: PingKind | str, timeout: float | None
) -> Pending[PingResult]:
    """Start one ping of ``peer`` (a tailnet IP or a peer's name)."""
    if not isinstance(peer, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise TypeError(f"peer must be a name or tailnet IP, not {type(peer).__name__}")
    try:
        kind = PingKind(kind)
    except ValueError:
        choices = ", ".join(repr(k.value) for k in PingKind)
        raise ConfigurationError(f"ping kind must be one of {choices}, not {kind!r}") from None
    call = lib().tailnet_ping
    op = node._begin(call, c_string("peer", str(peer)), kind.value.encode(), timeout_ms(timeout))
    return Pending(op, parse_ping)


def node_state(node: Node) -> tuple[BackendState, str | None]:
    """The backend state and pending login URL, as last reported (never blocks)."""
    node._check_open()

    def call(buf: Any, size: int, needed: Any) -> int:
        err = ErrorBuffer()
        raise_for_code(lib().tailnet_state(node._handle, buf, size, needed, err.buf, err.size), err.message())
        return 0

    state, _, url = read_text(call, 512).partition(" ")
    return BackendState(state), url or None


def open_watch(node: Node) -> WatchCore:
    """Start watching the node's events (starts the node if needed)."""
    node._check_open()
    fd, err = ffi.new("int *"), ErrorBuffer()
    raise_for_code(lib().tailnet_watch(node._handle, fd, err.buf, err.size), err.message())
    return WatchCore(fd[0])


class WatchCore:
    """The descriptor the library writes a node's events to, one JSON line each."""

    __slots__ = ("_buffer", "_closed", "_ended", "sock")

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fd)
        self.sock.setblocking(False)
        self._buffer = b""
        self._ended = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def ended(self) -> bool:
        """Whether the library has ended the stream (its server closed)."""
        return self._ended

    def receive(self) -> WatchEvent:
        """The next event; BlockingIOError if none has arrived.

        Raises :class:`ClosedError` once the stream has ended (the server
        closed) or this watcher was closed.
        """
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                return parse_event(line)
            if self._closed:
                raise ClosedError("the watcher is closed")
            if self._ended:
                raise ClosedError("the tailnet server is closed")
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                raise
            except OSError as exc:
                raise ClosedError(f"the watcher is closed ({exc.strerror})") from exc
            if not chunk:
                self._ended = True
            self._buffer += chunk

    def ready(self) -> list[WatchEvent]:
        """Every event that has already arrived."""
        events: list[WatchEvent] = []
        while True:
            try:
                events.append(self.receive())
            except (BlockingIOError, ClosedError):
                return events

    def close(self) -> None:
        """Stop watching; a receive waiting in another thread wakes up. Idempotent."""
        self._closed = True
        with contextlib.suppress(OSError):  # shutdown wakes every poll on this socket
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
