"""``tailnet proxy``: expose a local TCP service on the tailnet.

Each tailnet connection gets a connection to the local service and a
:class:`~tailnet._relay.Relay`, the forwarder's: ends and aborts pass
through as they do for ``tailnet forward``. A service that cannot be
reached aborts the tailnet connection, so its client reads
:class:`~tailnet.ConnectionReset` rather than a clean end.
"""

from __future__ import annotations

import anyio
import anyio.abc

from .._logs import LOGGER
from .._relay import Relay
from .._server_async import AsyncServer
from .._stream_async import TailnetStream

__all__ = ["proxy"]


async def _forward(stream: TailnetStream, host: str, port: int) -> None:
    try:
        local = await anyio.connect_tcp(host, port)
    except OSError as exc:
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
        LOGGER.warning("%s: cannot reach %s:%d: %s", peer, host, port, exc.strerror or exc)
        stream.reset()
        await stream.aclose()
        return
    await Relay(local, stream).run()


async def proxy(node: AsyncServer, tailnet_port: int, host: str, port: int) -> None:
    """Forward each connection to ``tailnet_port`` on the node to ``host:port``, until cancelled."""
    async with await node.listen("tcp", f":{tailnet_port}") as listener:
        print(f"forwarding tailnet {node.hostname}:{tailnet_port} -> {host}:{port}", flush=True)
        await listener.serve(lambda stream: _forward(stream, host, port))
