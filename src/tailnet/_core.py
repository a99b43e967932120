"""The blocking core both facades share: handles, per-call errors, fds.

Nothing here waits. Calls that block in Go (up, dial) return an
:class:`Operation` whose wait descriptor becomes readable when it is done;
the sync facade polls it (so Ctrl-C works), the async facade awaits it in
the event loop (so cancellation works). Accepting reads the listener's
descriptor without blocking; again each facade does its own waiting.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._addresses import Address, IPAddress, format_address, parse_address_pair, parse_ips
from ._config import ServerConfig, claim_state_dir, release_state_dir
from ._datagram import PacketCore
from ._errors import ErrorBuffer, raise_for_code
from ._exceptions import (
    ClosedError,
    ConfigurationError,
    ConnectionReset,
    ConnectionTimedOut,
    InternalError,
)
from ._library import ffi, lib
from ._logs import LOGGER, LogPump

__all__ = [
    "Connection",
    "ConnectionFate",
    "ListenerCore",
    "Node",
    "Operation",
    "c_string",
    "open_nodes",
    "timeout_ms",
]

#: Largest accept message: "REMOTE LOCAL" with two bracketed IPv6 addresses.
_ACCEPT_MSG_SIZE = 256
_TEXT_SIZE = 256
#: Received connection descriptors must not leak into child processes.
_RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


def timeout_ms(timeout: float | None) -> int:
    """A timeout in seconds (None: no limit) as the C API's milliseconds."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ConfigurationError(f"timeout must be >= 0 seconds or None, not {timeout}")
    return -1 if math.isinf(timeout) else math.ceil(timeout * 1000)


def _check_network(network: object) -> str:
    if not isinstance(network, str):
        raise TypeError(f"network must be a str such as 'tcp', not {type(network).__name__}")
    return network


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


def _call(fn: Any, *args: Any) -> None:
    """Call a C function taking (…, errbuf, errlen); raise on error."""
    err = ErrorBuffer()
    raise_for_code(fn(*args, err.buf, err.size), err.message())


def read_text(call: Any, size: int = 16 * 1024) -> str:
    """Text from a C call taking (buf, buflen, needed): retried with a larger buffer if short."""
    needed = ffi.new("size_t *")
    while True:
        buf = ffi.new("char[]", size)
        raise_for_code(call(buf, size, needed), "")
        if needed[0] <= size:
            return str(ffi.string(buf).decode("utf-8", "replace"))
        size = needed[0]


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
        if not node.closed:
            err = ErrorBuffer()
            library = lib()
            code = library.tailnet_conn_error(node._handle, self._number, err.buf, err.size)
            if code == library.TAILNET_OK:
                return exc
            if code == library.TAILNET_ERR_TIMEOUT and reading:
                return ConnectionTimedOut(err.message())
            if code not in (library.TAILNET_ERR_CLOSED, library.TAILNET_ERR_BAD_HANDLE):
                return ConnectionReset(err.message())
        return ConnectionReset(f"the tailnet server {node.config.hostname!r} was closed")


@dataclass(frozen=True)
class Connection:
    """A connection handed over by the library: its descriptor (now ours) and addresses.

    ``fate`` is set for TCP connections (the library numbers them).
    """

    fd: int
    remote: Address
    local: Address
    fate: ConnectionFate | None = None

    @classmethod
    def parse(cls, fd: int, text: str, node: Node | None = None) -> Connection:
        """From a descriptor and the library's "REMOTE LOCAL [ID]" text; closes fd if the text is bad."""
        try:
            addresses, _, number = text.rpartition(" ") if text.count(" ") == 2 else (text, "", "")
            remote, local = parse_address_pair(addresses)
            fate = ConnectionFate(node, int(number)) if node is not None and number else None
        except ValueError:
            socket.close(fd)
            raise InternalError(f"unexpected connection text {text!r}") from None
        return cls(fd, remote, local, fate)


class Operation:
    """A blocking Go call in flight (see the module docstring)."""

    __slots__ = ("_freed", "_handle", "_lock", "wait_fd")

    def __init__(self, handle: int, wait_fd: int) -> None:
        self._handle = handle
        self.wait_fd = wait_fd
        self._lock = threading.Lock()
        self._freed = False

    def result(self) -> tuple[int, str]:
        """The descriptor it produced (or -1) and its text; raises its error."""
        fd = ffi.new("int *")
        text = ffi.new("char[]", _TEXT_SIZE)
        err = ErrorBuffer()
        code = lib().tailnet_op_result(self._handle, fd, text, _TEXT_SIZE, err.buf, err.size)
        raise_for_code(code, err.message())
        return fd[0], ffi.string(text).decode()

    def text(self) -> str:
        """The whole text of a finished operation (JSON for whois, status, ping)."""
        return read_text(lambda buf, size, needed: lib().tailnet_op_text(self._handle, buf, size, needed))

    def cancel(self) -> None:
        """Ask Go to stop the operation; it then finishes with an error."""
        lib().tailnet_op_cancel(self._handle)

    def free(self) -> None:
        """Release the operation (cancelling it if it still runs). Idempotent."""
        with self._lock:
            if self._freed:
                return
            self._freed = True
        lib().tailnet_op_free(self._handle)


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
        return Connection.parse(conn_fd, msg.decode("ascii", "replace"), self._node)

    def close(self) -> None:
        """Stop listening; connections not yet accepted are dropped."""
        if self._closed:
            return
        self._closed = True
        lib().tailnet_listener_close(self._handle)
        self.sock.close()


#: Nodes not yet closed: closed (gracefully) at interpreter exit if their
#: program forgot to (see tailnet._sync). A forked child has none: the Go
#: runtime, and so every node, stayed with the parent.
_open_nodes: set[Node] = set()
os.register_at_fork(after_in_child=_open_nodes.clear)


def open_nodes() -> list[Node]:
    """The nodes of this process not yet closed."""
    return list(_open_nodes)


class Node:
    """One tailnet node: the server handle and everything it owns."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        out = ffi.new("int64_t *")
        _call(lib().tailnet_new, out)
        self._handle: int = out[0]
        self._lock = threading.Lock()
        self._closed = False
        self._state_dir: Path | None = None
        try:
            self._configure()
        except BaseException:
            self._release()
            raise
        _open_nodes.add(self)

    def _configure(self) -> None:
        library = lib()
        for key, value in self.config.options():
            _call(library.tailnet_set, self._handle, key.encode(), c_string(key, value))
        # The hostname is valid now, so it is safe in a path.
        self._state_dir = claim_state_dir(self.config.resolved_state_dir())
        _call(library.tailnet_set, self._handle, b"dir", os.fsencode(self._state_dir))
        pump = LogPump.get()
        pump.register(self._handle, self.config.hostname)
        verbose = int(LOGGER.isEnabledFor(logging.DEBUG))
        _call(library.tailnet_set_logfd, self._handle, pump.write_fd, verbose)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def state_dir(self) -> Path:
        """The node's state directory."""
        assert self._state_dir is not None
        return self._state_dir

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"tailnet server {self.config.hostname!r} is closed")

    def _begin(self, fn: Any, *args: Any) -> Operation:
        self._check_open()
        op, wait_fd = ffi.new("int64_t *"), ffi.new("int *")
        _call(fn, self._handle, *args, op, wait_fd)
        return Operation(op[0], wait_fd[0])

    def start(self) -> None:
        """Start the node without waiting for it to join."""
        self._check_open()
        _call(lib().tailnet_start, self._handle)

    def begin_up(self, timeout: float | None) -> Operation:
        """Start joining the tailnet; the operation ends when the node runs."""
        return self._begin(lib().tailnet_up, timeout_ms(timeout))

    def begin_dial(self, network: str, address: str | tuple[str, int], timeout: float | None) -> Operation:
        """Start a dial; the operation yields the connection's fd and addresses."""
        network = _check_network(network)
        addr = format_address(address)
        return self._begin(
            lib().tailnet_dial, c_string("network", network), c_string("address", addr), timeout_ms(timeout)
        )

    def listen(self, network: str, address: str | tuple[str, int]) -> ListenerCore:
        """Listen on the node: ":port" or "ip:port"."""
        return ListenerCore(self, *self._open_bound(lib().tailnet_listen, network, address))

    def listen_packet(self, network: str, address: str | tuple[str, int]) -> PacketCore:
        """Open a UDP socket on the node: ":port" or "ip:port"."""
        return PacketCore(*self._open_bound(lib().tailnet_listen_packet, network, address))

    def _open_bound(self, fn: Any, network: str, address: str | tuple[str, int]) -> tuple[int, int, str]:
        """Call a C function that binds on the node; its handle, descriptor and bound address."""
        self._check_open()
        net, addr = c_string("network", _check_network(network)), c_string("address", format_address(address))
        handle, fd, bound = ffi.new("int64_t *"), ffi.new("int *"), ffi.new("char[]", _TEXT_SIZE)
        _call(fn, self._handle, net, addr, handle, fd, bound, _TEXT_SIZE)
        return handle[0], fd[0], ffi.string(bound).decode()

    def ips(self) -> tuple[IPAddress, ...]:
        """The node's tailnet addresses (empty before it has joined)."""
        self._check_open()
        buf = ffi.new("char[]", _TEXT_SIZE)
        _call(lib().tailnet_ips, self._handle, buf, _TEXT_SIZE)
        return parse_ips(ffi.string(buf).decode())

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
        op, wait_fd = ffi.new("int64_t *"), ffi.new("int *")
        try:
            _call(lib().tailnet_shutdown, self._handle, timeout_ms(self.config.linger), op, wait_fd)
        except BaseException:
            self._release()
            raise
        return Operation(op[0], wait_fd[0])

    def finish_close(self, op: Operation, *, completed: bool) -> None:
        """Collect a close that :meth:`begin_close` started, and release the node.

        ``completed``: the operation finished (its wait descriptor became
        readable); if not (the wait was interrupted), the linger is cut
        short. Logs one WARNING if the linger time ran out with
        connections still delivering.
        """
        try:
            if completed:
                conns, cut = (int(n) for n in op.result()[1].split())
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
        lib().tailnet_free(self._handle)  # closes first
        LogPump.get().unregister(self._handle)
        if self._state_dir is not None:
            release_state_dir(self._state_dir)

    def __repr__(self) -> str:
        return f"Node(hostname={self.config.hostname!r}, closed={self._closed})"
