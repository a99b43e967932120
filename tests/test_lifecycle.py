"""Server lifecycle: up, close, state, identity, leaks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from harness.helpers import EchoServer, eventually, go_counter, open_fds, settle_fds, settle_goroutines

import tailnet
from tailnet.testing import LocalTailnet


def test_close_cancels_pending_up(silent_control: str, tmp_path: Path) -> None:
    server = tailnet.Server("stuck", control_url=silent_control, state_dir=tmp_path, authkey="k")
    errors: list[BaseException] = []

    def up() -> None:
        try:
            server.up()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    thread = threading.Thread(target=up)
    thread.start()
    eventually(lambda: go_counter("ops") >= 1)
    started = time.monotonic()
    server.close()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # a hang guard, not a speed goal
    assert len(errors) == 1
    assert isinstance(errors[0], tailnet.ClosedError)


def test_up_timeout(silent_control: str, tmp_path: Path) -> None:
    server = tailnet.Server("slow", control_url=silent_control, state_dir=tmp_path, authkey="k")
    with pytest.raises(tailnet.TailnetTimeout) as info:
        server.up(timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    server.close()
    assert go_counter("ops") == 0


def test_close_is_idempotent_and_use_after_close_raises(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("closer").up(timeout=60)
    server.close()
    server.close()
    assert server.closed
    with pytest.raises(tailnet.ClosedError):
        server.listen("tcp", ":80")
    with pytest.raises(tailnet.ClosedError):
        server.dial("tcp", "100.64.0.1:80")
    with pytest.raises(tailnet.ClosedError):
        server.up()
    with pytest.raises(tailnet.ClosedError):
        _ = server.ips


def test_state_dir_keeps_identity_across_restarts(local_tailnet: LocalTailnet, tmp_path: Path) -> None:
    with local_tailnet.server("keeper", state_dir=tmp_path, ephemeral=False) as first:
        ips = first.ips
    assert (tmp_path / "tailscaled.state").exists()
    with local_tailnet.server("keeper", state_dir=tmp_path, ephemeral=False) as second:
        assert second.ips == ips


def test_state_dir_cannot_be_shared_by_two_live_servers(local_tailnet: LocalTailnet, tmp_path: Path) -> None:
    with (
        local_tailnet.server("one", state_dir=tmp_path),
        pytest.raises(tailnet.ConfigurationError, match="in use"),
    ):
        local_tailnet.server("two", state_dir=tmp_path)
    local_tailnet.server("three", state_dir=tmp_path).close()  # free again


def test_ephemeral_and_persistent_nodes_talk(local_tailnet: LocalTailnet) -> None:
    with (
        local_tailnet.server("eph", ephemeral=True) as eph,
        local_tailnet.server("per", ephemeral=False) as per,
    ):
        echo = EchoServer(per.listen("tcp", ":7"))
        with eph.dial("tcp", "per:7", timeout=30) as conn:
            conn.sendall(b"e")
            assert conn.recv(1) == b"e"
        echo.close()


def test_no_fd_or_goroutine_leak(local_tailnet: LocalTailnet) -> None:
    def cycle() -> None:
        with local_tailnet.server("leak-a") as a, local_tailnet.server("leak-b") as b:
            echo = EchoServer(b.listen("tcp", ":7"))
            for _ in range(3):
                with a.dial("tcp", "leak-b:7", timeout=30) as conn:
                    conn.sendall(b"x")
                    assert conn.recv(1) == b"x"
            echo.close()

    cycle()  # warm up: the log pump and library load once per process
    fds, handles = open_fds(), go_counter("handles")
    goroutines = go_counter("goroutines")
    cycle()
    settle_fds(fds)
    assert go_counter("handles") == handles
    assert go_counter("ops") == 0
    settle_goroutines(goroutines + 5)
