"""Where a node keeps its state: in memory (nothing on disk), or in a StateStore written in Python."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from harness.helpers import (
    EchoServer,
    go_counter,
    open_fds,
    recv_all,
    send_and_close_write,
    settle_fds,
    settle_goroutines,
)

import tailnet
from tailnet.testing import LocalTailnet

HARNESS = Path(__file__).parent / "harness"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SQLiteStore: Any = load_example("sqlite_store").SQLiteStore


class DictStore:
    """A store in a dict that records which thread called it."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.threads: set[str] = set()

    def read(self, key: str) -> bytes | None:
        self.threads.add(threading.current_thread().name)
        return self.values.get(key)

    def write(self, key: str, value: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        self.values[key] = value


class FailingStore:
    """A store whose disk is on fire."""

    def read(self, key: str) -> bytes | None:
        raise OSError(f"disk on fire reading {key}")

    def write(self, key: str, value: bytes) -> None:
        raise OSError("disk on fire")


class StuckStore:
    """A store that hangs until released, with a short timeout."""

    timeout = 0.5

    def __init__(self) -> None:
        self.release = threading.Event()

    def read(self, key: str) -> bytes | None:
        self.release.wait(60)
        return None

    def write(self, key: str, value: bytes) -> None:
        self.release.wait(60)


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# ---- Memory: nothing on disk


def test_memory_node_works_and_writes_nothing(
    local_tailnet: LocalTailnet, tailnet_node: Callable[..., tailnet.Server], tmp_path: Path
) -> None:
    peer = tailnet_node("mem-peer")
    echo = EchoServer(peer.listen("tcp", ":7"))
    empty = tmp_path / "empty"
    home, data, config, cache, state, tmp = (
        empty / name for name in ("home", "data", "config", "cache", "state", "tmp")
    )
    for directory in (home, data, config, cache, state, tmp):
        directory.mkdir(parents=True)
    env = {
        **os.environ,
        **local_tailnet.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(config),
        "XDG_CACHE_HOME": str(cache),
        "XDG_STATE_HOME": str(state),
        "TMPDIR": str(tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    child = subprocess.Popen(
        [sys.executable, str(HARNESS / "memory_node.py"), "mem-node", f"{peer.ips[0]}:7"],
        cwd=empty,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "reply ping"  # it dialed
        ready, ip = child.stdout.readline().split()
        assert ready == "ready"
        with peer.dial("tcp", f"{ip}:8", timeout=30) as conn:  # and it listens
            send_and_close_write(conn, b"pong")
            assert recv_all(conn) == b"pong"
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        echo.close()
    assert files_under(empty) == sorted(
        str(d.relative_to(empty)) for d in (home, data, config, cache, state, tmp)
    )


def test_memory_node_in_process(tailnet_node: Callable[..., tailnet.Server]) -> None:
    node = tailnet_node("mem-inproc", store="mem")
    assert node.state_dir is None
    assert node.ips


def test_memory_needs_ephemeral(local_tailnet: LocalTailnet) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="ephemeral=True"):
        local_tailnet.server("mem-persistent", store="mem", ephemeral=False)


@pytest.mark.parametrize(
    ("store", "error"),
    [("disk", tailnet.ConfigurationError), (42, TypeError), (object(), TypeError)],
)
def test_bad_store_is_refused(store: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="store"):
        tailnet.Server("bad-store", store=store)  # type: ignore[arg-type]


def test_bad_store_timeout_is_refused() -> None:
    store = DictStore()
    store.timeout = 0  # type: ignore[attr-defined]
    with pytest.raises(tailnet.ConfigurationError, match="timeout"):
        tailnet.Server("bad-timeout", store=store)


# ---- A store in Python


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def start_sqlite(net: LocalTailnet, database: Path, hostname: str) -> tuple[str, str]:
    store = SQLiteStore(database, namespace=hostname)
    try:
        with net.server(hostname, store=store, ephemeral=False) as node:
            assert node.state_dir is None
            return str(node.ips[0]), node.status().self_node.id
    finally:
        store.close()


def test_sqlite_store_keeps_identity_across_restarts(local_tailnet: LocalTailnet, database: Path) -> None:
    first = start_sqlite(local_tailnet, database, "sqlite-node")
    assert start_sqlite(local_tailnet, database, "sqlite-node") == first
    # The control: a node whose store is empty is someone else.
    assert start_sqlite(local_tailnet, database.with_name("other.db"), "sqlite-node") != first


@pytest.mark.anyio
async def test_sqlite_store_async(local_tailnet: LocalTailnet, database: Path) -> None:
    identities = []
    for _ in range(2):
        store = SQLiteStore(database, namespace="sqlite-async")
        try:
            async with local_tailnet.async_server("sqlite-async", store=store, ephemeral=False) as node:
                identities.append((node.ips[0], (await node.status()).self_node.id))
        finally:
            store.close()
    assert identities[0] == identities[1]


def test_store_is_called_on_the_nodes_thread(local_tailnet: LocalTailnet) -> None:
    store = DictStore()
    with local_tailnet.server("dict-node", store=store) as node:
        assert node.state_dir is None
    assert store.threads == {"tailnet-store-dict-node"}
    assert "_machinekey" in store.values
    assert not any(t.name == "tailnet-store-dict-node" for t in threading.enumerate())


def test_failing_store_is_a_clear_error(
    local_tailnet: LocalTailnet, caplog: pytest.LogCaptureFixture
) -> None:
    node = local_tailnet.server("failing-store", store=FailingStore())
    with pytest.raises(tailnet.StateStoreError, match="disk on fire") as caught:
        node.up(timeout=30)
    assert "docs/state.md" in str(caught.value)
    assert "the state store failed to read" in caplog.text
    node.close()
    assert not any(t.name == "tailnet-store-failing-store" for t in threading.enumerate())


def test_stuck_store_is_a_clear_error(local_tailnet: LocalTailnet) -> None:
    store = StuckStore()
    node = local_tailnet.server("stuck-store", store=store)
    try:
        with pytest.raises(tailnet.StateStoreError, match=r"did not read .* within 500ms"):
            node.up(timeout=30)
        node.close()  # does not wait for the stuck call
    finally:
        store.release.set()


@pytest.mark.anyio
async def test_failing_store_async(local_tailnet: LocalTailnet) -> None:
    with anyio.fail_after(30):
        with pytest.raises(tailnet.StateStoreError, match="disk on fire"):
            async with local_tailnet.async_server("failing-async", store=FailingStore()):
                pass


def test_store_that_returns_a_str_is_an_error(local_tailnet: LocalTailnet) -> None:
    class TextStore(DictStore):
        def read(self, key: str) -> bytes | None:
            return "oops"  # type: ignore[return-value]

    with (
        pytest.raises(tailnet.StateStoreError, match="returned str"),
        local_tailnet.server("text-store", store=TextStore()),
    ):
        pass


def test_store_leaks_no_descriptor_or_goroutine(local_tailnet: LocalTailnet) -> None:
    with local_tailnet.server("warm-store", store=DictStore()):
        pass  # the first node of a process starts shared goroutines and descriptors
    fds, goroutines = open_fds(), go_counter("goroutines")
    for _ in range(3):
        with local_tailnet.server("fd-store", store=DictStore()):
            pass
    settle_fds(fds)
    settle_goroutines(goroutines)
