"""The build script's promises that do not need a build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_missing_go_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GO"}
    env["PATH"] = str(tmp_path)  # no go here
    result = subprocess.run(
        [sys.executable, str(ROOT / "build_libtailscale.py"), "--out-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no Go toolchain found" in result.stderr
    assert "Go >= 1.26" in result.stderr
    assert "Traceback" not in result.stderr


def test_header_declarations_match_the_library() -> None:
    """Every function the cffi module declares exists in the loaded library."""
    from tailnet._library import ffi, lib

    library = lib()
    names = [name for name in dir(library) if name.startswith("tailnet_")]
    assert len(names) >= 15
    for name in names:
        assert ffi.typeof(getattr(library, name)).kind == "function"
