"""tests/harness/gotools.py: pinned versions, and a clear skip without Go."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import gotools

GO = gotools.go_binary()
needs_go = pytest.mark.skipif(GO is None, reason="needs a Go toolchain")


@needs_go
def test_tailscale_tools_are_pinned_to_the_release_the_library_embeds() -> None:
    assert GO is not None
    embedded = subprocess.run(
        [GO, "list", "-m", "-f", "{{.Version}}", "tailscale.com"],
        cwd=gotools.GO_MOD.parent,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert gotools.tailscale_tools().version == embedded


def test_headscale_is_at_least_0_29() -> None:
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", gotools.HEADSCALE_VERSION)
    assert match is not None
    assert tuple(int(part) for part in match.groups()) >= (0, 29, 0)


def test_without_go_the_fixtures_skip_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    with pytest.raises(pytest.skip.Exception, match="needs a Go toolchain"):
        gotools.require(gotools.tailscale_tools())


def test_without_go_the_prefetch_says_so_and_does_not_fail(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, gotools.__file__],
        env={**os.environ, "PATH": str(tmp_path), "TAILNET_GO_TOOLS": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "no Go toolchain" in result.stderr
    assert not (tmp_path / "cache").exists()
