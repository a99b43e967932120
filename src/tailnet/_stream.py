"""The async stream type of tailnet connections."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any

from anyio.abc import SocketAttribute, SocketStream

from ._addresses import Address

__all__ = ["TailnetStream"]


class TailnetStream(SocketStream):
    """An :class:`anyio.abc.SocketStream` carrying one tailnet TCP connection.

    It wraps anyio's own stream over the connection's descriptor (so reads
    and writes are driven by the event loop, with no thread) and reports the
    tailnet addresses: ``extra(SocketAttribute.remote_address)`` is the
    peer's tailnet ``(ip, port)``, ``local_address`` this node's, and
    ``family`` is ``AF_INET`` or ``AF_INET6`` accordingly.
    """

    def __init__(self, inner: SocketStream, peer: Address, local: Address) -> None:
        self._inner = inner
        self._peer = peer
        self._local = local

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes``; ``anyio.EndOfStream`` after the peer's EOF."""
        return await self._inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        """Send all of ``item``."""
        await self._inner.send(item)

    async def send_eof(self) -> None:
        """Half-close: the peer reads EOF, and this side can still receive."""
        await self._inner.send_eof()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._inner.aclose()

    @property
    def _raw_socket(self) -> socket.socket:
        return self._inner.extra(SocketAttribute.raw_socket)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Anyio's attributes, with tailnet addresses in place of the socketpair's."""
        version = ipaddress.ip_address(self._peer[0]).version
        return {
            **self._inner.extra_attributes,
            SocketAttribute.family: lambda: socket.AF_INET if version == 4 else socket.AF_INET6,
            SocketAttribute.remote_address: lambda: self._peer,
            SocketAttribute.remote_port: lambda: self._peer[1],
            SocketAttribute.local_address: lambda: self._local,
            SocketAttribute.local_port: lambda: self._local[1],
        }

    def __repr__(self) -> str:
        return f"<tailnet.TailnetStream local={self._local} peer={self._peer}>"
