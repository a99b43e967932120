"""The state store's pieces that need no node: frames, store checks, the options a store sets."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import tailnet
from tailnet._config import ServerConfig
from tailnet._state import decode_request, encode_reply, store_timeout


class Store:
    def read(self, key: str) -> bytes | None:
        return None

    def write(self, key: str, value: bytes) -> None:
        pass


def request(number: int, op: bytes, key: bytes, value: bytes = b"") -> bytes:
    """A request body as the library sends it (after the length)."""
    return struct.pack(">Q", number) + op + struct.pack(">H", len(key)) + key + value


def test_requests_decode() -> None:
    assert decode_request(request(7, b"R", b"_machinekey")) == ("R", "_machinekey", b"")
    assert decode_request(request(8, b"W", b"profile-1", b"\x00{}")) == ("W", "profile-1", b"\x00{}")


@pytest.mark.parametrize(
    "body",
    [b"", request(1, b"X", b"k"), request(1, b"R", b"k")[:-1], struct.pack(">QcH", 1, b"R", 9) + b"short"],
)
def test_malformed_requests_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="state store request"):
        decode_request(body)


def test_replies_encode() -> None:
    assert encode_reply(5, 0, b"value") == struct.pack(">IQ", 14, 5) + b"\x00value"
    assert encode_reply(6, 1) == struct.pack(">IQ", 9, 6) + b"\x01"


def test_store_timeout() -> None:
    store = Store()
    assert store_timeout(store) == 10.0
    store.timeout = 0.25  # type: ignore[attr-defined]
    assert store_timeout(store) == 0.25
    store.timeout = "1"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="timeout"):
        store_timeout(store)


def config(**overrides: object) -> ServerConfig:
    arguments: dict[str, object] = {
        "hostname": "h",
        "authkey": None,
        "control_url": None,
        "state_dir": None,
        "ephemeral": True,
        "tags": (),
        **overrides,
    }
    return ServerConfig.from_arguments(**arguments)  # type: ignore[arg-type]


def test_a_store_means_no_directory_unless_one_is_given(tmp_path: Path) -> None:
    assert config(store="mem").resolved_state_dir() is None
    assert config(store=Store()).resolved_state_dir() is None
    assert config(store=Store(), state_dir=tmp_path).resolved_state_dir() == tmp_path
    assert config().resolved_state_dir() is not None


def test_options_carry_memory_and_port() -> None:
    options = dict(config(store="mem", port=41641).options())
    assert options["store"] == "mem"
    assert options["port"] == "41641"
    assert "store" not in dict(config(store=Store()).options())  # served over tailnet_set_store
    assert "port" not in dict(config().options())


def test_store_checks() -> None:
    assert isinstance(Store(), tailnet.StateStore)
    with pytest.raises(tailnet.ConfigurationError, match="ephemeral=True"):
        config(store="mem", ephemeral=False)
    with pytest.raises(tailnet.ConfigurationError, match="'mem' or a StateStore"):
        config(store="memory")
    with pytest.raises(TypeError, match="read"):
        config(store=b"mem")
