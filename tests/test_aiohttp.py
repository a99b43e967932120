"""aiohttp over the tailnet: ClientSession by MagicDNS name, aiohttp.web apps with whois (asyncio only)."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
from collections.abc import AsyncIterator

import aiohttp
import anyio
import anyio.to_thread
import pytest
import trio
from aiohttp import web
from harness.helpers import open_fds, settle_fds

import tailnet
import tailnet.aiohttp
from tailnet.testing import LocalTailnet

pytestmark = pytest.mark.anyio

AsyncPair = tuple[tailnet.AsyncServer, tailnet.AsyncServer]
PORT = 8080


@pytest.fixture(params=[("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """aiohttp runs on asyncio only (trio is tested below: it is refused), uvloop's loop too."""
    return request.param


async def inspect(request: web.Request) -> web.Response:
    """Say what arrived: path, body length and digest, the peer and who it is."""
    body = await request.read()
    identity = tailnet.aiohttp.whois(request)
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "host": request.host,
            "remote": request.remote,
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "caller": None if identity is None else identity.node_name,
        }
    )


@pytest.fixture
async def site(nodes: AsyncPair) -> AsyncIterator[tailnet.AsyncServer]:
    """The inspect app on the second node's :8080, served by aiohttp.web on a tailnet listener."""
    _, web_node = nodes
    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", inspect)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = await web_node.listen("tcp", f":{PORT}")
    await tailnet.aiohttp.TailnetSite(runner, listener, server=web_node).start()
    yield web_node
    await runner.cleanup()


async def test_client_and_server_by_magicdns_name_with_whois(
    nodes: AsyncPair, site: tailnet.AsyncServer
) -> None:
    client, web_node = nodes
    body = os.urandom(3 << 20)
    fqdn = f"{web_node.hostname}.tailnet.test"
    async with aiohttp.ClientSession(connector=client.aiohttp_connector()) as session:
        async with session.get(f"http://{web_node.hostname}:{PORT}/path?q=1") as response:
            assert response.status == 200
            got = await response.json()
        async with session.post(f"http://{fqdn}:{PORT}/upload", data=io.BytesIO(body)) as response:
            posted = await response.json()
    assert got["path"] == "/path?q=1"
    assert got["host"] == f"{web_node.hostname}:{PORT}"
    assert got["remote"] == str(client.ips[0])  # it came over the tailnet, from this node
    assert got["caller"] == client.hostname
    assert posted["caller"] == client.hostname
    assert posted["host"] == f"{fqdn}:{PORT}"
    assert posted["body_len"] == len(body)
    assert posted["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_large_response_body_arrives_intact(nodes: AsyncPair) -> None:
    client, web_node = nodes
    body = os.urandom(4 << 20)

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/blob", download)
    runner = web.AppRunner(app)
    await runner.setup()
    await tailnet.aiohttp.TailnetSite(runner, await web_node.listen("tcp", ":81")).start()
    try:
        async with (
            aiohttp.ClientSession(connector=client.aiohttp_connector()) as session,
            session.get(f"http://{web_node.hostname}:81/blob") as response,
        ):
            received = await response.read()
    finally:
        await runner.cleanup()
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()
    # Cleaning up the runner closed the tailnet listener: nothing listens there now.
    with pytest.raises(tailnet.ConnectionRefused):
        await client.dial("tcp", f"{web_node.hostname}:81", timeout=30)


async def test_a_file_response_sent_with_sendfile_arrives_intact(
    nodes: AsyncPair, tmp_path: os.PathLike[str]
) -> None:
    """web.FileResponse sends with the kernel's sendfile (64 KiB buffers).

    The bridge's held byte kept one such buffer charged to the socket,
    above the quarter of its send buffer at which Linux wakes a blocked
    writer: the response stopped after 256 KiB and cleaning up hung.
    """
    client, web_node = nodes
    body = os.urandom(4 << 20)
    path = os.path.join(tmp_path, "blob")
    with open(path, "wb") as f:
        f.write(body)

    async def send_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/file", send_file)
    runner = web.AppRunner(app)
    await runner.setup()
    await tailnet.aiohttp.TailnetSite(runner, await web_node.listen("tcp", ":82")).start()
    try:
        with anyio.fail_after(120):  # a hang guard: it used to wait for ever
            async with (
                aiohttp.ClientSession(connector=client.aiohttp_connector()) as session,
                session.get(f"http://{web_node.hostname}:82/file") as response,
            ):
                received = await response.read()
    finally:
        with anyio.fail_after(120):
            await runner.cleanup()
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()


async def test_https_over_the_tailnet_and_no_whois_without_server(
    nodes: AsyncPair, local_tailnet: LocalTailnet
) -> None:
    client, web_node = nodes
    (domain,) = local_tailnet.install_certificate(web_node)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", inspect)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = await web_node.listen_tls("tcp", ":443", timeout=60)
    await tailnet.aiohttp.TailnetSite(runner, listener).start()  # no server=: callers are not looked up
    trusted = ssl.create_default_context(cadata=local_tailnet.ca_pem)
    try:
        async with aiohttp.ClientSession(connector=client.aiohttp_connector(ssl=trusted)) as session:
            async with session.get(f"https://{domain}/secure") as response:
                info = await response.json()
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"https://{domain}/", ssl=ssl.create_default_context())
    finally:
        await runner.cleanup()
    assert info["path"] == "/secure"
    assert info["remote"] == str(client.ips[0])
    assert info["caller"] is None


async def test_dial_errors_are_client_connector_errors(nodes: AsyncPair, site: tailnet.AsyncServer) -> None:
    client, web_node = nodes
    async with aiohttp.ClientSession(connector=client.aiohttp_connector()) as session:
        # No node has this name: it fails at once, without asking any resolver.
        with pytest.raises(aiohttp.ClientConnectorError) as unknown:
            await session.get("http://no-such-node:8080/")
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await session.get(f"http://{web_node.hostname}:{PORT + 1}/")  # nothing listens there
    assert isinstance(unknown.value.os_error, tailnet.HostUnreachable)
    assert "no node named" in str(unknown.value.os_error)
    assert isinstance(refused.value.os_error, tailnet.ConnectionRefused | tailnet.ConnectionReset)


async def test_bad_input_is_refused_clearly(nodes: AsyncPair, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = nodes
    with pytest.raises(tailnet.ConfigurationError, match="local_addr"):
        client.aiohttp_connector(local_addr=("0.0.0.0", 0))
    # A proxy from the environment would take the request off the tailnet: refused, not ignored.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    async with aiohttp.ClientSession(connector=client.aiohttp_connector(), trust_env=True) as session:
        with pytest.raises(tailnet.ConfigurationError, match="proxy"):
            await session.get("http://somewhere:8080/")
    runner = web.AppRunner(web.Application())
    await runner.setup()
    try:
        with pytest.raises(TypeError, match="AsyncListener or Listener"):
            tailnet.aiohttp.TailnetSite(runner, 8080)  # type: ignore[arg-type]
    finally:
        await runner.cleanup()


async def test_no_descriptor_leaks(nodes: AsyncPair, site: tailnet.AsyncServer) -> None:
    client, web_node = nodes
    url = f"http://{web_node.hostname}:{PORT}/"
    async with aiohttp.ClientSession(connector=client.aiohttp_connector()) as session:
        await (await session.get(url)).read()  # the first connection, the node's own descriptors
    baseline = open_fds()
    for _ in range(3):
        async with aiohttp.ClientSession(connector=client.aiohttp_connector()) as session:
            for path in ("a", "b"):
                async with session.get(url + path) as response:
                    assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorError):
            async with aiohttp.ClientSession(connector=client.aiohttp_connector()) as session:
                await session.get(f"http://{web_node.hostname}:{PORT + 1}/")
    await anyio.to_thread.run_sync(settle_fds, baseline)


def test_under_trio_it_is_refused() -> None:
    async def main() -> None:
        ts = tailnet.AsyncServer("trio-aiohttp", control_url="http://127.0.0.1:9", ephemeral=True)
        try:
            with pytest.raises(tailnet.UnsupportedError, match="asyncio"):
                ts.aiohttp_connector()
            with pytest.raises(tailnet.UnsupportedError, match="asyncio"):
                tailnet.aiohttp.TailnetConnector(ts)
            with pytest.raises(tailnet.UnsupportedError, match="asyncio"):
                tailnet.aiohttp.TailnetSite(web.AppRunner(web.Application()), None)  # type: ignore[arg-type]
        finally:
            await ts.aclose()

    trio.run(main)
