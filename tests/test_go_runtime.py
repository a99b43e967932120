"""The Go runtime settings the library chooses, and that the environment still decides.

Each is read in a fresh process: the runtime reads its environment once,
when the library is loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

_COUNTER = """
import os, sys
from tailnet.testing import debug_counter
if sys.argv[2]:
    os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[2].split(",")})
print(debug_counter(sys.argv[1]))
"""


def _counter_in_a_new_process(name: str, env: Mapping[str, str], cpus: list[int] | None = None) -> str:
    """The library's debug counter ``name`` in a new Python process with ``env``, loaded on ``cpus``."""
    cpu_list = ",".join(map(str, cpus or []))
    done = subprocess.run(
        [sys.executable, "-c", _COUNTER, name, cpu_list],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-800:]
    return done.stdout.strip()


def _without(*variables: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in variables}


def test_the_go_runtime_collects_at_gogc_50_unless_gogc_is_set() -> None:
    env = _without("GOGC")
    for gogc, want in ((None, "50"), ("80", "80"), ("off", "-1")):
        run_env = env if gogc is None else {**env, "GOGC": gogc}
        assert _counter_in_a_new_process("gc_percent", run_env) == want, gogc


_CPU_NEEDED = pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2,
    reason="needs two CPUs for Go's default GOMAXPROCS to count (sched_setaffinity)",
)


@_CPU_NEEDED
def test_the_go_runtime_leaves_a_cpu_to_python() -> None:
    # Go's default is the CPUs the process may run on when the library
    # loads (a cgroup quota never takes it below 2 when 2 are allowed).
    two = sorted(os.sched_getaffinity(0))[:2]
    env = _without("GOMAXPROCS", "TAILNET_GOMAXPROCS")
    assert _counter_in_a_new_process("gomaxprocs", env, two) == "1"
    # What the runtime does not take as a setting is none (as Go reads it).
    for ignored in ("", "0", "-2", "two"):
        assert _counter_in_a_new_process("gomaxprocs", {**env, "GOMAXPROCS": ignored}, two) == "1", ignored


@_CPU_NEEDED
def test_gomaxprocs_and_tailnet_gomaxprocs_decide_when_set() -> None:
    two = sorted(os.sched_getaffinity(0))[:2]
    env = _without("GOMAXPROCS", "TAILNET_GOMAXPROCS")
    assert _counter_in_a_new_process("gomaxprocs", {**env, "GOMAXPROCS": "2"}, two) == "2"
    assert _counter_in_a_new_process("gomaxprocs", {**env, "GOMAXPROCS": "3"}, two) == "3"
    assert _counter_in_a_new_process("gomaxprocs", {**env, "TAILNET_GOMAXPROCS": "go"}, two) == "2"
    assert _counter_in_a_new_process("gomaxprocs", {**env, "TAILNET_GOMAXPROCS": "3"}, two) == "3"
    both = {**env, "GOMAXPROCS": "4", "TAILNET_GOMAXPROCS": "3"}
    assert _counter_in_a_new_process("gomaxprocs", both, two) == "4"


@pytest.mark.parametrize("value", ["", "0", "-1", "1.5", "two", "GO", "99999999999"])
def test_a_bad_tailnet_gomaxprocs_is_refused_before_the_library_loads(value: str) -> None:
    program = (
        "import tailnet\n"
        "from tailnet.testing import debug_counter\n"
        "try:\n"
        "    debug_counter('gomaxprocs')\n"
        "except tailnet.ConfigurationError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**_without("GOMAXPROCS"), "TAILNET_GOMAXPROCS": value},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.startswith("refused: TAILNET_GOMAXPROCS="), done.stdout
    assert "positive whole number" in done.stdout
