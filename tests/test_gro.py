"""GRO with our fix to gVisor's ``GRO.Flush``: the regression test, and the fix's refusals.

The library is built with tsnet's GRO and a patched copy of gVisor
(build_libtailscale.py, ``GRO_FIX``; docs/packaging.md). Unfixed, Flush
delivers one packet per bucket, and with two nodes in one process the rest
reach the wrong node, which resets connections.

``go/burst_test.go``'s ``TestBurst`` is that case in plain Go tsnet: two
nodes in one process, thousands of echo connections. Here it is built as
the library is built (the same tags, the same patched gVisor) and must lose
no connection. Built against the unpatched gVisor it loses from a few in
ten thousand to a few in a thousand (docs/packaging.md has the figures).
The test binary is built first, on its own: on a busy machine that alone
takes minutes. How the fix is made and refused: tests/unit/test_source_fixes.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import build_libtailscale  # noqa: E402  (the build script, at the repository's root)

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")


@pytest.fixture(scope="module")
def burst_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """go/'s test binary with the library's build tags and patched gVisor, built offline."""
    binary = tmp_path_factory.mktemp("gro") / "burst.test"
    env = {**os.environ, "CGO_ENABLED": "1", "GOPROXY": "off", "GOFLAGS": "-mod=readonly"}
    go = build_libtailscale.find_go()
    patches = build_libtailscale.prepare_patches(go)
    tags = ",".join(build_libtailscale.GO_TAGS)
    built = subprocess.run(
        [go, "test", "-c", *patches.flags, f"-tags={tags}", "-o", str(binary), "."],
        cwd=build_libtailscale.GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    return binary


@needs_go
@pytest.mark.timeout(3600)  # a hang guard: the build is minutes on a loaded machine
def test_two_nodes_in_one_process_lose_no_connection_with_gro(burst_test_binary: Path) -> None:
    assert "ts_omit_gro" not in build_libtailscale.GO_TAGS, "the library is built with GRO"
    done = subprocess.run(
        [str(burst_test_binary), "-test.run", "^TestBurst$", "-test.v", "-test.timeout", "600s"],
        cwd=build_libtailscale.GO_DIR,
        env={**os.environ, "TAILNET_BURST_TEST": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "--- PASS: TestBurst" in output, output[-4000:]
    assert re.search(r"bad: 0\b", output), output[-4000:]
