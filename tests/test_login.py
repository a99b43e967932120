"""Interactive login on a local tailnet that requires it."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import pytest
from conftest import eventually

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
