#!/usr/bin/env python3
"""Build tailnet's sdist and Linux wheels, and prove they are what we ship.

Run by ``./dev wheel`` (and so by .ci/run) with the pinned tools of
scripts/wheel-tools.txt. Every step fails loudly; the artifacts land in
dist/:

1. the sdist (``python -m build --sdist``);
2. the sdist without Go on PATH fails with a message naming the Go version;
3. a wheel per architecture, built from the sdist with ``zig cc`` against
   glibc 2.17, ``auditwheel show`` (must be manylinux_2_28 or older) and
   ``auditwheel repair`` to tag it manylinux_2_17;
4. reproducibility: the library built again from the source tree, into
   another directory, is byte-identical to the one in the wheel;
5. the C API smoke test (scripts/c_smoke.c, a two-node echo) against each
   wheel's library: natively, or under qemu-user for the other
   architecture when qemu-aarch64 and an arm64 glibc are installed;
6. the Python smoke test (scripts/wheel_smoke.py) with the native wheel
   installed into a fresh venv of each CPython 3.10-3.14 found, with no Go
   on PATH, inside scripts/in-netns;
7. a report: sizes and timings.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from build_libtailscale import GLIBC_FLOOR  # noqa: E402  (the glibc the wheels link against)

SCRIPTS = ROOT / "scripts"
MINORS = ("3.10", "3.11", "3.12", "3.13", "3.14")
#: The newest glibc the wheels may need (our bar; they are built for GLIBC_FLOOR).
MAX_GLIBC = (2, 28)
ARCHES = ("x86_64", "aarch64")
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")


class CheckError(Exception):
    """A check that failed, with what to look at."""


timings: list[tuple[str, float]] = []
report: list[str] = []


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Announce, time and record one step."""
    print(f"\n== {name}", flush=True)
    start = time.monotonic()
    yield
    timings.append((name, time.monotonic() - start))


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run cmd, echoing it; raise CheckError if it fails."""
    print("+", " ".join(cmd), flush=True)
    result: subprocess.CompletedProcess[str] = subprocess.run(cmd, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        for captured in (result.stdout, result.stderr):
            if captured:
                print(captured, end="" if captured.endswith("\n") else "\n", file=sys.stderr)
        raise CheckError(f"{cmd[0]} exited with {result.returncode}")
    return result


def path_without_go() -> str:
    """$PATH minus every directory that holds a go binary."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not Path(d, "go").exists())


def build_env(arch: str) -> dict[str, str]:
    """The environment that selects zig and the target for build_libtailscale.py."""
    return {
        **os.environ,
        "TAILNET_CC": "zig",
        "TAILNET_ZIG": f"{sys.executable} -m ziglang",
        "_PYTHON_HOST_PLATFORM": f"linux-{arch}",
    }


def build_sdist(out: Path) -> Path:
    """Step 1: the sdist."""
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("tailnet-*.tar.gz")
    return sdist


def check_sdist_without_go(sdist: Path, tmp: Path) -> None:
    """Step 2: no Go, a clear error naming the version."""
    env = {k: v for k, v in os.environ.items() if k != "GO"}
    env["PATH"] = path_without_go()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp)]
    cmd.append(str(sdist))
    print("+ PATH=<without go>", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    want = re.search(r"^go (\S+)$", (ROOT / "go" / "go.mod").read_text(), re.M)
    assert want is not None
    message = f"needs Go >= {want.group(1)}"
    if result.returncode == 0 or message not in output:
        raise CheckError(f"building the sdist without Go did not fail with {message!r}:\n{output[-3000:]}")
    print(f"ok: fails with {message!r}")


def build_wheel(sdist: Path, arch: str, tmp: Path) -> Path:
    """Step 3a: a wheel for arch, from the sdist."""
    out = tmp / f"raw-{arch}"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out)]
    run([*cmd, str(sdist)], env=build_env(arch))
    (wheel,) = out.glob("tailnet-*.whl")
    if f"-py3-none-linux_{arch}.whl" not in wheel.name:
        raise CheckError(f"unexpected wheel tag: {wheel.name}")
    return wheel


def auditwheel_show(wheel: Path) -> str:
    """Step 3b: the manylinux tag auditwheel finds, checked against MAX_GLIBC."""
    output = run(["auditwheel", "show", str(wheel)], capture_output=True).stdout
    print(output.strip())
    match = re.search(r'platform tag:\s*"?(manylinux_(\d+)_(\d+)_\w+)', output.replace("\n", " "))
    if not match:
        raise CheckError(f"auditwheel show gave no manylinux tag for {wheel.name}")
    tag, major, minor = match.group(1), int(match.group(2)), int(match.group(3))
    if (major, minor) > MAX_GLIBC:
        raise CheckError(f"{wheel.name} is only {tag}: newer than manylinux_2_28")
    return tag


def repair(wheel: Path, arch: str, out: Path) -> Path:
    """Step 3c: tag the wheel manylinux_2_17 (the glibc it was linked against) with auditwheel repair.

    auditwheel would offer manylinux_2_5 for x86_64 (the symbol versions
    allow it), but Go needs a Linux kernel >= 3.2, which manylinux2014
    (CentOS 7) has and manylinux1 does not. auditwheel only accepts a
    named --plat for this machine's architecture; for the other, "auto"
    is checked to come out as manylinux_2_17.
    """
    for old in out.glob(f"tailnet-*_{arch}.whl"):
        old.unlink()
    want = f"manylinux_{GLIBC_FLOOR.replace('.', '_')}_{arch}"
    plat = want if arch == platform.machine() else "auto"
    run(["auditwheel", "repair", "--plat", plat, "--only-plat", "-z", "9", "-w", str(out), str(wheel)])
    (repaired,) = out.glob(f"tailnet-*_{arch}.whl")
    if f".{want}.whl" not in repaired.name:
        raise CheckError(f"auditwheel repair made {repaired.name}, not a {want} wheel")
    return repaired


def library_of(wheel: Path, into: Path) -> Path:
    """The shared library inside a wheel, extracted into a directory."""
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.startswith("tailnet/libtailnet.")]
        target = into / Path(name).name
        target.write_bytes(whl.read(name))
    return target


def check_reproducible(arch: str, shipped: Path, tmp: Path, cold: bool) -> None:
    """Step 4: a second build, from the source tree into another directory, gives the same bytes.

    With cold, the second build starts from empty Go and zig caches, so it
    compiles everything again instead of relinking cached objects (slow).
    """
    out = tmp / f"second-build-{arch}"
    env = build_env(arch)
    if cold:
        env["GOCACHE"] = str(tmp / "cold-go-cache")
        env["ZIG_GLOBAL_CACHE_DIR"] = str(tmp / "cold-zig-cache")
    run([sys.executable, str(ROOT / "build_libtailscale.py"), "--out-dir", str(out)], env=env)
    second = out / shipped.name
    if second.read_bytes() != shipped.read_bytes():
        raise CheckError(f"not reproducible: {second} differs from the library in the {arch} wheel")
    print(f"ok: {shipped.name} for {arch} is byte-identical ({shipped.stat().st_size} bytes) in both builds")


def c_smoke(arch: str, lib: Path, tmp: Path) -> str:
    """Step 5: the two-node echo through the C API alone."""
    exe = tmp / f"c_smoke-{arch}"
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", f"{arch}-linux-gnu.{GLIBC_FLOOR}"]
    run([*zig, "-O2", "-Wall", "-o", str(exe), str(SCRIPTS / "c_smoke.c")])
    if arch == platform.machine():
        cmd = [str(exe), str(lib)]
        how = "natively"
    elif arch == "aarch64" and shutil.which("qemu-aarch64") and ARM64_SYSROOT.is_dir():
        cmd = ["qemu-aarch64", "-L", str(ARM64_SYSROOT), str(exe), str(lib)]
        how = "under qemu-aarch64"
    else:
        print(f"SKIP: no qemu-aarch64 or {ARM64_SYSROOT} (apt-get install qemu-user libc6-arm64-cross)")
        return "skipped (no qemu-user here)"
    nodes = tmp / f"c_smoke-{arch}-nodes"  # their state directories, removed with tmp
    nodes.mkdir(exist_ok=True)
    run([str(SCRIPTS / "in-netns"), *cmd], env={**os.environ, "TMPDIR": str(nodes)})
    return f"passed {how}"


def find_pythons() -> dict[str, str | None]:
    """One CPython per supported minor version: pyenv's, else python3.X on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: dict[str, str | None] = {}
    for minor in MINORS:
        candidates = sorted(glob.glob(str(root / f"{minor}.*" / "bin" / "python")))
        candidates = [c for c in candidates if re.search(rf"/{re.escape(minor)}\.\d+/bin", c)]
        found[minor] = candidates[-1] if candidates else shutil.which(f"python{minor}")
    return found


def python_smoke(minor: str, python: str, wheel: Path, tmp: Path) -> str:
    """Step 6: the wheel in a fresh venv, no Go on PATH, two-node echo inside in-netns."""
    venv = tmp / f"venv-{minor}"
    shutil.rmtree(venv, ignore_errors=True)
    run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, str(wheel)])
    env = {k: v for k, v in os.environ.items() if k not in ("GO", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), path_without_go()])
    smoke = [str(venv / "bin" / "python"), str(SCRIPTS / "wheel_smoke.py")]
    return run([str(SCRIPTS / "in-netns"), *smoke], env=env, cwd=tmp, capture_output=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Run every step; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the sdist and wheels go")
    parser.add_argument("--arch", action="append", choices=ARCHES, help="only these (default: both)")
    parser.add_argument(
        "--cold", action="store_true", help="reproducibility: second build with empty Go and zig caches"
    )
    args = parser.parse_args(argv)
    native = platform.machine()
    if sys.platform != "linux" or native not in ARCHES:
        print("wheel_check.py builds manylinux wheels on Linux x86_64 or aarch64", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    arches = args.arch or list(ARCHES)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="wheel-check-") as tmp_name:
            check_all(Path(tmp_name), out, arches, native, cold=args.cold)
    except CheckError as exc:
        print(f"\nwheel_check.py: FAILED: {exc}", file=sys.stderr)
        return 1
    print("\n== report")
    print("\n".join(report))
    for name, seconds in timings:
        print(f"  {seconds:7.1f} s  {name}")
    print(f"  {time.monotonic() - started:7.1f} s  in all")
    return 0


def check_all(tmp: Path, out: Path, arches: list[str], native: str, *, cold: bool) -> None:
    """Steps 1-6; the report lines are appended to ``report``."""
    with step("sdist"):
        for old in out.glob("tailnet-*.tar.gz"):
            old.unlink()
        sdist = build_sdist(out)
    with step("sdist without Go"):
        check_sdist_without_go(sdist, tmp / "no-go")
    report.append(f"sdist: {sdist.name} ({sdist.stat().st_size / 1e6:.2f} MB)")
    wheels: dict[str, Path] = {}
    for arch in arches:
        with step(f"{arch} wheel from the sdist, auditwheel show, repair"):
            raw = build_wheel(sdist, arch, tmp)
            tag = auditwheel_show(raw)
            wheels[arch] = repair(raw, arch, out)
            lib = library_of(wheels[arch], tmp / f"lib-{arch}")
        report.append(
            f"{arch}: {wheels[arch].name}: wheel {wheels[arch].stat().st_size:,} bytes, "
            f"library {lib.stat().st_size:,} bytes, auditwheel show: {tag}"
        )
        if arch == native:
            with step(f"{arch} reproducibility"):
                check_reproducible(arch, lib, tmp, cold)
            caches = "empty" if cold else "shared"
            size = lib.stat().st_size
            report.append(
                f"{arch}: reproducible: a second build ({caches} caches) gave the same {size:,} bytes"
            )
        with step(f"{arch} C smoke test"):
            report.append(f"{arch}: C API two-node echo: {c_smoke(arch, lib, tmp)}")
    if native not in wheels:
        return
    for minor, python in find_pythons().items():
        if python is None:
            report.append(f"CPython {minor}: not on this machine, not tested here")
            continue
        with step(f"CPython {minor} smoke test"):
            report.append(f"CPython {minor}: {python_smoke(minor, python, wheels[native], tmp)}")


if __name__ == "__main__":
    sys.exit(main())
