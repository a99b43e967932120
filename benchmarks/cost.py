"""CPU time per operation of the sync API: ``python -m benchmarks.cost`` (inside scripts/in-netns).

For comparing two builds of tailnet on a noisy machine: run it in each
checkout in turn, several times, and compare medians. Process CPU time per
operation moves less with the machine's load than wall time does. Two
nodes in one process on a local tailnet: 20,000 one-byte round trips
through an echo, then 512 MiB in 256 KiB writes to a sink. Prints one line.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Callable

import tailnet
from tailnet.testing import LocalTailnet

ROUND_TRIPS = 20_000
BULK_WRITES = 2048
CHUNK = 256 << 10


def cpu_seconds() -> float:
    """User and system CPU time of the whole process (every thread, Go's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(listener: tailnet.Listener, handle: Callable[[socket.socket], None]) -> None:
    """Run handle(conn) in a thread for each connection."""
    for conn, _ in listener:
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def echo(conn: socket.socket) -> None:
    """Send back everything received."""
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def sink(conn: socket.socket) -> None:
    """Read to EOF, then answer one byte."""
    with conn:
        while conn.recv(1 << 20):
            pass
        conn.sendall(b"k")


def main() -> None:
    """Measure and print one line."""
    with LocalTailnet() as net, net.server("cost-a") as a, net.server("cost-b") as b:
        for port, handle in ((7, echo), (9, sink)):
            threading.Thread(target=serve, args=(b.listen("tcp", f":{port}"), handle), daemon=True).start()
        while a.status().peer("cost-b") is None:
            time.sleep(0.05)
        host = str(b.ips[0])
        with a.dial("tcp", (host, 7), timeout=30) as conn:
            for _ in range(2000):  # settle the path
                conn.sendall(b"x")
                conn.recv(1)
            cpu, wall = cpu_seconds(), time.perf_counter()
            for _ in range(ROUND_TRIPS):
                conn.sendall(b"x")
                conn.recv(1)
            rt_cpu = (cpu_seconds() - cpu) / ROUND_TRIPS * 1e6
            rt_wall = (time.perf_counter() - wall) / ROUND_TRIPS * 1e6
        megabytes = BULK_WRITES * CHUNK / 1e6
        chunk = b"z" * CHUNK
        with a.dial("tcp", (host, 9), timeout=30) as conn:
            cpu, wall = cpu_seconds(), time.perf_counter()
            for _ in range(BULK_WRITES):
                conn.sendall(chunk)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)
            bulk_cpu = (cpu_seconds() - cpu) / megabytes * 1e3
            bulk_rate = megabytes / (time.perf_counter() - wall)
    print(
        f"round trip: {rt_cpu:.1f} us CPU, {rt_wall:.1f} us wall; "
        f"bulk: {bulk_cpu:.2f} ms CPU per MB, {bulk_rate:.1f} MB/s",
        flush=True,
    )


if __name__ == "__main__":
    main()
