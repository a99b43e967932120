"""A tailnet program run as a separate process by the tests.

It uses only the documented API and reads its tailnet from the environment
(TS_CONTROL_URL, as set by LocalTailnet.environ). It prints one line when it
reaches the point the test waits for.

    python node_process.py echo HOSTNAME STATE_DIR   serve one echo connection on :7, then exit
    python node_process.py block-up HOSTNAME STATE_DIR   Ctrl-C target: up() forever
    python node_process.py block-accept HOSTNAME STATE_DIR
    python node_process.py block-dial HOSTNAME STATE_DIR ADDRESS
    python node_process.py send HOSTNAME STATE_DIR ADDRESS TEXT   print what an echo at ADDRESS returns
    python node_process.py try-up HOSTNAME STATE_DIR SECONDS      print "up" or the exception's class name
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import tailnet


def try_up(server: tailnet.Server, timeout: float) -> str:
    try:
        server.up(timeout=timeout)
    except tailnet.TailnetError as exc:
        return type(exc).__name__
    return "up"


def has_relay(server: tailnet.Server, peer: str) -> bool:
    """Whether the map lists the peer with its DERP home (headscale sends that a little later)."""
    status = server.status().peer(peer)
    return status is not None and status.derp_region is not None


def main(mode: str, hostname: str, state_dir: str, *rest: str) -> None:
    server = tailnet.Server(hostname, state_dir=state_dir, ephemeral=True)
    try:
        if mode == "block-up":
            print("blocking", flush=True)
            server.up()
        if mode == "try-up":
            print(try_up(server, float(rest[0])), flush=True)
        else:
            server.up(timeout=60)
        if mode in ("echo", "echo-hold"):
            with server.listen("tcp", ":7") as listener:
                print("ready", flush=True)
                conn, _ = listener.accept()
                with conn:
                    while data := conn.recv(1 << 20):
                        conn.sendall(data)
                    if mode == "echo-hold":  # keep our side open after the peer's FIN, until killed
                        print("eof", flush=True)
                        threading.Event().wait()
                # Then exit at once: closing the server delivers what is
                # still on its way, as a process exit does for kernel sockets.
        elif mode == "send":
            peer = rest[0].rsplit(":", 1)[0]
            deadline = time.monotonic() + 30  # until the map lists the peer, its name does not resolve
            while not has_relay(server, peer) and time.monotonic() < deadline:
                time.sleep(0.05)
            with server.dial("tcp", rest[0], timeout=60) as conn:
                conn.sendall(rest[1].encode())
                conn.shutdown(socket.SHUT_WR)
                print(conn.makefile().read(), flush=True)
        elif mode == "block-accept":
            listener = server.listen("tcp", ":7")
            print("blocking", flush=True)
            listener.accept()
        elif mode == "block-dial":
            print("blocking", flush=True)
            server.dial("tcp", rest[0])
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        server.close()
        sys.exit(130)
    server.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
