"""Every example runs, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo() -> None:
    out = run(str(EXAMPLES / "demo.py"))
    assert "alpha is up with tailnet IPs 100." in out
    assert "replied: 'echo from beta: hello over the tailnet'" in out


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
