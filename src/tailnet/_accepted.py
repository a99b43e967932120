"""An accepted tailnet connection as an asyncio protocol sees it, on any event loop.

Shared by the servers that hand tailnet connections to
``loop.connect_accepted_socket`` (:mod:`tailnet.asgi`,
:mod:`tailnet.aiohttp`); imports neither's library.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._stream_sync import TailnetSocket

__all__ = ["TailnetTransport"]


class TailnetTransport:
    """A transport reporting tailnet addresses: the real one, with the connection's peer and sock names.

    asyncio's own loop asks the socket (a :class:`TailnetSocket`, which
    answers with tailnet addresses), but uvloop asks the descriptor, an
    ``AF_UNIX`` socketpair end with no address; this answers the same on both.
    """

    def __init__(self, transport: asyncio.BaseTransport, sock: TailnetSocket) -> None:
        self._transport = transport
        self._sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._sock.getpeername()
        if name == "sockname":
            return self._sock.getsockname()
        if name == "socket":
            return self._sock
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
