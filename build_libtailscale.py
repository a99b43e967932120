#!/usr/bin/env python3
"""Build libtailnet, the shared library behind the tailnet package.

This is the one place that knows how the Go side is built: flags, tags,
output names, and the cffi module generated from ``go/tailscale.h``.
CMake (and so ``pip install``) runs it; developers may run it directly::

    python build_libtailscale.py --out-dir build/lib

It prints the paths of the files it wrote, one per line. With
``--tsnetbench PATH`` it builds only the Go benchmark program
(go/cmd/tsnetbench, used by benchmarks/) into PATH; add ``--gro`` to build
it with tsnet's GRO, as upstream ships it.

What it builds for is chosen by the environment, so CMake and pip need not
know anything about Go:

- ``_PYTHON_HOST_PLATFORM`` (the standard cross-compilation variable, which
  also sets the wheel's platform tag), e.g. ``linux-aarch64``: the target.
  Unset: this machine.
- ``TAILNET_CC=zig``: compile cgo with ``zig cc`` against glibc
  ``GLIBC_FLOOR`` (Linux only), which gives a manylinux_2_17 library from
  any Linux machine and cross-compiles to the other architecture. zig comes
  from ``$TAILNET_ZIG`` (a command), ``zig`` on PATH, or the ``ziglang``
  package (``pip install ziglang``). Unset: ``$CC`` or ``cc``, which links
  against this machine's glibc.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GO_DIR = ROOT / "go"
HEADER = GO_DIR / "tailscale.h"

#: Library file name per platform; the Python loader uses the same names.
LIB_NAMES = {"linux": "libtailnet.so", "darwin": "libtailnet.dylib"}

#: Tailscale features left out of the library (ts_omit_* build tags): GRO
#: for correctness, the rest because a library node never uses them.
#: docs/packaging.md says why each is safe to drop and what it saves;
#: go/features.go refuses to compile if one the library needs is dropped.
OMITTED_FEATURES: tuple[str, ...] = (
    # Correctness, not size: gVisor's GRO.Flush (in the netstack version
    # tailscale v1.102.5 pins) delivers only the first packet of each bucket
    # and returns the rest to a process-wide pool, so with two nodes in one
    # process a packet for one node reaches the other, which then resets
    # connections (google/gvisor#14081; docs/architecture.md). Without GRO
    # every packet goes straight to its own stack.
    "gro",
    # NAT port mapping: tailnet nodes run with it disabled (TS_DISABLE_PORTMAPPER).
    "portmapper",
    "debugportmapper",
    # Features of a machine's own Tailscale install, never of a library node.
    "ssh",
    "taildrop",
    "drive",
    "webclient",
    "clientupdate",
    "relayserver",
    "appconnectors",
    "conn25",
    "advertiseexitnode",
    "bird",
    "capture",
    "remoteconfig",
    "posture",
    "portlist",
    "wakeonlan",
    "tpm",
    "kube",
    "aws",
    "identityfederation",
    "captiveportal",
    "syspolicy",
    "hujsonconf",
    "runtimemetrics",
    "debugeventbus",
    "doctor",
    # OS integration: a library node has no TUN device and configures nothing.
    "osrouter",
    "iptables",
    "dbus",
    "networkmanager",
    "resolved",
    "linuxdnsfight",
    "linkspeed",
    "tundevstats",
    "tap",
    "listenrawdisco",
    "sdnotify",
    "syslog",
    "synology",
    "unixsocketidentity",
    "webbrowser",
    "desktop_sessions",
    "serviceclientprefs",
    "ace",
)

#: Go build tags, fixed: the same source and toolchain give the same bytes.
GO_TAGS: list[str] = [f"ts_omit_{feature}" for feature in OMITTED_FEATURES]

#: The oldest glibc a zig-built Linux library links against (manylinux_2_17).
GLIBC_FLOOR = "2.17"

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_ZIG_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


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


@dataclass(frozen=True)
class Target:
    """What the library is built for: Go's names for the OS and architecture."""

    goos: str
    goarch: str

    @property
    def lib_name(self) -> str:
        """The library file name; the Python loader uses the same names."""
        return LIB_NAMES[self.goos]

    @property
    def native(self) -> bool:
        """Whether this machine could run the library."""
        return self == host_target()


def _target(system: str, machine: str, origin: str) -> Target:
    goos = "darwin" if system in ("darwin", "macosx") else system
    goarch = _GOARCH.get(machine.lower())
    if goos not in LIB_NAMES or goarch is None:
        raise BuildError(
            f"unsupported target {origin!r}: tailnet builds for Linux and macOS on x86_64 and arm64"
        )
    return Target(goos, goarch)


def host_target() -> Target:
    """This machine."""
    return _target(sys.platform, platform.machine(), f"{sys.platform}-{platform.machine()}")


def parse_platform(text: str) -> Target:
    """A target from a sysconfig platform (``linux-aarch64``, ``macosx-11.0-arm64``)."""
    parts = text.split("-")
    return _target(parts[0], parts[-1], text)


def build_target() -> Target:
    """The target: ``$_PYTHON_HOST_PLATFORM`` when cross-compiling, else this machine."""
    cross = os.environ.get("_PYTHON_HOST_PLATFORM")
    return parse_platform(cross) if cross else host_target()


def find_zig() -> list[str]:
    """The zig command: $TAILNET_ZIG, zig on PATH, or the ziglang package."""
    if os.environ.get("TAILNET_ZIG"):
        return shlex.split(os.environ["TAILNET_ZIG"])
    if shutil.which("zig"):
        return ["zig"]
    if importlib.util.find_spec("ziglang") is not None:
        return [sys.executable, "-m", "ziglang"]
    raise BuildError("TAILNET_CC=zig, but no zig found: `pip install ziglang`, or set TAILNET_ZIG")


def c_compiler(target: Target) -> list[str] | None:
    """The C compiler command for cgo, or None to leave the choice to Go (native builds)."""
    if os.environ.get("TAILNET_CC") == "zig":
        if target.goos != "linux":
            raise BuildError("TAILNET_CC=zig is for Linux targets; macOS builds use the system clang")
        return [*find_zig(), "cc", "-target", f"{_ZIG_ARCH[target.goarch]}-linux-gnu.{GLIBC_FLOOR}"]
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    if target.native:
        return None
    if target.goos == "darwin" and host_target().goos == "darwin":
        return ["clang", "-arch", "x86_64" if target.goarch == "amd64" else "arm64"]
    raise BuildError(
        f"cross-building for {target.goos}/{target.goarch} needs a cross C compiler: "
        "set TAILNET_CC=zig (pip install ziglang), or CC"
    )


#: Our patch to tsnet (tailscale.com/tsnet/tsnet.go at the pinned version),
#: applied by building against a shadow of the module (:func:`patched_tailscale`);
#: the module cache is never touched.
#: Upstream, a tsnet.Server always has a directory: with no Dir it makes one
#: under os.UserConfigDir, and even with a Store it writes its log
#: configuration and log buffer there. Patched, a Server with a Store and
#: no Dir has no directory: it writes nothing to disk (Server(store=...),
#: docs/state.md). Each (old, new) pair must match exactly once, so a new
#: tailscale version fails the build here rather than silently unpatched.
TSNET_PATCH: tuple[tuple[str, str], ...] = (
    (
        """\tif s.rootPath == "" {
\t\tconfDir, err := os.UserConfigDir()
\t\tif err != nil {
\t\t\treturn err
\t\t}
\t\ts.rootPath = filepath.Join(confDir, "tsnet-"+prog)
\t}
\tif err := os.MkdirAll(s.rootPath, 0700); err != nil {
\t\treturn err
\t}
\tif fi, err := os.Stat(s.rootPath); err != nil {
\t\treturn err
\t} else if !fi.IsDir() {
\t\treturn fmt.Errorf("%v is not a directory", s.rootPath)
\t}
""",
        """\t// tailnet patch: a Store and no Dir mean no directory at all.
\tif s.rootPath == "" && s.Store == nil {
\t\tconfDir, err := os.UserConfigDir()
\t\tif err != nil {
\t\t\treturn err
\t\t}
\t\ts.rootPath = filepath.Join(confDir, "tsnet-"+prog)
\t}
\tif s.rootPath != "" {
\t\tif err := os.MkdirAll(s.rootPath, 0700); err != nil {
\t\t\treturn err
\t\t}
\t\tif fi, err := os.Stat(s.rootPath); err != nil {
\t\t\treturn err
\t\t} else if !fi.IsDir() {
\t\t\treturn fmt.Errorf("%v is not a directory", s.rootPath)
\t\t}
\t}
""",
    ),
    (
        """\tif testenv.InTest() {
\t\treturn nil
\t}
\tcfgPath := filepath.Join(s.rootPath, "tailscaled.log.conf")
""",
        """\tif testenv.InTest() || s.rootPath == "" { // tailnet patch: no directory, no log files
\t\treturn nil
\t}
\tcfgPath := filepath.Join(s.rootPath, "tailscaled.log.conf")
""",
    ),
)


def patched_tailscale(go: str, env: dict[str, str], work: Path) -> Path:
    """A go.work that builds go/ against tailscale.com with :data:`TSNET_PATCH` applied.

    Go refuses ``-overlay`` for files in the module cache, so the module is
    shadowed instead: work/tailscale.com mirrors the cached module with
    symbolic links and copies, all but tsnet/tsnet.go, which is the patched copy.
    ``work`` should be the same directory from build to build, so that Go's
    build cache keeps the compiled packages.
    """
    found = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", "tailscale.com"],
        cwd=GO_DIR,
        env={**env, "GOWORK": "off"},
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise BuildError(f"could not find the tailscale.com module: {found.stderr.strip()}")
    module = Path(found.stdout.strip())
    text = (module / "tsnet" / "tsnet.go").read_text(encoding="utf-8")
    for old, new in TSNET_PATCH:
        if text.count(old) != 1:
            raise BuildError(f"{module}/tsnet/tsnet.go is not what TSNET_PATCH expects: update the patch")
        text = text.replace(old, new)
    shadow = work / "tailscale.com"
    shutil.rmtree(shadow, ignore_errors=True)
    (shadow / "tsnet").mkdir(parents=True)
    # Directories are linked, files copied (go:embed refuses a linked file).
    for entry in module.iterdir():
        if entry.is_dir() and entry.name != "tsnet":
            (shadow / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copyfile(entry, shadow / entry.name)
    for entry in (module / "tsnet").iterdir():
        if entry.is_dir():
            (shadow / "tsnet" / entry.name).symlink_to(entry)
        elif entry.name != "tsnet.go":
            shutil.copyfile(entry, shadow / "tsnet" / entry.name)
    (shadow / "tsnet" / "tsnet.go").write_text(text, encoding="utf-8")
    major, minor, patch = required_go_version()
    workfile = work / "go.work"
    # Relative paths: Go records a replacement's path in the binary's build
    # information, and an absolute one would tie the bytes to the build
    # directory (builds must be reproducible wherever they run).
    use = os.path.relpath(GO_DIR, work)
    workfile.write_text(
        f"go {major}.{minor}.{patch}\n\nuse {use}\n\nreplace tailscale.com => ./{shadow.name}\n",
        encoding="utf-8",
    )
    return workfile


def build_library(go: str, out_dir: Path, target: Target) -> Path:
    """Run ``go build -buildmode=c-shared`` into out_dir."""
    lib = out_dir / target.lib_name
    cc = c_compiler(target)
    env = {**os.environ, "CGO_ENABLED": "1", "GOOS": target.goos, "GOARCH": target.goarch}
    if cc is not None:
        env["CC"] = shlex.join(cc)
    env.setdefault("GOFLAGS", "-mod=readonly")
    ldflags = "-s -w -buildid="
    if os.environ.get("TAILNET_CC") == "zig":
        ldflags += " -extldflags=-Wl,--strip-all"  # zig's linker ignores a plain -s
    env["GOWORK"] = str(patched_tailscale(go, env, out_dir / "go-work"))
    cmd = [
        go,
        "build",
        "-buildmode=c-shared",
        "-trimpath",
        "-buildvcs=false",
        f"-ldflags={ldflags}",
        f"-tags={','.join(GO_TAGS)}",
        "-o",
        str(lib),
        ".",
    ]
    settings = f"CC={shlex.quote(env['CC'])} " if cc is not None else ""
    print(f"+ {settings}GOOS={target.goos} GOARCH={target.goarch}", file=sys.stderr)
    print("+", shlex.join(cmd), file=sys.stderr, flush=True)
    if subprocess.run(cmd, cwd=GO_DIR, env=env, check=False).returncode != 0:
        raise BuildError("go build failed (see its output above)")
    lib.with_suffix(".h").unlink(missing_ok=True)  # cgo's header; ours is tailscale.h
    return lib


def build_tsnetbench(go: str, target: Path, *, gro: bool = False) -> Path:
    """Build the Go benchmark program (go/cmd/tsnetbench) for this machine, with the library's tags.

    Plain flags (no -trimpath), so it shares Go's build cache with ``go vet``.
    With ``gro``, tsnet keeps GRO (as upstream ships it), to measure what
    ``ts_omit_gro`` costs.
    """
    env = {**os.environ}
    env.setdefault("GOFLAGS", "-mod=readonly")
    tags = [t for t in GO_TAGS if not (gro and t == "ts_omit_gro")]
    cmd = [go, "build", "-buildvcs=false", f"-tags={','.join(tags)}", "-o", str(target)]
    print("+", shlex.join([*cmd, "./cmd/tsnetbench"]), file=sys.stderr, flush=True)
    if subprocess.run([*cmd, "./cmd/tsnetbench"], cwd=GO_DIR, env=env, check=False).returncode != 0:
        raise BuildError("go build of go/cmd/tsnetbench failed (see its output above)")
    return target


_LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|PATENTS)", re.I)


def write_notices(go: str, target: Target, out_dir: Path) -> Path:
    """THIRD_PARTY_NOTICES.txt: the license texts of Go and every module linked into the library.

    Their licenses (BSD, MIT, Apache-2.0) ask that binary copies carry them;
    the wheel installs this file next to the library. A module without a
    license file stops the build rather than ship without its notice.
    """
    env = {**os.environ, "CGO_ENABLED": "1", "GOOS": target.goos, "GOARCH": target.goarch}
    template = "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}"
    listed = subprocess.run(
        [go, "list", "-deps", f"-tags={','.join(GO_TAGS)}", "-f", template, "."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=False).stdout.strip()
    if listed.returncode != 0 or not goroot:
        raise BuildError(f"could not list the Go modules in the library:\n{listed.stderr}")
    sections = [("Go (standard library and runtime)", [Path(goroot, "LICENSE")])]
    for line in sorted(set(filter(None, listed.stdout.splitlines()))):
        path, version, directory = line.split(" ", 2)
        files = sorted(f for f in Path(directory).iterdir() if _LICENSE_FILE.match(f.name) and f.is_file())
        if not files:
            raise BuildError(f"Go module {path} {version} has no license file to ship with the library")
        sections.append((f"{path} {version}", files))
    parts = ["Third-party software in libtailnet, and the notices its licenses ask copies to carry.\n"]
    for title, files in sections:
        for file in files:
            parts.append(f"\n{'=' * 78}\n{title}: {file.name}\n{'=' * 78}\n\n{file.read_text().strip()}\n")
    notices = out_dir / "THIRD_PARTY_NOTICES.txt"
    notices.write_text("".join(parts))
    return notices


def check_header(go: str, cc: list[str] | None) -> None:
    """Compile tailscale.h together with cgo's generated header.

    Any signature that drifted between the two is then a build error. (cgo
    cannot say const, so const is defined away for this check only.)
    """
    if cc is None:
        cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
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
            [*cc, "-c", "-Dconst=", "-o", str(probe.with_suffix(".o")), str(probe)],
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
    import cffi  # type: ignore[import-untyped]

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
    parser.add_argument("--tsnetbench", type=Path, help="only build the Go benchmark program, to this path")
    parser.add_argument("--gro", action="store_true", help="with --tsnetbench: keep tsnet's GRO")
    args = parser.parse_args(argv)
    if args.tsnetbench:
        try:
            print(build_tsnetbench(find_go(), args.tsnetbench.resolve(), gro=args.gro))
        except BuildError as exc:
            print(f"build_libtailscale.py: error: {exc}", file=sys.stderr)
            return 1
        return 0
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        go = find_go()
        target = build_target()
        lib = build_library(go, out_dir, target)
        if not args.skip_header_check:
            check_header(go, c_compiler(target))
        ffi = build_ffi_module(out_dir)
        notices = write_notices(go, target, out_dir)
    except BuildError as exc:
        print(f"build_libtailscale.py: error: {exc}", file=sys.stderr)
        return 1
    print(lib)
    print(ffi)
    print(notices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
