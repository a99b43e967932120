"""Bad input gets a typed exception, never a crash, hang or leak."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.helpers import go_counter, open_fds

import tailnet
from tailnet.testing import LocalTailnet


@pytest.mark.parametrize(
    "hostname", ["", "-lead", "trail-", "has space", "under_score", "a" * 64, "dot.ted", "ünï"]
)
def test_invalid_hostnames(hostname: str, tmp_path: Path) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="hostname"):
        tailnet.Server(hostname, state_dir=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"hostname": 5}, TypeError),
        ({"authkey": b"bytes"}, TypeError),
        ({"ephemeral": "yes"}, TypeError),
        ({"tags": "tag:x"}, TypeError),
        ({"tags": ["nottag"]}, tailnet.ConfigurationError),
        ({"tags": ["tag:a,b"]}, tailnet.ConfigurationError),
        ({"control_url": "ftp://example"}, tailnet.ConfigurationError),
        ({"control_url": "no scheme"}, tailnet.ConfigurationError),
    ],
)
def test_invalid_server_arguments(kwargs: dict[str, Any], error: type[Exception], tmp_path: Path) -> None:
    kwargs.setdefault("hostname", "ok")
    with pytest.raises(error):
        tailnet.Server(state_dir=tmp_path, **kwargs)


@pytest.fixture(scope="module")
def node(local_tailnet: LocalTailnet) -> Iterator[tailnet.Server]:
    with local_tailnet.server("args-node") as server:
        yield server


@pytest.mark.parametrize(
    ("network", "address", "error"),
    [
        ("udp7", "x:1", tailnet.ConfigurationError),
        ("tcp", "no-port", tailnet.ConfigurationError),
        ("tcp", "host:0", tailnet.ConfigurationError),
        ("tcp", "host:65536", tailnet.ConfigurationError),
        ("tcp", "host:-1", tailnet.ConfigurationError),
        ("tcp", ":80", tailnet.ConfigurationError),
        ("tcp", ("host", 70000), tailnet.ConfigurationError),
        ("tcp", ("host", "80"), TypeError),
        ("tcp", 80, TypeError),
        (None, "host:80", TypeError),
    ],
)
def test_invalid_dial_arguments(
    node: tailnet.Server, network: Any, address: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        node.dial(network, address, timeout=5)


@pytest.mark.parametrize("timeout", [-1, float("nan"), "5"])
def test_invalid_timeouts(node: tailnet.Server, timeout: Any) -> None:
    with pytest.raises((tailnet.ConfigurationError, TypeError)):
        node.dial("tcp", "host:80", timeout=timeout)


@pytest.mark.parametrize(
    ("network", "address"),
    [("udp7", ":80"), ("tcp", "80"), ("tcp", "name:80"), ("tcp", ":99999"), ("tcp", ":x"), ("", ":80")],
)
def test_invalid_listen_arguments(node: tailnet.Server, network: str, address: str) -> None:
    with pytest.raises(tailnet.ConfigurationError):
        node.listen(network, address)


def test_bad_input_leaks_nothing(node: tailnet.Server) -> None:
    fds, handles = open_fds(), go_counter("handles")
    for _ in range(20):
        with pytest.raises(tailnet.ConfigurationError):
            node.dial("tcp", "host:0")
        with pytest.raises(tailnet.ConfigurationError):
            node.listen("tcp", ":99999")
    assert open_fds() == fds
    assert go_counter("handles") == handles


def test_c_api_rejects_null_and_unknown_handles() -> None:
    from tailnet._binding import library as binding

    ffi, library = binding.ffi(), binding.lib()
    assert library.tailnet_new(ffi.NULL, ffi.NULL, 0) == library.TAILNET_ERR_INVALID
    assert library.tailnet_close(987654321, ffi.NULL, 0) == library.TAILNET_ERR_BAD_HANDLE
    assert library.tailnet_op_free(987654321) == library.TAILNET_ERR_BAD_HANDLE
    assert library.tailnet_set(987654321, ffi.NULL, ffi.NULL, ffi.NULL, 0) == library.TAILNET_ERR_BAD_HANDLE
    tiny = ffi.new("char[]", 4)
    assert library.tailnet_close(987654321, tiny, 4) == library.TAILNET_ERR_BAD_HANDLE
    assert len(ffi.string(tiny)) == 3  # truncated, still terminated


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS uses ~/Library/Application Support")
def test_state_dir_defaults_to_the_user_data_dir_per_hostname(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, silent_control: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("TS_AUTHKEY", raising=False)
    first = tailnet.Server("default-dir", control_url=silent_control)
    second = tailnet.Server("default-dir-2", control_url=silent_control)
    try:
        for server, name in [(first, "default-dir"), (second, "default-dir-2")]:
            path = tmp_path / "data" / "tailnet" / name
            assert server.state_dir == str(path)
            assert not path.exists()  # the constructor does no I/O
            server.start()
            assert path.is_dir()
            assert path.stat().st_mode & 0o777 == 0o700
    finally:
        first.close()
        second.close()
