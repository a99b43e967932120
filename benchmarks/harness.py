"""Run every benchmark on a local tailnet and write results/<date>.json and a chart.

    ./dev bench [--quick] [--repeat N] [--systems go,sync,...] [--update-docs]

(``./dev bench`` runs ``python -m benchmarks`` inside ``scripts/in-netns``.)
For each repeat, each system runs in turn, in an order rotated per repeat so
that a burst of load from elsewhere does not always land on the same one: a
server process (node B), then a client process (node A, the workloads),
then a memory process (one node, then 1000 connections to the server).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tailnet.testing import LocalTailnet

from . import report
from ._spec import FULL, QUICK, SMOKE, WORKLOADS, Sizes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "performance.md"
DOC_CHART = ROOT / "docs" / "performance.png"
DOC_BEGIN, DOC_END = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"

DEFAULT_SYSTEMS = ("go", "sync", "asyncio", "trio", "uvloop", "loopback", "loopback-py")


@dataclass(frozen=True)
class Mode:
    """Sizes, repeats and time limits of a run."""

    name: str
    sizes: Sizes
    repeat: int
    settle: float
    timeout: float


MODES = {
    "full": Mode("full", FULL, 5, 0.5, 600),
    "quick": Mode("quick", QUICK, 2, 0.5, 300),
    "smoke": Mode("smoke", SMOKE, 1, 0.1, 180),
}


def _go_program(build_dir: Path) -> Path:
    """Build go/cmd/tsnetbench as tsnet's users build it (seconds when Go's cache is warm); its path.

    No build tags and gVisor unpatched, as upstream ships tsnet: GRO and
    GSO on. The reference every ratio divides by.
    """
    target = build_dir / "tsnetbench"
    subprocess.run(
        [sys.executable, str(ROOT / "build_libtailscale.py"), "--tsnetbench", str(target)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return target


@dataclass(frozen=True)
class System:
    """How to start one system's processes."""

    name: str
    command: list[str]  # before the role
    system_flag: str


def systems(names: list[str], build_dir: Path) -> list[System]:
    """The systems to run, by name (building the Go programs they need)."""
    python = [sys.executable, "-m", "benchmarks.worker"]
    go = _go_program(build_dir) if {"go", "loopback"} & set(names) else Path("tsnetbench")
    table = {
        "go": System("go", [str(go)], "tsnet"),
        "loopback": System("loopback", [str(go)], "loopback"),
        "sync": System("sync", python, "sync"),
        "asyncio": System("asyncio", python, "asyncio"),
        "trio": System("trio", python, "trio"),
        "uvloop": System("uvloop", python, "uvloop"),
        "loopback-py": System("loopback-py", python, "loopback-py"),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown system(s) {', '.join(unknown)}: choose from {', '.join(table)}")
    return [table[n] for n in names]


class WorkerError(Exception):
    """A benchmark process failed; the message has its output's tail."""


class Runner:
    """Runs the processes of one system, on a local tailnet of their own."""

    def __init__(self, mode: Mode, workloads: list[str], profile_dir: Path | None) -> None:
        self.mode, self.workloads, self.profile_dir = mode, workloads, profile_dir
        self.env: dict[str, str] = {}

    def run(self, system: System, repeat: int) -> dict[str, Any]:
        """Server, client, memory: the figures of one repeat.

        Each run gets a fresh local tailnet: nodes that have exited stay on
        a control server's map for a while, and every node would otherwise
        carry a netmap (memory, work) that grows with each run before it.
        Its processes get a ``$TMPDIR`` of their own for their nodes' state
        directories, removed when they are done.
        """
        with LocalTailnet() as net, tempfile.TemporaryDirectory(prefix="tailnet-bench-") as scratch:
            self.env = {**os.environ, **net.environ, "PYTHONPATH": str(ROOT), "TMPDIR": scratch}
            return self._run(system, repeat)

    def _run(self, system: System, repeat: int) -> dict[str, Any]:
        server = self._start(system, "server", ["-chunk", str(self.mode.sizes.chunk)])
        try:
            hello = self._first_line(server, system)
            host = hello["host"]
            figures = self._once(
                system,
                "client",
                ["-host", host, "-workloads", ",".join(self.workloads), *self.mode.sizes.flags()],
                repeat,
            )
            figures.update(
                self._once(
                    system,
                    "memory",
                    ["-host", host, "-conns", str(self.mode.sizes.conns), "-settle", f"{self.mode.settle}s"],
                    repeat,
                )
            )
            return figures
        finally:
            _stop(server)

    def _start(self, system: System, role: str, flags: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*system.command, role, "-system", system.system_flag, *flags],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _first_line(self, proc: subprocess.Popen[str], system: System) -> dict[str, Any]:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline() if ready else ""
        if not line:
            _stop(proc)
            raise WorkerError(f"{system.name} server did not start: {_tail(proc)}")
        hello: dict[str, Any] = json.loads(line)
        return hello

    def _once(self, system: System, role: str, flags: list[str], repeat: int) -> dict[str, Any]:
        command = [*system.command, role, "-system", system.system_flag, *flags]
        if self.profile_dir is not None and role == "client":
            command = _profiled(command, system, self.profile_dir / f"{system.name}-{repeat}")
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.mode.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise WorkerError(f"{system.name} {role} timed out after {exc.timeout:.0f} s") from None
        # The figures are the last JSON line (a profiler may print after it).
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise WorkerError(
                f"{system.name} {role} failed ({done.returncode}): {done.stderr.strip()[-600:]}"
            )
        figures: dict[str, Any] = json.loads(lines[-1])
        return figures


def _profiled(command: list[str], system: System, stem: Path) -> list[str]:
    """The command under a profiler: Go's pprof, or py-spy for Python."""
    if system.command[0] != sys.executable:
        return [*command, "-cpuprofile", f"{stem}.pprof"]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [py_spy, "record", "--native", "--rate", "250", "-o", f"{stem}.svg", "--", *command]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _tail(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        return "(no output)"
    return (err or "").strip()[-600:]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go.removeprefix("go version ").split(" ")[0] if go else "go ?",
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks; return the exit status (1 if any run failed)."""
    mode = MODES[args.mode]
    if args.repeat:
        mode = Mode(mode.name, mode.sizes, args.repeat, mode.settle, mode.timeout)
    build_dir = ROOT / "build"
    build_dir.mkdir(exist_ok=True)
    chosen = systems(args.systems.split(","), build_dir)
    workloads = args.workloads.split(",")
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    if args.profile:
        (out_dir / f"{stamp}-profiles").mkdir()
    started, loads, runs = time.monotonic(), [], []
    runner = Runner(mode, workloads, out_dir / f"{stamp}-profiles" if args.profile else None)
    for repeat in range(mode.repeat):
        shift = repeat % len(chosen)
        for system in chosen[shift:] + chosen[:shift]:
            loads.append(os.getloadavg()[0])
            record: dict[str, Any] = {"system": system.name, "repeat": repeat}
            began = time.monotonic()
            try:
                record["figures"] = runner.run(system, repeat)
            except WorkerError as exc:
                record["error"] = str(exc)
            record["seconds"] = round(time.monotonic() - began, 1)
            runs.append(record)
            print(_progress(record), file=sys.stderr, flush=True)
    summary = report.summarize(runs)
    result = {
        "date": stamp,
        "mode": mode.name,
        "repeat": mode.repeat,
        "sizes": mode.sizes.as_dict(),
        "workloads": workloads,
        "machine": machine(),
        "load": {"median": statistics.median(loads), "min": min(loads), "max": max(loads)},
        "duration_s": time.monotonic() - started,
        "runs": runs,
        "summary": summary,
        "comparison": report.compare(summary),
    }
    json_path = out_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    chart_path = json_path.with_suffix(".png")
    report.chart(result, chart_path)
    text = report.markdown(result)
    print(text)
    print(f"\nwrote {json_path} and {chart_path}", file=sys.stderr)
    if args.update_docs:
        update_docs(text, chart_path, json_path)
    return 1 if any("error" in r for r in runs) else 0


def _progress(record: dict[str, Any]) -> str:
    head = f"[repeat {record['repeat']}] {record['system']:<12} {record['seconds']:>6.1f} s"
    if "error" in record:
        return f"{head}  FAILED: {record['error']}"
    shown = ("bulk_mbps", "rtt_p50_us", "connect_p50_us", "concurrent_mbps", "udp_pps", "rss_idle_mb")
    figures = record["figures"]
    return head + "  " + "  ".join(f"{k}={figures[k]:.1f}" for k in shown if k in figures)


def update_docs(text: str, chart_path: Path, json_path: Path) -> None:
    """Put the report into docs/performance.md, between its result markers, and the chart beside it."""
    doc = DOC.read_text()
    begin, end = doc.index(DOC_BEGIN) + len(DOC_BEGIN), doc.index(DOC_END)
    shutil.copyfile(chart_path, DOC_CHART)
    source = json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
    block = f"\n{text}\n\nRaw figures: `{source}`.\n\n![tailnet vs Go tsnet]({DOC_CHART.name})\n"
    DOC.write_text(doc[:begin] + block + doc[end:])
    print(f"updated {DOC} and {DOC_CHART}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", dest="mode", action="store_const", const="quick", help="smaller sizes, 2 repeats"
    )
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke", help="tiny sizes (tests)")
    parser.set_defaults(mode="full")
    parser.add_argument("--repeat", type=int, help="repeats (default: 5, --quick 2)")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help="comma-separated")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated client workloads")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--profile", action="store_true", help="profile clients (py-spy, Go pprof)")
    parser.add_argument(
        "--update-docs", action="store_true", help="write the report into docs/performance.md"
    )
    sys.exit(run(parser.parse_args(argv)))
