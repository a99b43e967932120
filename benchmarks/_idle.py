"""benchmarks/memory.py's Python process: one idle node, importing nothing the API does not.

    python -m benchmarks._idle sync|asyncio|trio STATE_DIR

It speaks one line at a time, as ``tsnetbench idle`` does: it imports
what its API needs (and starts the event loop), prints ``{"phase":
"started"}`` and waits for a line; brings its node up and prints
``{"phase": "up"}``; then answers each further line with the Go runtime's
figures (the library's ``go_*`` debug counters), until its standard input
closes. In between it idles: blocked in ``readline``, or in the event loop
waiting for standard input. Only ``sys``, ``os`` and ``json`` are imported
besides tailnet (and anyio), so the figures are the API's own (the parent
makes the state directory: ``tempfile`` alone would bring ``shutil``,
``random``, ``bz2`` and ``lzma``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

#: The library's counters of where the Go runtime's memory is.
GO_COUNTERS = (
    "go_heap_bytes",
    "go_heap_free_bytes",
    "go_heap_released_bytes",
    "go_stack_bytes",
    "go_runtime_bytes",
    "go_total_bytes",
)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _go_figures() -> dict[str, int]:
    """The counters this build of the library has (older ones lack them)."""
    import tailnet
    from tailnet.testing import debug_counter  # after the readings: not part of the figures

    figures = {}
    for name in GO_COUNTERS:
        try:
            figures[name] = debug_counter(name)
        except tailnet.ConfigurationError:
            continue
    return figures


def _options() -> dict[str, Any]:
    return {"state_dir": sys.argv[2], "ephemeral": True}


def run_sync() -> None:
    """The blocking API: the main thread waits in ``readline``."""
    import tailnet

    _say({"phase": "started"})
    if not sys.stdin.readline():
        return
    server = tailnet.Server(f"py-idle-{os.getpid()}", **_options()).up(timeout=60)
    _say({"phase": "up"})
    while sys.stdin.readline():
        _say(_go_figures())
    del server  # never closed: the process ends with os._exit, as the benchmark workers do


def run_async(backend: str) -> None:
    """The async API on backend: the event loop waits for standard input."""
    import anyio

    import tailnet

    async def line() -> bytes:
        await anyio.wait_readable(0)
        return os.read(0, 4096)

    async def idle() -> None:
        _say({"phase": "started"})
        if not await line():
            return
        server = await tailnet.AsyncServer(f"py-idle-{os.getpid()}", **_options()).up(timeout=60)
        _say({"phase": "up"})
        while await line():
            _say(_go_figures())
        del server

    anyio.run(idle, backend=backend)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("sync", "asyncio", "trio"):
        sys.exit("usage: python -m benchmarks._idle sync|asyncio|trio STATE_DIR")
    if sys.argv[1] == "sync":
        run_sync()
    else:
        run_async(sys.argv[1])
    sys.stdout.flush()
    os._exit(0)
