"""Server arguments (tailnet._config): defaults, environment fallbacks, checks. No node is made."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import tailnet
from tailnet._config import DEFAULT_LINGER, ServerConfig, default_hostname


def config(**overrides: object) -> ServerConfig:
    arguments: dict[str, object] = {
        "hostname": "h",
        "authkey": None,
        "control_url": None,
        "state_dir": None,
        "ephemeral": False,
        "tags": (),
        **overrides,
    }
    return ServerConfig.from_arguments(**arguments)  # type: ignore[arg-type]


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_AUTHKEY", "tskey-env")
    monkeypatch.setenv("TS_CONTROL_URL", "http://control.example")
    got = config()
    assert (got.authkey, got.control_url, got.linger) == (
        "tskey-env",
        "http://control.example",
        DEFAULT_LINGER,
    )
    assert config(authkey="explicit").authkey == "explicit"
    monkeypatch.delenv("TS_AUTHKEY")
    monkeypatch.setenv("TS_AUTH_KEY", "tskey-other")
    assert config().authkey == "tskey-other"


def test_the_authkey_stays_out_of_the_repr() -> None:
    assert "tskey-secret" not in repr(config(authkey="tskey-secret"))


def test_options_for_the_library_put_the_hostname_first() -> None:
    got = config(authkey="k", tags=["tag:a", "tag:b"], ephemeral=True)
    assert got.options() == [
        ("hostname", "h"),
        ("authkey", "k"),
        ("ephemeral", "true"),
        ("tags", "tag:a,tag:b"),
    ]


def test_the_default_state_dir_is_per_hostname(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert config(hostname="web").resolved_state_dir() == tmp_path / "tailnet" / "web"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"hostname": 3}, TypeError),
        ({"ephemeral": "yes"}, TypeError),
        ({"tags": "tag:a"}, TypeError),
        ({"tags": ["tag:a,tag:b"]}, tailnet.ConfigurationError),
        ({"linger": -1}, tailnet.ConfigurationError),
        ({"linger": math.nan}, tailnet.ConfigurationError),
        ({"linger": math.inf}, tailnet.ConfigurationError),
        ({"linger": "10"}, TypeError),
    ],
)
def test_bad_arguments(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        config(**overrides)


@pytest.mark.parametrize(
    ("argv0", "hostname"), [("/usr/bin/My_Bot.py", "my-bot"), ("", "tailnet"), ("python3", "tailnet")]
)
def test_the_default_hostname_comes_from_the_script(
    monkeypatch: pytest.MonkeyPatch, argv0: str, hostname: str
) -> None:
    monkeypatch.setattr("sys.argv", [argv0])
    assert default_hostname() == hostname
