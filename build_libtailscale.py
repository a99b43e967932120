#!/usr/bin/env python3
"""Build libtailnet, the shared library behind the tailnet package.

This is the one place that knows how the Go side is built: flags, tags,
output names, and the cffi module generated from ``go/tailscale.h``.
CMake (and so ``pip install``) runs it; developers may run it directly::

    python build_libtailscale.py --out-dir build/lib

It prints the paths of the files it wrote, one per line. With
``--tsnetbench PATH`` it builds only the Go benchmark program
(go/cmd/tsnetbench, used by benchmarks/) into PATH, as upstream ships
tsnet: no build tags, unpatched gVisor.

The library is built against copies of tailscale.com, gVisor and
wireguard-go with small fixes of ours (``TAILSCALE_PATCHES``; GRO's Flush,
``GRO_FIX``; a bound on wireguard-go's pool of inbound elements, ``WG_POOL_FIX``),
made under ``build/patched/`` from Go's module cache at build time, and
selected with ``go build -modfile``.

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
import json
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

#: Tailscale features left out of the library (ts_omit_* build tags): those
#: a library node never uses. docs/packaging.md says why each is safe to
#: drop and what it saves; go/features.go refuses to compile if one the
#: library needs is dropped. GRO stays in, with gVisor's Flush fixed
#: (``GRO_FIX``).
OMITTED_FEATURES: tuple[str, ...] = (
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


@dataclass(frozen=True)
class SourceFix:
    """A one-line fix of ours to a function (or another block) of a Go module, made in a copy of it.

    ``function`` is the function (from its doc comment), or the block,
    exactly as the module ships it. Any other text is refused: the fix was
    written for this one. The same text with ``fixed`` in place of ``line``
    is accepted as already fixed, and the module is then used as it is.
    """

    module: str
    file: str  # in the module
    function: str
    line: str
    fixed: str
    notice: str  # what the notices say was changed (Apache-2.0 4(b))
    section: str  # of docs/packaging.md, which says why

    @property
    def is_function(self) -> bool:
        """Whether the text is a function with a doc comment, found by its name.

        Any other text (a function without a doc comment, a ``const`` block)
        is found as it is.
        """
        return self.function.startswith("// ")

    def find(self, source: str) -> str:
        """The function's text in source (from its doc comment to its closing brace).

        For other text, that text as shipped or as fixed, if source has either.
        """
        if not self.is_function:
            fixed = self.function.replace(self.line, self.fixed)
            return next((text for text in (self.function, fixed) if text in source), "")
        name = re.escape(self.function.split("\n", 2)[1].rstrip("{ "))
        match = re.search(rf"^// [^\n]*\n{name} \{{\n.*?^\}}\n", source, re.M | re.S)
        return match.group(0) if match else ""

    def needed(self, source: str, where: str) -> bool:
        """Whether source needs the fix: True as shipped, False if already fixed; else BuildError."""
        found = self.find(source)
        if found == self.function:
            return True
        if found == self.function.replace(self.line, self.fixed):
            return False
        if self.is_function:
            subject, other = self.function.splitlines()[1], bool(found)
        else:
            subject, other = self.function.splitlines()[0], self.line in source or self.fixed in source
        raise BuildError(
            f"{where}: this {self.module} is not the one build_libtailscale.py's fix was written for "
            f"(its {self.file} has {'another' if other else 'no'} {subject!r}). "
            f"Read the new code: if what the fix is for (docs/packaging.md, {self.section!r}) is gone, "
            "add its text to SourceFix as already fixed; if not, write the fix for it."
        )

    def apply(self, source: str) -> str:
        """Source with the fix made, the changed line marked as ours."""
        return source.replace(self.function, self.function.replace(self.line, f"{self.fixed} {_MARK}"), 1)


_MARK = "// tailnet: fixed here, see tailnet's THIRD_PARTY_NOTICES.txt"

#: gVisor's GRO.Flush, as the gVisor that tailscale v1.102.5 pins ships it,
#: walks each bucket's list with Next() from the entry that removeOne has
#: just unlinked (and whose links Remove has cleared): it delivers the first
#: packet of each bucket and leaves the rest in the GRO object. tailscale
#: returns that object to a process-wide sync.Pool, and the next node to
#: take it delivers the leftovers to its own stack: with two nodes in one
#: process, packets reach the wrong node, which resets connections
#: (google/gvisor#14081, open). The fix takes the bucket's front again after
#: each removal, so Flush delivers every packet and leaves the buckets empty.
GRO_FIX = SourceFix(
    module="gvisor.dev/gvisor",
    file="pkg/tcpip/stack/gro/gro.go",
    function=(
        "// Flush sends all packets up the stack.\n"
        "func (gd *GRO) Flush() {\n"
        "\tfor i := range gd.buckets {\n"
        "\t\tfor groPkt := gd.buckets[i].packets.Front(); groPkt != nil; groPkt = groPkt.Next() {\n"
        "\t\t\tpkt := groPkt.pkt\n"
        "\t\t\tgd.buckets[i].removeOne(groPkt)\n"
        "\t\t\tgd.handlePacket(pkt)\n"
        "\t\t\tpkt.DecRef()\n"
        "\t\t}\n"
        "\t}\n"
        "}\n"
    ),
    line="groPkt = groPkt.Next() {",
    fixed="groPkt = gd.buckets[i].packets.Front() {",
    notice=(
        "Modified by tailnet: pkg/tcpip/stack/gro/gro.go, one line of GRO.Flush (the\n"
        "loop takes each bucket's front again after a removal, instead of the next\n"
        "entry of the one just removed), so that Flush delivers every queued packet\n"
        "(google/gvisor#14081). No other file of this module is changed."
    ),
    section="The GRO fix",
)

#: wireguard-go takes a message buffer from its pools for every datagram it
#: receives, sized for the largest UDP datagram (64 KiB, MaxSegmentSize),
#: and in its default build (Linux, macOS) the pools are unbounded
#: (PreallocatedBuffersPerPool = 0). A node that receives faster than its
#: netstack and application take the data in queues each datagram of about
#: 1.3 KB in such a buffer: in the benchmark's 100 streams (256 MiB), the
#: receiving process's live heap reached 0.8-1.2 GB in the library and
#: 1.7 GB in Go tsnet. The fix bounds the pool of inbound work elements at
#: 1024: each holds one received datagram's buffer until the peer's
#: sequential receiver has handed it to the netstack, so at most 1024
#: received datagrams wait inside the node; the receiving goroutine then
#: waits for an element, and the datagrams wait in the kernel's socket
#: buffer (or, past it, are dropped, and TCP inside the tunnel resends
#: them). Only that pool: the message buffer pool is shared with the send
#: path, and a bound there can deadlock, a send that waits for a buffer
#: only the blocked receive path would return (docs/packaging.md). The
#: bound must stay above what the receiving goroutines hold between them
#: (one batch each: 3 receive functions x 128 datagrams on Linux), or one
#: would wait for itself.
WG_POOL_FIX = SourceFix(
    module="github.com/tailscale/wireguard-go",
    file="device/pools.go",
    function=(
        "func (device *Device) PopulatePools() {\n"
        "\tdevice.pool.inboundElementsContainer = NewWaitPool(PreallocatedBuffersPerPool, func() any {\n"
        "\t\ts := make([]*QueueInboundElement, 0, device.BatchSize())\n"
        "\t\treturn &QueueInboundElementsContainer{elems: s}\n"
        "\t})\n"
        "\tdevice.pool.outboundElementsContainer = NewWaitPool(PreallocatedBuffersPerPool, func() any {\n"
        "\t\ts := make([]*QueueOutboundElement, 0, device.BatchSize())\n"
        "\t\treturn &QueueOutboundElementsContainer{elems: s}\n"
        "\t})\n"
        "\tdevice.pool.messageBuffers = NewWaitPool(PreallocatedBuffersPerPool, func() any {\n"
        "\t\treturn new([MaxMessageSize]byte)\n"
        "\t})\n"
        "\tdevice.pool.inboundElements = NewWaitPool(PreallocatedBuffersPerPool, func() any {\n"
        "\t\treturn new(QueueInboundElement)\n"
        "\t})\n"
        "\tdevice.pool.outboundElements = NewWaitPool(PreallocatedBuffersPerPool, func() any {\n"
        "\t\treturn new(QueueOutboundElement)\n"
        "\t})\n"
        "}\n"
    ),
    line="device.pool.inboundElements = NewWaitPool(PreallocatedBuffersPerPool, func() any {",
    fixed="device.pool.inboundElements = NewWaitPool(1024, func() any {",
    notice=(
        "Modified by tailnet: device/pools.go, one line of PopulatePools (the pool of\n"
        "inbound elements is bounded at 1024 instead of PreallocatedBuffersPerPool,\n"
        "which is 0, unbounded, in the default build), so that a node receiving faster\n"
        "than it can deliver holds at most 1024 received datagrams. No other file of\n"
        "this module is changed."
    ),
    section="The wireguard-go pool bound",
)

#: Our fixes to modules other than tailscale.com, each made unless the
#: module is already fixed.
SOURCE_FIXES = (GRO_FIX, WG_POOL_FIX)

#: Where the build makes its patched copies of Go modules, and the go.mod
#: that points the build at them (``go build -modfile``).
PATCHED_DIR = ROOT / "build" / "patched"


@dataclass(frozen=True)
class GoModule:
    """What ``go mod download -json`` says of a module: its version and directory."""

    version: str
    dir: Path


def go_module(go: str, path: str) -> GoModule:
    """The module go/go.mod requires, from Go's module cache (downloaded if missing)."""
    done = subprocess.run(
        [go, "mod", "download", "-json", path], cwd=GO_DIR, capture_output=True, text=True, check=False
    )
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        info = {}
    if done.returncode != 0 or "Dir" not in info:
        raise BuildError(f"could not find Go module {path}: {info.get('Error') or done.stderr.strip()}")
    return GoModule(info["Version"], Path(info["Dir"]))


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a module out of Go's (read-only) cache, as ordinary writable files."""
    for directory, _, files in os.walk(source):
        into = target / Path(directory).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(directory, name), into / name)


def patched_copy(fix: SourceFix, module: GoModule) -> Path:
    """build/patched/<module>@<version>: the module with fix made, copied once per version.

    The copy is made beside its final place and renamed there, so a build
    never sees half a copy; an existing copy is reused when it holds the
    fixed file.
    """
    source = (module.dir / fix.file).read_text()
    fixed = fix.apply(source)
    copy = PATCHED_DIR / f"{fix.module.rsplit('/', 1)[-1]}@{module.version}"
    if (copy / fix.file).is_file() and (copy / fix.file).read_text() == fixed:
        return copy
    PATCHED_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PATCHED_DIR, prefix=".copy-") as tmp:
        staged = Path(tmp, "module")
        _copy_tree(module.dir, staged)
        (staged / fix.file).write_text(fixed)
        shutil.rmtree(copy, ignore_errors=True)
        with contextlib.suppress(OSError):  # a concurrent build renamed its copy first: same bytes
            staged.rename(copy)
    if not (copy / fix.file).is_file() or (copy / fix.file).read_text() != fixed:
        raise BuildError(f"could not make the patched copy of {fix.module} in {copy}")
    return copy


def write_modfile(replacements: dict[str, Path]) -> Path:
    """build/patched/go.mod: go/go.mod with the modules replaced by the patched copies, and its go.sum.

    The replacement paths are relative to go/ (as Go reads them), so the
    file, and the library, are the same in any checkout.
    """
    lines = [(GO_DIR / "go.mod").read_text().rstrip("\n"), ""]
    for path, copy in sorted(replacements.items()):
        lines.append(f"replace {path} => {Path(os.path.relpath(copy, GO_DIR)).as_posix()}")
    modfile = PATCHED_DIR / "go.mod"
    for target, text in ((modfile, "\n".join(lines) + "\n"), (modfile.with_suffix(".sum"), None)):
        content = text if text is not None else (GO_DIR / "go.sum").read_text()
        if not target.is_file() or target.read_text() != content:
            staged = target.with_name(f".{target.name}.{os.getpid()}")
            staged.write_text(content)
            staged.replace(target)
    return modfile


@dataclass(frozen=True)
class Patches:
    """The Go modules the library is built with fixes of ours, and how to tell go about them."""

    modfile: Path | None = None
    notices: tuple[tuple[str, str], ...] = ()  # (module path, what was changed)

    @property
    def flags(self) -> list[str]:
        """The go build/list/test flags that select the patched modules."""
        return [f"-modfile={self.modfile}"] if self.modfile else []


def prepare_patches(go: str) -> Patches:
    """Make the patched copies the library needs, and the go.mod that selects them.

    tailscale.com is always patched (:data:`TAILSCALE_PATCHES`); gVisor and
    wireguard-go unless they are already fixed (:data:`SOURCE_FIXES`).
    """
    name, shadow = patched_tailscale(go)
    replacements = {name: shadow}
    notices = [(name, TSNET_NOTICE)]
    for fix in SOURCE_FIXES:
        module = go_module(go, fix.module)
        if fix.needed((module.dir / fix.file).read_text(), f"{fix.module} {module.version}"):
            replacements[fix.module] = patched_copy(fix, module)
            notices.append((fix.module, fix.notice))
    return Patches(write_modfile(replacements), tuple(notices))


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


#: Our patches to tailscale.com at the pinned version (:data:`TAILSCALE_PATCHES`),
#: applied by building against a shadow of the module (:func:`patched_tailscale`)
#: that the ``-modfile`` of :func:`prepare_patches` selects; the module
#: cache is never touched.
#:
#: tsnet: upstream, a tsnet.Server always has a directory: with no Dir it makes one
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


#: testcontrol (the local tailnet's control server, localnet.go) answers a
#: request it cannot serve, or a body it cannot decode, with ``go
#: panic(...)``: a panic in a goroutine of its own, which nothing can
#: recover, so it aborts the process that hosts the local tailnet. A
#: node's LocalAPI ``id-token`` request did (``/machine/id-token`` is not
#: served). Patched, an unknown request gets a 404, and the other such
#: panics happen in the request's own handler, where the HTTP/2 server
#: recovers them, logs them and resets that one request.
TESTCONTROL_UNHANDLED = (
    """\tgo panic(fmt.Sprintf("testcontrol.Server received unhandled request: %s", got.Bytes()))\n""",
    """\t// tailnet patch: an error for the client, not an abort of the host process.
\tlog.Printf("testcontrol: unhandled request: %s %s", r.Method, r.URL.Path)
\thttp.Error(w, "not served by this control server", http.StatusNotFound)
""",
)

#: Every patched file of tailscale.com: (old, new, how many times old occurs).
TAILSCALE_PATCHES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "tsnet/tsnet.go": tuple((old, new, 1) for old, new in TSNET_PATCH),
    "tstest/integration/testcontrol/testcontrol.go": (
        (*TESTCONTROL_UNHANDLED, 1),
        ("\tgo panic(", "\tpanic(", 11),
    ),
}


def patch_text(path: Path, edits: tuple[tuple[str, str, int], ...]) -> str:
    """The text of path with edits made; BuildError if an edit does not match as expected."""
    text = path.read_text(encoding="utf-8")
    for old, new, count in edits:
        if text.count(old) != count:
            raise BuildError(f"{path} is not what TAILSCALE_PATCHES expects: update the patch")
        text = text.replace(old, new)
    return text


def mirror(source: Path, target: Path, patched: set[Path]) -> None:
    """Mirror the directory source at target.

    Files are copied (go:embed refuses a linked file) and directories
    linked, except those that hold a patched file, mirrored the same way.
    """
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_dir() and any(entry in path.parents for path in patched):
            mirror(entry, target / entry.name, patched)
        elif entry.is_dir():
            (target / entry.name).symlink_to(entry)
        elif entry.is_file():
            shutil.copyfile(entry, target / entry.name)


def patched_tailscale(go: str) -> tuple[str, Path]:
    """build/patched/tailscale.com@<version>: the module with :data:`TAILSCALE_PATCHES` applied.

    Go refuses ``-overlay`` for files in the module cache, so the module is
    shadowed instead: the shadow mirrors the cached module (:func:`mirror`)
    and holds the patched files. It is made beside its place and renamed
    there, and reused while it holds the same patched files, so that Go's
    build cache keeps the compiled packages.
    """
    module = go_module(go, "tailscale.com")
    texts = {name: patch_text(module.dir / name, edits) for name, edits in TAILSCALE_PATCHES.items()}
    shadow = PATCHED_DIR / f"tailscale.com@{module.version}"

    def holds_patches() -> bool:
        return all(
            (shadow / name).is_file()
            and not (shadow / name).is_symlink()
            and (shadow / name).read_text(encoding="utf-8") == text
            for name, text in texts.items()
        )

    if holds_patches():
        return "tailscale.com", shadow
    PATCHED_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PATCHED_DIR, prefix=".shadow-") as tmp:
        staged = Path(tmp, "module")
        mirror(module.dir, staged, {module.dir / name for name in texts})
        for name, text in texts.items():
            (staged / name).write_text(text, encoding="utf-8")
        shutil.rmtree(shadow, ignore_errors=True)
        with contextlib.suppress(OSError):  # a concurrent build renamed its shadow first: same files
            staged.rename(shadow)
    if not holds_patches():
        raise BuildError(f"could not make the patched shadow of tailscale.com in {shadow}")
    return "tailscale.com", shadow


#: What the notices say of tailscale.com (its BSD license asks for no notice
#: of changes; said anyway, so the wheel lists every file we changed).
TSNET_NOTICE = (
    "Modified by tailnet: tsnet/tsnet.go, two spots of Server.start (a Server\n"
    "with a Store and no Dir makes no directory and writes no log files), and\n"
    "tstest/integration/testcontrol/testcontrol.go (a request it cannot serve\n"
    "gets an HTTP error instead of a panic that aborts the process). No other\n"
    "file of this module is changed."
)


def build_library(go: str, out_dir: Path, target: Target, patches: Patches) -> Path:
    """Run ``go build -buildmode=c-shared`` into out_dir, with the patched modules."""
    lib = out_dir / target.lib_name
    cc = c_compiler(target)
    env = {**os.environ, "CGO_ENABLED": "1", "GOOS": target.goos, "GOARCH": target.goarch}
    if cc is not None:
        env["CC"] = shlex.join(cc)
    env.setdefault("GOFLAGS", "-mod=readonly")
    ldflags = "-s -w -buildid="
    if os.environ.get("TAILNET_CC") == "zig":
        ldflags += " -extldflags=-Wl,--strip-all"  # zig's linker ignores a plain -s
    cmd = [
        go,
        "build",
        "-buildmode=c-shared",
        *patches.flags,
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


def build_tsnetbench(go: str, target: Path) -> Path:
    """Build the Go benchmark program (go/cmd/tsnetbench) for this machine, as tsnet's users build it.

    The benchmarks' reference is Go tsnet as upstream ships it: no build
    tags (so GRO and GSO on), gVisor unpatched, go/go.mod's versions. Plain
    flags (no -trimpath), so it shares Go's build cache with ``go vet``.
    """
    env = {**os.environ}
    env.setdefault("GOFLAGS", "-mod=readonly")
    cmd = [go, "build", "-buildvcs=false", "-o", str(target)]
    print("+", shlex.join([*cmd, "./cmd/tsnetbench"]), file=sys.stderr, flush=True)
    if subprocess.run([*cmd, "./cmd/tsnetbench"], cwd=GO_DIR, env=env, check=False).returncode != 0:
        raise BuildError("go build of go/cmd/tsnetbench failed (see its output above)")
    return target


_LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|PATENTS)", re.I)


def write_notices(go: str, target: Target, out_dir: Path, patches: Patches) -> Path:
    """THIRD_PARTY_NOTICES.txt: the license texts of Go and every module linked into the library.

    Their licenses (BSD, MIT, Apache-2.0) ask that binary copies carry them;
    the wheel installs this file next to the library. A module without a
    license file stops the build rather than ship without its notice. A
    module we patched gets a note saying which file we changed, as
    Apache-2.0 section 4(b) asks.
    """
    env = {**os.environ, "CGO_ENABLED": "1", "GOOS": target.goos, "GOARCH": target.goarch}
    template = "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}"
    listed = subprocess.run(
        [go, "list", "-deps", *patches.flags, f"-tags={','.join(GO_TAGS)}", "-f", template, "."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=False).stdout.strip()
    if listed.returncode != 0 or not goroot:
        raise BuildError(f"could not list the Go modules in the library:\n{listed.stderr}")
    sections = [("Go (standard library and runtime)", [Path(goroot, "LICENSE")], "")]
    modified = dict(patches.notices)
    for line in sorted(set(filter(None, listed.stdout.splitlines()))):
        path, version, directory = line.split(" ", 2)
        files = sorted(f for f in Path(directory).iterdir() if _LICENSE_FILE.match(f.name) and f.is_file())
        if not files:
            raise BuildError(f"Go module {path} {version} has no license file to ship with the library")
        sections.append((f"{path} {version}", files, modified.pop(path, "")))
    if modified:
        raise BuildError(f"patched modules not linked into the library: {', '.join(modified)}")
    parts = ["Third-party software in libtailnet, and the notices its licenses ask copies to carry.\n"]
    for title, files, change in sections:
        if change:
            parts.append(f"\n{'=' * 78}\n{title}: CHANGES\n{'=' * 78}\n\n{change}\n")
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
        # The separator matters: cgo names its probe objects objdir +
        # "_cgo_N.o" before it appends one, so without it they are written
        # beside tmp, in $TMPDIR, and never removed.
        gen = subprocess.run(
            [go, "tool", "cgo", "-exportheader", str(cgo_header), "-objdir", tmp + os.sep, *sources],
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
    args = parser.parse_args(argv)
    if args.tsnetbench:
        try:
            print(build_tsnetbench(find_go(), args.tsnetbench.resolve()))
        except BuildError as exc:
            print(f"build_libtailscale.py: error: {exc}", file=sys.stderr)
            return 1
        return 0
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        go = find_go()
        target = build_target()
        patches = prepare_patches(go)
        lib = build_library(go, out_dir, target, patches)
        if not args.skip_header_check:
            check_header(go, c_compiler(target))
        ffi = build_ffi_module(out_dir)
        notices = write_notices(go, target, out_dir, patches)
    except BuildError as exc:
        print(f"build_libtailscale.py: error: {exc}", file=sys.stderr)
        return 1
    print(lib)
    print(ffi)
    print(notices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
