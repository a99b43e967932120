"""whois, status, ping, state and watch (async API) on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from anyio.abc import SocketAttribute
from harness.helpers import aknows, go_counter, node_name_base, open_fds

import tailnet
from tailnet.testing import LocalTailnet

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition that settles asynchronously (a goroutine ending)."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


@pytest.fixture
async def nodes(
    local_tailnet: LocalTailnet, anyio_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[tailnet.AsyncServer, tailnet.AsyncServer]]:
    base = node_name_base(request)
    async with (
        local_tailnet.async_server(f"{base}-a", tags=["tag:async"]) as a,
        local_tailnet.async_server(f"{base}-b") as b,
    ):
        await aknows(a, b)
        await aknows(b, a)
        yield a, b


async def test_whois_of_an_accepted_stream(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    async with await b.listen("tcp", ":0") as listener:
        port = int(listener.address.rsplit(":", 1)[1])
        client = await a.dial("tcp", (str(b.ips[0]), port), timeout=30)
        served = await listener.accept()
        async with client, served:
            who = await b.whois(served.extra(SocketAttribute.remote_address))
    assert who.node_name == a.hostname
    assert who.tags == ("tag:async",)
    assert set(who.node.ips) == set(a.ips)
    assert who.login_name


async def test_status_and_ping(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, b = nodes
    status = await a.status()
    assert status.state is tailnet.BackendState.RUNNING
    assert status.self_node.tags == ("tag:async",)
    peer = status.peer(b.hostname)
    assert peer is not None
    assert peer.ips == b.ips
    assert peer.online

    result = await a.ping(b.hostname)
    assert result.latency > 0
    assert result.path in {tailnet.ConnectionPath.DIRECT, tailnet.ConnectionPath.DERP}
    assert (await a.ping(b.ips[0], kind="tsmp")).path is tailnet.ConnectionPath.UNKNOWN
    assert a.state is tailnet.BackendState.RUNNING
    assert a.login_url is None


async def test_typed_errors(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    a, _ = nodes
    await a.status()  # warm up
    fds = open_fds()
    with pytest.raises(tailnet.PeerNotFound):
        await a.whois("100.100.100.100:1")
    with pytest.raises(tailnet.PeerNotFound):
        await a.ping("no-such-peer")
    with pytest.raises(tailnet.ConfigurationError):
        await a.whois("nonsense")
    with pytest.raises(tailnet.ConfigurationError):
        await a.ping(a.ips[0])
    assert go_counter("ops") == 0
    assert open_fds() <= fds


async def test_cancelling_a_ping_frees_it(local_tailnet: LocalTailnet, anyio_backend: str) -> None:
    async with local_tailnet.async_server(f"cancel-ping-{anyio_backend}") as a:
        async with local_tailnet.async_server(f"cancel-gone-{anyio_backend}") as gone:
            await aknows(a, gone)
            ip = gone.ips[0]
        with anyio.move_on_after(0.5) as scope:  # nothing answers: only the cancel ends it
            await a.ping(ip, timeout=None)
        assert scope.cancelled_caught
        await until(lambda: go_counter("ops") == 0)  # the cancelled goroutine ends


async def test_watch_sees_starting_then_running(local_tailnet: LocalTailnet, anyio_backend: str) -> None:
    server = local_tailnet.async_server(f"async-watch-{anyio_backend}")
    try:
        states: list[tailnet.BackendState] = []
        async with await server.watch() as watcher, anyio.create_task_group() as tg:
            tg.start_soon(server.up, 60)
            async for event in watcher:
                assert isinstance(event, tailnet.StateChanged), event
                states.append(event.state)
                if event.state is tailnet.BackendState.RUNNING:
                    break
        assert tailnet.BackendState.STARTING in states[: states.index(tailnet.BackendState.RUNNING)]

        watcher = await server.watch()
        async with anyio.create_task_group() as tg:
            assert await watcher.receive() == tailnet.StateChanged(tailnet.BackendState.RUNNING)

            async def close_soon() -> None:
                await watcher.aclose()

            tg.start_soon(close_soon)
            with pytest.raises(anyio.ClosedResourceError):
                await watcher.receive()  # pending when closed

        watcher = await server.watch()
        await server.aclose()
        events = [event async for event in watcher]  # ends: the server closed
        assert all(isinstance(e, tailnet.StateChanged) for e in events)
        with pytest.raises(anyio.EndOfStream):
            await watcher.receive()
        await watcher.aclose()
    finally:
        await server.aclose()
    with pytest.raises(tailnet.ClosedError):
        await server.watch()
    with pytest.raises(tailnet.ClosedError):
        await server.status()


async def test_up_with_a_coroutine_callback(local_tailnet: LocalTailnet, anyio_backend: str) -> None:
    events: list[tailnet.WatchEvent] = []

    async def collect(event: tailnet.WatchEvent) -> None:
        await anyio.sleep(0)
        events.append(event)

    server = local_tailnet.async_server(f"async-up-cb-{anyio_backend}")
    try:
        await server.up(60, on_event=collect)
        assert tailnet.StateChanged(tailnet.BackendState.STARTING) in events
    finally:
        await server.aclose()


async def test_a_failing_callback_stops_up_ungrouped(local_tailnet: LocalTailnet, anyio_backend: str) -> None:
    def fail(event: tailnet.WatchEvent) -> None:
        raise KeyError("from the callback")

    server = local_tailnet.async_server(f"async-up-fail-{anyio_backend}")
    try:
        with pytest.raises(KeyError, match="from the callback"):
            await server.up(60, on_event=fail)
    finally:
        await server.aclose()
    await until(lambda: go_counter("ops") == 0)
