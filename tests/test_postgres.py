"""A real PostgreSQL through the tailnet: psycopg reaches it with ts.forward().

One node (``tailnet proxy``, a separate process) exposes a PostgreSQL
server started by the test; another forwards a local endpoint to it, and
psycopg creates a table, writes rows and reads them back through the
forwarder, over TCP and over a unix socket, sync and async.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from harness.helpers import eventually, node_name_base
from harness.postgres import DATABASE, USER, PostgresServer, binaries

import tailnet
from tailnet.testing import LocalTailnet

psycopg = pytest.importorskip("psycopg")

ROWS = [(i, f"row {i}", os.urandom(64).hex()) for i in range(500)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    bindir = binaries()
    if isinstance(bindir, str):
        pytest.skip(bindir)
    server = PostgresServer(bindir)
    yield server
    server.close()


@pytest.fixture(scope="module")
def db_node(
    local_tailnet: LocalTailnet, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``tailnet proxy`` exposing PostgreSQL as db-node:5432; yields "db-node:5432"."""
    env = {**os.environ, **local_tailnet.environ, "XDG_DATA_HOME": str(tmp_path_factory.mktemp("proxy"))}
    command = [sys.executable, "-m", "tailnet", "proxy", str(postgres.port), "--port", "5432"]
    proc = subprocess.Popen(
        [*command, "-n", "db-node", "--ephemeral"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while not re.match(r"^forwarding tailnet db-node:5432 ", line := lines.get(timeout=120)):
            assert line, f"tailnet proxy exited: {''.join(output)}"
        yield "db-node:5432"
    finally:
        proc.terminate()
        proc.wait(60)
        reader.join(60)
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture
def client(
    tailnet_node: Callable[..., tailnet.Server], db_node: str, request: pytest.FixtureRequest
) -> tailnet.Server:
    """A node that knows db-node (its name resolves)."""
    node = tailnet_node(node_name_base(request))
    eventually(lambda: node.status().peer("db-node") is not None, timeout=60)
    return node


def exercise(conninfo: dict[str, object], table: str) -> None:
    """Create a table, write the rows, read them back, with psycopg's usual calls."""
    with psycopg.connect(**conninfo, user=USER, dbname=DATABASE, connect_timeout=60) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, name text, blob text)")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", ROWS)
        conn.commit()
    # A second connection: what the first wrote was delivered and committed.
    with psycopg.connect(**conninfo, user=USER, dbname=DATABASE, connect_timeout=60) as conn:
        assert conn.execute(f"SELECT id, name, blob FROM {table} ORDER BY id").fetchall() == ROWS


def test_psycopg_over_a_forwarded_tcp_port(client: tailnet.Server, db_node: str) -> None:
    with client.forward(db_node) as fwd:
        address = fwd.address
        assert isinstance(address, tuple)
        exercise({"host": address[0], "port": address[1]}, "over_tcp")


def test_psycopg_over_a_forwarded_unix_socket(client: tailnet.Server, db_node: str, tmp_path: Path) -> None:
    # libpq takes a directory and finds the socket there by its port.
    with client.forward(db_node, tmp_path / ".s.PGSQL.5432"):
        exercise({"host": str(tmp_path), "port": 5432}, "over_unix")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # psycopg's async API is asyncio's
async def test_psycopg_async_over_an_async_forwarder(
    local_tailnet: LocalTailnet, db_node: str, request: pytest.FixtureRequest, anyio_backend: str
) -> None:
    async with local_tailnet.async_server(node_name_base(request)) as node:
        while (await node.status()).peer("db-node") is None:
            await anyio.sleep(0.05)
        async with node.forward(db_node) as fwd:
            address = fwd.address
            assert isinstance(address, tuple)
            conninfo = {"host": address[0], "port": address[1], "user": USER, "dbname": DATABASE}
            async with await psycopg.AsyncConnection.connect(**conninfo) as conn:
                await conn.execute("CREATE TABLE over_async (id integer PRIMARY KEY, name text, blob text)")
                async with conn.cursor() as cur:
                    await cur.executemany("INSERT INTO over_async VALUES (%s, %s, %s)", ROWS)
                await conn.commit()
                cur = await conn.execute("SELECT id, name, blob FROM over_async ORDER BY id")
                assert await cur.fetchall() == ROWS


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_the_forward_postgres_example(
    local_tailnet: LocalTailnet, db_node: str, postgres: PostgresServer, tmp_path: Path, over: str
) -> None:
    """examples/forward_postgres.py, run as a user would: its own process, env from the tailnet."""
    example = Path(__file__).parent.parent / "examples" / "forward_postgres.py"
    env = {**os.environ, **local_tailnet.environ, "PGUSER": USER, "PGDATABASE": DATABASE}
    extra = [str(tmp_path)] if over == "unix" else []
    done = subprocess.run(
        [sys.executable, str(example), db_node, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"report-writer: [1-9]\d* reports in db-node:5432 via ", done.stdout), done.stdout
