"""The async LocalAPI client: :class:`AsyncLocalAPIClient` (see :mod:`tailnet._localapi`)."""

from __future__ import annotations

from typing import Any

import anyio

from ._exceptions import LocalAPIError
from ._info import Loopback
from ._localapi import Body, Exchange, LocalAPIResponse, check_timeout, grow
from ._node import Node
from ._public import present, qualified_name

__all__ = ["AsyncLocalAPIClient"]


@present
class AsyncLocalAPIClient:
    """The async :class:`LocalAPIClient` (anyio); returned by :meth:`tailnet.AsyncServer.local_api`.

    Cancellable: cancelling a call closes its connection.
    """

    def __init__(self, node: Node, loopback: Loopback) -> None:
        self._node = node
        self._loopback = loopback

    async def request(
        self, method: str, path: str, body: Body = None, *, timeout: float | None = None
    ) -> LocalAPIResponse:
        """Send one request; ``body`` is bytes, text, or a dict/list sent as JSON."""
        exchange = Exchange(self._loopback, method, path, body)
        check_timeout(timeout)
        self._node.check_open()
        return exchange.response(await self._exchange(exchange, timeout))

    async def get(self, path: str, *, timeout: float | None = None) -> Any:
        """GET ``path`` and decode the JSON response."""
        return (await self.request("GET", path, timeout=timeout)).json()

    async def post(self, path: str, body: Body = None, *, timeout: float | None = None) -> Any:
        """POST ``body`` to ``path`` and decode the JSON response (None if empty)."""
        return (await self.request("POST", path, body, timeout=timeout)).json()

    async def _exchange(self, exchange: Exchange, timeout: float | None) -> bytes:
        host, port = self._loopback.address
        received = bytearray()
        try:
            with anyio.fail_after(timeout):
                async with await anyio.connect_tcp(host, port) as stream:
                    await stream.send(exchange.data)
                    while True:
                        try:
                            chunk = await stream.receive(1 << 16)
                        except anyio.EndOfStream:
                            return bytes(received)
                        grow(received, chunk, exchange)
        except LocalAPIError:
            raise
        except TimeoutError:
            raise exchange.timed_out(timeout) from None
        except (OSError, anyio.BrokenResourceError) as exc:
            raise exchange.unreachable(exc) from None

    def __repr__(self) -> str:
        host, port = self._loopback.address
        return f"<{qualified_name(self)} {host}:{port}>"
