"""Interactive login on a local tailnet that requires it."""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import re
import select
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from harness.helpers import eventually

import tailnet
from tailnet.testing import LocalTailnet


def test_up_logs_the_login_url_and_completes(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="tailnet")
    with LocalTailnet(interactive=True) as net:
        server = net.server("needs-login", authkey=None, state_dir=tmp_path)
        errors: list[BaseException] = []

        def up() -> None:
            try:
                server.up(timeout=60)
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                errors.append(exc)

        thread = threading.Thread(target=up)
        thread.start()
        urls: list[str] = []

        def url_logged() -> bool:
            urls[:] = re.findall(r"https?://\S+/auth/\S+", caplog.text)
            return bool(urls)

        eventually(url_logged, timeout=30)
        assert any(r.levelno >= logging.WARNING and "/auth/" in r.getMessage() for r in caplog.records)
        net.complete_login(urls[0])
        thread.join(60)
        assert errors == []
        assert server.ips
        server.close()


def test_completing_an_unknown_login_is_an_error() -> None:
    with LocalTailnet(interactive=True) as net, pytest.raises(tailnet.ConfigurationError):
        net.complete_login("http://127.0.0.1:1/auth/nope")


def test_up_reports_the_login_url_as_event_and_attribute() -> None:
    events: list[tailnet.WatchEvent] = []
    with LocalTailnet(interactive=True) as net, closing(net.server("login-events", authkey=None)) as server:

        def on_event(event: tailnet.WatchEvent) -> None:
            events.append(event)
            if isinstance(event, tailnet.LoginRequired):
                assert server.login_url == event.url
                assert server.state is tailnet.BackendState.NEEDS_LOGIN
                net.complete_login(event.url)

        server.up(timeout=60, on_event=on_event)

        assert server.state is tailnet.BackendState.RUNNING
        assert server.login_url is None
        assert server.status().login_url is None
        logins = [e for e in events if isinstance(e, tailnet.LoginRequired)]
        assert len(logins) == 1
        assert "/auth/" in logins[0].url
        states = [e.state for e in events if isinstance(e, tailnet.StateChanged)]
        assert states.index(tailnet.BackendState.NEEDS_LOGIN) < events.index(logins[0])
        assert states[-1] is tailnet.BackendState.RUNNING
        assert server.ips


def test_without_a_login_up_times_out_with_the_url_still_shown() -> None:
    with LocalTailnet(interactive=True) as net, closing(net.server("login-waits", authkey=None)) as server:
        urls: list[str] = []

        def on_event(event: tailnet.WatchEvent) -> None:
            if isinstance(event, tailnet.LoginRequired):
                urls.append(event.url)

        with pytest.raises(tailnet.TailnetTimeout):
            server.up(timeout=3, on_event=on_event)
        assert urls
        assert server.state is tailnet.BackendState.NEEDS_LOGIN
        assert server.login_url == urls[-1]
        assert server.status().login_url == urls[-1]
        net.complete_login(urls[-1])  # completing it later still works
        server.up(timeout=60)
        assert server.login_url is None
        assert server.status().state is tailnet.BackendState.RUNNING


def test_the_login_url_is_logged_once_as_soon_as_it_is_known(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tailnet")
    with LocalTailnet(interactive=True) as net, closing(net.server("login-log", authkey=None)) as server:
        urls: list[str] = []

        def on_event(event: tailnet.WatchEvent) -> None:
            if isinstance(event, tailnet.LoginRequired):
                urls.append(event.url)

        def logins() -> list[logging.LogRecord]:
            return [r for r in caplog.records if getattr(r, "login_url", None)]

        # Wait past tsnet's own hint, which came at about 5 s and every 5 s.
        with pytest.raises(tailnet.TailnetTimeout):
            server.up(timeout=8, on_event=on_event)
        eventually(lambda: len(logins()) > 0)
        (record,) = logins()
        assert record.levelno == logging.WARNING
        assert record.login_url == server.login_url  # type: ignore[attr-defined]
        assert record.getMessage() == f"[login-log] to join the tailnet, log in at: {server.login_url}"
        assert "TS_AUTHKEY" not in caplog.text
        assert urls == [record.login_url]  # type: ignore[attr-defined]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_watch_sees_login_then_running(anyio_backend: str) -> None:
    with LocalTailnet(interactive=True) as net:
        server = net.async_server(f"login-async-{anyio_backend}", authkey=None)
        seen: list[tailnet.WatchEvent] = []
        try:
            async with await server.watch() as watcher, anyio.create_task_group() as tg:
                tg.start_soon(server.up, 60)
                async for event in watcher:
                    seen.append(event)
                    if isinstance(event, tailnet.LoginRequired):
                        net.complete_login(event.url)
                    if event == tailnet.StateChanged(tailnet.BackendState.RUNNING):
                        break
            assert any(isinstance(e, tailnet.LoginRequired) for e in seen)
            assert server.state is tailnet.BackendState.RUNNING
        finally:
            await server.aclose()


def test_login_qr_code() -> None:
    qr = tailnet.LoginRequired("http://127.0.0.1:1/auth/0123456789abcdef").qr()
    lines = qr.splitlines()
    assert len(lines) > 10
    assert set("".join(lines)) <= set("█▀▄ ")
    assert len({len(line) for line in lines}) == 1  # a rectangle


def test_login_qr_code_needs_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # as if not installed
    with pytest.raises(ImportError, match=r"tailnet\[qr\]"):
        tailnet.LoginRequired("http://127.0.0.1:1/auth/x").qr()


QR_CHILD = """
import logging, threading
import tailnet
from tailnet.testing import LocalTailnet

logging.basicConfig(format="%(message)s")
logged = threading.Event()

class Seen(logging.Handler):
    def emit(self, record):
        if "/auth/" in record.getMessage():
            logged.set()

logging.getLogger("tailnet").addHandler(Seen())
with LocalTailnet(interactive=True) as net:
    server = net.server("qr-node", authkey=None).start()
    assert logged.wait(60), "no login URL logged"
    server.close()
print("DONE", flush=True)
"""


def run_qr_child(on_terminal: bool) -> str:
    """Run QR_CHILD with stdio on a pseudo-terminal (or pipes); its output."""
    if not on_terminal:
        result = subprocess.run(
            [sys.executable, "-c", QR_CHILD], capture_output=True, text=True, timeout=120, check=True
        )
        return result.stdout + result.stderr
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-c", QR_CHILD], stdin=terminal, stdout=terminal, stderr=terminal
    ) as child:
        os.close(terminal)
        output = b""
        with contextlib.suppress(OSError):  # EIO: the child has exited, all is read
            while True:
                ready, _, _ = select.select([controller], [], [], 120)
                assert ready, output
                chunk = os.read(controller, 65536)
                if not chunk:
                    break
                output += chunk
        os.close(controller)
        assert child.wait(60) == 0, output
        assert b"DONE" in output
    return output.decode("utf-8", "replace")


def test_logged_login_url_comes_with_a_qr_code_on_a_terminal() -> None:
    output = run_qr_child(on_terminal=True)
    assert "log in at: http://127.0.0.1:" in output
    assert "▀" in output
    assert "▄" in output
    assert "█████████" in output
    plain = run_qr_child(on_terminal=False)
    assert "log in at: http://127.0.0.1:" in plain
    assert "▀" not in plain
