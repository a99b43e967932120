"""Serving over the tailnet: ASGI and WSGI apps on uvicorn, the stdlib's socketserver and http.server."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import os
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.abc
import httpx
import pytest
import requests
from harness.helpers import eventually
from harness.http_helpers import make_certificate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import tailnet
from tailnet._accepted import AcceptLoop
from tailnet._server import core_of
from tailnet.requests import TailnetAdapter
from tailnet.socketserver import TCPServer, ThreadingTCPServer
from tailnet.testing import LocalTailnet


class App:
    """A Starlette app recording its lifespan; ``/wait`` answers once ``release`` is set."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.release: anyio.Event | None = None
        self.waiting = threading.Event()

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.events.append("startup")
            yield
            self.events.append("shutdown")

        self.asgi = Starlette(
            routes=[
                Route("/whoami", self.whoami),
                Route("/echo", self.echo, methods=["POST"]),
                Route("/wait", self.wait),
            ],
            lifespan=lifespan,
        )

    async def whoami(self, request: Request) -> JSONResponse:
        assert request.client is not None
        extension = request.scope["extensions"]["tailnet"]
        who: tailnet.PeerIdentity | None = extension["whois"]
        return JSONResponse(
            {
                "client": [request.client.host, request.client.port],
                "server": list(request.scope["server"]),
                "peer": list(extension["peer"]),
                "scheme": request.url.scheme,
                "whois": None if who is None else {"node": who.node_name, "login": who.login_name},
            }
        )

    async def echo(self, request: Request) -> Response:
        return Response(await request.body())

    async def wait(self, request: Request) -> Response:
        self.release = anyio.Event()
        self.waiting.set()
        await self.release.wait()
        return Response(b"released")


def serve_in_thread(target: Callable[..., None], *args: Any, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def wait_listening(client: tailnet.Server, address: str) -> None:
    """Wait until something listens at address (a server started in a thread)."""

    def listening() -> bool:
        try:
            client.dial("tcp", address, timeout=10).close()
        except tailnet.ConnectionRefused:
            return False
        return True

    eventually(listening, timeout=30)


def check_whoami(info: dict[str, Any], client: tailnet.Server | tailnet.AsyncServer, port: int) -> None:
    assert info["client"][0] == str(client.ips[0])  # the peer's tailnet address, not the socketpair's
    assert info["peer"] == info["client"]
    assert info["server"][1] == port
    assert info["whois"]["node"] == client.hostname  # who is calling, as the control server says
    assert info["whois"]["login"].startswith("user-")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serve_asgi_blocks_until_the_server_closes(
    tailnet_node: Callable[..., tailnet.Server], loop: str
) -> None:
    app = App()
    service, client = tailnet_node(f"asgi-{loop}"), tailnet_node(f"asgi-{loop}-client")
    thread = serve_in_thread(service.serve_asgi, app.asgi, 8000, loop=loop, log_level="warning")
    wait_listening(client, f"asgi-{loop}:8000")
    body = os.urandom(2 << 20)
    with httpx.Client(transport=client.httpx_transport(), base_url=f"http://asgi-{loop}:8000") as http:
        info = http.get("/whoami").json()
        echoed = http.post("/echo", content=body).content
    check_whoami(info, client, 8000)
    assert info["server"][0] == str(service.ips[0])
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(body).digest()
    service.close()
    thread.join(30)
    assert not thread.is_alive()
    assert app.events == ["startup", "shutdown"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the loop hands sockets to asyncio servers
async def test_a_connection_accepted_as_its_server_closes_is_closed(
    local_tailnet: LocalTailnet, anyio_backend: str
) -> None:
    """The ASGI and aiohttp servers' accept loop closes a connection whose set-up it cancelled before it ran.

    Its ``close`` cancels the set-ups in progress; a task cancelled before
    its first step never runs, so ``_connect`` could not close the socket,
    which then waited for garbage collection (a ResourceWarning under load).
    The set-up is cancelled here as it is created, which a close can only
    sometimes do, and its socket held, so only the loop can close it.
    """
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []

    def cancel_set_ups(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        if getattr(coro, "__qualname__", "").endswith("._connect"):
            held.append(coro.cr_frame.f_locals["sock"])
            task.cancel()
        return task

    class Acceptor(AcceptLoop):
        async def _connect(self, sock: tailnet.TailnetSocket) -> None:
            raise AssertionError("a cancelled set-up ran")

    async with (
        local_tailnet.async_server("accept-closing") as service,
        local_tailnet.async_server("accept-closing-c") as client,
    ):
        listener = await service.listen("tcp", ":8002")
        async with await client.dial("tcp", "accept-closing:8002", timeout=30) as stream:
            loop.set_task_factory(cancel_set_ups)
            try:
                acceptor = Acceptor(core_of(listener))
                with anyio.fail_after(60):  # a hang guard
                    while not held or acceptor._setups:  # accepted, then its cancelled set-up done
                        await asyncio.sleep(0.01)
            finally:
                loop.set_task_factory(None)
            acceptor.close()
            await acceptor.wait_closed()
            assert held[0].fileno() == -1
            with anyio.fail_after(60), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stream.receive()
        del held[:]


async def refused(client: tailnet.AsyncServer, address: str) -> None:
    """Wait until nothing listens at address any more."""
    with anyio.fail_after(30):
        while True:
            try:
                await (await client.dial("tcp", address, timeout=10)).aclose()
            except tailnet.ConnectionRefused:
                return
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_async_serve_asgi_cancelled_shuts_down_gracefully(
    local_tailnet: LocalTailnet, anyio_backend: str
) -> None:
    """uvicorn on asyncio, hypercorn on trio: the same scope, the same graceful shutdown."""
    app = App()
    name = f"asgi-{anyio_backend}"
    # Each server's own options: uvicorn's under asyncio, hypercorn's under trio.
    options: dict[str, Any] = (
        {"log_level": "warning"} if anyio_backend == "asyncio" else {"graceful_timeout": 60}
    )
    async with (
        local_tailnet.async_server(name) as service,
        local_tailnet.async_server(f"{name}-c") as client,
        httpx.AsyncClient(transport=client.httpx_transport(), base_url=f"http://{name}:8001") as http,
        anyio.create_task_group() as tg,
    ):
        serving = anyio.CancelScope()
        served = anyio.Event()
        result: list[httpx.Response] = []

        async def serve(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            with serving:
                await service.serve_asgi(app.asgi, 8001, task_status=task_status, **options)
            served.set()

        answered = anyio.Event()

        async def wait_request() -> None:
            result.append(await http.get("/wait"))
            answered.set()

        await tg.start(serve)
        assert app.events == ["startup"]
        check_whoami((await http.get("/whoami")).json(), client, 8001)
        tg.start_soon(wait_request)
        await anyio.to_thread.run_sync(app.waiting.wait, 30)
        serving.cancel()  # while a request is in progress
        await refused(client, f"{name}:8001")  # it stopped accepting...
        assert app.events == ["startup"]  # ...and waits for the request
        assert not result
        assert app.release is not None
        app.release.set()
        with anyio.fail_after(30):
            await served.wait()
            await answered.wait()
        assert result[0].content == b"released"
        assert app.events == ["startup", "shutdown"]
        # The listener was closed: the port is free again.
        await (await service.listen("tcp", ":8001")).aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_async_serve_asgi_under_trio_serves_until_the_node_closes(
    local_tailnet: LocalTailnet, anyio_backend: str
) -> None:
    """hypercorn under trio: many requests on kept-alive connections, a body both ways, whois."""
    app = App()
    body = os.urandom(1 << 20)
    async with (
        local_tailnet.async_server("asgi-trio") as service,
        local_tailnet.async_server("asgi-trio-c") as client,
        anyio.create_task_group() as tg,
    ):
        await tg.start(service.serve_asgi, app.asgi, 8002)
        async with httpx.AsyncClient(
            transport=client.httpx_transport(), base_url="http://asgi-trio:8002"
        ) as http:
            for _ in range(5):
                check_whoami((await http.get("/whoami")).json(), client, 8002)
            assert (await http.post("/echo", content=body)).content == body
        await service.aclose()  # the listener closes under hypercorn: serving ends
    assert app.events == ["startup", "shutdown"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_async_serve_wsgi_under_trio_is_unsupported(
    local_tailnet: LocalTailnet, anyio_backend: str
) -> None:
    async with local_tailnet.async_server("wsgi-trio") as service:
        with pytest.raises(tailnet.UnsupportedError, match="asyncio"):
            await service.serve_wsgi(wsgi_app, 8002)
        await (await service.listen("tcp", ":8002")).aclose()  # nothing left listening


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_async_serve_asgi_under_trio_rejects_socket_and_unknown_options(
    local_tailnet: LocalTailnet, anyio_backend: str
) -> None:
    async with local_tailnet.async_server("asgi-trio-options") as service:
        with pytest.raises(tailnet.ConfigurationError, match="'bind'"):
            await service.serve_asgi(App().asgi, 8003, bind=["0.0.0.0:80"])
        with pytest.raises(tailnet.ConfigurationError, match="'log_level' is not a hypercorn"):
            await service.serve_asgi(App().asgi, 8003, log_level="warning")
        await (await service.listen("tcp", ":8003")).aclose()  # nothing left listening


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serving_under_trio_without_hypercorn_names_the_extra(
    local_tailnet: LocalTailnet, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name.startswith("hypercorn.")]:
        monkeypatch.delitem(sys.modules, name)  # imported by the tests before
    monkeypatch.setitem(sys.modules, "hypercorn", None)
    monkeypatch.delitem(sys.modules, "tailnet._asgi_trio", raising=False)
    monkeypatch.delattr(tailnet, "_asgi_trio", raising=False)  # as if never imported
    async with local_tailnet.async_server("no-hypercorn") as service:
        with pytest.raises(tailnet.MissingDependencyError, match=r"pip install 'tailnet\[hypercorn\]'"):
            await service.serve_asgi(App().asgi, 8004)
        await (await service.listen("tcp", ":8004")).aclose()  # nothing left listening


def test_asgi_module_serves_a_listener_of_its_own(tailnet_node: Callable[..., tailnet.Server]) -> None:
    from tailnet import asgi

    service, client = tailnet_node("asgi-module"), tailnet_node("asgi-module-client")
    listener = service.listen("tcp", ":8007")
    thread = serve_in_thread(asgi.run, listener, App().asgi, log_level="warning")  # no server: no whois
    with httpx.Client(transport=client.httpx_transport()) as http:
        info = http.get("http://asgi-module:8007/whoami").json()
    assert info["client"][0] == str(client.ips[0])
    assert info["whois"] is None
    service.close()
    thread.join(30)
    assert not thread.is_alive()


def test_serve_asgi_rejects_uvicorn_socket_options(tailnet_node: Callable[..., tailnet.Server]) -> None:
    service = tailnet_node("asgi-options")
    with pytest.raises(tailnet.ConfigurationError, match="'host'"):
        service.serve_asgi(App().asgi, 8003, host="0.0.0.0")
    with pytest.raises(TypeError, match="port must be an int or a Listener"):
        service.serve_asgi(App().asgi, "8003")  # type: ignore[arg-type]
    service.listen("tcp", ":8003").close()


@pytest.mark.parametrize(("package", "method"), [("uvicorn", "serve_asgi"), ("a2wsgi", "serve_wsgi")])
def test_serving_without_its_dependency_names_the_extra(
    tailnet_node: Callable[..., tailnet.Server], monkeypatch: pytest.MonkeyPatch, package: str, method: str
) -> None:
    service = tailnet_node(f"no-{package}")
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, "tailnet.asgi")
    monkeypatch.delattr(tailnet, "asgi")  # as if never imported
    with pytest.raises(tailnet.MissingDependencyError, match=r"pip install 'tailnet\[(asgi|wsgi)\]'"):
        getattr(service, method)(lambda *args: None, 8004)
    service.listen("tcp", ":8004").close()  # nothing left listening


def test_https_with_uvicorn_tls_and_clients_over_tls(
    tailnet_node: Callable[..., tailnet.Server], local_tailnet: LocalTailnet, tmp_path: Path
) -> None:
    cert, key = make_certificate(tmp_path, "asgi-tls", "asgi-tls.tailnet.test")
    service, client = tailnet_node("asgi-tls"), tailnet_node("asgi-tls-client")
    listener = service.listen("tcp", ":443")  # a listener of our own: no waiting for the thread
    thread = serve_in_thread(
        service.serve_asgi,
        App().asgi,
        listener,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(transport=client.httpx_transport(verify=trusted)) as http:
        info = http.get("https://asgi-tls.tailnet.test/whoami").json()
    with (
        httpx.Client(transport=client.httpx_transport()) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get("https://asgi-tls/whoami")
    check_whoami(info, client, 443)
    assert info["scheme"] == "https"
    with requests.Session() as session:
        session.mount("https://", TailnetAdapter(client))
        assert (
            session.get("https://asgi-tls/whoami", verify=str(cert), timeout=30).json()["scheme"] == "https"
        )

    async def async_get(backend: str) -> dict[str, Any]:
        async with (
            local_tailnet.async_server(f"asgi-tls-{backend}") as node,
            httpx.AsyncClient(transport=node.httpx_transport(verify=trusted)) as http,
        ):
            result: dict[str, Any] = (await http.get("https://asgi-tls/whoami")).json()
            return result

    for backend in ("asyncio", "trio"):
        assert anyio.run(async_get, backend, backend=backend)["scheme"] == "https"
    service.close()
    thread.join(30)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    peer, who = environ["tailnet.peer"], environ["tailnet.whois"]
    remote = f"{environ['REMOTE_ADDR']} {environ['REMOTE_PORT']}"
    return [f"{peer[0]} {peer[1]} {remote} {len(body)} {who.node_name}".encode()]


def test_serve_wsgi(tailnet_node: Callable[..., tailnet.Server]) -> None:
    service, client = tailnet_node("wsgi"), tailnet_node("wsgi-client")
    thread = serve_in_thread(service.serve_wsgi, wsgi_app, 8005, log_level="warning")
    wait_listening(client, "wsgi:8005")
    with httpx.Client(transport=client.httpx_transport()) as http:
        response = http.post("http://wsgi:8005/", content=b"x" * 100_000)
    peer_ip, peer_port, remote_addr, remote_port, length, node_name = response.text.split()
    assert peer_ip == remote_addr == str(client.ips[0])
    assert peer_port == remote_port
    assert length == "100000"
    assert node_name == "wsgi-client"
    service.close()
    thread.join(30)
    assert not thread.is_alive()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_serve_wsgi(local_tailnet: LocalTailnet, anyio_backend: str) -> None:
    async with (
        local_tailnet.async_server("wsgi-async") as service,
        local_tailnet.async_server("wsgi-async-c") as client,
    ):
        async with anyio.create_task_group() as tg:
            listener = await service.listen("tcp", ":8006")
            await tg.start(functools.partial(service.serve_wsgi, wsgi_app, listener, log_level="warning"))
            async with httpx.AsyncClient(transport=client.httpx_transport()) as http:
                response = await http.post("http://wsgi-async:8006/", content=b"abc")
            tg.cancel_scope.cancel()
        assert response.text.split()[0] == str(client.ips[0])
        assert response.text.split()[-1] == "wsgi-async-c"


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_text("hello from a directory on the tailnet\n")
    return tmp_path


def test_http_server_serves_a_directory_until_the_node_closes(
    tailnet_node: Callable[..., tailnet.Server], shared_dir: Path
) -> None:
    service, client = tailnet_node("files"), tailnet_node("files-client")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_dir))
    httpd = ThreadingTCPServer(service.listen("tcp", ":80"), handler)
    assert httpd.server_address == ("", 80)
    thread = serve_in_thread(httpd.serve_forever)
    with httpx.Client(transport=client.httpx_transport()) as web:
        assert web.get("http://files/hello.txt").text == "hello from a directory on the tailnet\n"
        assert web.get("http://files/missing").status_code == 404
    service.close()  # serve_forever notices the listener closed and returns
    thread.join(30)
    assert not thread.is_alive()
    httpd.server_close()


class Echo(socketserver.StreamRequestHandler):
    peers: ClassVar[list[tuple[str, int]]] = []

    def handle(self) -> None:
        self.peers.append(self.client_address)
        for line in self.rfile:
            self.wfile.write(line.upper())


def test_socketserver_handlers_work_unchanged(tailnet_node: Callable[..., tailnet.Server]) -> None:
    service, client = tailnet_node("socketserver"), tailnet_node("socketserver-client")
    with TCPServer(service.listen("tcp", ":7"), Echo) as server:
        thread = serve_in_thread(server.handle_request)
        with client.dial("tcp", "socketserver:7", timeout=30) as conn:
            conn.settimeout(30)
            conn.sendall(b"one\ntwo\n")
            conn.shutdown(socket.SHUT_WR)
            with conn.makefile("rb") as reply:
                assert reply.read() == b"ONE\nTWO\n"
        thread.join(30)
        assert Echo.peers[-1][0] == str(client.ips[0])
        # handle_request honours the server's timeout.
        timeouts: list[bool] = []
        server.timeout = 0.1
        server.handle_timeout = lambda: timeouts.append(True)  # type: ignore[method-assign]
        server.handle_request()
        assert timeouts == [True]
        # shutdown() ends serve_forever as with any socketserver.
        thread = serve_in_thread(server.serve_forever, 0.05)
        server.shutdown()
        thread.join(30)
        assert not thread.is_alive()


def test_threading_server_keeps_serving_while_a_handler_runs(
    tailnet_node: Callable[..., tailnet.Server],
) -> None:
    service, client = tailnet_node("threads"), tailnet_node("threads-client")
    with ThreadingTCPServer(service.listen("tcp", ":7"), Echo) as server:
        thread = serve_in_thread(server.serve_forever)
        first = client.dial("tcp", "threads:7", timeout=30)  # its handler blocks reading
        with client.dial("tcp", "threads:7", timeout=30) as second:
            second.settimeout(30)
            second.sendall(b"still served\n")
            second.shutdown(socket.SHUT_WR)
            assert second.makefile("rb").read() == b"STILL SERVED\n"
        first.close()
        server.shutdown()
        thread.join(30)
    eventually(lambda: not thread.is_alive())
