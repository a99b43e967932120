"""An async echo service and an async client on a local tailnet.

    python examples/async_echo.py            # asyncio
    python examples/async_echo.py trio       # trio

The service node serves every connection in its own task (anyio's
``serve``); the client node dials it by MagicDNS name, sends a few lines
and half-closes, then reads the echo until EOF.
"""

from __future__ import annotations

import sys

import anyio

import tailnet
from tailnet.testing import LocalTailnet


async def echo(stream: tailnet.TailnetStream) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive())
        except anyio.EndOfStream:
            await stream.send_eof()


async def main() -> None:
    with LocalTailnet() as net:
        async with net.async_server("echo-service") as service, net.async_server("echo-client") as client:
            listener = await service.listen("tcp", ":7")
            async with listener, anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, echo)
                async with await client.dial("tcp", "echo-service:7", timeout=30) as stream:
                    for line in (b"hello\n", b"over the\n", b"tailnet\n"):
                        await stream.send(line)
                    await stream.send_eof()
                    reply = b""
                    try:
                        while True:
                            reply += await stream.receive()
                    except anyio.EndOfStream:
                        pass
                peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
                print(f"echo-client -> echo-service {peer}: {reply.decode()!r}")
                tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
