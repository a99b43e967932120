"""What a node holds in memory that it does not need (figures: docs/performance.md#memory)."""

from __future__ import annotations

import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

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


#: What test_a_node_that_receives_faster_than_it_reads_keeps_its_heap_bounded
#: sends, and the bound on the Go heap of the process (both nodes) meanwhile.
#: Measured on the 2-CPU machine: with wireguard-go's pools unbounded, as
#: upstream ships them, the peak was 1.0-1.3 GiB; bounded (build_libtailscale.py,
#: ``WG_POOL_FIX``), 380-400 MiB: the netstack's own queues and the copy buffers.
FLOOD_STREAMS = 100
FLOOD_BYTES = 256 << 20
FLOOD_HEAP_LIMIT = 700 << 20


def test_a_node_that_receives_faster_than_it_reads_keeps_its_heap_bounded(
    pair: tuple[tailnet.Server, tailnet.Server],
) -> None:
    """100 connections send 256 MiB at once, and threads read it: as 100 uploads to a service.

    wireguard-go holds each datagram waiting for the receiver's netstack in
    a 64 KiB buffer; with its pools unbounded, a receiver that falls behind
    grew its heap past a gigabyte here (docs/packaging.md, "The wireguard-go
    pool bound").
    """
    sender, receiver = pair
    each = FLOOD_BYTES // FLOOD_STREAMS
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, debug_counter("go_heap_bytes"))

    received: list[int] = []

    def sink(conn: socket.socket) -> None:
        with conn:
            buf = bytearray(256 << 10)
            total = 0
            while n := conn.recv_into(buf):
                total += n
            received.append(total)
            conn.sendall(b"\x01")

    def send(conn: socket.socket) -> None:
        with conn:
            conn.sendall(bytes(each))
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b"\x01"

    with receiver.listen("tcp", ":9300") as listener:
        conns = [sender.dial("tcp", f"{receiver.ips[0]}:9300", timeout=60) for _ in range(FLOOD_STREAMS)]
        sinks = [threading.Thread(target=sink, args=(listener.accept()[0],)) for _ in conns]
        watcher = threading.Thread(target=watch)
        watcher.start()
        with ThreadPoolExecutor(FLOOD_STREAMS) as pool:
            for thread in sinks:
                thread.start()
            for sent in [pool.submit(send, conn) for conn in conns]:
                sent.result(timeout=600)  # a hang guard
        for thread in sinks:
            thread.join(timeout=600)
        done.set()
        watcher.join()
    assert received == [each] * FLOOD_STREAMS
    assert peak < FLOOD_HEAP_LIMIT, f"Go heap peaked at {peak >> 20} MiB"
