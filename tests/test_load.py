"""Load: 1000 connections open at once, 1 MiB through each, every byte checked.

In the default suite, marked ``load`` (deselect with ``-m 'not load'``):
about 2 GiB cross two netstacks in one process.
"""

from __future__ import annotations

import functools
import hashlib
import random
import resource
from collections.abc import AsyncIterator

import anyio
import pytest
from harness.helpers import aknows, go_counter

import tailnet
from tailnet.testing import LocalTailnet

# Hang guards: about two minutes on an idle 2-core machine, several times that on a loaded one.
pytestmark = [pytest.mark.load, pytest.mark.anyio, pytest.mark.timeout(3600)]

COUNT = 1000
SIZE = 1 << 20
CHUNK = 64 << 10


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def nodes(
    local_tailnet: LocalTailnet,
) -> AsyncIterator[tuple[tailnet.AsyncServer, tailnet.AsyncServer]]:
    async with local_tailnet.async_server("load-a") as a, local_tailnet.async_server("load-b") as b:
        await aknows(a, b)
        await aknows(b, a)
        yield a, b


def describe(error: BaseException) -> str:
    """An abort as the test reports it: the exception and why (its cause)."""
    cause = error.__cause__
    return f"{type(error).__name__}({type(cause).__name__}: {cause})" if cause else repr(error)


async def echo(stream: tailnet.TailnetStream, failures: list[str]) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive(CHUNK))
        except anyio.EndOfStream:
            await stream.send_eof()
        except anyio.BrokenResourceError as error:
            failures.append(f"echo: {describe(error)}")


async def test_1000_connections_of_1_mib_each(nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    a, b = nodes
    all_open = anyio.Event()
    opened = 0
    results: list[tuple[str, str, int]] = []  # sent digest, received digest, bytes received
    failures: list[str] = []  # aborted connections: an abort is an error, never a short read

    async def client(seed: int) -> None:
        nonlocal opened
        data = random.Random(seed)  # test data, different on every connection
        sent, received = hashlib.sha256(), hashlib.sha256()
        count = 0
        async with await a.dial("tcp", (str(b.ips[0]), 9), timeout=120) as stream:
            opened += 1
            if opened == COUNT:
                all_open.set()
            await all_open.wait()  # all 1000 are open from here on

            async def send() -> None:
                try:
                    for _ in range(SIZE // CHUNK):
                        chunk = data.randbytes(CHUNK)
                        sent.update(chunk)
                        await stream.send(chunk)
                    await stream.send_eof()
                except anyio.BrokenResourceError as error:
                    failures.append(f"client {seed} sending: {describe(error)}")

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                try:
                    while True:
                        chunk = await stream.receive(CHUNK)
                        received.update(chunk)
                        count += len(chunk)
                except anyio.EndOfStream:
                    pass
                except anyio.BrokenResourceError as error:
                    failures.append(f"client {seed} after {count} bytes: {describe(error)}")
        results.append((sent.hexdigest(), received.hexdigest(), count))

    async with await b.listen("tcp", ":9") as listener, anyio.create_task_group() as server:
        server.start_soon(listener.serve, functools.partial(echo, failures=failures), server)
        with anyio.fail_after(3000):  # a hang guard, not a speed goal
            async with anyio.create_task_group() as clients:
                for seed in range(COUNT):
                    clients.start_soon(client, seed)
        server.cancel_scope.cancel()
    assert failures == [], f"{len(failures)} connections aborted: {failures[:20]}"
    assert len(results) == COUNT
    short = [count for _, _, count in results if count != SIZE]
    assert short == [], f"{len(short)} connections cut short"
    assert all(sent == received for sent, received, _ in results), "an echo came back different"
    assert go_counter("ops") == 0
