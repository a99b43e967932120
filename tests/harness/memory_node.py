"""A node with ``store="mem"`` that dials and listens, run as its own process by the tests.

    python memory_node.py HOSTNAME PEER_ADDRESS

The test runs it with HOME, the XDG directories, TMPDIR and the working
directory in an empty tree, and checks afterwards that the tree is still
empty. It joins the tailnet from the environment (TS_CONTROL_URL), sends
"ping" to the echo at PEER_ADDRESS ("ip:port") and prints the reply, then
listens on :8, prints "ready IP" and echoes one connection, then exits.
"""

from __future__ import annotations

import socket
import sys

import tailnet


def recv_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def main(hostname: str, peer: str) -> None:
    with tailnet.Server(hostname, store="mem", ephemeral=True) as server:
        assert server.state_dir is None
        with server.dial("tcp", peer, timeout=60) as conn:
            conn.sendall(b"ping")
            conn.shutdown(socket.SHUT_WR)
            print(f"reply {recv_all(conn).decode()}", flush=True)
        with server.listen("tcp", ":8") as listener:
            print(f"ready {server.ips[0]}", flush=True)
            conn, _ = listener.accept()
            with conn:
                conn.sendall(recv_all(conn))


if __name__ == "__main__":
    main(*sys.argv[1:])
