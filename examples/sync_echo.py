"""A sync echo service and client: code written for sockets, on the tailnet.

    python examples/sync_echo.py

The service node accepts connections like a socket server (each
connection is a real ``socket.socket``); the client node dials it by its
MagicDNS name. Both run on a local tailnet in this process; on your own
tailnet, drop ``LocalTailnet`` and give each ``tailnet.Server`` an auth key.
"""

from __future__ import annotations

import socket
import threading

import tailnet
from tailnet.testing import LocalTailnet


def serve(listener: tailnet.Listener) -> None:
    for conn, (peer_ip, _port) in listener:  # until the listener closes
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        print(f"echo-service: echoed a connection from {peer_ip}")


def main() -> None:
    with LocalTailnet() as net, net.server("echo-service") as service, net.server("echo-client") as client:
        listener = service.listen("tcp", ":7")
        threading.Thread(target=serve, args=(listener,), daemon=True).start()

        with client.dial("tcp", "echo-service:7", timeout=30) as conn:
            conn.sendall(b"hello over the tailnet")
            conn.shutdown(socket.SHUT_WR)  # EOF: the service echoes, then closes
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        print(f"echo-client: {conn.getpeername()} replied {reply.decode()!r}")
        listener.close()


if __name__ == "__main__":
    main()
