"""The suite's fixtures. The local_tailnet and tailnet_node fixtures of
tailnet's own pytest plugin (tailnet.testing.pytest_plugin), the same one
users get, are overridden or used here; helpers live in harness.helpers."""

from __future__ import annotations

import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from harness.helpers import EchoServer, aknows, knows, node_name_base

import tailnet
from tailnet.testing import LocalTailnet


def pytest_configure(config: pytest.Config) -> None:
    """Make sure the children that tests interrupt can see Ctrl-C.

    A shell starts a background command (``nohup ./dev test &``) with
    SIGINT ignored, and every child inherits that. A child started so
    rightly ignores Ctrl-C, and the tests that send it SIGINT would wait
    for an exit that never comes. Handling SIGINT here, as Python does by
    default, makes children start with the default disposition again.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="module")
def local_tailnet() -> Iterator[LocalTailnet]:
    """A local tailnet per test module (the plugin's is per session).

    The local control server never forgets a node, closed or not, so one
    tailnet for the whole suite ends with hundreds of stale peers in every
    map, and maps reach long-lived nodes more slowly late in a run.
    """
    with LocalTailnet() as net:
        yield net


@pytest.fixture
def pair(
    tailnet_node: Callable[..., tailnet.Server], request: pytest.FixtureRequest
) -> tuple[tailnet.Server, tailnet.Server]:
    """Two nodes that are up, with names unique to the test."""
    base = node_name_base(request)
    a, b = tailnet_node(f"{base}-a"), tailnet_node(f"{base}-b")
    knows(a, b)
    knows(b, a)
    return a, b


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on both of anyio's backends (a module may narrow it)."""
    return str(request.param)


@pytest.fixture
async def nodes(
    local_tailnet: LocalTailnet, anyio_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[tailnet.AsyncServer, tailnet.AsyncServer]]:
    """Two async nodes that know each other, with names unique to the test."""
    base = node_name_base(request)
    async with local_tailnet.async_server(f"{base}-a") as a, local_tailnet.async_server(f"{base}-b") as b:
        await aknows(a, b)  # until then b's name does not resolve on a
        await aknows(b, a)
        yield a, b


@pytest.fixture
def echo(pair: tuple[tailnet.Server, tailnet.Server]) -> Iterator[EchoServer]:
    """An echo service on port 7 of the second node of ``pair``."""
    server = EchoServer(pair[1].listen("tcp", ":7"))
    yield server
    server.close()


@pytest.fixture
def silent_control() -> Iterator[str]:
    """A control URL whose server never answers: connections wait in its backlog, never accepted.

    (Never accepted, so the test process holds no descriptor for them.)
    """
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
