"""What a node holds in memory that it does not need (figures: docs/performance.md#memory)."""

from __future__ import annotations

import sys

import pytest

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
