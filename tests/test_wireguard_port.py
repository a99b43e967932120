"""Server(port=...): the node's WireGuard UDP port (tsnet's Port) is where it was told."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from harness.helpers import EchoServer, knows, recv_all, send_and_close_write

import tailnet
from tailnet.testing import LocalTailnet


def bound_udp_ports() -> set[int]:
    """The local ports of every UDP socket in this network namespace (/proc/net/udp, udp6)."""
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        lines = Path(table).read_text().splitlines()[1:]
        ports |= {int(line.split()[1].rsplit(":", 1)[1], 16) for line in lines}
    return ports


def free_udp_port() -> int:
    """A UDP port free on both IPv4 and IPv6 now (the kernel picks; we let it go)."""
    while True:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::", 0))  # dual-stack: the port is free for both families
            port: int = probe.getsockname()[1]
        if port not in bound_udp_ports():
            return port


def test_node_listens_on_the_given_port(tailnet_node: Callable[..., tailnet.Server]) -> None:
    port = free_udp_port()
    node = tailnet_node("fixed-port", port=port)
    assert port in bound_udp_ports()
    # And the node works over it: a peer reaches a service on it.
    peer = tailnet_node("fixed-port-peer")
    knows(peer, node)
    echo = EchoServer(node.listen("tcp", ":7"))
    try:
        with peer.dial("tcp", f"{node.ips[0]}:7", timeout=30) as conn:
            send_and_close_write(conn, b"through the fixed port")
            assert recv_all(conn) == b"through the fixed port"
    finally:
        echo.close()
    node.close()
    assert port not in bound_udp_ports()


@pytest.mark.anyio
async def test_async_node_listens_on_the_given_port(local_tailnet: LocalTailnet) -> None:
    port = free_udp_port()
    async with local_tailnet.async_server("fixed-port-async", port=port):
        assert port in bound_udp_ports()


@pytest.mark.parametrize(
    ("port", "error"), [(-1, tailnet.ConfigurationError), (65536, tailnet.ConfigurationError)]
)
def test_out_of_range_port_is_refused(port: int, error: type[Exception]) -> None:
    with pytest.raises(error, match="port"):
        tailnet.Server("bad-port", port=port)


@pytest.mark.parametrize("port", ["41641", 41641.0, True, None])
def test_port_must_be_an_int(port: object) -> None:
    with pytest.raises(TypeError, match="port must be an int"):
        tailnet.Server("bad-port", port=port)  # type: ignore[arg-type]
