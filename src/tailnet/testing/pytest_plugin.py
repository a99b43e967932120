"""pytest fixtures for testing tailnet applications offline.

Installed with tailnet (entry point ``pytest11``), so any project can use:

``local_tailnet``
    A session-wide :class:`~tailnet.testing.LocalTailnet`.
``tailnet_node``
    A factory: ``tailnet_node("name")`` returns a :class:`~tailnet.Server`
    on ``local_tailnet`` that is already up; it is closed after the test.

Loading the plugin costs nothing until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tailnet import Server
    from tailnet.testing import LocalTailnet

__all__ = ["local_tailnet", "tailnet_node"]


@pytest.fixture(scope="session")
def local_tailnet() -> Iterator[LocalTailnet]:
    """A control server, DERP and STUN on 127.0.0.1 for the whole session."""
    from tailnet.testing import LocalTailnet

    with LocalTailnet() as net:
        yield net


@pytest.fixture
def tailnet_node(local_tailnet: LocalTailnet) -> Iterator[Callable[..., Server]]:
    """Make nodes on ``local_tailnet`` that are up; they close after the test."""
    made: list[Server] = []

    def make(hostname: str, *, timeout: float = 60.0, **kwargs: Any) -> Server:
        server = local_tailnet.server(hostname, **kwargs)
        made.append(server)
        return server.up(timeout=timeout)

    yield make
    for server in reversed(made):
        server.close()
