"""TLS, Funnel, loopback and LocalAPI through the async API, on asyncio and trio."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream
from harness.helpers import eventually, go_counter, open_fds, settle_fds

import tailnet
from tailnet.testing import LocalTailnet

pytestmark = pytest.mark.anyio

AsyncPair = tuple[tailnet.AsyncServer, tailnet.AsyncServer]


async def tls_client(net: LocalTailnet, stream: tailnet.TailnetStream, hostname: str) -> TLSStream:
    context = ssl.create_default_context(cadata=net.ca_pem)
    return await TLSStream.wrap(stream, hostname=hostname, ssl_context=context, standard_compatible=False)


async def test_listen_tls_serves_plaintext(nodes: AsyncPair, local_tailnet: LocalTailnet) -> None:
    a, b = nodes
    (domain,) = local_tailnet.install_certificate(b)
    assert b.cert_domains == (domain,)
    async with await b.listen_tls("tcp", ":443", timeout=60) as listener:
        stream = await a.dial("tcp", f"{b.hostname}:443", timeout=30)
        local = stream.extra(SocketAttribute.local_address)
        async with await tls_client(local_tailnet, stream, domain) as client:
            await client.send(b"ping")
            async with await listener.accept() as served:
                assert served.extra(SocketAttribute.remote_address) == local
                assert await served.receive() == b"ping"
                await served.send(b"pong")
                assert await client.receive() == b"pong"


async def test_listen_tls_without_a_certificate(nodes: AsyncPair) -> None:
    a, _ = nodes
    with pytest.raises(tailnet.CertificateUnavailableError, match="no ACME server"):
        await a.listen_tls("tcp", ":443", timeout=60)


async def test_listen_funnel(nodes: AsyncPair, local_tailnet: LocalTailnet) -> None:
    a, b = nodes
    (domain,) = local_tailnet.install_certificate(b)
    with pytest.raises(tailnet.FunnelUnavailableError, match="8080"):
        await b.listen_funnel("tcp", ":8080", timeout=60)
    async with await b.listen_funnel("tcp", ":443", timeout=60) as listener:
        stream = await a.dial("tcp", f"{b.hostname}:443", timeout=30)
        async with await tls_client(local_tailnet, stream, domain), await listener.accept() as served:
            assert served.extra(SocketAttribute.remote_address)[0] == str(a.ips[0])
    async with await b.listen_funnel("tcp", ":10000", funnel_only=True, timeout=60):
        with pytest.raises(tailnet.ConnectionRefused):
            await a.dial("tcp", f"{b.hostname}:10000", timeout=30)


async def test_loopback_and_local_api(nodes: AsyncPair) -> None:
    a, _ = nodes
    loopback = await a.loopback()
    assert await a.loopback() == loopback
    assert loopback.local_api_credential not in repr(loopback)
    api = await a.local_api()
    status = await api.get("/localapi/v0/status")
    assert status["Self"]["HostName"] == a.hostname
    assert str(a.ips[0]) in status["TailscaleIPs"]
    response = await api.request("GET", "/localapi/v0/cert-domains")
    assert response.json() == list(a.cert_domains)
    assert await api.post("/localapi/v0/check-prefs", {"WantRunning": True}) == {}
    wrong = dataclasses.replace(loopback, local_api_credential="0" * 32)
    with pytest.raises(tailnet.LocalAPIError) as info:
        await tailnet.AsyncLocalAPIClient(a._node, wrong).get("/localapi/v0/status")
    assert info.value.status == 403
    assert loopback.local_api_credential not in str(info.value)


async def test_socks5_through_the_async_loopback(nodes: AsyncPair) -> None:
    a, b = nodes
    loopback = await a.loopback()
    async with await b.listen("tcp", ":7") as listener:
        # tsnet's proxy gives each CONNECT 5 s: set the path to b up first, as a
        # fresh pair of nodes can take longer than that on a loaded machine.
        async with await a.dial("tcp", f"{b.hostname}:7", timeout=30), await listener.accept():
            pass
        await _socks5_echo(a, b, loopback, listener)


async def _socks5_echo(
    a: tailnet.AsyncServer,
    b: tailnet.AsyncServer,
    loopback: tailnet.Loopback,
    listener: tailnet.AsyncListener,
) -> None:
    async with await anyio.connect_tcp(*loopback.address) as proxy:
        replies = BufferedByteReceiveStream(proxy)
        user, secret = loopback.proxy_username.encode(), loopback.proxy_credential.encode()
        await proxy.send(b"\x05\x01\x02")
        assert await replies.receive_exactly(2) == b"\x05\x02"
        await proxy.send(b"\x01" + bytes([len(user)]) + user + bytes([len(secret)]) + secret)
        assert await replies.receive_exactly(2) == b"\x01\x00"
        ip = socket.inet_aton(str(b.ips[0]))
        await proxy.send(b"\x05\x01\x00\x01" + ip + (7).to_bytes(2, "big"))
        reply = await replies.receive_exactly(10)  # IPv4 bound address
        assert reply[:2] == b"\x05\x00", reply
        async with await listener.accept() as served:
            assert served.extra(SocketAttribute.remote_address)[0] == str(a.ips[0])
            await proxy.send(b"hi")
            assert await served.receive() == b"hi"


@pytest.fixture
def silent_control() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


async def test_cancel_pending_listen_tls_and_funnel(
    silent_control: str, tmp_path: Path, anyio_backend: str
) -> None:
    server = tailnet.AsyncServer("tls-cancel", control_url=silent_control, state_dir=tmp_path, authkey="k")
    fds, ops = open_fds(), go_counter("ops")
    with anyio.move_on_after(0.2) as scope:
        await server.listen_tls("tcp", ":443")
    assert scope.cancelled_caught
    with anyio.move_on_after(0.2) as scope:
        await server.listen_funnel("tcp", ":443")
    assert scope.cancelled_caught
    eventually(lambda: go_counter("ops") == ops)
    await server.aclose()
    settle_fds(fds)
