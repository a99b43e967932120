"""TLS and Funnel listeners (tsnet's ListenTLS, ListenFunnel, CertDomains) on the local tailnet.

The local tailnet offers cert domains but has no ACME server: without a
certificate in the node's cache, listen_tls fails at once with a typed
error, offline. LocalTailnet.install_certificate stands in for ACME, so the
serving path is tested for real: TLS through the tailnet, plaintext to
Python. Funnel's ingress nodes do not exist here, so Funnel is tested up
to the tailnet side: the policy checks, the serve config it sets, and
funnel_only refusing tailnet peers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from harness.helpers import eventually, go_counter, recv_all
from harness.quiet import in_test_netns, stray_packets, watch_tn1

import tailnet
from tailnet._waiting_sync import wait_readable
from tailnet.testing import LocalTailnet

Pair = tuple[tailnet.Server, tailnet.Server]


def tls_client(net: LocalTailnet, raw: socket.socket, server_hostname: str) -> ssl.SSLSocket:
    """Wrap a dialled tailnet socket in TLS, trusting only the local tailnet's CA."""
    context = ssl.create_default_context(cadata=net.ca_pem)
    return context.wrap_socket(raw, server_hostname=server_hostname)


@pytest.fixture(scope="module")
def plain_tailnet() -> Iterator[LocalTailnet]:
    """A tailnet that offers neither HTTPS certificates nor Funnel."""
    with LocalTailnet(https=False, funnel=False) as net:
        yield net


@pytest.fixture(scope="module")
def no_funnel_tailnet() -> Iterator[LocalTailnet]:
    """A tailnet with HTTPS certificates but without Funnel."""
    with LocalTailnet(funnel=False) as net:
        yield net


def test_cert_domains_are_the_nodes_dns_name(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, _ = pair
    assert a.cert_domains == (f"{a.hostname}.{local_tailnet.magicdns_domain}",)
    # The LocalAPI agrees.
    assert a.local_api().get("/localapi/v0/cert-domains") == list(a.cert_domains)


def test_cert_domains_empty_before_start_and_closed_after(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("certs-idle")
    assert server.cert_domains == ()
    server.close()
    with pytest.raises(tailnet.ClosedError):
        _ = server.cert_domains


def test_listen_tls_without_a_certificate_fails_at_listen(pair: Pair) -> None:
    a, _ = pair
    handles, ops = go_counter("handles"), go_counter("ops")
    with pytest.raises(tailnet.CertificateUnavailableError) as info:
        a.listen_tls("tcp", ":443", timeout=60)
    message = str(info.value)
    assert a.cert_domains[0] in message
    assert "no ACME server" in message
    assert isinstance(info.value, OSError)
    # No listener or operation is left (descriptors are not compared: the
    # ACME client keeps an idle HTTP connection to the local control server).
    assert (go_counter("handles"), go_counter("ops")) == (handles, ops)
    with a.listen("tcp", ":443"):  # nothing holds the port
        pass


@in_test_netns
def test_certificate_requests_never_leave_the_machine(pair: Pair) -> None:
    a, _ = pair
    with watch_tn1() as capture:
        with pytest.raises(tailnet.CertificateUnavailableError):
            a.listen_tls("tcp", ":443", timeout=60)
        with pytest.raises(tailnet.CertificateUnavailableError):
            a.listen_funnel("tcp", ":443", timeout=60)
        assert stray_packets(capture) == []


def test_tailnet_without_https(plain_tailnet: LocalTailnet) -> None:
    with plain_tailnet.server("plain-tls") as server:
        assert server.cert_domains == ()
        with pytest.raises(tailnet.CertificateUnavailableError, match="not enabled"):
            server.listen_tls("tcp", ":443", timeout=60)
        with pytest.raises(tailnet.FunnelUnavailableError, match="HTTPS must be enabled"):
            server.listen_funnel("tcp", ":443", timeout=60)
        with pytest.raises(tailnet.ConfigurationError, match="no cert domains"):
            plain_tailnet.install_certificate(server)


def test_tailnet_without_funnel(no_funnel_tailnet: LocalTailnet) -> None:
    with no_funnel_tailnet.server("no-funnel") as server:
        no_funnel_tailnet.install_certificate(server)
        with pytest.raises(tailnet.FunnelUnavailableError, match="funnel") as info:
            server.listen_funnel("tcp", ":443", timeout=60)
        assert isinstance(info.value, PermissionError)
        with server.listen_tls("tcp", ":443", timeout=60):  # TLS alone is allowed
            pass


def test_funnel_port_not_allowed(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, _ = pair
    local_tailnet.install_certificate(a)
    with pytest.raises(tailnet.FunnelUnavailableError, match="port 8080 is not allowed") as info:
        a.listen_funnel("tcp", ":8080", timeout=60)
    assert "443,8443,10000" in str(info.value)


def test_listen_tls_serves_plaintext_after_the_handshake(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    with b.listen_tls("tcp", ":443", timeout=60) as listener:
        assert listener.address.endswith(":443")
        raw = a.dial("tcp", f"{b.hostname}:443", timeout=30)
        local = raw.getsockname()
        with tls_client(local_tailnet, raw, domain) as client:
            certificate = client.getpeercert()
            assert certificate
            assert ("commonName", domain) in certificate["subject"][0]
            client.sendall(b"ping")
            conn, peer = listener.accept(timeout=30)
            with conn:
                assert peer == local
                assert conn.recv(4) == b"ping"  # decrypted by the library
                conn.sendall(b"pong")
                assert client.recv(4) == b"pong"


def test_tls_carries_a_megabyte_both_ways(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    data = os.urandom(1 << 20)
    with b.listen_tls("tcp", ":443", timeout=60) as listener:
        client = tls_client(local_tailnet, a.dial("tcp", f"{b.hostname}:443", timeout=30), domain)
        conn, _ = listener.accept(timeout=30)
        with client, conn:
            sender = threading.Thread(target=client.sendall, args=(data,))
            sender.start()
            received = bytearray()
            while len(received) < len(data):
                received += conn.recv(1 << 16)
            sender.join()
            conn.sendall(bytes(received))
            conn.shutdown(socket.SHUT_WR)  # reaches the client as TLS close_notify
            echoed = bytearray()
            while chunk := client.recv(1 << 16):
                echoed += chunk
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()


def test_failed_handshakes_never_reach_accept(
    pair: Pair, local_tailnet: LocalTailnet, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    caplog.set_level(logging.INFO, logger="tailnet")
    with b.listen_tls("tcp", ":443", timeout=60) as listener:
        # Not TLS at all: closed without an answer.
        junk = a.dial("tcp", f"{b.hostname}:443", timeout=30)
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert recv_all(junk) == b""
        junk.close()
        # TLS for a name this node has no certificate for: refused, and logged.
        context = ssl.create_default_context(cadata=local_tailnet.ca_pem)
        context.check_hostname = False
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(
                a.dial("tcp", f"{b.hostname}:443", timeout=30), server_hostname="other.example"
            )
        # The first connection accepted is the first good one.
        raw = a.dial("tcp", f"{b.hostname}:443", timeout=30)
        local = raw.getsockname()
        with tls_client(local_tailnet, raw, domain):
            conn, peer = listener.accept(timeout=30)
            conn.close()
        assert peer == local
    eventually(
        lambda: any("refused" in r.getMessage() and "other.example" in r.getMessage() for r in caplog.records)
    )


def test_a_stalled_handshake_holds_up_nobody(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    listener = b.listen_tls("tcp", ":443", timeout=60)
    stalled = a.dial("tcp", f"{b.hostname}:443", timeout=30)  # connects, never says hello
    with tls_client(local_tailnet, a.dial("tcp", f"{b.hostname}:443", timeout=30), domain):
        conn, _ = listener.accept(timeout=30)
        conn.close()
    listener.close()  # cancels the pending handshake: the stalled client is hung up on
    stalled.settimeout(30)
    assert recv_all(stalled) == b""
    stalled.close()


def test_listen_tls_arguments(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("tls-args")
    try:
        with pytest.raises(tailnet.ConfigurationError, match="network"):
            server.listen_tls("udp", ":443")
        with pytest.raises(tailnet.ConfigurationError, match="port"):
            server.listen_tls("tcp", ":https")
        with pytest.raises(TypeError):
            server.listen_tls("tcp", 443)  # type: ignore[arg-type]
        with pytest.raises(tailnet.ConfigurationError, match="timeout"):
            server.listen_tls("tcp", ":443", timeout=-1)
        for address in ("100.64.0.1:443", ":0", ":x"):
            with pytest.raises(tailnet.ConfigurationError, match="listen_funnel"):
                server.listen_funnel("tcp", address)
        with pytest.raises(tailnet.ConfigurationError, match="network must be tcp"):
            server.listen_funnel("tcp4", ":443")
        with pytest.raises(TypeError, match="funnel_only"):
            server.listen_funnel("tcp", ":443", funnel_only="yes")  # type: ignore[arg-type]
    finally:
        server.close()


def test_listen_funnel_also_serves_the_tailnet(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    api = b.local_api()
    with b.listen_funnel("tcp", ":443", timeout=60) as listener:
        assert api.get("/localapi/v0/serve-config")["AllowFunnel"] == {f"{domain}:443": True}
        with tls_client(local_tailnet, a.dial("tcp", f"{b.hostname}:443", timeout=30), domain) as client:
            client.sendall(b"via the tailnet")
            conn, _ = listener.accept(timeout=30)
            with conn:
                assert conn.recv(100) == b"via the tailnet"
    # Closing the listener withdrew the Funnel permission it had set.
    assert not (api.get("/localapi/v0/serve-config") or {}).get("AllowFunnel")


def test_concurrent_funnel_listeners_all_get_their_permission(
    pair: Pair, local_tailnet: LocalTailnet
) -> None:
    _, b = pair
    (domain,) = local_tailnet.install_certificate(b)
    ports = (443, 8443, 10000)
    listeners: list[tailnet.Listener] = []
    errors: list[BaseException] = []

    def listen(port: int) -> None:
        try:
            listeners.append(b.listen_funnel("tcp", f":{port}", funnel_only=True, timeout=60))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=listen, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    try:
        assert errors == []
        allowed = b.local_api().get("/localapi/v0/serve-config")["AllowFunnel"]
        assert allowed == {f"{domain}:{port}": True for port in ports}
    finally:
        for listener in listeners:
            listener.close()


def test_funnel_only_refuses_tailnet_peers(pair: Pair, local_tailnet: LocalTailnet) -> None:
    a, b = pair
    local_tailnet.install_certificate(b)
    with b.listen_funnel("tcp", ":8443", funnel_only=True, timeout=60) as listener:
        assert listener.address.endswith(":8443")
        with pytest.raises(tailnet.ConnectionRefused):
            a.dial("tcp", f"{b.hostname}:8443", timeout=30)


def test_uncollected_listen_tls_result_closes_its_listener(pair: Pair, local_tailnet: LocalTailnet) -> None:
    _, b = pair
    local_tailnet.install_certificate(b)
    handles = go_counter("handles")
    op = b._node.begin_listen_tls("tcp", ":443", 60)
    wait_readable(op.wait_fd, 60)
    op.free()  # finished, never collected
    eventually(lambda: go_counter("handles") == handles)
    with b.listen("tcp", ":443"):  # the port is free again
        pass


@pytest.fixture
def silent_control() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_close_ends_a_pending_listen_tls(silent_control: str, tmp_path: os.PathLike[str]) -> None:
    server = tailnet.Server("tls-pending", control_url=silent_control, state_dir=tmp_path, authkey="k")
    ops = go_counter("ops")
    raised: list[BaseException] = []

    def listen() -> None:
        try:
            server.listen_tls("tcp", ":443")
        except BaseException as exc:  # noqa: BLE001
            raised.append(exc)

    thread = threading.Thread(target=listen)
    thread.start()
    eventually(lambda: go_counter("ops") > ops)
    server.close()
    thread.join(30)
    assert len(raised) == 1
    assert isinstance(raised[0], tailnet.ClosedError)
    eventually(lambda: go_counter("ops") == ops)
