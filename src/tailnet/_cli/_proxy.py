"""``tailnet proxy``: expose a local TCP service on the tailnet."""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc

from .._logs import LOGGER
from .._server_async import AsyncServer
from .._stream_async import TailnetStream

__all__ = ["proxy"]

#: What ends a copy when one side goes away.
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


async def _copy(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
    """Copy until EOF, then pass the EOF on (a half-close, so the other direction goes on)."""
    with contextlib.suppress(*_GONE):
        async for chunk in source:
            await sink.send(chunk)
        await sink.send_eof()


async def _forward(stream: TailnetStream, host: str, port: int) -> None:
    peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
    async with stream:
        try:
            local = await anyio.connect_tcp(host, port)
        except OSError as exc:
            LOGGER.warning("%s: cannot reach %s:%d: %s", peer, host, port, exc.strerror or exc)
            return
        async with local, anyio.create_task_group() as tg:
            tg.start_soon(_copy, stream, local)
            tg.start_soon(_copy, local, stream)


async def proxy(node: AsyncServer, tailnet_port: int, host: str, port: int) -> None:
    """Forward each connection to ``tailnet_port`` on the node to ``host:port``, until cancelled."""
    async with await node.listen("tcp", f":{tailnet_port}") as listener:
        print(f"forwarding tailnet {node.hostname}:{tailnet_port} -> {host}:{port}", flush=True)
        await listener.serve(lambda stream: _forward(stream, host, port))
