"""UDP on the anyio API, on asyncio and trio."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from harness.helpers import go_counter, open_fds, settle_fds, settle_goroutines
from harness.udp_helpers import SIZES_V4, SIZES_V6, payloads

import tailnet
from tailnet import MAX_DATAGRAM, MAX_DATAGRAM6

pytestmark = pytest.mark.anyio

Nodes = tuple[tailnet.AsyncServer, tailnet.AsyncServer]
Address = tuple[str, int]


async def echo(sock: tailnet.AsyncDatagramSocket) -> None:
    """Send every datagram back to its sender until the socket closes."""
    try:
        async for data, sender in sock:
            await sock.send((data, sender))
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass


@pytest.fixture
async def echo_port(nodes: Nodes) -> AsyncIterator[int]:
    """A UDP echo on port 7 of both IPs of the second node."""
    sock = await nodes[1].listen_packet("udp", ":7")
    async with anyio.create_task_group() as tg:
        tg.start_soon(echo, sock)
        yield 7
        await sock.aclose()


async def exchange(
    send: Callable[[bytes], Awaitable[None]],
    receive: Callable[[], Awaitable[tuple[bytes, Address]]],
    datagrams: list[bytes],
    source: Address,
    *,
    rounds: int = 8,
    wait: float = 5.0,
) -> None:
    """As udp_helpers.exchange: every echo must be exactly one datagram sent; retry losses."""
    sent, pending = set(datagrams), set(datagrams)
    for _ in range(rounds):
        for datagram in sorted(pending, key=len):
            await send(datagram)
        with anyio.move_on_after(wait):
            while pending:
                data, sender = await receive()
                assert sender == source
                assert data in sent, f"a {len(data)}-byte datagram that was never sent: boundaries lost"
                pending.discard(data)
        if not pending:
            return
    raise AssertionError(f"{len(pending)} datagrams never echoed, sizes {sorted(map(len, pending))}")


@pytest.mark.parametrize(("family", "sizes"), [(0, SIZES_V4), (1, SIZES_V6)], ids=["ipv4", "ipv6"])
async def test_datagrams_keep_their_boundaries(
    nodes: Nodes, echo_port: int, family: int, sizes: list[int]
) -> None:
    a, b = nodes
    peer = (str(b.ips[family]), echo_port)
    threads = threading.active_count()
    async with await a.listen_packet("udp", ":0") as sock:
        assert isinstance(sock, anyio.abc.UDPSocket)

        async def send(data: bytes) -> None:
            await sock.sendto(data, *peer)

        await exchange(send, sock.receive, payloads(sizes), peer)
    assert threading.active_count() <= threads + 1  # no thread per datagram


async def test_many_small_datagrams_queued_at_once(nodes: Nodes, echo_port: int) -> None:
    a, b = nodes
    peer = (str(b.ips[0]), echo_port)
    async with await a.listen_packet("udp4", ":0") as sock:

        async def send(data: bytes) -> None:
            await sock.send((data, peer))

        await exchange(send, sock.receive, payloads(list(range(1, 401))), peer)


async def test_packet_socket_attributes(nodes: Nodes) -> None:
    a, _ = nodes
    async with await a.listen_packet("udp", ":0") as sock:
        port = sock.extra(SocketAttribute.local_port)
        assert sock.extra(SocketAttribute.local_address) == (str(a.ips[0]), port)
        assert sock.extra(SocketAttribute.family) == socket.AF_INET
        assert sock.addresses == ((str(a.ips[0]), port), (str(a.ips[1]), port))
        assert isinstance(sock.extra(SocketAttribute.raw_socket), socket.socket)
    async with await a.listen_packet("udp6", ":0") as sock6:
        assert sock6.extra(SocketAttribute.family) == socket.AF_INET6


@pytest.mark.parametrize("network", ["udp", "udp6"])
async def test_connected_socket_echo(nodes: Nodes, echo_port: int, network: str) -> None:
    a, b = nodes
    family = 1 if network == "udp6" else 0
    async with await a.dial(network, f"{b.hostname}:{echo_port}", timeout=30) as conn:
        assert isinstance(conn, anyio.abc.ConnectedUDPSocket)
        peer = (str(b.ips[family]), echo_port)
        assert conn.extra(SocketAttribute.remote_address) == peer
        assert conn.extra(SocketAttribute.remote_port) == echo_port
        assert conn.extra(SocketAttribute.local_address)[0] == str(a.ips[family])
        assert conn.extra(SocketAttribute.family) == (socket.AF_INET6 if family else socket.AF_INET)

        async def receive() -> tuple[bytes, Address]:
            return await conn.receive(), peer

        await exchange(conn.send, receive, payloads(SIZES_V6 if family else SIZES_V4), peer)


async def test_too_large(nodes: Nodes, echo_port: int) -> None:
    a, b = nodes
    async with await a.listen_packet("udp", ":0") as sock:
        with pytest.raises(tailnet.DatagramTooLarge):
            await sock.send((bytes(MAX_DATAGRAM + 1), (str(b.ips[0]), echo_port)))
        with pytest.raises(tailnet.DatagramTooLarge):
            await sock.sendto(bytes(MAX_DATAGRAM6 + 1), str(b.ips[1]), echo_port)
        with pytest.raises(tailnet.ConfigurationError):
            await sock.sendto(b"x", "not-an-ip", echo_port)
        with pytest.raises(TypeError):
            await sock.send(b"no address")  # type: ignore[arg-type]
    async with await a.dial("udp", (str(b.ips[0]), echo_port), timeout=30) as conn:
        with pytest.raises(tailnet.DatagramTooLarge):
            await conn.send(bytes(MAX_DATAGRAM + 1))


async def _raises_when_woken(
    call: Callable[[], Awaitable[object]], wake: Callable[[], Awaitable[None]]
) -> BaseException:
    """What call raises when wake runs while call waits."""
    raised: list[BaseException] = []

    async def waiting() -> None:
        try:
            await call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiting)
            await anyio.wait_all_tasks_blocked()
            await wake()
    assert len(raised) == 1
    return raised[0]


async def test_aclose_wakes_pending_receive(nodes: Nodes) -> None:
    a, b = nodes
    sock = await a.listen_packet("udp", ":0")
    assert isinstance(await _raises_when_woken(sock.receive, sock.aclose), anyio.ClosedResourceError)
    conn = await a.dial("udp", f"{b.hostname}:7", timeout=30)
    assert isinstance(await _raises_when_woken(conn.receive, conn.aclose), anyio.ClosedResourceError)
    with pytest.raises(anyio.ClosedResourceError):
        await conn.send(b"after close")


async def test_server_aclose_breaks_sockets(nodes: Nodes) -> None:
    a, b = nodes
    sock = await a.listen_packet("udp", ":0")
    conn = await a.dial("udp", f"{b.hostname}:7", timeout=30)
    assert isinstance(await _raises_when_woken(sock.receive, a.aclose), anyio.BrokenResourceError)
    with pytest.raises(anyio.BrokenResourceError):
        await conn.receive()
    with pytest.raises(anyio.BrokenResourceError):
        await conn.send(b"x")
    with pytest.raises(anyio.BrokenResourceError):
        await sock.sendto(b"x", str(b.ips[0]), 7)
    await sock.aclose()
    await conn.aclose()


async def test_cancelled_receive_leaves_the_socket_usable(nodes: Nodes, echo_port: int) -> None:
    a, b = nodes
    peer = (str(b.ips[0]), echo_port)
    async with await a.listen_packet("udp4", ":0") as sock:
        with anyio.move_on_after(0.05) as scope:
            await sock.receive()
        assert scope.cancelled_caught

        async def send(data: bytes) -> None:
            await sock.send((data, peer))

        await exchange(send, sock.receive, [b"after a cancelled receive"], peer)


async def test_no_leaks(nodes: Nodes, echo_port: int) -> None:
    a, b = nodes
    peer = (str(b.ips[0]), echo_port)

    async def cycle() -> None:
        for _ in range(5):
            async with await a.listen_packet("udp", ":0") as sock:

                async def send(data: bytes, sock: tailnet.AsyncDatagramSocket = sock) -> None:
                    await sock.send((data, peer))

                await exchange(send, sock.receive, [b"ping"], peer)
            async with await a.dial("udp", peer, timeout=30) as conn:
                await conn.send(b"ping")

    await cycle()  # warm up
    fds, handles, goroutines = open_fds(), go_counter("handles"), go_counter("goroutines")
    await cycle()
    settle_fds(fds)
    assert go_counter("handles") == handles
    assert go_counter("ops") == 0
    settle_goroutines(goroutines + 5)
