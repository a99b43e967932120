"""tailnet: a Tailscale node inside your Python process.

Join a tailnet as its own node, with its own name and IPs, then listen and
dial with real sockets; no ``tailscaled``, no TUN device, no root::

    with tailnet.Server(hostname="my-service") as ts:
        ln = ts.listen("tcp", ":8080")
        conn, peer = ln.accept()

The async API (:class:`AsyncServer`, on asyncio and trio) is imported on
first use, so a program using only the blocking API never imports anyio.
See :mod:`tailnet.testing` for a local tailnet to test against offline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._addresses import Address, IPAddress
from ._datagram import MAX_DATAGRAM, MAX_DATAGRAM6
from ._datagram_sync import DatagramSocket, TailnetDatagramSocket
from ._exceptions import (
    AddressInUseError,
    AuthenticationError,
    CertificateUnavailableError,
    ClosedError,
    ConfigurationError,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    DatagramTooLarge,
    ForkedProcessError,
    FunnelUnavailableError,
    HostUnreachable,
    InsecureStateDirWarning,
    InternalError,
    LibraryNotFoundError,
    LocalAPIError,
    MissingDependencyError,
    PeerNotFound,
    StateDirError,
    StateStoreError,
    TailnetError,
    TailnetTimeout,
    UnsupportedError,
)
from ._forward_sync import Forwarder
from ._info import (
    BackendError,
    BackendState,
    ConnectionPath,
    LoginRequired,
    Loopback,
    NodeInfo,
    PeerIdentity,
    PeerStatus,
    PingKind,
    PingResult,
    StateChanged,
    Status,
    UserProfile,
    WatchEvent,
)
from ._localapi import LocalAPIResponse
from ._localapi_sync import LocalAPIClient
from ._server_sync import Listener, Server
from ._state import StateStore
from ._stream_sync import TailnetSocket
from ._version import __version__
from ._watch_sync import Watcher

if TYPE_CHECKING:
    from ._datagram_async import AsyncConnectedDatagramSocket, AsyncDatagramSocket
    from ._forward_async import AsyncForwarder
    from ._localapi_async import AsyncLocalAPIClient
    from ._server_async import AsyncListener, AsyncServer
    from ._stream_async import TailnetStream
    from ._watch_async import AsyncWatcher

#: The async API's names, and the module each comes from (imported on first use).
_ASYNC = {
    "AsyncConnectedDatagramSocket": "._datagram_async",
    "AsyncDatagramSocket": "._datagram_async",
    "AsyncForwarder": "._forward_async",
    "AsyncListener": "._server_async",
    "AsyncLocalAPIClient": "._localapi_async",
    "AsyncServer": "._server_async",
    "AsyncWatcher": "._watch_async",
    "TailnetStream": "._stream_async",
}


def __getattr__(name: str) -> Any:
    """Import the async API when one of its names is first used (PEP 562)."""
    module = _ASYNC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "MAX_DATAGRAM",
    "MAX_DATAGRAM6",
    "Address",
    "AddressInUseError",
    "AsyncConnectedDatagramSocket",
    "AsyncDatagramSocket",
    "AsyncForwarder",
    "AsyncListener",
    "AsyncLocalAPIClient",
    "AsyncServer",
    "AsyncWatcher",
    "AuthenticationError",
    "BackendError",
    "BackendState",
    "CertificateUnavailableError",
    "ClosedError",
    "ConfigurationError",
    "ConnectionPath",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionTimedOut",
    "DatagramSocket",
    "DatagramTooLarge",
    "ForkedProcessError",
    "Forwarder",
    "FunnelUnavailableError",
    "HostUnreachable",
    "IPAddress",
    "InsecureStateDirWarning",
    "InternalError",
    "LibraryNotFoundError",
    "Listener",
    "LocalAPIClient",
    "LocalAPIError",
    "LocalAPIResponse",
    "LoginRequired",
    "Loopback",
    "MissingDependencyError",
    "NodeInfo",
    "PeerIdentity",
    "PeerNotFound",
    "PeerStatus",
    "PingKind",
    "PingResult",
    "Server",
    "StateChanged",
    "StateDirError",
    "StateStore",
    "StateStoreError",
    "Status",
    "TailnetDatagramSocket",
    "TailnetError",
    "TailnetSocket",
    "TailnetStream",
    "TailnetTimeout",
    "UnsupportedError",
    "UserProfile",
    "WatchEvent",
    "Watcher",
    "__version__",
]
