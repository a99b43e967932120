"""An abort is an error: a connection cut on the tailnet side never reads as end-of-file.

Sync sockets raise :class:`tailnet.ConnectionReset` (a
``ConnectionResetError``) or :class:`tailnet.ConnectionTimedOut` (a
``TimeoutError``); async streams raise ``anyio.BrokenResourceError`` caused
by one of them; through ``ssl`` it is a ``ConnectionResetError``. Each case
is made the way it happens to users: a peer closing with data unread (a
RST), a server closing under a held connection, the linger time running
out, a peer process killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from harness.helpers import NODE, aknows, eventually, knows, read_until_error, recv_all

import tailnet
from tailnet.testing import LocalTailnet, set_knob

Pair = tuple[tailnet.Server, tailnet.Server]


def accept_pair(pair: Pair, port: int) -> tuple[socket.socket, socket.socket]:
    """A connection from pair[0] (dialer) to pair[1] (acceptor): (dialed, accepted)."""
    a, b = pair
    with b.listen("tcp", f":{port}") as listener:
        dialed = a.dial("tcp", (str(b.ips[0]), port), timeout=30)
        accepted, _ = listener.accept(timeout=30)
    return dialed, accepted


def wait_readable(sock: socket.socket) -> None:
    """Until data (or end-of-file) is queued on sock: what a peer sent has arrived."""
    assert select.select([sock], [], [], 60)[0], "nothing arrived"


def reset_from(sock: socket.socket, unread_from: socket.socket, last: bytes) -> None:
    """Reset sock's side: ``unread_from`` sends data sock never reads; sock sends ``last`` and closes."""
    unread_from.sendall(b"never read")
    wait_readable(sock)
    sock.sendall(last)
    sock.close()  # with data unread: a RST, as from a kernel


def test_a_peer_reset_raises_connection_reset_after_the_data(pair: Pair) -> None:
    dialed, accepted = accept_pair(pair, 7001)
    with dialed:
        reset_from(accepted, unread_from=dialed, last=b"last words")
        data, error = read_until_error(dialed)
        assert data == b"last words"
        assert isinstance(error, tailnet.ConnectionReset)
        assert isinstance(error, ConnectionResetError)
        assert "reset by the peer" in str(error)
        # Writing fails too.
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            dialed.sendall(b"x")


def test_makefile_reads_raise_on_a_reset(pair: Pair) -> None:
    dialed, accepted = accept_pair(pair, 7002)
    with dialed, dialed.makefile("rb") as reader:
        reset_from(accepted, unread_from=dialed, last=b"")
        with pytest.raises(tailnet.ConnectionReset):
            reader.read()


def test_the_dialer_resetting_reaches_the_acceptor(pair: Pair) -> None:
    dialed, accepted = accept_pair(pair, 7003)
    with accepted:
        reset_from(dialed, unread_from=accepted, last=b"bye")
        data, error = read_until_error(accepted)
        assert data == b"bye"
        assert isinstance(error, tailnet.ConnectionReset)


def test_a_half_closed_socket_still_sees_the_reset(pair: Pair) -> None:
    """A client that sent its request and half-closed is told of the abort, not given EOF."""
    dialed, accepted = accept_pair(pair, 7004)
    with dialed:
        dialed.sendall(b"request")
        dialed.shutdown(socket.SHUT_WR)
        wait_readable(accepted)  # the request is there, unread
        accepted.close()
        with pytest.raises(tailnet.ConnectionReset):
            dialed.recv(100)


def test_a_server_closed_under_a_held_connection(pair: Pair, local_tailnet: LocalTailnet) -> None:
    """The closing side's socket raises; the peer gets everything written, then EOF."""
    a, _ = pair
    with local_tailnet.server("held-b") as b:
        knows(a, b)
        dialed, accepted = accept_pair((a, b), 7005)
        accepted.sendall(b"written before close")
        b.close()
        with pytest.raises(tailnet.ConnectionReset, match="'held-b' was closed"):
            accepted.recv(100)
        with pytest.raises(ConnectionResetError):
            accepted.sendall(b"after close")
        accepted.close()
        with dialed:
            assert recv_all(dialed) == b"written before close"


def freeze(proc: subprocess.Popen[str]) -> None:
    """SIGSTOP proc and wait until every thread of it has stopped.

    The signal is only queued when kill() returns: a thread running on
    another core goes on until it next enters the kernel, and on a busy
    machine that can be long enough to acknowledge what we send next.
    """
    proc.send_signal(signal.SIGSTOP)

    def all_stopped() -> bool:
        states = []
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                states.append(task.joinpath("stat").read_text().rpartition(")")[2].split()[0])
        return all(state in ("T", "t") for state in states)

    eventually(all_stopped)


def test_linger_over_aborts_with_one_warning(
    local_tailnet: LocalTailnet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that stops answering (its process frozen): close gives up after the linger time, warns once."""
    peer = spawn_echo(local_tailnet, tmp_path, "frozen-peer")
    try:
        b = local_tailnet.server("linger-b", linger=0.5).up(timeout=60)
        eventually_knows(b, "frozen-peer")
        with b.dial("tcp", "frozen-peer:7", timeout=30) as conn:
            conn.sendall(b"ping")
            assert conn.recv(4) == b"ping"  # the path works, and the peer has acknowledged everything
            freeze(peer)
            size = 256 << 10  # fits this side's buffers: sendall returns, nothing is acknowledged
            conn.sendall(b"z" * size)
            caplog.set_level(logging.WARNING, logger="tailnet")
            started = time.monotonic()
            b.close()  # conn is still open: it is closed as a process exit would, within the linger
            assert time.monotonic() - started >= 0.5
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, warnings
            assert "[linger-b]" in warnings[0]
            assert "1 connection(s)" in warnings[0]
            assert f" {size} byte(s)" in warnings[0]
            with pytest.raises(tailnet.ConnectionReset, match="'linger-b' was closed"):
                conn.recv(1)
    finally:
        peer.send_signal(signal.SIGCONT)
        end(peer)


def test_linger_zero_aborts_at_once_and_the_peer_sees_a_reset(
    pair: Pair, local_tailnet: LocalTailnet
) -> None:
    a, _ = pair
    b = local_tailnet.server("linger-zero", linger=0).up()
    knows(a, b)
    dialed, accepted = accept_pair((a, b), 7007)
    with dialed:
        accepted.sendall(b"before the close")
        b.close()
        with pytest.raises(tailnet.ConnectionReset):
            recv_all(accepted)
        accepted.close()
        data, error = read_until_error(dialed)  # the RST went out before the node stopped
        assert data in (b"", b"before the close")
        assert isinstance(error, tailnet.ConnectionReset), error


@pytest.mark.parametrize("linger", [-1, float("nan"), float("inf")])
def test_a_bad_linger_is_a_configuration_error(linger: float, tmp_path: Path) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="linger"):
        tailnet.Server("bad-linger", state_dir=tmp_path, linger=linger)


def test_a_linger_of_the_wrong_type_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="linger"):
        tailnet.Server("bad-linger", state_dir=tmp_path, linger="10")  # type: ignore[arg-type]


# Through ssl: the descriptor is read by OpenSSL, not by TailnetSocket.


def test_a_reset_through_ssl_is_an_error_and_a_clean_close_is_eof(
    pair: Pair, local_tailnet: LocalTailnet
) -> None:
    """Through ssl the descriptor is read by OpenSSL, not by TailnetSocket.

    OpenSSL reports a reset as an EOF without TLS's close_notify, which
    Python's ssl turns into b"" unless ``suppress_ragged_eofs=False``, for
    kernel sockets too; with it, the abort raises and a clean close (whose
    close_notify the library sends) reads b"".
    """
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    context = ssl.create_default_context(cadata=local_tailnet.ca_pem)
    with b.listen_tls("tcp", ":443", timeout=60) as listener:
        for abort in (False, True):
            raw = a.dial("tcp", f"{b.hostname}:443", timeout=30)
            with context.wrap_socket(raw, server_hostname=domain, suppress_ragged_eofs=False) as client:
                client.sendall(b"request")
                conn, _ = listener.accept(timeout=30)
                wait_readable(conn)
                if not abort:
                    assert conn.recv(100) == b"request"
                conn.sendall(b"answer")
                conn.close()  # with the request unread when aborting: a RST
                assert client.recv(100) == b"answer"
                if abort:
                    with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
                        client.recv(100)
                else:
                    assert client.recv(100) == b""


# A vanished peer: killed, it sends neither FIN nor RST. Keepalive finds
# it gone within idle + 4 probes if the connection is idle, retransmissions
# if data (a FIN too) is in flight; both made short here.

FAST_KEEPALIVE = {
    "TS_NETSTACK_KEEPALIVE_IDLE": "1s",
    "TS_NETSTACK_KEEPALIVE_INTERVAL": "1s",
    "TS_NETSTACK_MAX_RETRIES": "4",
}


@pytest.fixture
def fast_keepalive() -> Iterator[None]:
    """Short keepalive for this process's new connections, restored afterwards."""
    for name, value in FAST_KEEPALIVE.items():
        set_knob(name, value)
    yield
    for name in FAST_KEEPALIVE:
        set_knob(name, "")


def spawn_echo(
    local_tailnet: LocalTailnet, tmp_path: Path, name: str, mode: str = "echo"
) -> subprocess.Popen[str]:
    """An echo node in its own process (node_process.py echo or echo-hold), once it listens."""
    proc = subprocess.Popen(
        [sys.executable, NODE, mode, name, str(tmp_path / name)],
        env={**os.environ, **local_tailnet.environ},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def end(proc: subprocess.Popen[str]) -> None:
    """Kill proc if it still runs, and close its pipe."""
    proc.kill()
    proc.communicate(timeout=30)


@pytest.mark.usefixtures("fast_keepalive")
def test_a_vanished_peer_times_out(local_tailnet: LocalTailnet, tmp_path: Path) -> None:
    peer = spawn_echo(local_tailnet, tmp_path, "vanishing", mode="echo-hold")
    try:
        with local_tailnet.server("survivor") as node:
            eventually_knows(node, "vanishing")
            with node.dial("tcp", "vanishing:7", timeout=30) as conn:
                conn.sendall(b"ping")
                assert conn.recv(4) == b"ping"
                conn.shutdown(socket.SHUT_WR)  # half-closed, waiting: the held byte's case
                # The peer has read our FIN and holds its side open (a plain echo
                # would answer with its own FIN, a clean end, before the kill lands).
                assert peer.stdout is not None
                assert peer.stdout.readline() == "eof\n"
                peer.kill()
                peer.wait(30)
                killed = time.monotonic()
                with pytest.raises(tailnet.ConnectionTimedOut, match="stopped answering") as info:
                    conn.recv(100)
                assert isinstance(info.value, TimeoutError)
                # A hang guard, not a speed goal: 1 s idle + 4 probes of 1 s, with slack.
                assert time.monotonic() - killed < 60
    finally:
        end(peer)


def eventually_knows(node: tailnet.Server, name: str) -> None:
    deadline = time.monotonic() + 60
    while node.status().peer(name) is None:
        assert time.monotonic() < deadline, f"{name} never appeared in the map"
        time.sleep(0.05)


# The same through the async API, on asyncio and trio.


async def async_accept_pair(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], port: int
) -> tuple[tailnet.TailnetStream, tailnet.TailnetStream]:
    a, b = nodes
    async with await b.listen("tcp", f":{port}") as listener:
        dialed = await a.dial("tcp", (str(b.ips[0]), port), timeout=30)
        accepted = await listener.accept()
    return dialed, accepted


@pytest.mark.anyio
async def test_async_peer_reset_is_broken_resource_from_connection_reset(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    dialed, accepted = await async_accept_pair(nodes, 7011)
    async with dialed:
        await dialed.send(b"never read")
        await anyio.wait_readable(accepted.extra(anyio.abc.SocketAttribute.raw_socket))
        await accepted.send(b"last")
        await accepted.aclose()
        assert await dialed.receive() == b"last"
        with pytest.raises(anyio.BrokenResourceError) as info:
            await dialed.receive()
        assert isinstance(info.value.__cause__, tailnet.ConnectionReset)
        assert "reset by the peer" in str(info.value.__cause__)


@pytest.mark.anyio
async def test_async_server_closed_under_a_held_stream(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], local_tailnet: LocalTailnet
) -> None:
    a, _ = nodes
    async with local_tailnet.async_server("held-async") as b:
        await aknows(a, b)
        dialed, accepted = await async_accept_pair((a, b), 7012)
        await accepted.send(b"written before close")
        await b.aclose()
        with pytest.raises(anyio.BrokenResourceError) as info:
            await accepted.receive()
        assert isinstance(info.value.__cause__, tailnet.ConnectionReset)
        await accepted.aclose()
        async with dialed:
            assert await dialed.receive() == b"written before close"
            with pytest.raises(anyio.EndOfStream):
                await dialed.receive()


@pytest.mark.anyio
@pytest.mark.usefixtures("fast_keepalive")
async def test_async_vanished_peer_times_out(local_tailnet: LocalTailnet, tmp_path: Path) -> None:
    peer = spawn_echo(local_tailnet, tmp_path, "vanishing-async")
    try:
        async with local_tailnet.async_server("survivor-async") as node:
            with anyio.fail_after(60):
                while (await node.status()).peer("vanishing-async") is None:
                    await anyio.sleep(0.05)
            async with await node.dial("tcp", "vanishing-async:7", timeout=30) as stream:
                await stream.send(b"ping")
                assert await stream.receive() == b"ping"
                peer.kill()
                peer.wait(30)
                with anyio.fail_after(60), pytest.raises(anyio.BrokenResourceError) as info:
                    await stream.receive()
                assert isinstance(info.value.__cause__, tailnet.ConnectionTimedOut)
    finally:
        end(peer)


@pytest.mark.usefixtures("fast_keepalive")
def test_a_slow_reader_is_not_a_vanished_peer(pair: Pair) -> None:
    """A peer that stops reading for longer than the dead-peer bound, but answers, keeps its connection.

    Its window is closed, so the sender probes it and it acknowledges the
    probes: it is there, only busy (a loaded machine, a slow consumer).
    With keepalive made short (1 s + 4 x 1 s), ten seconds of not reading
    must cut nothing.
    """
    dialed, accepted = accept_pair(pair, 7008)
    size = 32 << 20  # more than every buffer on the way holds
    data = os.urandom(size)
    errors: list[OSError] = []

    def send() -> None:
        try:
            dialed.sendall(data)
        except OSError as exc:
            errors.append(exc)

    writer = threading.Thread(target=send)
    with dialed, accepted:
        writer.start()
        wait_readable(accepted)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the reader is busy elsewhere: it reads nothing
            assert errors == []
            assert writer.is_alive(), "the sender finished: the buffers hold it all, make it bigger"
            writer.join(0.5)
        received = recv_all_exactly(accepted, size)
        writer.join(60)
    assert errors == []
    assert received == data


def recv_all_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = sock.recv(min(size, 1 << 20))
        assert chunk, "end-of-file before all the data"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
