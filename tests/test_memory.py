"""What a node holds in memory that it does not need (figures: docs/performance.md#memory)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from harness.helpers import spawn_node_process

import tailnet
from tailnet.testing import LocalTailnet, debug_counter


def _library_mappings() -> list[dict[str, int]]:
    """The library's mappings in /proc/self/smaps: offset, Size, Rss and Anonymous (kB)."""
    mappings: list[dict[str, int]] = []
    current: dict[str, int] | None = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if not head.endswith(":"):
                parts = line.split()
                current = {"offset": int(parts[2], 16)} if parts[-1].endswith("libtailnet.so") else None
                if current is not None:
                    mappings.append(current)
            elif current is not None and line.split()[1].isdigit():
                current[head[:-1]] = int(line.split()[1])
    return mappings


@pytest.mark.skipif(sys.platform != "linux", reason="the relocation table is unmapped on Linux only")
def test_the_relocation_table_is_unmapped_once_a_node_is_up(local_tailnet: LocalTailnet) -> None:
    with local_tailnet.server("relocs") as server:
        server.up(timeout=60)
        # Calls that look up library functions not used so far (cffi finds
        # each on first use): the loader's symbol tables, not the table.
        with (
            server.listen("tcp", ":7") as listener,
            server.dial("tcp", f"{server.ips[0]}:7", timeout=30) as conn,
        ):
            accepted, _ = listener.accept()
            conn.sendall(b"x")
            assert accepted.recv(1) == b"x"
            accepted.close()
        assert server.status(timeout=30).self_node.ips == server.ips
        dropped_kb = debug_counter("dropped_reloc_bytes") // 1024
        assert dropped_kb > 1024  # the table is 2.5 MiB; whole pages of it are dropped
        [first] = [m for m in _library_mappings() if m["offset"] == 0]
        # Nothing faulted the table back in: the segment holding it has
        # at most what is not the table resident, and none of it written.
        assert first["Rss"] <= first["Size"] - dropped_kb
        assert first["Anonymous"] == 0


#: The flood of test_a_node_that_receives_faster_than_it_reads_keeps_its_heap_bounded,
#: and how much the receiving process's Go heap may grow meanwhile. Measured on
#: the 2-CPU machine (three runs each): with wireguard-go's inbound elements
#: unbounded, as upstream ships them, it grew by 971-1,247 MiB; bounded
#: (build_libtailscale.py, ``WG_POOL_FIX``), by 163-175 MiB.
FLOOD_STREAMS = 100
FLOOD_BYTES = 256 << 20
FLOOD_GROWTH_LIMIT = 400 << 20


def test_a_node_that_receives_faster_than_it_reads_keeps_its_heap_bounded(
    local_tailnet: LocalTailnet, tailnet_node: Callable[..., tailnet.Server], tmp_path: Path
) -> None:
    """Another process sends 256 MiB on 100 connections at once, and threads here read it.

    wireguard-go holds each datagram waiting for the receiver's netstack in
    a 64 KiB buffer; with its pools unbounded, a receiver that falls behind
    grew its heap past a gigabyte (docs/packaging.md, "The wireguard-go
    pool bound").
    """
    receiver = tailnet_node("flood-rx")
    each = FLOOD_BYTES // FLOOD_STREAMS
    baseline = debug_counter("go_heap_bytes")
    peak = baseline
    done = threading.Event()
    received: list[int] = []

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, debug_counter("go_heap_bytes"))

    def sink(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(600)  # a hang guard
            buf = bytearray(256 << 10)
            total = 0
            while n := conn.recv_into(buf):
                total += n
            received.append(total)
            conn.sendall(b"\x01")

    with receiver.listen("tcp", ":9300") as listener:
        flood = ("flood", "flood-tx", f"{receiver.ips[0]}:9300", str(FLOOD_STREAMS), str(each))
        proc = spawn_node_process(local_tailnet, tmp_path, *flood)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sinks = []
        try:
            for _ in range(FLOOD_STREAMS):
                conn, _ = listener.accept(timeout=120)  # a hang guard
                thread = threading.Thread(target=sink, args=(conn,), daemon=True)
                thread.start()
                sinks.append(thread)
            out, err = proc.communicate(timeout=600)  # a hang guard
            for thread in sinks:
                thread.join(timeout=600)
        finally:
            done.set()
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert out == "sent\n"
    assert received == [each] * FLOOD_STREAMS
    assert peak > baseline, "the heap counter moved"
    assert peak - baseline < FLOOD_GROWTH_LIMIT, f"the Go heap grew by {(peak - baseline) >> 20} MiB"
