"""requests over the tailnet: a transport adapter dialing through a node.

::

    import requests, tailnet
    from tailnet.requests import TailnetAdapter

    with tailnet.Server("client") as ts, requests.Session() as session:
        session.mount("http://", TailnetAdapter(ts))
        session.get("http://other-node:8080/")

:class:`TailnetAdapter` is requests' own :class:`~requests.adapters.HTTPAdapter`
(urllib3's pooling, retries and TLS) with urllib3 connections that dial
through the node instead of the host's network. Proxy settings
(``HTTP_PROXY``, ``proxies=``) are ignored for requests it sends: a
tailnet node is reached directly. requests is synchronous, so this works
with :class:`tailnet.Server`; use httpx for async code.

Needs ``pip install 'tailnet[requests]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._optional import missing

try:
    import requests
    import requests.adapters
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
except ImportError as exc:
    raise missing("requests", "requests", "tailnet.requests") from exc

if TYPE_CHECKING:
    import socket

    from ._server_sync import Server

__all__ = ["TailnetAdapter"]


class _DialsTailnet(HTTPConnection):
    """A urllib3 connection whose socket comes from a tailnet node (set on a subclass)."""

    tailnet_server: Server

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        try:
            sock = self.tailnet_server.dial("tcp", (self._dns_host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out: {exc}") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sock.settimeout(timeout)
        return sock


class _DialsTailnetTLS(_DialsTailnet, HTTPSConnection):
    """The HTTPS variant: urllib3's TLS over a tailnet connection."""


def _pool_classes(server: Server) -> dict[str, type[urllib3.HTTPConnectionPool]]:
    """urllib3 pool classes whose connections dial through ``server``."""
    plain = type("TailnetHTTPConnection", (_DialsTailnet,), {"tailnet_server": server})
    tls = type("TailnetHTTPSConnection", (_DialsTailnetTLS,), {"tailnet_server": server})
    return {
        "http": type("TailnetHTTPConnectionPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("TailnetHTTPSConnectionPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }


class TailnetAdapter(requests.adapters.HTTPAdapter):
    """A requests transport adapter whose connections go over the tailnet.

    Args:
        server: The node to dial from (it must be up to connect).
        **options: :class:`requests.adapters.HTTPAdapter` options
            (``pool_connections``, ``pool_maxsize``, ``max_retries``, ...).

    Mount it for the schemes to send over the tailnet:
    ``session.mount("http://", TailnetAdapter(ts))``. Hosts are MagicDNS
    names (short or fully qualified) or tailnet IPs.
    """

    def __init__(self, server: Server, **options: Any) -> None:
        self._tailnet_pools = _pool_classes(server)
        super().__init__(**options)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """The pool manager of requests, with pools that dial through the node."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self._tailnet_pools

    def send(  # noqa: PLR0917 - requests' signature
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send as :class:`~requests.adapters.HTTPAdapter` does, straight to the node (no proxy)."""
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)
