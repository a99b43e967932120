"""ts.forward(): a local endpoint relaying each connection to a tailnet service.

What users do: a client library connects to 127.0.0.1:port (or a unix
socket) and talks to a service on another node. The relay keeps the
promises of tailnet's sockets: a close delivers (everything sent, then
end-of-file, both ways and after a half-close) and an abort is an error
(a reset on either side is a reset on the other).
"""

from __future__ import annotations

import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from harness.helpers import (
    EchoServer,
    assert_echoes_intact,
    open_fds,
    read_until_error,
    recv_all,
    settle_fds,
    sha256,
)

import tailnet

Pair = tuple[tailnet.Server, tailnet.Server]
MB = 1 << 20


@pytest.fixture
def echo_pair(pair: Pair) -> Iterator[tuple[tailnet.Server, str]]:
    """(client node, "server-node:7") with an echo service there."""
    server = EchoServer(pair[1].listen("tcp", ":7"))
    yield pair[0], f"{pair[1].hostname}:7"
    server.close()


#: Guards against a hang, never a speed limit: a socket's timeout bounds a whole sendall.
HANG_GUARD = 600


def connect(forwarder: tailnet.Forwarder | tailnet.AsyncForwarder) -> socket.socket:
    address = forwarder.address
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        return sock
    return socket.create_connection(address, timeout=HANG_GUARD)


def tcp_address(forwarder: tailnet.Forwarder | tailnet.AsyncForwarder) -> tuple[str, int]:
    address = forwarder.address
    assert isinstance(address, tuple)
    return address


def wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 60)[0], "nothing arrived"


def test_a_local_client_reaches_a_tailnet_echo(echo_pair: tuple[tailnet.Server, str]) -> None:
    node, target = echo_pair
    with node.forward(target) as fwd:
        host, port = tcp_address(fwd)
        assert host == "127.0.0.1"
        assert port > 0
        assert fwd.target == target
        with connect(fwd) as conn:
            assert_echoes_intact(conn, 8 * MB)


def test_a_client_that_sends_and_closes_delivers_everything(pair: Pair) -> None:
    """The script case: send N MB, close at once; the tailnet peer gets all of it, then EOF."""
    a, b = pair
    data = os.urandom(16 * MB)
    received: list[bytes] = []

    def serve(listener: tailnet.Listener) -> None:  # reads as it arrives, as a service does
        peer, _ = listener.accept(timeout=HANG_GUARD)
        with peer:
            received.append(recv_all(peer))

    with b.listen("tcp", ":80") as listener, a.forward((b.hostname, 80)) as fwd:
        server = threading.Thread(target=serve, args=(listener,))
        server.start()
        with connect(fwd) as conn:
            conn.sendall(data)
        server.join(HANG_GUARD)  # the forwarder's close waits for delivery: join first
    assert received, "the service got no connection"
    assert sha256(received[0]) == sha256(data)


def test_a_tailnet_service_that_writes_and_closes_delivers_everything(pair: Pair) -> None:
    """The other way: the service's last write and its close both reach the local client."""
    a, b = pair
    data = os.urandom(16 * MB)

    def serve(listener: tailnet.Listener) -> None:
        peer, _ = listener.accept(timeout=HANG_GUARD)
        with peer:
            peer.sendall(data)

    with b.listen("tcp", ":81") as listener, a.forward(f"{b.hostname}:81") as fwd:
        server = threading.Thread(target=serve, args=(listener,))
        server.start()
        with connect(fwd) as conn:
            assert sha256(recv_all(conn)) == sha256(data)
        server.join()


def test_a_half_close_passes_through_both_ways(echo_pair: tuple[tailnet.Server, str]) -> None:
    node, target = echo_pair
    with node.forward(target) as fwd, connect(fwd) as conn:
        conn.sendall(b"request")
        conn.shutdown(socket.SHUT_WR)
        assert recv_all(conn) == b"request"  # the echo's own EOF came back after it


def test_a_peer_reset_resets_the_local_client(pair: Pair) -> None:
    a, b = pair
    with b.listen("tcp", ":82") as listener, a.forward(f"{b.hostname}:82") as fwd, connect(fwd) as conn:
        conn.sendall(b"never read")
        peer, _ = listener.accept(timeout=HANG_GUARD)
        wait_readable(peer)
        peer.sendall(b"last words")
        peer.close()  # with data unread: a RST
        data, error = read_until_error(conn)
        assert b"last words".startswith(data)
        assert isinstance(error, ConnectionResetError)


def test_a_local_client_reset_resets_the_tailnet_peer(pair: Pair) -> None:
    a, b = pair
    with b.listen("tcp", ":83") as listener, a.forward(f"{b.hostname}:83") as fwd:
        conn = connect(fwd)
        conn.sendall(b"hello")
        peer, _ = listener.accept(timeout=HANG_GUARD)
        with peer:
            assert peer.recv(5) == b"hello"
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # a RST
            with pytest.raises(tailnet.ConnectionReset, match="reset by the peer"):
                recv_all(peer)


def test_an_unreachable_service_resets_the_local_client(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    a, b = pair
    # Nobody listens on 84.
    with (
        a.forward(f"{b.hostname}:84", timeout=30) as fwd,
        connect(fwd) as conn,
        pytest.raises(ConnectionResetError),
    ):
        recv_all(conn)
    assert f"forward to {b.hostname}:84" in caplog.text


def test_a_unix_socket_is_the_owners_only_and_removed_on_close(
    echo_pair: tuple[tailnet.Server, str], tmp_path: Path
) -> None:
    node, target = echo_pair
    path = tmp_path / "svc.sock"
    with node.forward(target, str(path)) as fwd:
        assert fwd.address == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with connect(fwd) as conn:
            assert_echoes_intact(conn, 4 * MB)
    assert not path.exists()


def test_a_chosen_port_and_host(echo_pair: tuple[tailnet.Server, str]) -> None:
    node, target = echo_pair
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with node.forward(target, f"127.0.0.1:{port}") as fwd:
        assert fwd.address == ("127.0.0.1", port)
        with connect(fwd) as conn:
            assert_echoes_intact(conn, 1024)


def test_bad_arguments_raise_typed_errors(pair: Pair, tmp_path: Path) -> None:
    a, b = pair
    target = f"{b.hostname}:7"
    with pytest.raises(tailnet.ConfigurationError):
        a.forward("no-port")
    with pytest.raises(tailnet.ConfigurationError):
        a.forward(f"{b.hostname}:0")
    with pytest.raises(TypeError):
        a.forward(5432)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a.forward(target, 1.5)  # type: ignore[arg-type]
    with pytest.raises(tailnet.ConfigurationError):
        a.forward(target, 70000)
    with pytest.raises(tailnet.ConfigurationError):
        a.forward(target, "db.example:5432")  # a local name other than localhost
    with pytest.raises(tailnet.ConfigurationError):
        a.forward(target, timeout=-1)
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(tailnet.AddressInUseError):
        a.forward(target, taken.getsockname()[1])
    existing = tmp_path / "exists"
    existing.touch()
    with pytest.raises(tailnet.AddressInUseError):
        a.forward(target, existing)
    assert existing.exists()  # not removed


def test_forwarding_leaks_no_descriptor(echo_pair: tuple[tailnet.Server, str]) -> None:
    node, target = echo_pair
    baseline = open_fds()
    with node.forward(target) as fwd:
        for _ in range(20):
            with connect(fwd) as conn:
                assert_echoes_intact(conn, 1000)
    settle_fds(baseline)


def test_a_closed_server_cannot_forward(local_tailnet: tailnet.testing.LocalTailnet) -> None:
    server = local_tailnet.server("fwd-closed")
    server.close()
    with pytest.raises(tailnet.ClosedError):
        server.forward("peer:80")


def test_closing_aborts_a_connection_held_past_the_linger_time(
    local_tailnet: tailnet.testing.LocalTailnet, pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """A client still connected when the forwarder closes gets a reset after linger, never an EOF."""
    _, b = pair
    with local_tailnet.server("fwd-linger", linger=0.5) as a, b.listen("tcp", ":85") as listener:
        fwd = a.forward(f"{b.hostname}:85", timeout=60)
        conn = connect(fwd)
        conn.sendall(b"x")
        peer, _ = listener.accept(timeout=HANG_GUARD)
        with peer:
            assert peer.recv(1) == b"x"
            fwd.close()
            with pytest.raises(ConnectionResetError):
                recv_all(conn)
            with pytest.raises(tailnet.ConnectionReset):
                recv_all(peer)
        conn.close()
    assert "closed with 1 connection(s) open after the linger time" in caplog.text


# ---- async, on asyncio and trio


async def receive_all(stream: anyio.abc.ByteStream) -> bytes:
    received = bytearray()
    async for chunk in stream:
        received += chunk
    return bytes(received)


async def test_async_forwarder_relays_and_passes_resets_on(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    a, b = nodes
    data = os.urandom(4 * MB)
    async with await b.listen("tcp", ":86") as listener, a.forward(f"{b.hostname}:86") as fwd:
        host, port = tcp_address(fwd)
        async with await anyio.connect_tcp(host, port) as conn:
            await conn.send(data)
            await conn.send_eof()
            peer = await listener.accept()
            async with peer:
                assert sha256(await receive_all(peer)) == sha256(data)
                await peer.send(b"reply")
                await peer.send_eof()
            assert await conn.receive() == b"reply"
            with pytest.raises(anyio.EndOfStream):
                await conn.receive()
        # A reset from the tailnet side is a reset for the local client.
        async with await anyio.connect_tcp(host, port) as conn:
            await conn.send(b"never read")
            peer = await listener.accept()
            await anyio.wait_readable(peer.extra(anyio.abc.SocketAttribute.raw_socket))
            await peer.abort()
            with pytest.raises(anyio.BrokenResourceError):
                await receive_all(conn)


async def test_async_forwarder_on_a_unix_socket(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], tmp_path: Path
) -> None:
    a, b = nodes
    path = tmp_path / "a.sock"
    async with await b.listen("tcp", ":87") as listener, anyio.create_task_group() as tg:
        fwd = a.forward((b.hostname, 87), path)
        await tg.start(fwd.serve)
        async with await anyio.connect_unix(path) as conn:
            await conn.send(b"ping")
            peer = await listener.accept()
            async with peer:
                assert await peer.receive() == b"ping"
                await peer.send(b"pong")
            assert await conn.receive() == b"pong"
            with pytest.raises(anyio.EndOfStream):
                await conn.receive()
        fwd.close_soon()
    assert not path.exists()
