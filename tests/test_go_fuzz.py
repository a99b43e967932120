"""The Go fuzz test of the C API's argument parsing, run as part of the suite.

``go/checks_fuzz_test.go``'s ``FuzzArguments`` drives every parser the C
entry points run before doing any work (dial/listen/datagram addresses,
networks, server options, the local tailnet's config, counter names). Here
it runs its seed corpus and then fuzzes for a short while; a longer run by
hand: ``cd go && go test -run '^$' -fuzz FuzzArguments -fuzztime 10m .``
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_DIR = Path(__file__).resolve().parent.parent / "go"
FUZZ_SECONDS = 15


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_go_fuzz_of_the_c_api_arguments(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CGO_ENABLED": "1",
        "GOPROXY": "off",  # in the test namespace: the module cache must do
        "GOFLAGS": "-mod=readonly",
    }
    done = subprocess.run(
        [
            "go",
            "test",
            "-run",
            "^FuzzArguments$",
            "-fuzz",
            "^FuzzArguments$",
            "-fuzztime",
            f"{FUZZ_SECONDS}s",
            "-test.fuzzcachedir",
            str(tmp_path / "corpus"),
            ".",
        ],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "PASS" in output
