"""The socket type of tailnet connections."""

from __future__ import annotations

import socket

from ._addresses import Address

__all__ = ["TailnetSocket"]


class TailnetSocket(socket.socket):
    """A :class:`socket.socket` carrying one tailnet TCP connection.

    It is a real socket (one end of a local socketpair that tailnet bridges
    to the tailnet), so it works with ``selectors``, ``socketserver``,
    ``ssl`` and event loops. :meth:`getpeername` and :meth:`getsockname`
    report the tailnet addresses rather than the socketpair's empty ones.
    """

    __slots__ = ("_tailnet_local", "_tailnet_peer")
    _tailnet_local: Address
    _tailnet_peer: Address

    @classmethod
    def adopt(cls, fd: int, peer: Address, local: Address) -> TailnetSocket:
        """Wrap a connection descriptor handed over by the library (takes ownership)."""
        sock = cls(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fd)
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
        """This node's tailnet (ip, port) for the connection."""
        try:
            return self._tailnet_local
        except AttributeError:
            return super().getsockname()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_closed", False) else f"fd={self.fileno()}"
        peer = getattr(self, "_tailnet_peer", None)
        local = getattr(self, "_tailnet_local", None)
        return f"<TailnetSocket {state} local={local} peer={peer}>"
