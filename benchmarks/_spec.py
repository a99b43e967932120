"""What the benchmarks measure: sizes, ports, metrics, and the helpers every worker shares.

The Go program (go/cmd/tsnetbench) implements the same workloads with the
same ports, sizes and definitions; benchmarks/README.md is the contract.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

# Ports of the benchmark services on the server (as in go/cmd/tsnetbench).
PORT_ECHO = 5001
PORT_SINK = 5002
PORT_GREET = 5003
PORT_UDP = 5004
PORT_CONTROL = 5005

#: Round trips untimed before the timed ones.
RTT_WARMUP = 100
#: The server ends a datagram round when none has come for this long.
UDP_QUIET = 0.5
#: Every dial's timeout, in seconds.
DIAL_TIMEOUT = 30.0

WORKLOADS = ("rtt", "bulk", "concurrent", "udp", "connect")


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does; passed to every client as flags."""

    bulk_bytes: int = 256 << 20
    chunk: int = 256 << 10
    rtt_count: int = 10_000
    connect_count: int = 1_000
    streams: int = 100
    stream_bytes: int = (256 << 20) // 100
    udp_count: int = 50_000
    udp_size: int = 1_200
    warm: float = 2.0
    conns: int = 1_000

    def flags(self) -> list[str]:
        """As command-line flags, spelled the same for the Go and Python workers."""
        out: list[str] = []
        for f in fields(self):
            if f.name == "conns":  # the memory worker's, not the client's
                continue
            value = getattr(self, f.name)
            text = f"{value}s" if f.name == "warm" else str(value)
            out += [f"-{f.name.replace('_', '-')}", text]
        return out

    def as_dict(self) -> dict[str, float]:
        """For the results file."""
        return asdict(self)


FULL = Sizes()
#: A few minutes' run with the same shape, for a first look.
QUICK = replace(
    FULL,
    bulk_bytes=64 << 20,
    rtt_count=2_000,
    connect_count=200,
    stream_bytes=(64 << 20) // 100,
    udp_count=10_000,
    warm=1.5,
)
#: Tiny sizes: only proves that everything runs (tests/test_benchmarks.py).
SMOKE = replace(
    FULL,
    bulk_bytes=1 << 20,
    chunk=64 << 10,
    rtt_count=20,
    connect_count=5,
    streams=4,
    stream_bytes=64 << 10,
    udp_count=50,
    warm=0.2,
    conns=5,
)


@dataclass(frozen=True)
class Target:
    """A bound on one tailnet figure: a ratio to Go tsnet's, MiB over Go's, or MiB outright."""

    value: float
    kind: Literal["ratio", "over_go_mib", "mib"] = "ratio"


def every_api(target: Target) -> dict[str, Target]:
    """The same target for the sync, asyncio and trio APIs (asyncio's holds on uvloop too)."""
    return dict.fromkeys(("sync", "asyncio", "trio", "uvloop"), target)


@dataclass(frozen=True)
class Metric:
    """One reported figure."""

    key: str
    title: str
    unit: str
    better: Literal["higher", "lower"]
    #: The target per tailnet API ("sync", "asyncio", "trio", and "uvloop",
    #: which has asyncio's); an API that is missing is reported only. These
    #: are issue 13's targets.
    targets: Mapping[str, Target] = field(default_factory=dict)


METRICS = (
    Metric("bulk_mbps", "bulk TCP, 1 stream", "MB/s", "higher", every_api(Target(0.95))),
    Metric("concurrent_mbps", "100 concurrent streams", "MB/s", "higher", every_api(Target(0.95))),
    Metric(
        "rtt_p50_us",
        "round trip p50",
        "µs",
        "lower",
        {"sync": Target(1.4), "trio": Target(2.0), "asyncio": Target(2.5), "uvloop": Target(2.5)},
    ),
    Metric("rtt_p99_us", "round trip p99", "µs", "lower"),
    Metric("connect_p50_us", "connection setup p50", "µs", "lower", every_api(Target(1.6))),
    Metric("connect_p99_us", "connection setup p99", "µs", "lower"),
    Metric("udp_pps", "UDP 1200-byte datagrams", "packets/s", "higher", every_api(Target(0.95))),
    Metric("udp_loss", "UDP loss", "%", "lower"),
    Metric("startup_ms", "Server() to Running", "ms", "lower"),
    Metric(
        "rss_idle_mb",
        "RSS, one idle node",
        "MiB",
        "lower",
        {
            "sync": Target(15.0, "over_go_mib"),
            "asyncio": Target(40.0, "mib"),
            "trio": Target(40.0, "mib"),
            "uvloop": Target(40.0, "mib"),
        },
    ),
    Metric("rss_conns_mb", "RSS, 1000 open connections", "MiB", "lower"),
)


def percentile_us(samples_ns: Sequence[int], pct: int) -> float:
    """Nearest-rank percentile of nanosecond samples, in microseconds (as the Go side)."""
    if not samples_ns:
        return 0.0
    ordered = sorted(samples_ns)
    rank = max(math.ceil(pct * len(ordered) / 100), 1)
    return ordered[rank - 1] / 1000


def mbps(nbytes: int, seconds: float) -> float:
    """Throughput in MB/s (10**6 bytes per second)."""
    return nbytes / seconds / 1e6


def rss_mib() -> float:
    """This process's resident set size (VmRSS) in MiB, or -1 where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def state_dir(role: str) -> str:
    """A new state directory for this process's node, in ``$TMPDIR``.

    The harness gives each run a ``$TMPDIR`` of its own and removes it
    afterwards, so that no run leaves directories behind. Not
    ``tempfile.mkdtemp``: ``tempfile`` brings ``shutil``, ``random``,
    ``bz2`` and ``lzma`` (0.8 MiB), which the memory process would count
    as the library's.
    """
    parent = os.environ.get("TMPDIR") or "/tmp"  # noqa: S108 - mkdir below fails if the name exists
    path = os.path.join(parent, f"tailnet-bench-{role}-{os.getpid()}-{now_ns()}")
    os.mkdir(path, 0o700)
    return path


def now_ns() -> int:
    """The clock every timing uses."""
    return time.perf_counter_ns()
