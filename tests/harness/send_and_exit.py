"""A script that sends and exits, as a user's script does; run as its own process by the tests.

    python send_and_exit.py FLAVOR ROLE HOSTNAME STATE_DIR SIZE [ADDRESS] [--forget-close]
                            [--sendfile | --small-send-buffer | --makefile]

FLAVOR is ``sync``, ``asyncio`` or ``trio``. ROLE ``dial`` connects to
ADDRESS (a tailnet "ip:port", once the node's map lists a peer there);
``accept`` listens on :7, prints "ready" and takes one connection. Either
way it sends SIZE bytes of :func:`payload` (HOSTNAME seeds it), closes the
socket, closes the server (the end of its ``with`` block) and exits at
once. ``--forget-close`` (sync) never closes the server: interpreter exit
must. ``--sendfile`` (sync) sends with ``socket.sendfile`` from a file (the
kernel's splice: 64 KiB buffers), ``--small-send-buffer`` (sync) sets
``SO_SNDBUF`` to 32 KiB first: the two ways a writer used to be left
asleep by the bridge's held byte. ``--makefile`` (sync) writes through
``makefile("wb")`` in 1,000-byte writes and never closes or flushes
that file (the socket is closed unless ``--forget-close``): what the
file still buffers must arrive too, as it does over a kernel socket. The tailnet comes from the environment
(TS_CONTROL_URL).
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
import sys
import time

import anyio

import tailnet


def payload(hostname: str, size: int) -> bytes:
    """The bytes a sender named ``hostname`` sends (the receiver computes them too)."""
    return random.Random(hostname).randbytes(size)


def wait_for_peer_sync(server: tailnet.Server, address: str) -> None:
    """Until the map lists the peer at ``address``, packets to it go nowhere."""
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    deadline = time.monotonic() + 60
    while not any(ip in peer.ips for peer in server.status().peers) and time.monotonic() < deadline:
        time.sleep(0.05)


async def wait_for_peer(server: tailnet.AsyncServer, address: str) -> None:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    with anyio.fail_after(60):
        while not any(ip in peer.ips for peer in (await server.status()).peers):
            await anyio.sleep(0.05)


#: Files a --makefile sender leaves open.
_FORGOTTEN: list[object] = []


def send_sync(conn: socket.socket, data: bytes, state_dir: str, options: tuple[str, ...]) -> None:
    """Send data as the options say: sendall, sendfile, or sendall with a small send buffer."""
    if "--small-send-buffer" in options:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 << 10)
    if "--makefile" in options:
        # Never flushed nor closed, and kept referenced until exit: the
        # interpreter flushes it as it collects it, after atexit handlers.
        _FORGOTTEN.append(file := conn.makefile("wb"))
        for start in range(0, len(data), 1000):
            file.write(data[start : start + 1000])
        return
    if "--sendfile" not in options:
        conn.sendall(data)
        return
    path = os.path.join(state_dir, "payload")
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        sent = conn.sendfile(f)
    if sent != len(data):
        raise AssertionError(f"sendfile sent {sent} of {len(data)} bytes")


def run_sync(
    role: str, hostname: str, state_dir: str, data: bytes, address: str, options: tuple[str, ...]
) -> None:
    server = tailnet.Server(hostname, state_dir=state_dir, ephemeral=True).up(timeout=60)
    if role == "dial":
        wait_for_peer_sync(server, address)
        conn = server.dial("tcp", address, timeout=60)
    else:
        listener = server.listen("tcp", ":7")
        print("ready", flush=True)
        conn, _ = listener.accept(timeout=60)
    send_sync(conn, data, state_dir, options)
    conn.close()
    if "--forget-close" not in options:
        server.close()


async def run_async(role: str, hostname: str, state_dir: str, data: bytes, address: str) -> None:
    async with tailnet.AsyncServer(hostname, state_dir=state_dir, ephemeral=True) as server:
        if role == "dial":
            await wait_for_peer(server, address)
            stream = await server.dial("tcp", address, timeout=60)
        else:
            listener = await server.listen("tcp", ":7")
            print("ready", flush=True)
            stream = await listener.accept()
        await stream.send(data)
        await stream.aclose()


def main(flavor: str, role: str, hostname: str, state_dir: str, size: str, *rest: str) -> None:
    options = tuple(arg for arg in rest if arg.startswith("--"))
    address = next((arg for arg in rest if not arg.startswith("--")), "")
    data = payload(hostname, int(size))
    if flavor == "sync":
        run_sync(role, hostname, state_dir, data, address, options)
    else:
        anyio.run(run_async, role, hostname, state_dir, data, address, backend=flavor)


if __name__ == "__main__":
    main(*sys.argv[1:])
