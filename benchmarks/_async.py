"""The workloads on tailnet's async API (anyio), run on asyncio (with or without uvloop) or on trio.

The twin of go/cmd/tsnetbench (same services, ports and timings): a task
per connection on the server, a task per stream on the client, as a
program using the async API would.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

import tailnet

from ._spec import (
    DIAL_TIMEOUT,
    PORT_CONTROL,
    PORT_ECHO,
    PORT_GREET,
    PORT_SINK,
    PORT_UDP,
    RTT_WARMUP,
    Sizes,
    mbps,
    now_ns,
    percentile_us,
    rss_mib,
    state_dir,
)
from ._udp import UdpCounter, parse

__all__ = ["AsyncNode", "measure_memory", "run_client", "run_server"]

Handler = Callable[[anyio.abc.ByteStream], Awaitable[None]]
#: What ends a connection from the other side.
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.IncompleteRead, OSError)


class AsyncNode:
    """A tailnet node of this process (``tailnet.AsyncServer``); joining it is timed."""

    def __init__(self, server: tailnet.AsyncServer, startup_ms: float) -> None:
        self.server = server
        self.startup_ms = startup_ms
        self.host = str(server.ips[0])

    @classmethod
    async def up(cls, role: str) -> AsyncNode:
        """Create a node and bring it up."""
        start = now_ns()
        server = tailnet.AsyncServer(f"py-{role}-{os.getpid()}", state_dir=state_dir(role), ephemeral=True)
        await server.up(timeout=60)
        return cls(server, (now_ns() - start) / 1e6)

    async def serve(self, port: int, handler: Handler, tg: anyio.abc.TaskGroup) -> None:
        """Listen on port and run handler for each connection in a task of tg."""
        listener = await self.server.listen("tcp", f":{port}")
        tg.start_soon(listener.serve, _closing(handler), tg)

    async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
        """Connect to host:port."""
        return await self.server.dial("tcp", (host, port), timeout=DIAL_TIMEOUT)

    async def datagrams(self, port: int) -> Any:
        """A UDP socket on the node (an anyio UDPSocket), or None while tailnet has no UDP."""
        listen_packet = getattr(self.server, "listen_packet", None)
        if listen_packet is None:
            return None
        return await listen_packet("udp4", f"{self.host}:{port}")


def _closing(handler: Handler) -> Callable[[anyio.abc.ByteStream], Awaitable[None]]:
    async def run(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            with contextlib.suppress(*_GONE):  # the client went away
                await handler(stream)

    return run


# --- the server -------------------------------------------------------------


async def run_server(sizes: Sizes) -> None:
    """Run the services and print the server line; return when stdin closes."""
    node = await AsyncNode.up("server")
    counter = UdpCounter()
    services: list[tuple[int, Handler]] = [
        (PORT_ECHO, lambda s: _echo(s, sizes.chunk)),
        (PORT_SINK, lambda s: _sink(s, sizes.chunk)),
        (PORT_GREET, _greet),
        (PORT_CONTROL, lambda s: _control(s, counter)),
    ]
    async with anyio.create_task_group() as tg:
        for port, handler in services:
            await node.serve(port, handler, tg)
        udp = await node.datagrams(PORT_UDP)
        if udp is not None:
            tg.start_soon(_count_datagrams, udp, counter)
        line = {"host": node.host, "startup_ms": node.startup_ms, "udp": udp is not None}
        print(json.dumps(line), flush=True)
        await _stdin_closed()
        tg.cancel_scope.cancel()


async def _stdin_closed() -> None:
    while True:
        await anyio.wait_readable(0)
        if not os.read(0, 4096):
            return


async def _echo(stream: anyio.abc.ByteStream, chunk: int) -> None:
    while True:
        await stream.send(await stream.receive(chunk))


async def _drain(stream: anyio.abc.ByteStream, chunk: int) -> None:
    try:
        while True:
            await stream.receive(chunk)
    except anyio.EndOfStream:
        return


async def _sink(stream: anyio.abc.ByteStream, chunk: int) -> None:
    await _drain(stream, chunk)
    await stream.send(b"\x01")


async def _greet(stream: anyio.abc.ByteStream) -> None:
    await stream.send(b"\x01")
    await _drain(stream, 64)


async def _control(stream: anyio.abc.ByteStream, counter: UdpCounter) -> None:
    lines = BufferedByteReceiveStream(stream)
    while True:
        verb, number = parse((await lines.receive_until(b"\n", 256)).decode())
        if verb == "begin":
            await stream.send(counter.begin(number).encode())
            continue
        asked = now_ns()
        while (reply := counter.settled(number, asked)) is None:
            await anyio.sleep(0.01)
        await stream.send(reply.encode())


async def _count_datagrams(sock: Any, counter: UdpCounter) -> None:
    async for data, sender in sock:
        if len(data) == 1:
            await sock.send((data, sender))
        else:
            counter.arrived(len(data))


# --- the client -------------------------------------------------------------


async def run_client(host: str, sizes: Sizes, workloads: list[str]) -> dict[str, Any]:
    """Bring a node up, warm up, run the workloads against host; return the figures."""
    node = await AsyncNode.up("client")
    client = _Client(node, host, sizes)
    client.figures["startup_ms"] = node.startup_ms
    await client.warm()
    for name in workloads:
        await getattr(client, name)()
    return client.figures


class _Client:
    def __init__(self, node: AsyncNode, host: str, sizes: Sizes) -> None:
        self.node, self.host, self.sizes = node, host, sizes
        self.figures: dict[str, Any] = {}

    async def warm(self) -> None:
        """Round trips for sizes.warm seconds: the path to the peer settles (DERP -> direct)."""
        async with await self.node.dial(self.host, PORT_ECHO) as stream:
            end = now_ns() + int(self.sizes.warm * 1e9)
            while now_ns() < end:
                await _ping(stream)

    async def rtt(self) -> None:
        """1-byte round trips on one connection."""
        samples = []
        async with await self.node.dial(self.host, PORT_ECHO) as stream:
            for i in range(RTT_WARMUP + self.sizes.rtt_count):
                took = await _ping(stream)
                if i >= RTT_WARMUP:
                    samples.append(took)
        self.figures["rtt_p50_us"] = percentile_us(samples, 50)
        self.figures["rtt_p99_us"] = percentile_us(samples, 99)

    async def bulk(self) -> None:
        """One stream of bulk_bytes to the sink."""
        async with await self.node.dial(self.host, PORT_SINK) as stream:
            start = now_ns()
            await _send_and_await(stream, self.sizes.bulk_bytes, self.sizes.chunk)
            self.figures["bulk_mbps"] = mbps(self.sizes.bulk_bytes, (now_ns() - start) / 1e9)

    async def concurrent(self) -> None:
        """Streams opened first, then all sending at once, a task each."""
        streams = [await self.node.dial(self.host, PORT_SINK) for _ in range(self.sizes.streams)]
        start = now_ns()
        async with anyio.create_task_group() as tg:
            for stream in streams:
                tg.start_soon(_send_and_await, stream, self.sizes.stream_bytes, self.sizes.chunk)
        took = (now_ns() - start) / 1e9
        for stream in streams:
            await stream.aclose()
        self.figures["concurrent_mbps"] = mbps(self.sizes.stream_bytes * len(streams), took)

    async def connect(self) -> None:
        """Connections one after another, timed from dial to the greeting's byte."""
        samples = []
        for _ in range(self.sizes.connect_count):
            start = now_ns()
            async with await self.node.dial(self.host, PORT_GREET) as stream:
                await stream.receive(1)
                samples.append(now_ns() - start)
        self.figures["connect_p50_us"] = percentile_us(samples, 50)
        self.figures["connect_p99_us"] = percentile_us(samples, 99)

    async def udp(self) -> None:
        """Datagrams as fast as they go; the server counts them."""
        sock = await self.node.datagrams(0)
        if sock is None:
            self.figures.setdefault("notes", []).append("udp: this tailnet has no UDP (listen_packet)")
            return
        async with await self.node.dial(self.host, PORT_CONTROL) as ctl:
            lines = BufferedByteReceiveStream(ctl)
            await _ask(ctl, lines, f"begin {self.sizes.udp_size}")
            to = (self.host, PORT_UDP)
            await _warm_datagrams(sock, to)
            payload = bytes(self.sizes.udp_size)
            for _ in range(self.sizes.udp_count):
                await sock.send((payload, to))
            got, seconds = (await _ask(ctl, lines, f"end {self.sizes.udp_count}")).split()
        received = int(got)
        self.figures["udp_pps"] = (received - 1) / float(seconds) if received > 1 and float(seconds) else 0.0
        self.figures["udp_loss"] = 1 - received / self.sizes.udp_count


async def _ping(stream: anyio.abc.ByteStream) -> int:
    start = now_ns()
    await stream.send(b"\x01")
    await stream.receive(1)
    return now_ns() - start


async def _send_and_await(stream: anyio.abc.ByteStream, total: int, chunk: int) -> None:
    buf = memoryview(bytes(chunk))
    sent = 0
    while sent < total:
        part = buf[: min(chunk, total - sent)]
        await stream.send(part)  # type: ignore[arg-type]  # anyio's streams take any buffer
        sent += len(part)
    await stream.send_eof()
    await stream.receive(1)


async def _ask(ctl: anyio.abc.ByteStream, lines: BufferedByteReceiveStream, line: str) -> str:
    await ctl.send(f"{line}\n".encode())
    reply = (await lines.receive_until(b"\n", 256)).decode().strip()
    if reply.startswith("error"):
        raise RuntimeError(f"control: {reply}")
    return reply


async def _warm_datagrams(sock: Any, to: tuple[str, int]) -> None:
    with anyio.fail_after(30):
        while True:
            await sock.send((b"\x00", to))
            with anyio.move_on_after(0.01):
                await sock.receive()
                return


# --- memory -----------------------------------------------------------------


async def measure_memory(host: str, conns: int, settle: float) -> dict[str, float]:
    """RSS with one idle node, then with conns connections open to the sink."""
    node = await AsyncNode.up("memory")
    await anyio.sleep(settle)
    figures = {"rss_idle_mb": rss_mib()}
    streams = [await node.dial(host, PORT_SINK) for _ in range(conns)]
    await anyio.sleep(settle)
    figures["rss_conns_mb"] = rss_mib()
    for stream in streams:
        await stream.aclose()
    return figures
