"""The benchmarks run (tiny sizes), so they never rot. No timing is asserted (speed: docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._spec import METRICS, SMOKE, percentile_us
from benchmarks.harness import DEFAULT_SYSTEMS
from benchmarks.report import TAILNET

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_nearest_rank_like_the_go_side() -> None:
    samples = [i * 1000 for i in range(1, 101)]  # 1..100 µs, shuffled below
    samples = samples[::2] + samples[1::2]
    assert percentile_us(samples, 50) == 50.0
    assert percentile_us(samples, 99) == 99.0
    assert percentile_us([7000], 99) == 7.0
    assert percentile_us([], 50) == 0.0


# A hang guard: the first run builds the Go benchmark program, minutes on a
# busy machine.
@pytest.mark.timeout(3600)
def test_every_benchmark_runs_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [results] = tmp_path.glob("*.json")
    result = json.loads(results.read_text())
    assert result["sizes"]["bulk_bytes"] == SMOKE.bulk_bytes
    assert {run["system"] for run in result["runs"]} == set(DEFAULT_SYSTEMS)
    summary = result["summary"]
    udp_missing = "udp: this tailnet has no UDP (listen_packet)" in done.stdout
    for system in DEFAULT_SYSTEMS:
        have = set(summary[system])
        want = {m.key for m in METRICS}
        if system.startswith("loopback"):
            want.discard("startup_ms")  # no node
        if udp_missing and system in TAILNET:
            want -= {"udp_pps", "udp_loss"}
        assert want <= have, f"{system} lacks {want - have}"
    for system in TAILNET:
        assert "ratio" in result["comparison"][system]["bulk_mbps"]
    assert "tailnet sync / Go" in done.stdout  # the ratio table
    assert results.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.timeout(900)  # a hang guard: the first run builds the Go benchmark program
def test_the_memory_benchmark_runs_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [results] = tmp_path.glob("*-memory.json")
    summary = json.loads(results.read_text())["summary"]
    assert set(summary) == {"go", "sync", "asyncio", "trio"}
    for system, figures in summary.items():
        assert figures["idle_rss"] > figures["started_rss"] > 0, system
        assert figures["idle_go_code_file"] > 0, system
        assert figures["go_heap"] > 0, system
    assert "| RSS, idle node |" in done.stdout
