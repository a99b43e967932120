"""What every ASGI server of tailnet's adds to a scope: the tailnet extension (peer and whois).

Shared by :mod:`tailnet.asgi` (uvicorn, on asyncio) and
:mod:`tailnet._asgi_trio` (hypercorn, on trio); imports neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._addresses import Address
from ._exceptions import TailnetError
from ._info import PeerIdentity
from ._logs import LOGGER
from ._node import Node
from ._waiting_async import complete

__all__ = [
    "EXTENSION",
    "WHOIS_TIMEOUT",
    "ASGIApp",
    "Callers",
    "Receive",
    "Scope",
    "Send",
    "listen_address",
    "peer_extension",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The key of tailnet's extension in an ASGI scope's ``"extensions"``.
EXTENSION = "tailnet"
#: How long a connection's whois may take before it is served with ``"whois"`` None.
WHOIS_TIMEOUT = 10.0


class Callers:
    """Who is behind each open connection: the node's whois, looked up once per connection."""

    def __init__(self, node: Node | None) -> None:
        self._node = node
        self._identities: dict[Address, PeerIdentity | None] = {}

    async def resolve(self, peer: Address) -> None:
        """Look up a new connection's caller (nothing without a node: serving a bare listener)."""
        identity = None
        if self._node is not None:
            try:
                identity = await complete(self._node.begin_whois(peer, WHOIS_TIMEOUT))
            except (OSError, TailnetError) as exc:  # the connection is served, its caller unnamed
                LOGGER.info("whois %s failed: %s", peer, exc)
        self._identities[peer] = identity

    def get(self, peer: Address) -> PeerIdentity | None:
        """The caller on the connection from ``peer`` (None if not known)."""
        return self._identities.get(peer)

    def forget(self, peer: Address) -> None:
        """The connection from ``peer`` has ended."""
        self._identities.pop(peer, None)


def peer_extension(app: ASGIApp, callers: Callers) -> ASGIApp:
    """Wrap a loaded app so each HTTP/WebSocket scope carries the tailnet extension."""

    async def with_peer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            host, port = scope["client"]
            extensions = dict(scope.get("extensions") or {})
            extensions[EXTENSION] = {"peer": (host, port), "whois": callers.get((host, port))}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return with_peer


def listen_address(port: object, listener_type: str) -> str:
    """The address to listen on for ``port`` (":port"), checking that it is a port number.

    ``listener_type`` names what else ``port`` may be, for the message.
    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int or a {listener_type}, not {type(port).__name__}")
    return f":{port}"
