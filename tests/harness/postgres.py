"""A real PostgreSQL server for the forwarding tests, started by the test in a temporary directory.

Debian's ``postgresql`` package provides it. ``./dev test`` runs this
module with ``--install`` before entering the test namespace (which has no
network), so a fresh machine or CI gets the package the same way::

    python tests/harness/postgres.py --install

Tests call :func:`binaries`, which says why when PostgreSQL is missing
(then the test is skipped: the package could not be installed), and
:class:`PostgresServer` to run one. PostgreSQL refuses to run as root,
so under root the server runs as the ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

#: Where Debian installs each version's programs.
DEBIAN_BINDIRS = "/usr/lib/postgresql"
#: What the server says when it accepts connections.
READY = "database system is ready to accept connections"
#: The user and database tests connect as (trust authentication, on 127.0.0.1 inside the namespace).
USER = "tester"
DATABASE = "postgres"


def binaries() -> Path | str:
    """The directory holding ``initdb`` and ``postgres``, or why there is none."""
    versions = sorted(Path(DEBIAN_BINDIRS).glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).resolve().parent / "postgres").exists():
        return Path(initdb).resolve().parent
    return (
        "PostgreSQL is not installed and could not be installed "
        "(./dev test installs Debian's postgresql package with apt-get as root)"
    )


def install() -> int:
    """Install Debian's postgresql package if it is missing; returns an exit status."""
    if isinstance(binaries(), Path):
        return 0
    apt = shutil.which("apt-get")
    if apt is None:
        print("postgres.py: no apt-get here; install PostgreSQL to run the forwarding tests", file=sys.stderr)
        return 1
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "postgresql"]):
        result = subprocess.run([*prefix, apt, *command], env=environ, check=False)
        if result.returncode != 0:
            return result.returncode
    return 0 if isinstance(binaries(), Path) else 1


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root with neither a postgres nor a nobody user")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """``initdb`` into a temporary directory, then ``postgres`` on 127.0.0.1:port until :meth:`close`."""

    def __init__(self, bindir: Path, timeout: float = 120) -> None:
        self.port = _free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="tailnet-pg-"))
        user = _run_as()
        prefix: list[str] = []
        if user is not None:
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            prefix = ["runuser", "-u", user.pw_name, "--"]
        data = self._dir / "data"
        try:
            subprocess.run(
                [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._proc = subprocess.Popen(
            [
                *prefix,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        lines: queue.Queue[str] = queue.Queue()
        assert self._proc.stderr is not None
        threading.Thread(target=self._read, args=(self._proc.stderr, lines), daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=timeout)
                if not line:
                    raise RuntimeError(f"postgres exited: {''.join(self.log)}")
                if re.search(READY, line):
                    break
        except BaseException:
            self.close()
            raise

    def _read(self, stream: IO[str], lines: queue.Queue[str]) -> None:
        for line in stream:
            self.log.append(line)
            lines.put(line)
        lines.put("")

    def close(self) -> None:
        """Stop the server (a fast shutdown) and remove its directory."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(60)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["--install"]:
        sys.exit(f"usage: {sys.argv[0]} --install")
    sys.exit(install())
