"""Where a node keeps its state: the :class:`StateStore` protocol and the thread that serves it.

A node given ``store=<a StateStore>`` asks for its state over a socket
pair (``tailnet_set_store``): the library sends numbered requests, one
daemon thread per node (:class:`StoreServer`, named
``tailnet-store-<hostname>``) calls the store and sends the replies. Go
never calls into Python, and Python never waits inside Go: the library
waits for each reply for at most the store's timeout, and a failure or a
late answer is an error on the node (:class:`~tailnet.StateStoreError`),
never a hang. The frame codec here is pure; the format is in
go/tailscale.h (``tailnet_set_store``).
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
from typing import Protocol, runtime_checkable

from ._exceptions import ConfigurationError
from ._logs import LOGGER
from ._public import present

__all__ = [
    "DEFAULT_STORE_TIMEOUT",
    "MEMORY",
    "StateStore",
    "StoreServer",
    "check_store",
    "decode_request",
    "encode_reply",
    "store_timeout",
]

#: ``Server(store=MEMORY)``: the node's state lives in memory only.
MEMORY = "mem"

#: How long, in seconds, the node waits for each call of a store without
#: a ``timeout`` attribute.
DEFAULT_STORE_TIMEOUT = 10.0

_HEAD = struct.Struct(">IQ")  # length of the rest, request number
_KEY_LEN = struct.Struct(">H")
_OK, _MISSING, _FAILED = 0, 1, 2
#: Longest frame accepted from the library (the Go side's limit, plus headers).
_MAX_FRAME = (64 << 20) + (1 << 16) + 16


@runtime_checkable
class StateStore(Protocol):
    """Where a node keeps its state (keys, identity, preferences): bytes by key.

    Pass one as ``Server(store=...)``; see docs/state.md. Both methods are
    called on the node's own thread (``tailnet-store-<hostname>``), one
    call at a time, while the node starts and whenever its state changes
    (login, key renewal), until it closes. They are plain blocking
    functions: do the I/O there, not on an event loop. Do not call the
    node's own methods from them.

    An exception, or a call that takes longer than the timeout (the
    store's ``timeout`` attribute in seconds if it has one, else 10),
    fails that read or write: when the node starts, that is a
    :class:`~tailnet.StateStoreError`; later, a WARNING on the ``tailnet``
    logger. A call that timed out still runs to its end on that thread,
    and the next waits for it.
    """

    def read(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None if there is none."""
        ...

    def write(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (replacing any), durably before returning."""
        ...


present(StateStore)


def check_store(store: object) -> StateStore | str:
    """``store`` if it is ``"mem"`` or has ``read`` and ``write`` methods, else a typed error."""
    if isinstance(store, str):
        if store != MEMORY:
            raise ConfigurationError(f"store must be {MEMORY!r} or a StateStore, not {store!r}")
        return store
    if not isinstance(store, StateStore) or not (callable(store.read) and callable(store.write)):
        raise TypeError(
            f"store must be 'mem' or have read(key) and write(key, value) methods, not {type(store).__name__}"
        )
    store_timeout(store)  # checked now, not when the node starts
    return store


def store_timeout(store: StateStore) -> float:
    """The store's ``timeout`` attribute (seconds), or :data:`DEFAULT_STORE_TIMEOUT`."""
    timeout = getattr(store, "timeout", DEFAULT_STORE_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"the store's timeout must be a number of seconds, not {type(timeout).__name__}")
    if not 0 < timeout < math.inf:
        raise ConfigurationError(f"the store's timeout must be a positive number of seconds, not {timeout}")
    return float(timeout)


def decode_request(body: bytes) -> tuple[str, str, bytes]:
    """A request frame's body (after the length): op ("R" or "W"), key and value."""
    if len(body) < 11:
        raise ValueError("short state store request")
    op = chr(body[8])
    (key_len,) = _KEY_LEN.unpack_from(body, 9)
    key = body[11 : 11 + key_len]
    if len(key) != key_len or op not in "RW":
        raise ValueError("malformed state store request")
    return op, key.decode("utf-8", "surrogateescape"), body[11 + key_len :]


def encode_reply(number: int, status: int, payload: bytes = b"") -> bytes:
    """The reply frame to request ``number``."""
    return _HEAD.pack(8 + 1 + len(payload), number) + bytes([status]) + payload


def _answer(store: StateStore, hostname: str, body: bytes) -> bytes:
    """Call the store for one request; its reply frame."""
    (number,) = struct.unpack_from(">Q", body)
    op, key, value = decode_request(body)
    try:
        if op == "R":
            found = store.read(key)
            if found is None:
                return encode_reply(number, _MISSING)
            if not isinstance(found, bytes | bytearray | memoryview):
                raise TypeError(f"read() returned {type(found).__name__}, not bytes or None")
            return encode_reply(number, _OK, bytes(found))
        store.write(key, value)
        return encode_reply(number, _OK)
    except Exception as exc:  # noqa: BLE001 - the user's store: any failure is an error reply
        verb = "read" if op == "R" else "write"
        LOGGER.warning("[%s] the state store failed to %s %r", hostname, verb, key, exc_info=True)
        return encode_reply(number, _FAILED, f"{type(exc).__name__}: {exc}".encode(errors="replace"))


class StoreServer:
    """The thread that serves one node's :class:`StateStore` to the library."""

    def __init__(self, store: StateStore, hostname: str) -> None:
        self.store = store
        self.hostname = hostname
        self.timeout = store_timeout(store)
        self._ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._thread = threading.Thread(target=self._serve, name=f"tailnet-store-{hostname}", daemon=True)

    def start(self) -> None:
        """Start serving; close :attr:`theirs` once the library holds its copy."""
        self._thread.start()

    def _serve(self) -> None:
        with self._ours as sock:
            while (body := _read_frame(sock)) is not None:
                try:
                    reply = _answer(self.store, self.hostname, body)
                except ValueError:  # a malformed request: the library is not talking to us
                    return
                try:
                    sock.sendall(reply)
                except OSError:
                    return

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving (the library has closed its end, or never took it).

        Waits at most ``timeout`` for a store call in progress; a store
        that hangs keeps its daemon thread, which ends with the process.
        """
        self.theirs.close()
        with contextlib.suppress(OSError):
            self._ours.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout)


def _read_frame(sock: socket.socket) -> bytes | None:
    """One frame's body from the library; None at end-of-file or on a broken stream."""
    head = _recv_exactly(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if not 11 <= length <= _MAX_FRAME:
        return None
    return _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
