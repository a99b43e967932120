"""The Go runtime settings the library chooses, and that the environment still decides.

Each is read in a fresh process: the runtime reads its environment once,
when the library is loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest


def _counter_in_a_new_process(name: str, env: Mapping[str, str], cpus: set[int] | None = None) -> str:
    """The library's debug counter ``name`` in a new Python process with ``env`` (on ``cpus``)."""
    done = subprocess.run(
        [sys.executable, "-c", f"from tailnet.testing import debug_counter; print(debug_counter({name!r}))"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    return done.stdout.strip()


def _without(variable: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != variable}


def test_the_go_runtime_collects_at_gogc_50_unless_gogc_is_set() -> None:
    env = _without("GOGC")
    for gogc, want in ((None, "50"), ("80", "80"), ("off", "-1")):
        run_env = env if gogc is None else {**env, "GOGC": gogc}
        assert _counter_in_a_new_process("gc_percent", run_env) == want, gogc


def _cpu_quota_limits_go() -> bool:
    """Whether a cgroup CPU quota may lower Go's default GOMAXPROCS below the CPUs allowed."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    if v2.exists():
        return not v2.read_text().startswith("max")
    v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    return v1.exists() and v1.read_text().strip() != "-1"


@pytest.mark.skipif(sys.platform != "linux", reason="CPU affinity is set with sched_setaffinity")
def test_the_go_runtime_leaves_a_cpu_to_python_unless_gomaxprocs_is_set() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or _cpu_quota_limits_go():
        pytest.skip("needs two CPUs that Go's default GOMAXPROCS would count")
    env = _without("GOMAXPROCS")
    # Go's default is the CPUs the process may run on: 2 here, 1 below.
    two, one = set(allowed[:2]), set(allowed[:1])
    assert _counter_in_a_new_process("gomaxprocs", env, two) == "1"
    assert _counter_in_a_new_process("gomaxprocs", env, one) == "1"
    assert _counter_in_a_new_process("gomaxprocs", {**env, "GOMAXPROCS": "2"}, two) == "2"
    assert _counter_in_a_new_process("gomaxprocs", {**env, "GOMAXPROCS": "3"}, one) == "3"
