"""The anyio API on asyncio and trio."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketAttribute, TaskGroup
from harness.helpers import avanished_peer, eventually, go_counter, open_fds, settle_fds

import tailnet
from tailnet.testing import LocalTailnet

pytestmark = pytest.mark.anyio


async def echo_handler(stream: tailnet.TailnetStream) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive())
        except anyio.EndOfStream:
            await stream.send_eof()


async def receive_all(stream: anyio.abc.ByteReceiveStream) -> bytes:
    chunks = []
    try:
        while True:
            chunks.append(await stream.receive())
    except anyio.EndOfStream:
        return b"".join(chunks)


async def test_echo_and_addresses(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    listener = await b.listen("tcp", ":7")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_handler)
        async with await a.dial("tcp", f"{b.hostname}:7", timeout=30) as stream:
            assert isinstance(stream, anyio.abc.SocketStream)
            await stream.send(b"hello")
            assert await stream.receive() == b"hello"
            assert stream.extra(SocketAttribute.remote_address) == (str(b.ips[0]), 7)
            assert stream.extra(SocketAttribute.remote_port) == 7
            assert stream.extra(SocketAttribute.local_address)[0] == str(a.ips[0])
            assert stream.extra(SocketAttribute.family) == socket.AF_INET
        tg.cancel_scope.cancel()


async def test_accepted_stream_knows_its_peer(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    async with await b.listen("tcp", ":8") as listener:
        client = await a.dial("tcp", (str(b.ips[0]), 8), timeout=30)
        served = await listener.accept()
        async with client, served:
            assert served.extra(SocketAttribute.remote_address) == client.extra(SocketAttribute.local_address)
            assert served.extra(SocketAttribute.local_address) == (str(b.ips[0]), 8)


async def test_8_mib_with_half_close(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    data = os.urandom(8 << 20)
    async with await b.listen("tcp", ":9") as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_handler, tg)
        async with await a.dial("tcp", f"{b.hostname}:9", timeout=30) as stream:

            async def send() -> None:
                await stream.send(data)
                await stream.send_eof()

            tg.start_soon(send)
            received = await receive_all(stream)
        tg.cancel_scope.cancel()
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


async def test_tls_and_buffered_streams_wrap_it(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    from anyio.streams.buffered import BufferedByteReceiveStream

    a, b = nodes
    async with await b.listen("tcp", ":10") as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_handler)
        async with await a.dial("tcp", f"{b.hostname}:10", timeout=30) as stream:
            await stream.send(b"line one\nline two\n")
            buffered = BufferedByteReceiveStream(stream)
            assert await buffered.receive_until(b"\n", 100) == b"line one"
            assert await buffered.receive_until(b"\n", 100) == b"line two"
        tg.cancel_scope.cancel()


async def test_1000_concurrent_connections_bounded_threads(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    a, b = nodes
    count = 1000
    payload = os.urandom(64 << 10)
    threads_before = threading.active_count()
    peak_threads = threads_before
    intact = 0
    all_open = anyio.Event()
    opened = 0

    async def client() -> None:
        nonlocal intact, opened, peak_threads
        async with await a.dial("tcp", f"{b.hostname}:11", timeout=60) as stream:
            opened += 1
            if opened == count:
                all_open.set()
            await all_open.wait()  # all are open at once from here
            await stream.send(payload)
            await stream.send_eof()
            echoed = await receive_all(stream)  # (not `intact += await ...`: that loses updates)
            intact += echoed == payload
            peak_threads = max(peak_threads, threading.active_count())

    async with await b.listen("tcp", ":11") as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_handler, tg)
        async with anyio.create_task_group() as clients:
            for _ in range(count):
                clients.start_soon(client)
        tg.cancel_scope.cancel()
    assert intact == count, f"only {intact} of {count} echoes intact"
    # No thread per connection or per accept: the count stays near where it was.
    assert peak_threads < threads_before + 10, (threads_before, peak_threads)


async def test_cancel_pending_up(silent_control: str, tmp_path: Path, anyio_backend: str) -> None:
    server = tailnet.AsyncServer("cancel-up", control_url=silent_control, state_dir=tmp_path, authkey="k")
    fds, ops = open_fds(), go_counter("ops")  # after the process-wide log pipe exists
    with anyio.move_on_after(0.2) as scope:
        await server.up()
    assert scope.cancelled_caught
    eventually(lambda: go_counter("ops") == ops)  # Go was told to stop
    await server.aclose()
    settle_fds(fds)


async def test_cancel_pending_dial(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], local_tailnet: LocalTailnet
) -> None:
    a, _ = nodes
    gone = await avanished_peer(local_tailnet, a, f"{a.hostname}-gone")
    fds, ops = open_fds(), go_counter("ops")
    with anyio.move_on_after(0.2) as scope:
        await a.dial("tcp", (gone, 80))  # its SYNs go unanswered
    assert scope.cancelled_caught
    eventually(lambda: go_counter("ops") == ops)
    settle_fds(fds)


async def test_task_cancel_of_dial(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], local_tailnet: LocalTailnet
) -> None:
    a, _ = nodes
    gone = await avanished_peer(local_tailnet, a, f"{a.hostname}-gone")
    ops = go_counter("ops")
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.dial, "tcp", (gone, 80))
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    eventually(lambda: go_counter("ops") == ops)


async def test_aclose_breaks_pending_accept_and_receive(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    a, b = nodes
    listener = await b.listen("tcp", ":12")
    stream = await a.dial("tcp", f"{b.hostname}:12", timeout=30)
    served = await listener.accept()
    results: dict[str, BaseException] = {}

    async def wait_accept() -> None:
        try:
            await listener.accept()
        except BaseException as exc:  # noqa: BLE001
            results["accept"] = exc

    async def wait_receive() -> None:
        try:
            await served.receive()
        except BaseException as exc:  # noqa: BLE001
            results["receive"] = exc

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_accept)
            tg.start_soon(wait_receive)
            await anyio.wait_all_tasks_blocked()
            await b.aclose()
    assert isinstance(results["accept"], anyio.BrokenResourceError)
    # The server closed under the stream: an abort, never EndOfStream.
    assert isinstance(results["receive"], anyio.BrokenResourceError)
    assert isinstance(results["receive"].__cause__, tailnet.ConnectionReset)
    await stream.aclose()
    await served.aclose()
    await listener.aclose()


async def test_stream_aclose_wakes_pending_receive_and_send(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    a, b = nodes
    async with await b.listen("tcp", ":14") as listener:
        stream = await a.dial("tcp", f"{b.hostname}:14", timeout=30)
        served = await listener.accept()  # never reads: the sender fills the buffers
        raised: dict[str, BaseException] = {}

        async def wait(name: str, call: Callable[[], Awaitable[object]]) -> None:
            try:
                await call()
            except BaseException as exc:  # noqa: BLE001
                raised[name] = exc

        raw = stream.extra(SocketAttribute.raw_socket)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, "receive", stream.receive)
                tg.start_soon(wait, "send", lambda: stream.send(b"x" * (64 << 20)))
                await anyio.wait_all_tasks_blocked()
                await stream.aclose()
        assert isinstance(raised["receive"], anyio.ClosedResourceError)
        assert isinstance(raised["send"], anyio.ClosedResourceError)
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()
        assert raw.fileno() == -1  # its descriptor is closed
        await served.aclose()


async def test_stream_receive_checkpoints_keep_data(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer],
) -> None:
    """One receiver at a time; a cancelled receive takes nothing, waiting or not."""
    a, b = nodes
    async with await b.listen("tcp", ":15") as listener:
        stream = await a.dial("tcp", f"{b.hostname}:15", timeout=30)
        async with stream, await listener.accept() as served:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.receive)
                    await anyio.wait_all_tasks_blocked()
                    with pytest.raises(anyio.BusyResourceError):
                        await stream.receive()
                    tg.cancel_scope.cancel()  # while it waits
                await served.send(b"x")
                await anyio.wait_readable(stream.extra(SocketAttribute.raw_socket))
                with anyio.CancelScope() as scope:
                    scope.cancel()  # the data is there: still a checkpoint, and nothing is taken
                    await stream.receive()
                assert scope.cancelled_caught
                assert await stream.receive() == b"x"


async def test_listener_aclose_wakes_accept(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    _, b = nodes
    listener = await b.listen("tcp", ":13")
    raised: list[BaseException] = []

    async def accept() -> None:
        try:
            await listener.accept()
        except anyio.ClosedResourceError as exc:
            raised.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            tg.start_soon(_aclose_when_blocked, listener)
    assert len(raised) == 1


async def _aclose_when_blocked(listener: tailnet.AsyncListener) -> None:
    await anyio.wait_all_tasks_blocked()
    await listener.aclose()


async def test_serve_with_task_group(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    async with await b.listen("tcp", ":14") as listener:
        tg: TaskGroup
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, echo_handler, tg)
            for i in range(3):
                async with await a.dial("tcp", f"{b.hostname}:14", timeout=30) as stream:
                    await stream.send(b"%d" % i)
                    assert await stream.receive() == b"%d" % i
            tg.cancel_scope.cancel()
