"""The build script's promises that do not need a build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
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
    from tailnet._binding import library as binding

    ffi, library = binding.ffi(), binding.lib()
    names = [name for name in dir(library) if name.startswith("tailnet_")]
    assert len(names) >= 15
    for name in names:
        assert ffi.typeof(getattr(library, name)).kind == "function"


def test_the_header_check_leaves_nothing_in_the_temporary_directory(tmp_path: Path) -> None:
    """cgo's probe objects stay inside the check's own directory, which is removed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    subprocess.run(
        [sys.executable, "-c", "import build_libtailscale as b; b.check_header(b.find_go(), None)"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        check=True,
    )
    assert sorted(p.name for p in scratch.iterdir()) == []


def _build_script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "TAILNET_CC", "TAILNET_ZIG")}
    env.pop("_PYTHON_HOST_PLATFORM", None)
    env.update(extra)
    return env


def _run_build_script(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "build_libtailscale.py"), "--out-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cross_build_without_a_cross_compiler_is_a_clear_error(tmp_path: Path) -> None:
    machine = "x86_64" if os.uname().machine == "aarch64" else "aarch64"
    env = _build_script_env(tmp_path, _PYTHON_HOST_PLATFORM=f"linux-{machine}")
    result = _run_build_script(tmp_path, env)
    assert result.returncode == 1
    assert "needs a cross C compiler" in result.stderr
    assert "TAILNET_CC=zig" in result.stderr
    assert "Traceback" not in result.stderr


def test_zig_requested_but_missing_is_a_clear_error(tmp_path: Path) -> None:
    # The test venv has no ziglang; PATH keeps go but has no zig.
    go = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    env = _build_script_env(tmp_path, TAILNET_CC="zig", PATH=f"{go}/bin")
    result = _run_build_script(tmp_path, env)
    assert result.returncode == 1
    assert "no zig found" in result.stderr
    assert "pip install ziglang" in result.stderr


def test_unsupported_target_is_a_clear_error(tmp_path: Path) -> None:
    env = _build_script_env(tmp_path, _PYTHON_HOST_PLATFORM="linux-riscv64")
    result = _run_build_script(tmp_path, env)
    assert result.returncode == 1
    assert "unsupported target 'linux-riscv64'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_package_carries_the_license_notices_of_what_the_library_links() -> None:
    import importlib.resources

    notices = importlib.resources.files("tailnet").joinpath("THIRD_PARTY_NOTICES.txt").read_text()
    for section in ("Go (standard library and runtime)", "tailscale.com v1.102.5", "gvisor.dev/gvisor"):
        assert f"\n{section}" in notices
    assert "Apache License" in notices
    # gVisor is built with our fix to GRO.Flush: Apache-2.0 4(b) asks for a note of the changed file.
    change = notices.split("\ngvisor.dev/gvisor ", 1)[1].split("\n\n", 2)[1]
    assert ": CHANGES\n" in notices
    assert change.startswith("Modified by tailnet: pkg/tcpip/stack/gro/gro.go"), change
    # wireguard-go is built with its inbound queue bounded (MIT asks no note; it has one all the same).
    change = notices.split("\ngithub.com/tailscale/wireguard-go ", 1)[1].split("\n\n", 2)[1]
    assert change.startswith("Modified by tailnet: device/pools.go"), change


def test_the_unit_tests_need_no_build() -> None:
    """tests/unit runs from the bare sources: no generated cffi module, no library, no Go."""
    src = ROOT / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), sysconfig.get_paths()["purelib"]])}
    # -S: no site processing, so no editable-install hook: tailnet comes from src/ as a checkout has it.
    bare = [sys.executable, "-S"]
    where = (
        "import importlib.util, tailnet; print(tailnet.__file__, importlib.util.find_spec('tailnet._ffi'))"
    )
    probe = subprocess.run(
        [*bare, "-c", where],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == [str(src / "tailnet" / "__init__.py"), "None"]
    done = subprocess.run(
        [
            *bare,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:tailnet",
            "-p",
            "no:cacheprovider",
            "--unit-only",
            "tests/unit",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads it from _version.py: the installed metadata and the package agree."""
    import importlib.metadata

    import tailnet

    assert importlib.metadata.version("tailnet") == tailnet.__version__
    assert not re.search(r"^version\s*=", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)


def test_the_pre_commit_configuration_is_valid() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
