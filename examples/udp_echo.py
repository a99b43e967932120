"""UDP on a local tailnet: datagrams keep their boundaries.

    python examples/udp_echo.py

The service node answers each datagram on port 7 with the same datagram,
upper-cased; the client dials it by MagicDNS name (a connected UDP
socket) and sends three datagrams, each answered on its own. UDP may lose
a datagram, so the client asks again after a second without an answer.
"""

from __future__ import annotations

import threading

import tailnet
from tailnet.testing import LocalTailnet


def serve(sock: tailnet.DatagramSocket) -> None:
    try:
        while True:
            data, peer = sock.recvfrom(tailnet.MAX_DATAGRAM)
            sock.sendto(data.upper(), peer)
    except tailnet.ClosedError:
        pass


def ask(conn: tailnet.TailnetDatagramSocket, question: bytes) -> bytes:
    conn.settimeout(1)
    for _ in range(10):
        conn.send(question)
        try:
            return conn.recv(tailnet.MAX_DATAGRAM)
        except TimeoutError:
            continue
    raise TimeoutError(f"no answer to {question!r}")


def main() -> None:
    with LocalTailnet() as net, net.server("udp-service") as service, net.server("udp-client") as client:
        sock = service.listen_packet("udp", ":7")
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
        with sock, client.dial("udp", "udp-service:7", timeout=30) as conn:
            print(f"{conn.getsockname()} -> {conn.getpeername()}")
            for question in (b"one", b"two datagrams", b"three, never merged"):
                print(f"{question!r} -> {ask(conn, question)!r}")


if __name__ == "__main__":
    main()
