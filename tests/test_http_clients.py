"""httpx (sync, asyncio, trio) and requests reaching HTTP services over the tailnet."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import httpx
import pytest
import requests
from harness.http_helpers import InspectService

import tailnet
from tailnet.requests import TailnetAdapter
from tailnet.testing import LocalTailnet

PORT = 8080


@pytest.fixture(scope="module")
def web(local_tailnet: LocalTailnet) -> Iterator[tailnet.Server]:
    """A node named "web" serving InspectService on :8080, for the whole module."""
    with local_tailnet.server("web") as node:
        service = InspectService(node, PORT)
        yield node
        service.close()


@pytest.fixture
def client(tailnet_node: Callable[..., tailnet.Server], web: tailnet.Server) -> tailnet.Server:
    return tailnet_node("httpx-client")


@pytest.mark.parametrize("host", ["web", "web.tailnet.test", "ip"])
def test_httpx_reaches_a_peer_by_magicdns_name_or_ip(
    client: tailnet.Server, web: tailnet.Server, host: str
) -> None:
    host = str(web.ips[0]) if host == "ip" else host
    with httpx.Client(transport=client.httpx_transport()) as http:
        response = http.get(f"http://{host}:{PORT}/path?q=1")
    assert response.status_code == 200
    info = response.json()
    assert info["path"] == "/path?q=1"
    assert info["host"] == f"{host}:{PORT}"
    assert info["client"][0] == str(client.ips[0])  # it came over the tailnet, from this node


def test_httpx_body_both_ways_and_keep_alive(client: tailnet.Server) -> None:
    body = os.urandom(3 << 20)
    with httpx.Client(transport=client.httpx_transport(), base_url=f"http://web:{PORT}") as http:
        first = http.post("/upload", content=body).json()
        second = http.get("/again").json()
    assert first["body_len"] == len(body)
    assert first["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert second["client"] == first["client"]  # the pooled connection was reused


def test_httpx_errors_are_httpx_errors(client: tailnet.Server) -> None:
    with httpx.Client(transport=client.httpx_transport()) as http:
        with pytest.raises(httpx.ConnectError, match=r"refused|reset"):
            http.get(f"http://web:{PORT + 1}/")  # nothing listens there
        # No node has this name: it fails at once, without asking any resolver.
        with pytest.raises(httpx.ConnectError, match="no node named"):
            http.get("http://no-such-node/", timeout=60)
        with pytest.raises(httpx.ReadTimeout):
            http.get(f"http://web:{PORT}/hang", timeout=httpx.Timeout(30, read=0.5))


def test_httpx_transport_rejects_options_that_pick_another_network(client: tailnet.Server) -> None:
    for option in ({"proxy": "http://127.0.0.1:3128"}, {"uds": "/tmp/x.sock"}, {"local_address": "0.0.0.0"}):
        with pytest.raises(tailnet.ConfigurationError, match=next(iter(option))):
            client.httpx_transport(**option)


def test_httpx_transport_of_a_closed_server_raises_connect_error(local_tailnet: LocalTailnet) -> None:
    node = local_tailnet.server("closed-client")
    node.close()
    with (
        httpx.Client(transport=node.httpx_transport()) as http,
        pytest.raises(httpx.ConnectError, match="closed"),
    ):
        http.get("http://web/")


@pytest.fixture
async def async_client(
    local_tailnet: LocalTailnet, web: tailnet.Server, anyio_backend: str
) -> AsyncIterator[tailnet.AsyncServer]:
    async with local_tailnet.async_server(f"httpx-async-{anyio_backend}") as node:
        yield node


@pytest.mark.anyio
async def test_async_httpx_by_name_with_a_body(async_client: tailnet.AsyncServer) -> None:
    body = os.urandom(1 << 20)
    async with httpx.AsyncClient(transport=async_client.httpx_transport()) as http:
        responses = []

        async def post(n: int) -> None:
            responses.append((await http.post(f"http://web.tailnet.test:{PORT}/{n}", content=body)).json())

        async with anyio.create_task_group() as tg:  # concurrent requests: several pooled connections
            for n in range(4):
                tg.start_soon(post, n)
    assert sorted(r["path"] for r in responses) == ["/0", "/1", "/2", "/3"]
    assert {r["body_sha256"] for r in responses} == {hashlib.sha256(body).hexdigest()}
    assert {r["client"][0] for r in responses} == {str(async_client.ips[0])}


@pytest.mark.anyio
async def test_async_httpx_errors_are_httpx_errors(async_client: tailnet.AsyncServer) -> None:
    async with httpx.AsyncClient(transport=async_client.httpx_transport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://web:{PORT + 1}/")
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"http://web:{PORT}/hang", timeout=httpx.Timeout(30, read=0.5))


def test_requests_adapter(
    client: tailnet.Server, web: tailnet.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy setting must not send tailnet requests elsewhere.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    body = os.urandom(1 << 20)
    with requests.Session() as session:
        session.mount("http://", TailnetAdapter(client))
        got = session.get(f"http://web:{PORT}/a", timeout=30).json()
        posted = session.post(f"http://web.tailnet.test:{PORT}/b", data=body, timeout=30).json()
        by_ip = session.get(f"http://{web.ips[0]}:{PORT}/c", timeout=30).json()
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://web:{PORT + 1}/", timeout=30)
        with pytest.raises(requests.ReadTimeout):
            session.get(f"http://web:{PORT}/hang", timeout=(30, 0.5))
    assert got["client"][0] == str(client.ips[0])
    assert posted["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert by_ip["path"] == "/c"


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [("tailnet.httpx", "httpx", "httpx"), ("tailnet.requests", "requests", "requests")],
)
def test_a_missing_optional_dependency_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # import now raises ImportError
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(tailnet.MissingDependencyError, match=rf"pip install 'tailnet\[{extra}\]'"):
        __import__(module)


def test_httpx_transport_method_reports_missing_httpx(
    monkeypatch: pytest.MonkeyPatch, local_tailnet: LocalTailnet
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "tailnet.httpx")
    monkeypatch.delattr(tailnet, "httpx")  # as if never imported
    node = local_tailnet.server("no-httpx")
    try:
        with pytest.raises(ImportError, match=r"tailnet\[httpx\]"):
            node.httpx_transport()
    finally:
        node.close()
