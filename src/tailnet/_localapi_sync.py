"""The blocking LocalAPI client: :class:`LocalAPIClient` (see :mod:`tailnet._localapi`)."""

from __future__ import annotations

import socket
import time
from typing import Any

from ._exceptions import LocalAPIError
from ._info import Loopback
from ._localapi import Body, Exchange, LocalAPIResponse, check_timeout, grow
from ._node import Node
from ._public import present, qualified_name

__all__ = ["LocalAPIClient"]


@present
class LocalAPIClient:
    """A LocalAPI client for one node; returned by :meth:`tailnet.Server.local_api`.

    ``get``/``post`` return the decoded JSON; ``request`` the whole
    :class:`LocalAPIResponse`. A status >= 400 raises
    :class:`~tailnet.LocalAPIError`. Each call is one short blocking TCP
    exchange with 127.0.0.1 (interruptible by Ctrl-C). Paths are the
    LocalAPI's, e.g. ``"/localapi/v0/status"``.
    """

    def __init__(self, node: Node, loopback: Loopback) -> None:
        self._node = node
        self._loopback = loopback

    def request(
        self, method: str, path: str, body: Body = None, *, timeout: float | None = None
    ) -> LocalAPIResponse:
        """Send one request; ``body`` is bytes, text, or a dict/list sent as JSON."""
        exchange = Exchange(self._loopback, method, path, body)
        check_timeout(timeout)
        self._node.check_open()
        return exchange.response(self._exchange(exchange, timeout))

    def get(self, path: str, *, timeout: float | None = None) -> Any:
        """GET ``path`` and decode the JSON response."""
        return self.request("GET", path, timeout=timeout).json()

    def post(self, path: str, body: Body = None, *, timeout: float | None = None) -> Any:
        """POST ``body`` to ``path`` and decode the JSON response (None if empty)."""
        return self.request("POST", path, body, timeout=timeout).json()

    def _exchange(self, exchange: Exchange, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        received = bytearray()
        try:
            with socket.create_connection(self._loopback.address, timeout=remaining()) as sock:
                sock.settimeout(remaining())
                sock.sendall(exchange.data)
                while True:
                    sock.settimeout(remaining())
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        return bytes(received)
                    grow(received, chunk, exchange)
        except LocalAPIError:
            raise
        except TimeoutError:
            raise exchange.timed_out(timeout) from None
        except OSError as exc:
            raise exchange.unreachable(exc) from None

    def __repr__(self) -> str:
        host, port = self._loopback.address
        return f"<{qualified_name(self)} {host}:{port}>"
