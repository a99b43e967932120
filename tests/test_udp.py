"""UDP between nodes of the local tailnet: the sync API and the C contract under it."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from harness.helpers import eventually, go_counter, open_fds, settle_fds, settle_goroutines
from harness.udp_helpers import SIZES_V4, SIZES_V6, UDPEcho, exchange, payloads, wait_until_blocked

import tailnet
from tailnet import MAX_DATAGRAM, MAX_DATAGRAM6
from tailnet.testing import LocalTailnet

Pair = tuple[tailnet.Server, tailnet.Server]


@pytest.fixture
def echo(pair: Pair) -> Iterator[UDPEcho]:
    """A UDP echo on port 7 of both IPs of the second node of ``pair``."""
    server = UDPEcho(pair[1].listen_packet("udp", ":7"))
    yield server
    server.close()


def sender(sock: tailnet.DatagramSocket, peer: tuple[str, int]) -> Callable[[bytes], object]:
    return lambda data: sock.sendto(data, peer)


def receiver(sock: tailnet.DatagramSocket) -> Callable[[float], tuple[bytes, tuple[str, int]]]:
    def receive(timeout: float) -> tuple[bytes, tuple[str, int]]:
        sock.settimeout(timeout)
        return sock.recvfrom(MAX_DATAGRAM)

    return receive


@pytest.mark.parametrize(("family", "sizes"), [(0, SIZES_V4), (1, SIZES_V6)], ids=["ipv4", "ipv6"])
def test_datagrams_of_every_size_keep_their_boundaries(
    pair: Pair, echo: UDPEcho, family: int, sizes: list[int]
) -> None:
    a, b = pair
    peer = (str(b.ips[family]), 7)
    with a.listen_packet("udp", ":0") as sock:
        exchange(sender(sock, peer), receiver(sock), payloads(sizes), peer)
        assert echo.senders == {sock.addresses[family]}


def test_many_small_datagrams_queued_at_once(pair: Pair, echo: UDPEcho) -> None:
    a, b = pair
    peer = (str(b.ips[0]), 7)
    with a.listen_packet("udp4", ":0") as sock:
        exchange(sender(sock, peer), receiver(sock), payloads(list(range(1, 401))), peer)


def test_bound_addresses(pair: Pair) -> None:
    a, _ = pair
    with a.listen_packet("udp", ":0") as both, a.listen_packet("udp6", ":0") as v6:
        port = both.getsockname()[1]
        assert port > 0
        assert both.addresses == ((str(a.ips[0]), port), (str(a.ips[1]), port))
        assert both.getsockname() == (str(a.ips[0]), port)
        assert v6.addresses == ((str(a.ips[1]), v6.getsockname()[1]),)
    with a.listen_packet("udp", (str(a.ips[0]), 5300)) as one:
        assert one.addresses == ((str(a.ips[0]), 5300),)
    with a.listen_packet("udp4", "0.0.0.0:5301") as any4:
        assert any4.addresses == ((str(a.ips[0]), 5301),)


def test_sendto_two_peers_and_recvfrom_names_each(tailnet_node: Callable[..., tailnet.Server]) -> None:
    a, b, c = (tailnet_node(f"udp-peers-{n}") for n in "abc")
    echo_b = UDPEcho(b.listen_packet("udp", ":7"))
    echo_c = UDPEcho(c.listen_packet("udp", ":9"))
    try:
        with a.listen_packet("udp4", ":0") as sock:
            for peer in [(str(b.ips[0]), 7), (str(c.ips[0]), 9)]:
                exchange(sender(sock, peer), receiver(sock), [peer[0].encode()], peer)
            assert echo_b.senders == echo_c.senders == {sock.getsockname()}
    finally:
        echo_b.close()
        echo_c.close()


@pytest.mark.parametrize("by", ["name", "ipv4", "ipv6"])
def test_connected_socket_echo(pair: Pair, echo: UDPEcho, by: str) -> None:
    a, b = pair
    host = {"name": b.hostname, "ipv4": str(b.ips[0]), "ipv6": str(b.ips[1])}[by]
    family = 1 if by == "ipv6" else 0
    with a.dial("udp", (host, 7), timeout=30) as conn:
        assert isinstance(conn, tailnet.TailnetDatagramSocket)
        assert isinstance(conn, socket.socket)
        assert conn.getpeername() == (str(b.ips[family]), 7)
        local = conn.getsockname()
        assert local[0] == str(a.ips[family])

        def receive(timeout: float) -> tuple[bytes, tuple[str, int]]:
            conn.settimeout(timeout)
            return conn.recvfrom(MAX_DATAGRAM)

        sizes = SIZES_V6 if family else SIZES_V4
        exchange(conn.send, receive, payloads(sizes), conn.getpeername())
        assert echo.senders == {local}


def test_connected_socket_recv_into_and_selectors(pair: Pair, echo: UDPEcho) -> None:
    import selectors

    a, b = pair
    with a.dial("udp4", f"{b.hostname}:7", timeout=30) as conn, selectors.DefaultSelector() as sel:
        sel.register(conn, selectors.EVENT_READ)
        buf = bytearray(16)
        for _ in range(8):  # UDP: retry a lost datagram
            conn.send(b"into")
            if sel.select(timeout=5):
                break
        n, peer = conn.recvfrom_into(buf)
        assert (bytes(buf[:n]), peer) == (b"into", (str(b.ips[0]), 7))


def test_udp_dial_of_a_name_that_does_not_exist(pair: Pair) -> None:
    # Looked up in the node's map only (test_names.py): it fails at once.
    with pytest.raises(tailnet.HostUnreachable, match="no node named"):
        pair[0].dial("udp", "no-such-node:53", timeout=60)


def test_too_large_datagrams_are_refused(pair: Pair, echo: UDPEcho) -> None:
    a, b = pair
    with a.listen_packet("udp", ":0") as sock:
        with pytest.raises(tailnet.DatagramTooLarge) as info:
            sock.sendto(bytes(MAX_DATAGRAM + 1), (str(b.ips[0]), 7))
        assert isinstance(info.value, OSError)
        assert info.value.errno == errno.EMSGSIZE
        assert "65507" in str(info.value)
        with pytest.raises(tailnet.DatagramTooLarge, match="1232"):
            sock.sendto(bytes(MAX_DATAGRAM6 + 1), (str(b.ips[1]), 7))
    with a.dial("udp", (str(b.ips[0]), 7), timeout=30) as v4, pytest.raises(tailnet.DatagramTooLarge):
        v4.send(bytes(MAX_DATAGRAM + 1))
    with a.dial("udp6", f"{b.hostname}:7", timeout=30) as v6, pytest.raises(tailnet.DatagramTooLarge):
        v6.sendall(bytes(MAX_DATAGRAM6 + 1))


def _header(ip: str, port: int) -> bytes:
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return bytes([len(packed)]) + packed + struct.pack(">H", port)


def test_c_contract_drops_and_counts_what_it_cannot_send(pair: Pair, echo: UDPEcho) -> None:
    """Messages written to the descriptors directly, past the Python checks."""
    a, b = pair
    peer = (str(b.ips[0]), 7)
    with a.listen_packet("udp", ":0") as sock:
        raw = socket.socket(fileno=sock.fileno())
        bad = [
            _header(*peer) + bytes(MAX_DATAGRAM + 1),  # too long
            _header(str(b.ips[1]), 7) + bytes(MAX_DATAGRAM6 + 1),  # too long for IPv6
            b"\x05abcdefg",  # bad address length
            b"\x04\x64",  # short header
            _header(peer[0], 0) + b"port 0",
        ]
        try:
            for message in bad:
                before = go_counter("dropped_datagrams")
                raw.send(message)
                eventually(lambda: go_counter("dropped_datagrams") == before + 1)  # noqa: B023
        finally:
            raw.detach()
        exchange(sender(sock, peer), receiver(sock), [b"still works"], peer)
    with a.dial("udp", peer, timeout=30) as conn:
        dropped = go_counter("dropped_datagrams")
        socket.socket.send(conn, bytes(MAX_DATAGRAM + 1))
        eventually(lambda: go_counter("dropped_datagrams") == dropped + 1)


def test_empty_datagrams_are_datagrams(pair: Pair, echo: UDPEcho) -> None:
    """An empty datagram is echoed as b"" (not taken for end-of-file), and the socket goes on."""
    a, b = pair
    with a.dial("udp", f"{b.hostname}:7", timeout=30) as conn:

        def receive(timeout: float) -> tuple[bytes, tuple[str, int]]:
            conn.settimeout(timeout)
            return conn.recvfrom(100)

        exchange(conn.send, receive, [b"", b"after the empty one"], conn.getpeername())
    with a.listen_packet("udp4", ":0") as sock:
        peer = (str(b.ips[0]), 7)
        exchange(sender(sock, peer), receiver(sock), [b"", b"after the empty one"], peer)


@pytest.mark.parametrize(
    ("network", "address", "error"),
    [
        ("tcp", ":5", tailnet.ConfigurationError),
        ("udp7", ":5", tailnet.ConfigurationError),
        ("udp", "5", tailnet.ConfigurationError),
        ("udp", ":70000", tailnet.ConfigurationError),
        ("udp", ":-1", tailnet.ConfigurationError),
        ("udp", "not-an-ip:5", tailnet.ConfigurationError),
        ("udp4", "[fd7a:115c:a1e0::1]:5", tailnet.ConfigurationError),
        ("udp", ("100.64.0.1", 70000), tailnet.ConfigurationError),
        ("udp", 5, TypeError),
        (b"udp", ":5", TypeError),
    ],
)
def test_listen_packet_bad_arguments(pair: Pair, network: object, address: object, error: type) -> None:
    with pytest.raises(error):
        pair[0].listen_packet(network, address)  # type: ignore[arg-type]


def test_listen_is_not_for_udp_nor_listen_packet_for_tcp(pair: Pair) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="listen_packet"):
        pair[0].listen("udp", ":5")
    with pytest.raises(tailnet.ConfigurationError, match="udp"):
        pair[0].listen_packet("tcp", ":5")


def test_port_taken(pair: Pair) -> None:
    with pair[0].listen_packet("udp", ":5302"), pytest.raises(tailnet.AddressInUseError):
        pair[0].listen_packet("udp4", ":5302")
    with pair[0].listen_packet("udp", ":5302"):  # free again once closed
        pass


def test_listen_packet_on_a_port_before_up_needs_ips(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("udp-not-up")
    try:
        with pytest.raises(tailnet.ConfigurationError, match="no tailnet IP"):
            server.listen_packet("udp", ":5")
    finally:
        server.close()


@pytest.mark.parametrize(
    ("address", "error"),
    [
        (("no-such-name", 7), tailnet.ConfigurationError),
        (("100.64.0.9", 0), tailnet.ConfigurationError),
        (("100.64.0.9", 65536), tailnet.ConfigurationError),
        (("0.0.0.0", 7), tailnet.ConfigurationError),
        ("100.64.0.9", tailnet.ConfigurationError),
        (("fd7a:115c:a1e0::9", 7), tailnet.ConfigurationError),  # the socket has no IPv6 address
        ((b"100.64.0.9", 7), TypeError),
        (("100.64.0.9", "7"), TypeError),
        (7, TypeError),
    ],
)
def test_sendto_bad_addresses(pair: Pair, address: object, error: type) -> None:
    with pair[0].listen_packet("udp4", ":0") as sock, pytest.raises(error):
        sock.sendto(b"x", address)  # type: ignore[arg-type]


def test_sendto_checks_look_alikes_of_the_last_destination(pair: Pair) -> None:
    """A socket remembers its last checked destination; an equal-looking address is still checked."""
    with pair[0].listen_packet("udp4", ":0") as sock:
        assert sock.sendto(b"x", ("100.64.0.9", 1)) == 1
        with pytest.raises(TypeError):
            sock.sendto(b"x", ("100.64.0.9", True))  # a tuple equal to the last one
        with pytest.raises(tailnet.DatagramTooLarge):
            sock.sendto(bytes(MAX_DATAGRAM + 1), ("100.64.0.9", 1))
        assert sock.sendto(b"xy", "100.64.0.9:1") == 2


def test_sendto_bad_data(pair: Pair) -> None:
    with pair[0].listen_packet("udp4", ":0") as sock, pytest.raises(TypeError):
        sock.sendto("text", ("100.64.0.9", 7))  # type: ignore[arg-type]


def test_recvfrom_timeout(pair: Pair) -> None:
    with pair[0].listen_packet("udp", ":0") as sock:
        sock.settimeout(0.05)
        with pytest.raises(tailnet.TailnetTimeout):
            sock.recvfrom(10)
        assert sock.gettimeout() == 0.05


def _blocked_call(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Run call in a thread that records what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until_blocked(thread)
    return thread, raised


def test_close_unblocks_pending_recvfrom(pair: Pair) -> None:
    sock = pair[0].listen_packet("udp", ":0")
    thread, raised = _blocked_call(lambda: sock.recvfrom(10))
    sock.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], tailnet.ClosedError)
    sock.close()  # idempotent


def test_close_unblocks_pending_connected_recv(pair: Pair) -> None:
    a, b = pair
    conn = a.dial("udp", f"{b.hostname}:7", timeout=30)
    thread, raised = _blocked_call(lambda: conn.recv(10))
    conn.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], OSError)  # ClosedError, or EBADF if close came first


def test_server_close_ends_sockets(pair: Pair) -> None:
    a, b = pair
    sock = a.listen_packet("udp", ":0")
    conn = a.dial("udp", f"{b.hostname}:7", timeout=30)
    waiting, raised = _blocked_call(lambda: sock.recvfrom(10))
    a.close()
    waiting.join(10)
    assert not waiting.is_alive()
    assert isinstance(raised[0], tailnet.ClosedError)
    with pytest.raises(tailnet.ClosedError):
        conn.recv(10)
    with pytest.raises(tailnet.ClosedError):
        sock.sendto(b"x", (str(b.ips[0]), 7))
    with pytest.raises(BrokenPipeError):
        conn.send(b"x")
    sock.close()
    conn.close()
    with pytest.raises(tailnet.ClosedError):
        a.listen_packet("udp", ":0")


def test_no_leaks(pair: Pair, echo: UDPEcho) -> None:
    a, b = pair
    peer = (str(b.ips[0]), 7)

    def cycle() -> None:
        for _ in range(5):
            with a.listen_packet("udp", ":0") as sock:
                exchange(sender(sock, peer), receiver(sock), [b"ping"], peer)
            with a.dial("udp", peer, timeout=30) as conn:
                conn.send(b"ping")

    cycle()  # warm up
    fds, handles, goroutines = open_fds(), go_counter("handles"), go_counter("goroutines")
    cycle()
    settle_fds(fds)
    assert go_counter("handles") == handles
    assert go_counter("ops") == 0
    settle_goroutines(goroutines + 5)


def test_c_constants_match() -> None:
    from tailnet._binding.library import lib

    assert lib().TAILNET_MAX_DATAGRAM == MAX_DATAGRAM
    assert lib().TAILNET_MAX_DATAGRAM6 == MAX_DATAGRAM6
