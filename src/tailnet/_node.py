"""The blocking core both facades share: a node, its operations, listeners and connections.

Nothing here waits. Calls that block in Go (up, dial, whois, close, ...)
return an :class:`Operation` whose wait descriptor becomes readable when
it is done: the sync facade polls it (so Ctrl-C works), the async facade
awaits it in the event loop (so cancellation works), both with the helpers
of :mod:`tailnet._waiting_sync` and :mod:`tailnet._waiting_async`.
Accepting reads the listener's descriptor without blocking; again each
facade does its own waiting. Every call into the library goes through
:mod:`tailnet._binding`.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from ._addresses import Address, IPAddress
from ._binding import calls, formats
from ._config import ServerConfig, claim_state_dir, prepare_state_dir, release_state_dir
from ._datagram import PacketCore
from ._exceptions import (
    ClosedError,
    ConfigurationError,
    ConnectionReset,
    ConnectionTimedOut,
    InternalError,
    TailnetTimeout,
)
from ._info import (
    BackendState,
    Loopback,
    PeerIdentity,
    PingKind,
    PingResult,
    Status,
    parse_ping,
    parse_status,
    parse_whois,
)
from ._logs import LOGGER, LogPump
from ._state import StateStore, StoreServer
from ._watch import WatchCore

__all__ = [
    "Connection",
    "ConnectionFate",
    "ListenerCore",
    "Node",
    "Operation",
    "Pending",
    "open_nodes",
]

T = TypeVar("T")

#: Largest accept message: "REMOTE LOCAL ID" with two bracketed IPv6 addresses.
_ACCEPT_MSG_SIZE = 256
#: Received connection descriptors must not leak into child processes.
_RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


class Operation:
    """A blocking Go call in flight (see the module docstring)."""

    __slots__ = ("_freed", "_handle", "_lock", "wait_fd")

    def __init__(self, handles: calls.OpHandles) -> None:
        self._handle, self.wait_fd = handles
        self._lock = threading.Lock()
        self._freed = False

    def result(self) -> tuple[int, str]:
        """The descriptor it produced (or -1) and its text; raises its error."""
        return calls.op_result(self._handle)

    def text(self) -> str:
        """The whole text of a finished operation (JSON for whois, status, ping)."""
        return calls.op_text(self._handle)

    def cancel(self) -> None:
        """Ask Go to stop the operation; it then finishes with an error."""
        calls.op_cancel(self._handle)

    def free(self) -> None:
        """Release the operation (cancelling it if it still runs). Idempotent."""
        with self._lock:
            if self._freed:
                return
            self._freed = True
        calls.op_free(self._handle)


@dataclass(frozen=True)
class Pending(Generic[T]):
    """An operation whose JSON text becomes a T once it has finished."""

    op: Operation
    parse: Callable[[str], T]

    def collect(self) -> T:
        """The result of the finished operation; raises its error."""
        self.op.result()
        return self.parse(self.op.text())


def _closed(file: io.IOBase) -> bool:
    """Whether file is closed (or detached: its ``closed`` raises then)."""
    try:
        return bool(file.closed)
    except ValueError:
        return True


class ConnectionFate:
    """Asks the library why one TCP connection was aborted (``tailnet_conn_error``)."""

    __slots__ = ("_node", "_number")

    def __init__(self, node: Node, number: int) -> None:
        self._node = node
        self._number = number

    def error(self, exc: OSError, *, reading: bool) -> OSError:
        """What to raise for ``exc``, an ECONNRESET or EPIPE from the connection's socket.

        A :class:`~tailnet.ConnectionReset` saying why, or, when reading,
        :class:`~tailnet.ConnectionTimedOut` if the peer stopped answering;
        ``exc`` itself if the library does not know of an abort.
        """
        node = self._node
        why = None if node.closed else calls.conn_error(node.handle, self._number)
        if why is None and not node.closed:
            return exc
        if isinstance(why, TailnetTimeout):
            return ConnectionTimedOut(str(why)) if reading else ConnectionReset(str(why))
        if isinstance(why, ConnectionReset):
            return why
        return ConnectionReset(f"the tailnet server {node.config.hostname!r} was closed")

    def track_writer(self, file: io.IOBase, fd: int) -> None:
        """Have the node flush ``file``, a buffered writer over the connection's ``fd``, as it closes."""
        self._node.track_writer(file, fd)

    def abort(self) -> None:
        """Reset the connection: the peer gets a RST, and its socket here reads ECONNRESET.

        Nothing happens if it has ended already or its server is closed.
        """
        node = self._node
        if not node.closed:
            with contextlib.suppress(ClosedError):
                calls.conn_abort(node.handle, self._number)


@dataclass(frozen=True)
class Connection:
    """A connection handed over by the library: its descriptor (now ours) and addresses.

    ``fate`` is set for TCP connections (the library numbers them).
    """

    fd: int
    remote: Address
    local: Address
    fate: ConnectionFate | None = None


class ListenerCore:
    """A tailnet listener: a handle plus the SOCK_SEQPACKET socket connections arrive on."""

    __slots__ = ("_closed", "_handle", "_node", "address", "sock")

    def __init__(self, node: Node, handle: int, fd: int, address: str) -> None:
        self._node = node
        self._handle = handle
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fd)
        self.sock.setblocking(False)
        self.address = address
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def receive(self) -> Connection:
        """Take one accepted connection; BlockingIOError if none is queued.

        Raises :class:`ClosedError` once the listener is closed.
        """
        if self._closed:
            raise ClosedError("the listener is closed")
        try:
            msg, fds, flags, _ = socket.recv_fds(self.sock, _ACCEPT_MSG_SIZE, 1, _RECV_FLAGS)
        except BlockingIOError:
            raise
        except OSError as exc:
            raise ClosedError(f"the listener is closed ({exc.strerror})") from exc
        if not fds:
            if msg:
                raise InternalError(f"listener message without a connection: {msg!r}")
            raise ClosedError("the listener is closed")
        conn_fd, *extra = fds
        if not _RECV_FLAGS:  # no MSG_CMSG_CLOEXEC on this platform
            os.set_inheritable(conn_fd, False)
        for fd in extra:  # never sent; closed rather than leaked
            socket.close(fd)
        if flags & socket.MSG_CTRUNC:
            socket.close(conn_fd)
            raise InternalError("listener message truncated")
        return self._node.connection(conn_fd, msg.decode("ascii", "replace"))

    def close(self) -> None:
        """Stop listening; connections not yet accepted are dropped."""
        if self._closed:
            return
        self._closed = True
        calls.listener_close(self._handle)
        self.sock.close()


#: Nodes not yet closed: closed (gracefully) at interpreter exit if their
#: program forgot to (see tailnet._server_sync). A forked child has none:
#: the Go runtime, and so every node, stayed with the parent.
_open_nodes: set[Node] = set()
os.register_at_fork(after_in_child=_open_nodes.clear)


def open_nodes() -> list[Node]:
    """The nodes of this process not yet closed."""
    return list(_open_nodes)


def _network(network: object) -> bytes:
    if not isinstance(network, str):
        raise TypeError(f"network must be a str such as 'tcp', not {type(network).__name__}")
    return formats.c_string("network", network)


def _address(address: str | tuple[str, int]) -> bytes:
    return formats.c_string("address", formats.format_address(address))


def _whois_address(address: object) -> str:
    """An accepted connection's peer ((ip, port)), "ip:port", or an IP."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(address)
    if isinstance(address, str | tuple):
        return formats.format_address(address)
    raise TypeError(f"address must be (ip, port), 'ip:port' or an IP, not {type(address).__name__}")


class Node:
    """One tailnet node: the server handle and everything it owns."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.handle: int = calls.new()
        self._lock = threading.Lock()
        self._closed = False
        self._writers: weakref.WeakKeyDictionary[io.IOBase, int] = weakref.WeakKeyDictionary()
        self._state_dir: Path | None = None
        self._store_server: StoreServer | None = None
        self._state_dir_ready = False
        try:
            self._configure()
        except BaseException:
            self._release()
            raise
        _open_nodes.add(self)

    def _configure(self) -> None:
        for key, value in self.config.options():
            calls.set_option(self.handle, key, formats.c_string(key, value))
        # The hostname is valid now, so it is safe in a path.
        directory = self.config.resolved_state_dir()
        if directory is not None:
            self._state_dir = claim_state_dir(directory)
            calls.set_option(self.handle, "dir", os.fsencode(self._state_dir))
        if isinstance(self.config.store, StateStore):
            self._serve_store(self.config.store)
        pump = LogPump.get()
        pump.register(self.handle, self.config.hostname)
        calls.set_logfd(self.handle, pump.write_fd, LOGGER.isEnabledFor(logging.DEBUG))

    def _serve_store(self, store: StateStore) -> None:
        """Serve ``store`` to the library on the node's own thread (tailnet._state)."""
        server = StoreServer(store, self.config.hostname)
        self._store_server = server
        calls.set_store(self.handle, server.theirs.fileno(), max(1, round(server.timeout * 1000)))
        server.theirs.close()  # the library holds its own copy
        server.start()

    @property
    def closed(self) -> bool:
        """Whether closing has begun."""
        return self._closed

    @property
    def state_dir(self) -> Path | None:
        """The node's directory; None if it has none (a store and no state_dir)."""
        return self._state_dir

    def check_open(self) -> None:
        """Raise :class:`ClosedError` if the node is closed."""
        if self._closed:
            raise ClosedError(f"tailnet server {self.config.hostname!r} is closed")

    def check_startable(self) -> None:
        """Before a call that starts the node: it is open and its state dir exists and is usable.

        The state dir is created and checked here, once, rather than by the
        constructor, which does no I/O; a failure (:class:`StateDirError`)
        is raised again by the next call, after the user has fixed it.
        """
        self.check_open()
        if not self._state_dir_ready:
            with self._lock:
                if not self._state_dir_ready:
                    if self.state_dir is not None:  # None: a store and no directory
                        prepare_state_dir(self.state_dir)
                    self._state_dir_ready = True

    # ---- Joining

    def start(self) -> None:
        """Start the node without waiting for it to join."""
        self.check_startable()
        calls.start(self.handle)

    def begin_up(self, timeout: float | None) -> Operation:
        """Start joining the tailnet; the operation ends when the node runs."""
        timeout = formats.timeout_ms(timeout)
        self.check_startable()
        return Operation(calls.up(self.handle, timeout))

    def ips(self) -> tuple[IPAddress, ...]:
        """The node's tailnet addresses (empty before it has joined)."""
        self.check_open()
        return formats.parse_ips(calls.ips(self.handle))

    def state(self) -> tuple[BackendState, str | None]:
        """The backend state and pending login URL, as last reported (never blocks)."""
        self.check_open()
        state, url = formats.parse_state(calls.state(self.handle))
        return BackendState(state), url

    def watch(self) -> WatchCore:
        """Start watching the node's events (starts the node if needed)."""
        self.check_startable()
        return WatchCore(calls.watch(self.handle))

    # ---- Connections

    def begin_dial(self, network: str, address: str | tuple[str, int], timeout: float | None) -> Operation:
        """Start a dial; the operation yields a descriptor and text for :meth:`connection`."""
        args = _network(network), _address(address), formats.timeout_ms(timeout)
        self.check_startable()
        return Operation(calls.dial(self.handle, *args))

    def connection(self, fd: int, text: str) -> Connection:
        """The connection the library handed over as ``fd`` with its "REMOTE LOCAL [ID]" text.

        Closes ``fd`` if the text is malformed.
        """
        try:
            remote, local, number = formats.parse_connection(text)
        except ValueError:
            socket.close(fd)
            raise InternalError(f"unexpected connection text {text!r}") from None
        return Connection(fd, remote, local, None if number is None else ConnectionFate(self, number))

    def connection_error(self, number: int) -> Exception | None:
        """Why connection ``number`` was aborted (see :class:`ConnectionFate`), or None."""
        return calls.conn_error(self.handle, number)

    def listen(self, network: str, address: str | tuple[str, int]) -> ListenerCore:
        """Listen on the node: ":port" or "ip:port"."""
        args = _network(network), _address(address)
        self.check_startable()
        return ListenerCore(self, *calls.listen(self.handle, *args))

    def listen_packet(self, network: str, address: str | tuple[str, int]) -> PacketCore:
        """Open a UDP socket on the node: ":port" or "ip:port"."""
        args = _network(network), _address(address)
        self.check_startable()
        return PacketCore(*calls.listen_packet(self.handle, *args))

    def begin_listen_tls(
        self, network: str, address: str | tuple[str, int], timeout: float | None
    ) -> Operation:
        """Start a TLS listener (up, checks, certificate fetch); see ``tailnet_listen_tls``."""
        args = _network(network), _address(address), formats.timeout_ms(timeout)
        self.check_startable()
        return Operation(calls.listen_tls(self.handle, *args))

    def begin_listen_funnel(
        self, network: str, address: str | tuple[str, int], funnel_only: bool, timeout: float | None
    ) -> Operation:
        """Start a Funnel listener; see ``tailnet_listen_funnel``."""
        if not isinstance(funnel_only, bool):
            raise TypeError(f"funnel_only must be a bool, not {type(funnel_only).__name__}")
        net, addr, ms = _network(network), _address(address), formats.timeout_ms(timeout)
        self.check_startable()
        return Operation(calls.listen_funnel(self.handle, net, addr, funnel_only, ms))

    def listener(self, fd: int, text: str) -> ListenerCore:
        """The listener a TLS or Funnel listen operation produced: its descriptor and "HANDLE BOUND"."""
        try:
            handle, bound = formats.parse_listener(text)
        except InternalError:
            socket.close(fd)
            raise
        return ListenerCore(self, handle, fd, bound)

    def cert_domains(self) -> tuple[str, ...]:
        """The domains the node can get TLS certificates for (empty before it runs)."""
        self.check_open()
        return formats.parse_domains(calls.cert_domains(self.handle))

    def loopback(self) -> Loopback:
        """Start the node's loopback server (once) and describe it."""
        self.check_startable()
        address, proxy, api = calls.loopback(self.handle)
        return Loopback(formats.parse_hostport(address), proxy, api)

    # ---- Node information

    def begin_whois(
        self, address: str | tuple[str, int] | IPAddress, timeout: float | None
    ) -> Pending[PeerIdentity]:
        """Start a whois of ``address``."""
        args = formats.c_string("address", _whois_address(address)), formats.timeout_ms(timeout)
        self.check_startable()
        return Pending(Operation(calls.whois(self.handle, *args)), parse_whois)

    def begin_status(self, timeout: float | None) -> Pending[Status]:
        """Start reading the node's status."""
        ms = formats.timeout_ms(timeout)
        self.check_startable()
        return Pending(Operation(calls.status(self.handle, ms)), parse_status)

    def begin_ping(
        self, peer: str | IPAddress, kind: PingKind | str, timeout: float | None
    ) -> Pending[PingResult]:
        """Start one ping of ``peer`` (a tailnet IP or a peer's name)."""
        if not isinstance(peer, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise TypeError(f"peer must be a name or tailnet IP, not {type(peer).__name__}")
        try:
            kind = PingKind(kind)
        except ValueError:
            choices = ", ".join(repr(k.value) for k in PingKind)
            raise ConfigurationError(f"ping kind must be one of {choices}, not {kind!r}") from None
        args = formats.c_string("peer", str(peer)), kind.value.encode(), formats.timeout_ms(timeout)
        self.check_startable()
        return Pending(Operation(calls.ping(self.handle, *args)), parse_ping)

    # ---- Closing

    def begin_close(self) -> Operation | None:
        """Start closing the node (``tailnet_shutdown``); None if it was closed already.

        Its connections deliver what was written to them for up to the
        configured linger time, then the rest are aborted. Wait for the
        operation, then call :meth:`finish_close`; freeing it before it is
        done cuts the linger short.
        """
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        _open_nodes.discard(self)
        try:
            return Operation(calls.shutdown(self.handle, formats.timeout_ms(self.config.linger)))
        except BaseException:
            self._release()
            raise

    def track_writer(self, file: io.IOBase, fd: int) -> None:
        """Remember a ``makefile`` writer of one of the node's connections (see ``close_nodes``)."""
        with self._lock:
            self._writers[file] = fd

    def take_writers(self) -> list[tuple[io.IOBase, int]]:
        """The ``makefile`` writers still open that :meth:`track_writer` remembered, forgetting them."""
        with self._lock:
            writers = list(self._writers.items())
            self._writers.clear()
        return [(file, fd) for file, fd in writers if not _closed(file)]

    def finish_close(self, op: Operation, *, completed: bool) -> None:
        """Collect a close that :meth:`begin_close` started, and release the node.

        ``completed``: the operation finished (its wait descriptor became
        readable); if not (the wait was interrupted), the linger is cut
        short. Logs one WARNING if the linger time ran out with
        connections still delivering.
        """
        try:
            if completed:
                conns, cut = formats.parse_close_result(op.result()[1])
                if conns:
                    LOGGER.warning(
                        "[%s] closed with %d connection(s) still delivering after the linger time "
                        "(%g s): aborted, %d byte(s) written to them never acknowledged by the peer",
                        self.config.hostname,
                        conns,
                        self.config.linger,
                        cut,
                    )
        finally:
            op.free()
            self._release()

    def _release(self) -> None:
        calls.free(self.handle)  # closes first
        LogPump.get().unregister(self.handle)
        if self._store_server is not None:
            self._store_server.stop()  # after the library closed its end
        if self._state_dir is not None:
            release_state_dir(self._state_dir)

    def __repr__(self) -> str:
        return f"Node(hostname={self.config.hostname!r}, closed={self._closed})"
