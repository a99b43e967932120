"""psycopg reaches a PostgreSQL server on the tailnet through ``ts.forward``.

    python examples/forward_postgres.py DB-NODE:5432 [SOCKET-DIR]

Database drivers dial ``host:port`` themselves, so they cannot use a
tailnet connection directly. ``ts.forward(target)`` opens a local
endpoint and relays each connection made to it to the tailnet service:
psycopg (or redis-py, gRPC, an SSH client...) connects to the local end.
Given SOCKET-DIR the endpoint is a unix socket in it (mode 0600: other
local users cannot connect, as they could to a port on 127.0.0.1), named
as libpq looks for it (``.s.PGSQL.<port>``); without, a free port on
127.0.0.1.

The node joins the tailnet named by ``TS_CONTROL_URL`` and ``TS_AUTHKEY``
(``tailnet local-tailnet`` prints them) as an ephemeral node that keeps
its state in memory. libpq reads the user, database and password from
``PGUSER``, ``PGDATABASE``, ``PGPASSWORD`` as usual. Expose a PostgreSQL
server on the tailnet with ``tailnet proxy 5432 -n DB-NODE``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

import tailnet


def main(target: str, socket_dir: str | None) -> None:
    port = target.rpartition(":")[2]
    local = str(Path(socket_dir, f".s.PGSQL.{port}")) if socket_dir else 0
    with tailnet.Server(hostname="report-writer", ephemeral=True, store="mem") as ts:
        ts.up(timeout=60)
        with ts.forward(target, local) as fwd:
            # libpq takes a unix socket's directory, and finds the socket by the port.
            host, local_port = fwd.address if isinstance(fwd.address, tuple) else (socket_dir, int(port))
            with psycopg.connect(host=host, port=local_port, connect_timeout=60) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS reports (id serial PRIMARY KEY, body text)")
                conn.execute("INSERT INTO reports (body) VALUES (%s)", (f"hello from pid {os.getpid()}",))
                conn.commit()
                count = conn.execute("SELECT count(*) FROM reports").fetchone()
            print(f"report-writer: {count[0] if count else 0} reports in {target} via {fwd.address}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
