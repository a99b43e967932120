"""Every example runs, as a user would run it, and prints what it should."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tailnet.socketserver import ThreadingTCPServer
from tailnet.testing import LocalTailnet

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_example_has_a_test() -> None:
    # Each example is run by a test that names its file: below, or in the
    # test file of what it needs (forward_postgres.py: test_postgres.py).
    source = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    untested = [path.name for path in EXAMPLES.glob("*.py") if f'"{path.name}"' not in source]
    assert not untested


def test_sync_echo() -> None:
    out = run(str(EXAMPLES / "sync_echo.py"))
    assert "echo-client: ('100.64.0.1', 7) replied 'hello over the tailnet'" in out
    assert "echo-service: echoed a connection from 100.64.0.2" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_echo(backend: str) -> None:
    out = run(str(EXAMPLES / "async_echo.py"), backend)
    assert "'hello\\nover the\\ntailnet\\n'" in out


def test_allowlist() -> None:
    out = run(str(EXAMPLES / "allowlist.py"))
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["alice"].startswith("hello user-"), out
    assert lines["alice"].endswith("calling from alice"), out
    assert lines["mallory"].startswith("sorry user-"), out
    assert lines["mallory"].endswith("you are not on the list"), out


def test_https_service() -> None:
    out = run(str(EXAMPLES / "https_service.py"))
    assert "https://web.tailnet.test/hello -> 'hello 100." in out
    assert "LocalAPI: web.tailnet.test. is Running" in out


def test_udp_echo() -> None:
    out = run(str(EXAMPLES / "udp_echo.py"))
    assert "b'three, never merged' -> b'THREE, NEVER MERGED'" in out


def test_httpx_client_by_magicdns_name() -> None:
    out = run(str(EXAMPLES / "httpx_client.py"))
    assert "sync  GET http://weather/paris -> {'city': 'paris'" in out
    assert "sync  GET http://weather.tailnet.test/oslo -> {'city': 'oslo'" in out
    assert "async GET http://weather/kyoto -> {'city': 'kyoto'" in out


def test_asgi_app() -> None:
    out = run(str(EXAMPLES / "asgi_app.py"))
    assert (
        "caller (100.64.0.2) GET http://api/hello -> {'hello': '100.64.0.2', 'tailnet_peer': ['100.64.0.2',"
        in out
    )


def test_wsgi_app() -> None:
    out = run(str(EXAMPLES / "wsgi_app.py"))
    assert "visitor GET http://wsgi-site:8000/page -> 'hello 100.64.0.2 (port " in out


def test_stdlib_http() -> None:
    out = run(str(EXAMPLES / "stdlib_http.py"))
    assert "reader GET http://files/readme.txt -> 200 'shared over the tailnet with http.server\\n'" in out
    assert "reader GET http://files/nope -> 404" in out


def test_outbound_bot() -> None:
    lines = run(str(EXAMPLES / "outbound_bot.py")).splitlines()
    assert lines[:4] == ["alice: hi all", "alice: !ping", "alice: !time", "  bot: pong"]
    assert lines[4].startswith("  bot: ")


def test_whois_http_authorizes_by_tag() -> None:
    lines = run(str(EXAMPLES / "whois_http.py")).splitlines()
    assert lines == [
        'ops-laptop: 200 {"restarted":true,"by":"ops-laptop","tags":["tag:ops"]}',
        "guest: 403 guest may not restart anything",
    ]


def test_sqlite_store() -> None:
    out = run(str(EXAMPLES / "sqlite_store.py"))
    pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
    lines = {key: value.strip() for key, value in pairs}
    assert lines["first start"].startswith("100."), out
    assert lines["second start"] == lines["first start"], out
    assert out.rstrip().endswith("same identity"), out


def test_aiohttp_report_with_its_own_monitor() -> None:
    lines = run(str(EXAMPLES / "aiohttp_report.py")).splitlines()
    assert lines[0].startswith("sent "), lines
    assert lines[1] == "monitor: {'from': 'report-bot', 'events': 20000}", lines


class _Reports(http.server.BaseHTTPRequestHandler):
    """Keeps each POSTed body whole, as the monitor received it."""

    received: list[bytes]  # set on a subclass per test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"stored": len(body)}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_aiohttp_report_bot_posts_its_whole_report_and_exits() -> None:
    received: list[bytes] = []
    handler = type("Reports", (_Reports,), {"received": received})
    with (
        LocalTailnet() as net,
        net.server("monitor") as monitor,
        ThreadingTCPServer(monitor.listen("tcp", ":8080"), handler) as httpd,
    ):
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            out = run(
                str(EXAMPLES / "aiohttp_report.py"),
                "http://monitor:8080/report",
                env={**os.environ, **net.environ},
            )
        finally:
            httpd.shutdown()
    (report,) = received
    sent = out.splitlines()[0].split()
    assert sent[:4] == ["sent", str(len(report)), "bytes", "sha256"], out
    assert sent[4] == hashlib.sha256(report).hexdigest()
    assert len(json.loads(report)["events"]) == 20_000
    assert f"monitor: {{'stored': {len(report)}}}" in out
