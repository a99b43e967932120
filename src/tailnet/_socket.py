"""The socket types of tailnet connections: real sockets that report tailnet addresses."""

from __future__ import annotations

import socket
from typing import ClassVar, TypeVar

from ._addresses import Address

__all__ = ["TailnetAddressedSocket", "TailnetSocket"]

_S = TypeVar("_S", bound="TailnetAddressedSocket")


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
        return f"<{type(self).__name__} {state} local={local} peer={peer}>"


class TailnetSocket(TailnetAddressedSocket):
    """A :class:`socket.socket` carrying one tailnet TCP connection.

    It is a real socket (one end of a local socketpair that tailnet bridges
    to the tailnet), so it works with ``selectors``, ``socketserver``,
    ``ssl`` and event loops. :meth:`getpeername` and :meth:`getsockname`
    report the tailnet addresses rather than the socketpair's empty ones.
    """

    __slots__ = ()
