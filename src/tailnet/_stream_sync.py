"""The sync socket of a tailnet TCP connection: :class:`TailnetSocket`, a real socket.

Its base, :class:`TailnetAddressedSocket`, is shared with the connected
UDP socket (:mod:`tailnet._datagram_sync`): a socket over a local
descriptor that reports the tailnet addresses of its flow.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ._addresses import Address
from ._public import present, qualified_name

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._node import Connection, ConnectionFate

__all__ = ["MIN_SEND_BUFFER", "TailnetAddressedSocket", "TailnetSocket"]

#: The smallest ``SO_SNDBUF`` a connection's socket takes, the size the
#: library gives it (Linux caps it at ``net.core.wmem_max``, then doubles it): the
#: bridge keeps one byte of the caller's data queued so that an abort
#: reads as a reset, and with less a writer blocked on a full buffer
#: would not be woken (see docs/architecture.md).
MIN_SEND_BUFFER = 256 << 10

_S = TypeVar("_S", bound="TailnetAddressedSocket")


@present
class TailnetAddressedSocket(socket.socket):
    """A :class:`socket.socket` over a local descriptor that carries a tailnet flow.

    The descriptor's own addresses are a socketpair's empty ones, so
    :meth:`getpeername` and :meth:`getsockname` report the tailnet addresses
    the library handed over with it. Subclasses name the descriptor's type.
    """

    __slots__ = ("_tailnet_local", "_tailnet_peer")
    _tailnet_local: Address
    _tailnet_peer: Address
    #: The ``AF_UNIX`` socket type of the descriptor the library hands over.
    descriptor_type: ClassVar[socket.SocketKind] = socket.SOCK_STREAM

    @classmethod
    def adopt(cls: type[_S], fd: int, peer: Address, local: Address) -> _S:
        """Wrap a descriptor handed over by the library (takes ownership)."""
        sock = cls(socket.AF_UNIX, cls.descriptor_type, 0, fileno=fd)
        sock._tailnet_peer = peer
        sock._tailnet_local = local
        return sock

    def getpeername(self) -> Address:
        """The peer's tailnet (ip, port)."""
        try:
            return self._tailnet_peer
        except AttributeError:  # a dup() or accept() copy
            return super().getpeername()  # type: ignore[no-any-return]

    def getsockname(self) -> Address:
        """This node's tailnet (ip, port) for the flow."""
        try:
            return self._tailnet_local
        except AttributeError:
            return super().getsockname()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_closed", False) else f"fd={self.fileno()}"
        peer = getattr(self, "_tailnet_peer", None)
        local = getattr(self, "_tailnet_local", None)
        return f"<{qualified_name(self)} {state} local={local} peer={peer}>"


@present
class TailnetSocket(TailnetAddressedSocket):
    """A :class:`socket.socket` carrying one tailnet TCP connection.

    It is a real socket (one end of a local socketpair that tailnet bridges
    to the tailnet), so it works with ``selectors``, ``socketserver``,
    ``ssl`` and event loops. :meth:`getpeername` and :meth:`getsockname`
    report the tailnet addresses rather than the socketpair's empty ones.

    It behaves as a TCP socket does: :meth:`close` delivers what was sent
    before it (then the peer reads end-of-file), and only the peer's close
    reads as end-of-file. A connection aborted on the tailnet side makes
    reads raise :class:`~tailnet.ConnectionReset` (a
    ``ConnectionResetError``) once the data that came before is read, or
    :class:`~tailnet.ConnectionTimedOut` (a ``TimeoutError``) if the peer
    stopped answering, and writes raise ``BrokenPipeError`` or
    :class:`~tailnet.ConnectionReset`. Through ``ssl`` or another wrapper
    of the descriptor, an abort is a plain ``ConnectionResetError``.
    """

    __slots__ = ("_tailnet_fate",)
    _tailnet_fate: ConnectionFate | None

    @classmethod
    def adopt_connection(cls, conn: Connection) -> TailnetSocket:
        """Wrap a TCP connection handed over by the library (takes ownership)."""
        sock = cls.adopt(conn.fd, conn.remote, conn.local)
        sock._tailnet_fate = conn.fate
        return sock

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """As :meth:`socket.socket.recv`; an abort raises (see the class)."""
        try:
            return super().recv(bufsize, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._aborted(exc, reading=True) from None

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0, /) -> int:
        """As :meth:`socket.socket.recv_into`; an abort raises (see the class)."""
        try:
            return super().recv_into(buffer, nbytes, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._aborted(exc, reading=True) from None

    def send(self, data: ReadableBuffer, flags: int = 0, /) -> int:
        """As :meth:`socket.socket.send`; an abort raises (see the class)."""
        try:
            return super().send(data, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._aborted(exc, reading=False) from None

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        """As :meth:`socket.socket.sendall`; an abort raises (see the class)."""
        try:
            super().sendall(data, flags)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise self._aborted(exc, reading=False) from None

    if TYPE_CHECKING:
        makefile = socket.socket.makefile  # its overloads: the file types per mode
    else:

        def makefile(self, mode: str = "r", buffering: int | None = None, **options: Any) -> Any:
            """As :meth:`socket.socket.makefile`; a writer is flushed when the server closes.

            With a kernel socket, data a forgotten file object still buffers
            is written when the interpreter collects it, the socket being open
            as long as the file is; here the server's close would end the
            connection first, so it flushes such writers of its connections
            before (see docs/python-api.md).
            """
            file = super().makefile(mode, buffering, **options)
            fate = getattr(self, "_tailnet_fate", None)
            if fate is not None and "w" in mode:
                fate.track_writer(file, self.fileno())
            return file

    @overload
    def setsockopt(self, level: int, optname: int, value: int | ReadableBuffer, /) -> None: ...

    @overload
    def setsockopt(self, level: int, optname: int, value: None, optlen: int, /) -> None: ...

    def setsockopt(
        self, level: int, optname: int, value: int | ReadableBuffer | None, optlen: int | None = None, /
    ) -> None:
        """As :meth:`socket.socket.setsockopt`; ``SO_SNDBUF`` is raised to :data:`MIN_SEND_BUFFER`.

        A smaller send buffer could leave a blocked writer asleep for good
        (docs/architecture.md), so a smaller value is taken as that
        minimum, as the kernel raises a value below its own minimum.
        """
        if value is None or optlen is not None:
            if value is not None or optlen is None:
                raise TypeError("setsockopt takes optlen only with a value of None")
            super().setsockopt(level, optname, None, optlen)
            return
        if level == socket.SOL_SOCKET and optname == socket.SO_SNDBUF and isinstance(value, int):
            value = max(value, MIN_SEND_BUFFER)
        super().setsockopt(level, optname, value)

    def abort(self) -> None:
        """Abort the connection, as closing a TCP socket with ``SO_LINGER`` 0 does.

        What was not yet delivered is dropped and the peer gets a reset:
        its reads raise :class:`~tailnet.ConnectionReset` (an error, never
        end-of-file). Then the socket is closed. Use :meth:`close` to
        deliver.
        """
        fate = getattr(self, "_tailnet_fate", None)
        if fate is not None and self.fileno() != -1:
            fate.abort()
        self.close()

    def _aborted(self, exc: OSError, *, reading: bool) -> OSError:
        fate = getattr(self, "_tailnet_fate", None)  # None in a dup() copy
        return exc if fate is None else fate.error(exc, reading=reading)
