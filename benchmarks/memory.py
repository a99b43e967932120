"""What one idle node costs in memory, per API and beside Go tsnet, and where it goes.

    python -m benchmarks.memory [--repeat N] [--settle S] [--systems go,sync,asyncio,trio]
                                [--quick] [--out DIR] [--go-program PATH] [--update-docs]

(``./dev bench`` runs it after the other benchmarks, inside
``scripts/in-netns``, with the same arguments; those it does not know are
ignored.) Each measurement is one process with one node, alone on a local
tailnet of its own: the process imports what its API needs (and, for
asyncio and trio, starts its event loop), reports ``started``, brings its
node up, reports ``up``, and then idles (a blocked ``readline``, or an
event loop waiting on standard input). This process reads the child's
``/proc/PID/smaps`` from outside at both points, so measuring adds nothing
to what is measured, and finally asks the child for the Go runtime's own
figures (runtime/metrics: the library's ``go_*`` debug counters, or
``tsnetbench idle``'s answer).

The report is the median over the repeats of each figure, per system:

- RSS when started (imports, event loop) and idle after up (``--settle``
  seconds after up), and the difference: what the node itself costs;
- where the idle RSS is, by mapping: the Go code (``libtailnet.so``, or
  the ``tsnetbench`` executable) as file pages read from disk and as the
  pages the loader relocated or the program wrote (data, bss); the Go heap
  arenas (anonymous mappings in 4 MiB-aligned 4 MiB chunks); the interpreter's code; other
  shared libraries; and the rest of the anonymous memory (malloc's heap,
  Python's object arenas, thread stacks, the Go runtime's metadata);
- the Go runtime's view: heap objects, heap kept free, goroutine stacks,
  runtime structures (MiB), and the total minus what it released.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "performance.md"
DOC_BEGIN, DOC_END = "<!-- BEGIN MEMORY -->", "<!-- END MEMORY -->"

SYSTEMS = ("go", "sync", "asyncio", "trio")
#: The Go runtime's figures, as the library's debug counters name them.
GO_COUNTERS = (
    "go_heap_bytes",
    "go_heap_free_bytes",
    "go_heap_released_bytes",
    "go_stack_bytes",
    "go_runtime_bytes",
    "go_total_bytes",
)
#: Go maps its heap in 4 MiB-aligned multiples of 4 MiB (runtime/mpagealloc.go's
#: chunks), at randomised addresses: how its arenas are told from other anonymous memory.
GO_CHUNK = 4 << 20

#: The targets of issue 13: "go+" is a bound over Go tsnet's idle RSS, "abs" an absolute bound.
TARGETS = {"sync": ("go+", 15.0), "asyncio": ("abs", 40.0), "trio": ("abs", 40.0)}


# --- reading a process's memory --------------------------------------------


@dataclass
class Mapping:
    """One region of /proc/PID/smaps."""

    start: int
    path: str
    fields: dict[str, int]  # kB

    @property
    def rss(self) -> int:
        """Resident, kB."""
        return self.fields.get("Rss", 0)

    @property
    def anonymous(self) -> int:
        """Resident and anonymous (written, or never backed by a file), kB."""
        return self.fields.get("Anonymous", 0)


def read_smaps(pid: int) -> list[Mapping]:
    """Every mapping of process pid with its sizes in kB."""
    mappings: list[Mapping] = []
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head, _, rest = line.partition(" ")
            if head.endswith(":"):  # "Rss:   123 kB" (or "VmFlags: rd ex")
                value = rest.split()
                if mappings and value and value[0].isdigit():
                    mappings[-1].fields[head[:-1]] = int(value[0])
                continue
            parts = line.split(maxsplit=5)
            start = int(parts[0].split("-")[0], 16)
            mappings.append(Mapping(start, parts[5].strip() if len(parts) > 5 else "", {}))
    return mappings


def breakdown(mappings: list[Mapping], go_code: str) -> dict[str, float]:
    """RSS by kind of mapping, in MiB (go_code: the file holding the Go code)."""
    kb: dict[str, int] = dict.fromkeys(
        ("go_code_file", "go_code_written", "go_arenas", "python_code", "libraries", "other_anon"), 0
    )
    for m in mappings:
        if m.path.endswith(go_code):
            kb["go_code_file"] += m.rss - m.anonymous
            kb["go_code_written"] += m.anonymous
        elif not m.path and m.start % GO_CHUNK == 0 and m.fields.get("Size", 1) % (GO_CHUNK >> 10) == 0:
            kb["go_arenas"] += m.rss
        elif m.path.startswith("/") and "python" in Path(m.path).name and ".cpython-" not in m.path:
            kb["python_code"] += m.rss - m.anonymous
            kb["other_anon"] += m.anonymous
        elif m.path.startswith("/"):
            kb["libraries"] += m.rss - m.anonymous
            kb["other_anon"] += m.anonymous
        else:
            kb["other_anon"] += m.rss
    figures = {name: value / 1024 for name, value in kb.items()}
    figures["rss"] = sum(m.rss for m in mappings) / 1024
    figures["anon"] = sum(m.anonymous for m in mappings) / 1024
    return figures


# --- the parent -------------------------------------------------------------


def _command(system: str, build_dir: Path, go_program: Path | None) -> tuple[list[str], str]:
    """How to start system's idle process, and the file its Go code is in."""
    if system == "go":
        from .harness import _go_program

        program = go_program or _go_program(build_dir)
        return [str(program), "idle"], program.name
    return [sys.executable, "-m", "benchmarks._idle", system], "libtailnet.so"


def _expect(stream: IO[str], what: str, timeout: float = 120) -> dict[str, Any]:
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    line = stream.readline() if ready else ""
    if not line:
        raise RuntimeError(f"the idle process ended before saying {what}")
    message: dict[str, Any] = json.loads(line)
    return message


def measure(system: str, command: list[str], go_code: str, settle: float) -> dict[str, float]:
    """One process of system, alone on a fresh local tailnet: its figures in MiB."""
    from tailnet.testing import LocalTailnet

    with LocalTailnet() as net, tempfile.TemporaryDirectory(prefix="tailnet-idle-") as state:
        # TMPDIR: where tsnetbench makes its node's directory, removed with state.
        env = {**os.environ, **net.environ, "PYTHONPATH": str(ROOT), "TMPDIR": state}
        if command[0] == sys.executable:
            command = [*command, state]
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            _expect(proc.stdout, "started")
            started = breakdown(read_smaps(proc.pid), go_code)
            proc.stdin.write("up\n")
            proc.stdin.flush()
            _expect(proc.stdout, "up")
            time.sleep(settle)
            idle = breakdown(read_smaps(proc.pid), go_code)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            go = _expect(proc.stdout, "the Go figures")
        finally:
            proc.stdin.close()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    figures = {f"idle_{k}": v for k, v in idle.items()}
    figures["started_rss"] = started["rss"]
    figures["node"] = idle["rss"] - started["rss"]
    figures.update({name.removesuffix("_bytes"): go[name] / MIB for name in GO_COUNTERS if name in go})
    return figures


#: The report's rows: (key, label).
ROWS = (
    ("started_rss", "RSS before the node (imports, event loop)"),
    ("idle_rss", "RSS, idle node"),
    ("node", "what the node adds"),
    ("idle_go_code_file", "Go code: file pages"),
    ("idle_go_code_written", "Go code: relocated and written pages"),
    ("idle_go_arenas", "Go heap arenas (resident)"),
    ("idle_python_code", "interpreter: file pages"),
    ("idle_libraries", "other libraries: file pages"),
    ("idle_other_anon", "other anonymous (malloc, Python objects, stacks, Go runtime)"),
    ("go_heap", "Go: heap objects"),
    ("go_heap_free", "Go: heap kept free"),
    ("go_stack", "Go: goroutine stacks"),
    ("go_runtime", "Go: runtime structures"),
    ("go_total", "Go: everything mapped"),
    ("go_heap_released", "Go: of which released"),
)


def summarize(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The median of every figure over the repeats, per system."""
    return {
        system: {key: statistics.median(r[key] for r in figures if key in r) for key in figures[0]}
        for system, figures in runs.items()
        if figures
    }


def _verdict(system: str, summary: dict[str, dict[str, float]]) -> str:
    target = TARGETS.get(system)
    if target is None:
        return ""
    kind, bound = target
    rss = summary[system]["idle_rss"]
    if kind == "go+":
        if "go" not in summary:
            return ""
        over = rss - summary["go"]["idle_rss"]
        return f"Go + {over:.1f} {'✓' if over <= bound else '✗'} (≤ Go + {bound:.0f})"
    return f"{rss:.1f} {'✓' if rss <= bound else '✗'} (≤ {bound:.0f})"


def markdown(result: dict[str, Any]) -> str:
    """The report as a Markdown table (MiB; medians over the repeats)."""
    summary: dict[str, dict[str, float]] = result["summary"]
    names = [s for s in SYSTEMS if s in summary]
    labels = {"go": "Go tsnet", "sync": "tailnet sync", "asyncio": "tailnet asyncio", "trio": "tailnet trio"}
    lines = [
        f"Run {result['date']} ({result['repeat']} repeats, idle {result['settle']:g} s after up; "
        f"MiB, medians). Load average (1 min): {result['load']:.1f}.",
        "",
        "| MiB | " + " | ".join(labels[n] for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for key, label in ROWS:
        cells = [f"{summary[n][key]:.1f}" if key in summary[n] else "-" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    verdicts = [_verdict(n, summary) for n in names]
    if any(verdicts):
        lines.append("| **target (idle RSS)** | " + " | ".join(verdicts) + " |")
    return "\n".join(lines)


def update_docs(text: str, json_path: Path) -> None:
    """Put the table into docs/performance.md between its memory markers."""
    doc = DOC.read_text()
    begin, end = doc.index(DOC_BEGIN) + len(DOC_BEGIN), doc.index(DOC_END)
    source = json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
    DOC.write_text(doc[:begin] + f"\n{text}\n\nRaw figures: `{source}`.\n" + doc[end:])
    print(f"updated {DOC}", file=sys.stderr)


def _rotations(systems: list[str], repeat: int) -> Iterator[tuple[int, str]]:
    for r in range(repeat):
        shift = r % len(systems)
        for system in systems[shift:] + systems[:shift]:
            yield r, system


def run(args: argparse.Namespace) -> int:
    """Measure every system args.repeat times; print and save the report."""
    systems = [s for s in args.systems.split(",") if s in SYSTEMS]
    if not systems:
        print(f"memory: none of {args.systems} measured (systems: {', '.join(SYSTEMS)})", file=sys.stderr)
        return 0
    build_dir = ROOT / "build"
    build_dir.mkdir(exist_ok=True)
    commands = {s: _command(s, build_dir, args.go_program) for s in systems}
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    loads, failed = [], False
    for r, system in _rotations(systems, args.repeat):
        loads.append(os.getloadavg()[0])
        try:
            figures = measure(system, *commands[system], args.settle)
        except (RuntimeError, OSError, json.JSONDecodeError) as exc:
            print(f"[repeat {r}] {system:<8} FAILED: {exc}", file=sys.stderr, flush=True)
            failed = True
            continue
        runs[system].append(figures)
        started, idle = figures["started_rss"], figures["idle_rss"]
        line = f"[repeat {r}] {system:<8} started {started:.1f} MiB, idle {idle:.1f} MiB"
        print(line, file=sys.stderr, flush=True)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
    result = {
        "date": stamp,
        "repeat": args.repeat,
        "settle": args.settle,
        "load": statistics.median(loads),
        "runs": runs,
        "summary": summarize(runs),
    }
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stamp}-memory.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    print(text)
    print(f"\nwrote {json_path}", file=sys.stderr)
    if args.update_docs:
        update_docs(text, json_path)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    """Command line (unknown arguments are ignored: ``./dev bench`` passes its own)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--smoke", action="store_true", help="1 repeat, short settle (tests)")
    parser.add_argument("--repeat", type=int, help="repeats (default 5, --quick 2)")
    parser.add_argument("--settle", type=float, help="seconds idle after up before reading (default 2)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--go-program", type=Path, help="a tsnetbench build to measure as the go system (default: build it)"
    )
    parser.add_argument("--update-docs", action="store_true", help="write the table into docs/performance.md")
    args, _ = parser.parse_known_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.smoke else 2 if args.quick else 5
    if args.settle is None:
        args.settle = 0.2 if args.smoke else 2.0
    sys.exit(run(args))


if __name__ == "__main__":
    main()
