"""``tailnet demo``: two nodes on a built-in local tailnet exchange a message.

Everything runs on this machine: :class:`~tailnet.testing.LocalTailnet`
starts a control server, DERP relay and STUN server on 127.0.0.1.
"""

from __future__ import annotations

import threading

from .._server_sync import Listener
from ..testing import LocalTailnet

__all__ = ["demo"]


def _echo_once(listener: Listener) -> None:
    conn, _peer = listener.accept()
    with conn:
        conn.sendall(b"echo from beta: " + conn.recv(1024))


def demo() -> None:
    """Start a local tailnet, join two nodes, send a message from one to the other by name."""
    with LocalTailnet() as net:
        print(f"local tailnet control server at {net.control_url}")
        with net.server("alpha") as alpha, net.server("beta") as beta:
            print(f"alpha is up with tailnet IPs {', '.join(map(str, alpha.ips))}")
            print(f"beta  is up with tailnet IPs {', '.join(map(str, beta.ips))}")
            with beta.listen("tcp", ":7000") as listener:
                server = threading.Thread(target=_echo_once, args=(listener,))
                server.start()
                with alpha.dial("tcp", "beta:7000", timeout=30) as conn:
                    conn.sendall(b"hello over the tailnet")
                    reply = conn.recv(1024)
                    peer_ip = conn.getpeername()[0]
                server.join()
            print(f"alpha -> beta:7000 ({peer_ip}) replied: {reply.decode()!r}")
