"""Two nodes on the local tailnet talking TCP."""

from __future__ import annotations

import socket

import pytest
from harness.helpers import EchoServer, assert_echoes_intact, recv_all

import tailnet
from tailnet.testing import LocalTailnet


def test_nodes_get_tailnet_addresses(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    assert a.ips
    assert b.ips
    assert a.ips[0].version == 4
    assert str(a.ips[0]).startswith("100.")
    assert set(a.ips).isdisjoint(b.ips)


@pytest.mark.parametrize("by", ["ip", "name", "fqdn"])
def test_echo_by_ip_and_name(
    pair: tuple[tailnet.Server, tailnet.Server], echo: EchoServer, local_tailnet: LocalTailnet, by: str
) -> None:
    a, b = pair
    host = {"ip": str(b.ips[0]), "name": b.hostname, "fqdn": f"{b.hostname}.{local_tailnet.magicdns_domain}"}[
        by
    ]
    with a.dial("tcp", (host, 7), timeout=30) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"


def test_echo_the_other_way(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    server = EchoServer(a.listen("tcp", ":9"))
    try:
        with b.dial("tcp", f"{a.hostname}:9", timeout=30) as conn:
            conn.sendall(b"pong")
            assert conn.recv(4) == b"pong"
    finally:
        server.close()


def test_addresses_on_both_ends(pair: tuple[tailnet.Server, tailnet.Server], echo: EchoServer) -> None:
    a, b = pair
    with a.dial("tcp", f"{b.ips[0]}:7", timeout=30) as conn:
        conn.sendall(b"x")
        assert conn.recv(1) == b"x"
        local_ip, local_port = conn.getsockname()
        assert conn.getpeername() == (str(b.ips[0]), 7)
        assert local_ip == str(a.ips[0])
    assert echo.peers == [(local_ip, local_port)]
    assert echo.locals == [(str(b.ips[0]), 7)]


def test_8_mib_transfer_intact(pair: tuple[tailnet.Server, tailnet.Server], echo: EchoServer) -> None:
    a, b = pair
    with a.dial("tcp", f"{b.hostname}:7", timeout=30) as conn:
        assert_echoes_intact(conn, 8 << 20)


def test_half_close_keeps_the_other_direction(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    with b.listen("tcp", ":8") as listener:
        conn = a.dial("tcp", f"{b.hostname}:8", timeout=30)
        served, _ = listener.accept(timeout=30)
        with conn, served:
            conn.sendall(b"request")
            conn.shutdown(socket.SHUT_WR)
            assert recv_all(served) == b"request"  # EOF arrived
            served.sendall(b"response after EOF")
            served.shutdown(socket.SHUT_WR)
            assert recv_all(conn) == b"response after EOF"


def test_dial_closed_port_is_refused(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    with pytest.raises(tailnet.ConnectionRefused) as info:
        a.dial("tcp", f"{b.ips[0]}:9999", timeout=30)
    assert isinstance(info.value, ConnectionRefusedError)


def test_dial_unknown_name(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    # More in test_names.py: the name is looked up in the node's map only.
    with pytest.raises(tailnet.HostUnreachable, match="no node named"):
        pair[0].dial("tcp", "no-such-node:80", timeout=60)


def test_listener_works_with_selectors(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    import selectors

    a, b = pair
    with b.listen("tcp", ":10") as listener, selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        assert sel.select(timeout=0) == []
        conn = a.dial("tcp", f"{b.hostname}:10", timeout=30)
        assert sel.select(timeout=30)
        served, peer = listener.accept(timeout=0)
        assert peer == conn.getsockname()
        conn.close()
        served.close()


def test_accept_timeout(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    with pair[1].listen("tcp", ":11") as listener, pytest.raises(tailnet.TailnetTimeout):
        listener.accept(timeout=0.05)


def test_listen_port_taken(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    with pair[1].listen("tcp", ":12"), pytest.raises(tailnet.AddressInUseError):
        pair[1].listen("tcp", ":12")


def test_closing_server_closes_listener_and_connections(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    listener = b.listen("tcp", ":13")
    conn = a.dial("tcp", f"{b.hostname}:13", timeout=30)
    served, _ = listener.accept(timeout=30)
    b.close()
    with pytest.raises(tailnet.ConnectionReset, match="was closed"):  # an abort, not EOF
        served.recv(1)
    assert conn.recv(1) == b""  # b's side was closed gracefully: the peer reads EOF
    with pytest.raises(tailnet.ClosedError):
        listener.accept(timeout=30)
    assert list(listener) == []
    for s in (conn, served):
        s.close()
    listener.close()


def test_listen_on_port_zero_picks_one(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    with b.listen("tcp", ":0") as listener:
        port = int(listener.address.rpartition(":")[2])
        assert port > 0
        conn = a.dial("tcp", (b.hostname, port), timeout=30)
        served, peer = listener.accept(timeout=30)
        assert peer == conn.getsockname()
        assert served.getsockname()[1] == port
        conn.close()
        served.close()
