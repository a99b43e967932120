"""A node that keeps its state in SQLite, not in a state directory.

    python examples/sqlite_store.py [DATABASE]

``tailnet.Server(store=...)`` takes any object with ``read(key)`` and
``write(key, value)`` (the :class:`tailnet.StateStore` protocol). This one
keeps every node's state in one SQLite database (stdlib ``sqlite3``), one
row per key, under the node's name: a database that already lives on a
volume, or a file you back up, can hold your nodes' identities too. The
node has no directory and writes no other file.

The script starts a node twice with the same database: the second start
finds its identity and comes back with the same tailnet IP. DATABASE
defaults to a temporary file. The same class shape fits a Kubernetes
Secret or Redis (docs/state.md).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
from pathlib import Path

from tailnet.testing import LocalTailnet


class SQLiteStore:
    """A :class:`tailnet.StateStore` in one SQLite table, keys scoped by ``namespace``."""

    #: Seconds the node waits for each call (optional; the default is 10).
    timeout = 10.0

    def __init__(self, path: str | Path, namespace: str) -> None:
        # The node calls read and write on its own thread, one call at a
        # time; check_same_thread=False lets that thread use this connection.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()  # in case two nodes share this object
        self._namespace = namespace
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tailnet_state (namespace TEXT, key TEXT, value BLOB, "
            "PRIMARY KEY (namespace, key))"
        )

    def read(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM tailnet_state WHERE namespace = ? AND key = ?", (self._namespace, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write(self, key: str, value: bytes) -> None:
        with self._lock:  # autocommit: durable when execute returns
            self._db.execute(
                "INSERT OR REPLACE INTO tailnet_state (namespace, key, value) VALUES (?, ?, ?)",
                (self._namespace, key, value),
            )

    def close(self) -> None:
        self._db.close()


def start(net: LocalTailnet, database: Path) -> tuple[str, str]:
    """Bring the node "ledger" up with its state in ``database``; its IP and node ID."""
    store = SQLiteStore(database, namespace="ledger")
    try:
        # Not ephemeral: the node is meant to come back as itself.
        with net.server("ledger", store=store, ephemeral=False) as node:
            return str(node.ips[0]), node.status().self_node.id
    finally:
        store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, LocalTailnet() as net:
        database = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch) / "state.db"
        first_ip, first_id = start(net, database)
        print(f"first start:  {first_ip}")
        second_ip, second_id = start(net, database)
        print(f"second start: {second_ip}")
        print("same identity" if (first_ip, first_id) == (second_ip, second_id) else "new identity")


if __name__ == "__main__":
    main()
