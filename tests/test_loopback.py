"""The loopback server (tsnet's Loopback): a SOCKS5 proxy onto the tailnet and the LocalAPI."""

from __future__ import annotations

import dataclasses
import http.client
import socket
from base64 import b64encode
from collections.abc import Callable

import pytest
from harness.helpers import EchoServer, eventually

import tailnet
from tailnet.testing import LocalTailnet

Pair = tuple[tailnet.Server, tailnet.Server]


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"proxy closed the connection after {data!r}")
        data += chunk
    return data


def socks5_connect(
    loopback: tailnet.Loopback, host: str, port: int, password: str | None = None
) -> socket.socket:
    """A minimal RFC 1928 + RFC 1929 (username/password) SOCKS5 CONNECT."""
    sock = socket.create_connection(loopback.address, timeout=30)
    try:
        sock.sendall(b"\x05\x01\x02")  # version 5, one method: username/password
        assert recv_exact(sock, 2) == b"\x05\x02"
        user = loopback.proxy_username.encode()
        secret = (loopback.proxy_credential if password is None else password).encode()
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(secret)]) + secret)
        if recv_exact(sock, 2) != b"\x01\x00":
            raise PermissionError("the proxy refused the credentials")
        name = host.encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
        _, reply, _, kind = recv_exact(sock, 4)
        recv_exact(sock, {1: 4, 4: 16}.get(kind) or recv_exact(sock, 1)[0])
        recv_exact(sock, 2)  # bound port
        if reply != 0:
            raise ConnectionError(f"SOCKS5 CONNECT failed with reply {reply}")
    except BaseException:
        sock.close()
        raise
    return sock


def test_loopback_describes_itself_without_secrets(pair: Pair) -> None:
    a, _ = pair
    loopback = a.loopback()
    host, port = loopback.address
    assert host == "127.0.0.1"
    assert 0 < port < 65536
    secrets = (loopback.proxy_credential, loopback.local_api_credential)
    assert all(len(s) == 32 for s in secrets)
    assert secrets[0] != secrets[1]
    assert a.loopback() == loopback  # started once
    for text in (repr(loopback), str(loopback), repr(a.local_api())):
        assert not any(s in text for s in secrets)
        assert "127.0.0.1" in text
    assert loopback.proxy_url == f"socks5://tsnet:{secrets[0]}@127.0.0.1:{port}"


def test_socks5_reaches_a_peers_listener(pair: Pair, echo: EchoServer) -> None:
    a, b = pair
    loopback = a.loopback()
    # tsnet's proxy gives each CONNECT 5 s: set the path to b up first, as a
    # fresh pair of nodes can take longer than that on a loaded machine.
    a.dial("tcp", f"{b.hostname}:7", timeout=30).close()
    for host in (b.hostname, str(b.ips[0])):
        with socks5_connect(loopback, host, 7) as sock:
            sock.sendall(b"through the proxy")
            assert recv_exact(sock, 17) == b"through the proxy"
    assert echo.peers[-1][0] == str(a.ips[0])  # the peer sees this node


def test_socks5_refuses_a_wrong_password(pair: Pair) -> None:
    a, b = pair
    with pytest.raises(PermissionError):
        socks5_connect(a.loopback(), b.hostname, 7, password="0" * 32)


def test_local_api_status_is_this_node(pair: Pair) -> None:
    a, b = pair
    api = a.local_api()
    status = api.get("/localapi/v0/status")
    assert status["BackendState"] == "Running"
    assert status["Self"]["HostName"] == a.hostname
    assert str(a.ips[0]) in status["TailscaleIPs"]

    def sees_peer() -> bool:
        peers = api.get("/localapi/v0/status")["Peer"] or {}
        return b.hostname in {peer["HostName"] for peer in peers.values()}

    eventually(sees_peer, timeout=30)


def test_local_api_request_post_and_errors(pair: Pair) -> None:
    a, _ = pair
    api = a.local_api()
    response = api.request("GET", "/localapi/v0/status")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["Self"]["HostName"] == a.hostname
    assert api.post("/localapi/v0/check-prefs", {"WantRunning": True}) == {}
    with pytest.raises(tailnet.LocalAPIError) as info:
        api.get("/localapi/v0/check-prefs")  # POST only
    assert info.value.status == 405
    with pytest.raises(tailnet.LocalAPIError) as info:
        api.get("/localapi/v0/no-such-endpoint")
    assert info.value.status == 404
    with pytest.raises(tailnet.ConfigurationError, match="path"):
        api.get("localapi/v0/status")
    with pytest.raises(tailnet.ConfigurationError, match="path"):
        api.get("/localapi/v0/status HTTP/1.1\r\nX-Injected: 1")
    with pytest.raises(tailnet.ConfigurationError, match="method"):
        api.request("get", "/localapi/v0/status")
    with pytest.raises(TypeError, match="body"):
        api.post("/localapi/v0/check-prefs", 42)  # type: ignore[arg-type]
    with pytest.raises(tailnet.ConfigurationError, match="timeout"):
        api.get("/localapi/v0/status", timeout=-1)


def _raw_get(address: tailnet.Address, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.request("GET", "/localapi/v0/status", headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_local_api_requires_the_credential_and_the_header(pair: Pair) -> None:
    a, _ = pair
    loopback = a.loopback()

    def basic(password: str) -> str:
        return "Basic " + b64encode(f":{password}".encode()).decode()

    right = basic(loopback.local_api_credential)
    assert _raw_get(loopback.address, {"Authorization": right, "Sec-Tailscale": "localapi"})[0] == 200
    assert _raw_get(loopback.address, {"Authorization": right})[0] == 403  # no Sec-Tailscale header
    assert _raw_get(loopback.address, {"Sec-Tailscale": "localapi"})[0] == 401
    wrong = basic("0" * 32)
    assert _raw_get(loopback.address, {"Authorization": wrong, "Sec-Tailscale": "localapi"})[0] == 403
    # The proxy credential is not the LocalAPI's.
    proxy = basic(loopback.proxy_credential)
    assert _raw_get(loopback.address, {"Authorization": proxy, "Sec-Tailscale": "localapi"})[0] == 403


def test_local_api_client_with_a_wrong_credential(pair: Pair) -> None:
    a, _ = pair
    loopback = a.loopback()
    wrong = dataclasses.replace(loopback, local_api_credential="0" * 32)
    with pytest.raises(tailnet.LocalAPIError) as info:
        tailnet.LocalAPIClient(a._node, wrong).get("/localapi/v0/status")
    assert info.value.status == 403
    assert isinstance(info.value, OSError)
    assert loopback.local_api_credential not in str(info.value)
    assert "0" * 32 not in str(info.value)


def test_loopback_and_local_api_after_close(tailnet_node: Callable[..., tailnet.Server]) -> None:
    server = tailnet_node("loopback-closed")
    api = server.local_api()
    server.close()
    with pytest.raises(tailnet.ClosedError):
        api.get("/localapi/v0/status")
    with pytest.raises(tailnet.ClosedError):
        server.loopback()


def test_loopback_before_up_starts_the_node(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("loopback-early")
    try:
        loopback = server.loopback()  # starts the node, does not wait for it
        server.up(timeout=60)
        assert server.loopback() == loopback
        assert server.local_api().get("/localapi/v0/status")["BackendState"] == "Running"
    finally:
        server.close()
