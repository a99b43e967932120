#!/usr/bin/env python3
"""Build libtailnet, the shared library behind the tailnet package.

This is the one place that knows how the Go side is built: flags, tags,
output names, and the cffi module generated from ``go/tailscale.h``.
CMake (and so ``pip install``) runs it; developers may run it directly::

    python build_libtailscale.py --out-dir build/lib

It prints the paths of the files it wrote, one per line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GO_DIR = ROOT / "go"
HEADER = GO_DIR / "tailscale.h"

#: Library file name per platform; the Python loader uses the same names.
LIB_NAMES = {"linux": "libtailnet.so", "darwin": "libtailnet.dylib"}

#: Go build tags. Each ts_omit_* drops a tailscale feature a library node
#: never uses; see docs/architecture.md before adding one.
GO_TAGS: list[str] = [
    # Correctness, not size: gVisor's GRO.Flush (in the netstack version
    # tailscale v1.102.5 pins) delivers only the first packet of each bucket
    # and returns the rest to a process-wide pool, so with two nodes in one
    # process a packet for one node reaches the other, which then resets
    # connections (google/gvisor#14081; docs/architecture.md). Without GRO
    # every packet goes straight to its own stack.
    "ts_omit_gro",
]


class BuildError(Exception):
    """A build failure with a message meant for a person, not a traceback."""


def required_go_version() -> tuple[int, int, int]:
    """The minimum Go version, from the ``go`` line of go/go.mod."""
    match = re.search(r"^go (\d+)\.(\d+)(?:\.(\d+))?$", (GO_DIR / "go.mod").read_text(), re.M)
    if not match:
        raise BuildError("go/go.mod has no 'go' line")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def find_go() -> str:
    """The go binary ($GO, else PATH), checked for version."""
    want = required_go_version()
    want_text = ".".join(map(str, want))
    go = os.environ.get("GO") or shutil.which("go")
    if not go or not (Path(go).is_file() or shutil.which(go)):
        raise BuildError(
            f"no Go toolchain found: building tailnet from source needs Go >= {want_text} "
            "(https://go.dev/dl/); put `go` on PATH or set GO=/path/to/go. "
            "Prebuilt wheels need no Go."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    found = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", out.stdout.strip())
    if not found:
        raise BuildError(f"could not tell the version of {go}: {out.stderr.strip() or out.stdout.strip()}")
    have = tuple(int(x or 0) for x in found.groups())
    if have < want and os.environ.get("GOTOOLCHAIN", "auto") == "local":
        raise BuildError(f"{go} is Go {out.stdout.strip()}, tailnet needs Go >= {want_text}")
    return go


def lib_name() -> str:
    """The library file name for the platform being built for."""
    goos = os.environ.get("GOOS") or sys.platform
    for prefix, name in LIB_NAMES.items():
        if goos.startswith(prefix):
            return name
    raise BuildError(f"unsupported platform {goos!r}: tailnet builds on Linux and macOS")


def build_library(go: str, out_dir: Path) -> Path:
    """Run ``go build -buildmode=c-shared`` into out_dir."""
    lib = out_dir / lib_name()
    env = {**os.environ, "CGO_ENABLED": "1"}
    env.setdefault("GOFLAGS", "-mod=readonly")
    cmd = [
        go,
        "build",
        "-buildmode=c-shared",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags=-s -w -buildid=",
        f"-tags={','.join(GO_TAGS)}",
        "-o",
        str(lib),
        ".",
    ]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    if subprocess.run(cmd, cwd=GO_DIR, env=env, check=False).returncode != 0:
        raise BuildError("go build failed (see its output above)")
    lib.with_suffix(".h").unlink(missing_ok=True)  # cgo's header; ours is tailscale.h
    return lib


def check_header(go: str) -> None:
    """Compile tailscale.h together with cgo's generated header.

    Any signature that drifted between the two is then a build error. (cgo
    cannot say const, so const is defined away for this check only.)
    """
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    sources = sorted(str(p) for p in GO_DIR.glob("*.go") if 'import "C"' in p.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        cgo_header = Path(tmp, "cgo_export.h")
        gen = subprocess.run(
            [go, "tool", "cgo", "-exportheader", str(cgo_header), "-objdir", tmp, *sources],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if gen.returncode != 0:
            raise BuildError(f"cgo could not generate the export header:\n{gen.stderr}")
        probe = Path(tmp, "probe.c")
        probe.write_text(f'#include "{HEADER}"\n#include "{cgo_header}"\n')
        check = subprocess.run(
            [*cc.split(), "-fsyntax-only", "-Dconst=", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
    if check.returncode != 0:
        raise BuildError(f"go/tailscale.h does not match the exported Go functions:\n{check.stderr}")


def cdef_source() -> str:
    """The declarations between the CDEF markers of tailscale.h."""
    text = HEADER.read_text()
    match = re.search(r"/\* BEGIN CDEF \*/(.*)/\* END CDEF \*/", text, re.S)
    if not match:
        raise BuildError(f"{HEADER} has no CDEF markers")
    return match.group(1)


def build_ffi_module(out_dir: Path) -> Path:
    """Generate tailnet/_ffi.py (cffi out-of-line ABI mode: pure Python)."""
    import cffi

    builder = cffi.FFI()
    builder.cdef(cdef_source())
    builder.set_source("tailnet._ffi", None)
    target = out_dir / "_ffi.py"
    with contextlib.redirect_stdout(sys.stderr):  # cffi announces what it writes
        builder.emit_python_code(str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    """Build into --out-dir and print the paths written; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=ROOT / "build" / "lib", help="where to write the files"
    )
    parser.add_argument("--skip-header-check", action="store_true", help="do not compile-check tailscale.h")
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        go = find_go()
        lib = build_library(go, out_dir)
        if not args.skip_header_check:
            check_header(go)
        ffi = build_ffi_module(out_dir)
    except BuildError as exc:
        print(f"build_libtailscale.py: error: {exc}", file=sys.stderr)
        return 1
    print(lib)
    print(ffi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
