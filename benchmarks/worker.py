"""One benchmark process in Python: the twin of ``tsnetbench`` (go/cmd/tsnetbench).

    python -m benchmarks.worker server -system sync|asyncio|trio|uvloop|loopback-py
    python -m benchmarks.worker client -system ... -host IP [-workloads ...] [sizes]
    python -m benchmarks.worker memory -system ... -host IP [-conns N] [-settle 1s]

Flags are spelled as the Go program's, so the harness passes both the same
list. A server prints ``{"host": ..., "startup_ms": ...}`` when it
listens and serves until its standard input closes; a client or memory
run prints one JSON object of figures. Nodes join the control server of
``$TS_CONTROL_URL`` (the harness's local tailnet).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from typing import Any

from ._spec import WORKLOADS, Sizes

SYSTEMS = ("sync", "asyncio", "trio", "uvloop", "loopback-py")
#: How anyio runs each async system: uvloop is asyncio with uvloop's event loop.
ANYIO_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "trio": ("trio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
}


def _seconds(text: str) -> float:
    """A Go-style duration in seconds ("2s", "1.5s", "500ms")."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.removesuffix("s"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("server", "client", "memory"))
    parser.add_argument("-system", choices=SYSTEMS, required=True)
    parser.add_argument("-host", default="", help="the server's address")
    parser.add_argument("-workloads", default=",".join(WORKLOADS))
    parser.add_argument("-conns", type=int, default=Sizes.conns, help="memory: connections to hold")
    parser.add_argument("-settle", type=_seconds, default=1.0, help="memory: pause before each reading")
    for f in fields(Sizes):
        if f.name != "conns":
            kind = _seconds if f.name == "warm" else int
            parser.add_argument(f"-{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run one role and exit without closing the node (see below)."""
    args = _parser().parse_args(argv)
    sizes = Sizes(**{f.name: getattr(args, f.name) for f in fields(Sizes) if f.name != "conns"})
    result = _run(args, sizes)
    if result is not None:
        print(json.dumps(result), flush=True)
    # As tsnetbench: no Server.close(). After many short connections
    # tailscale's netstack can stall in Close (docs/architecture.md), and
    # nothing is measured after this point.
    sys.stderr.flush()
    os._exit(0)


def _run(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any] | None:
    workloads = [w for w in args.workloads.split(",") if w]
    if args.system in ANYIO_BACKENDS:
        import anyio

        from . import _async

        backend, options = ANYIO_BACKENDS[args.system]
        if args.role == "server":
            anyio.run(_async.run_server, sizes, backend=backend, backend_options=options)
            return None
        if args.role == "client":
            return anyio.run(
                _async.run_client, args.host, sizes, workloads, backend=backend, backend_options=options
            )
        return anyio.run(
            _async.measure_memory,
            args.host,
            args.conns,
            args.settle,
            backend=backend,
            backend_options=options,
        )

    from . import _sync

    net: _sync.Network = _sync.Loopback() if args.system == "loopback-py" else _sync.TailnetNetwork(args.role)
    if args.role == "server":
        _sync.run_server(net, sizes)
        return None
    if args.role == "client":
        return _sync.run_client(net, args.host, sizes, workloads)
    return _sync.measure_memory(net, args.host, args.conns, args.settle)


if __name__ == "__main__":
    main()
