"""Smoke test for an installed tailnet: two nodes on a local tailnet echo a message.

scripts/wheel_check.py runs it with each CPython, from a fresh venv holding
only the wheel and its dependencies, with no Go on PATH, inside
scripts/in-netns. It checks that it is testing the installed package (not a
source tree), then runs the sync echo and the async one (asyncio), and
prints one line. Any failure is an exception and a non-zero exit.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import threading
from pathlib import Path

import anyio

import tailnet
from tailnet.testing import LocalTailnet

MESSAGE = b"hello over the tailnet"


def check_installed() -> Path:
    """The package comes from site-packages, with its library, and Go is nowhere to be found."""
    package = Path(tailnet.__file__).resolve().parent
    if "site-packages" not in package.parts:
        raise SystemExit(f"tailnet was imported from {package}, not from an installed wheel")
    if shutil.which("go"):
        raise SystemExit(f"go is on PATH ({shutil.which('go')}): this check must run without Go")
    want = ["libtailnet.dylib" if sys.platform == "darwin" else "libtailnet.so"]
    libraries = sorted(p.name for p in package.glob("libtailnet.*"))
    if libraries != want:
        raise SystemExit(f"expected exactly {want} in {package}, found {libraries}")
    if not (package / "THIRD_PARTY_NOTICES.txt").is_file():
        raise SystemExit("THIRD_PARTY_NOTICES.txt is missing from the package")
    licenses = importlib.metadata.distribution("tailnet").files or []
    if not any(f.name == "LICENSE" and "licenses" in f.parts for f in licenses):
        raise SystemExit("the wheel's dist-info carries no LICENSE")
    plugins = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    if "tailnet.testing.pytest_plugin" not in plugins:
        raise SystemExit("the pytest plugin entry point is missing")
    return package


def sync_echo(net: LocalTailnet) -> None:
    """Alpha dials beta by MagicDNS name; beta echoes one message."""

    def serve(listener: tailnet.Listener) -> None:
        conn, _peer = listener.accept(timeout=60)
        with conn:
            conn.sendall(conn.recv(1024))

    with net.server("alpha") as alpha, net.server("beta") as beta, beta.listen("tcp", ":7000") as ln:
        server = threading.Thread(target=serve, args=(ln,))
        server.start()
        with alpha.dial("tcp", "beta:7000", timeout=60) as conn:
            conn.sendall(MESSAGE)
            reply = conn.recv(1024)
        server.join()
    if reply != MESSAGE:
        raise SystemExit(f"sync echo: sent {MESSAGE!r}, got {reply!r}")


async def async_echo(net: LocalTailnet) -> None:
    """The same over the async API."""
    async with (
        net.async_server("gamma") as gamma,
        net.async_server("delta") as delta,
        await delta.listen("tcp", ":7001") as ln,
        anyio.create_task_group() as tg,
    ):

        async def serve() -> None:
            async with await ln.accept() as stream:
                await stream.send(await stream.receive())

        tg.start_soon(serve)
        async with await gamma.dial("tcp", "delta:7001", timeout=60) as stream:
            await stream.send(MESSAGE)
            reply = await stream.receive()
    if reply != MESSAGE:
        raise SystemExit(f"async echo: sent {MESSAGE!r}, got {reply!r}")


def main() -> None:
    """Run the checks and print what passed."""
    package = check_installed()
    with LocalTailnet() as net:
        sync_echo(net)
        anyio.run(async_echo, net)
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"ok: CPython {version}, sync and async two-node echo, from {package}, no Go on PATH")


if __name__ == "__main__":
    main()
