"""What open connections hold once traffic has passed: ``python -m benchmarks.memory_connections``.

(Inside ``scripts/in-netns``.) Two nodes in this process on a local
tailnet, sync API: ``--pairs`` connections (500) from one to the other,
then each sends 256 KiB and reads 256 KiB back (the server side in a
thread per connection), and all stay open and idle. Prints RSS and the Go
runtime's heap at three points: the nodes up, the connections open, and
after the traffic. What each bridge's copy buffers cost shows in the last
one (docs/performance.md, Memory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import threading
import time

from tailnet.testing import LocalTailnet, debug_counter

PAYLOAD = 256 << 10
MIB = 1 << 20


def _reading(label: str) -> str:
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
    heap = debug_counter("go_heap_bytes") / MIB
    total = debug_counter("go_total_bytes") / MIB
    return f"{label:<40} RSS {rss:7.1f} MiB   Go heap {heap:7.1f} MiB   Go mapped {total:7.1f} MiB"


def _answer(conn: socket.socket) -> None:
    got = 0
    while got < PAYLOAD:
        got += len(conn.recv(1 << 20))
    conn.sendall(b"y" * PAYLOAD)


def main() -> None:
    """Measure (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_connections", description=__doc__)
    parser.add_argument("--pairs", type=int, default=500, help="connections (default 500)")
    pairs = parser.parse_args().pairs
    # Every directory of this process (the local tailnet's, the nodes'
    # state) in one, removed before the os._exit below skips all cleanup.
    scratch = tempfile.mkdtemp(prefix="tailnet-memconn-")
    tempfile.tempdir = scratch
    try:
        _measure(pairs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(pairs: int, scratch: str) -> None:
    with LocalTailnet() as net:
        os.environ.update(net.environ)
        a = net.server("mem-a").up(timeout=60)
        b = net.server("mem-b").up(timeout=60)
        listener = b.listen("tcp", ":80")
        accepted: list[socket.socket] = []

        def accept() -> None:
            for _ in range(pairs):
                conn, _ = listener.accept()
                accepted.append(conn)
                threading.Thread(target=_answer, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        print(_reading("two nodes up"), flush=True)
        conns = [a.dial("tcp", f"{b.ips[0]}:80", timeout=60) for _ in range(pairs)]
        acceptor.join(60)
        time.sleep(1)
        print(_reading(f"{pairs} connections open, idle"), flush=True)
        for conn in conns:
            conn.sendall(b"x" * PAYLOAD)
            got = 0
            while got < PAYLOAD:
                got += len(conn.recv(1 << 20))
        time.sleep(1)
        print(_reading("idle again after 256 KiB each way"), flush=True)
        # No close: after many connections tailscale's netstack can stall
        # in Close (docs/architecture.md); nothing is measured after this.
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)


if __name__ == "__main__":
    main()
