"""tailnet: a Tailscale node inside your Python process.

Join a tailnet as its own node, with its own name and IPs, then listen and
dial with real sockets; no ``tailscaled``, no TUN device, no root::

    with tailnet.Server(hostname="my-service") as ts:
        ln = ts.listen("tcp", ":8080")
        conn, peer = ln.accept()

See :mod:`tailnet.testing` for a local tailnet to test against offline.
"""

from __future__ import annotations

from ._addresses import Address, IPAddress
from ._async import AsyncListener, AsyncServer
from ._datagram import MAX_DATAGRAM, MAX_DATAGRAM6
from ._datagram_async import AsyncConnectedDatagramSocket, AsyncDatagramSocket
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
    TailnetError,
    TailnetTimeout,
    UnsupportedError,
)
from ._localapi import AsyncLocalAPIClient, LocalAPIClient, LocalAPIResponse
from ._node_async import AsyncWatcher
from ._node_info import (
    BackendError,
    BackendState,
    ConnectionPath,
    LoginRequired,
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
from ._node_sync import Watcher
from ._services import Loopback
from ._socket import TailnetSocket
from ._stream import TailnetStream
from ._sync import Listener, Server

__version__ = "0.1.0"

__all__ = [
    "MAX_DATAGRAM",
    "MAX_DATAGRAM6",
    "Address",
    "AddressInUseError",
    "AsyncConnectedDatagramSocket",
    "AsyncDatagramSocket",
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
