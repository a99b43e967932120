"""Two tailnet nodes in one process exchange a message over a local tailnet.

Runs entirely on this machine: tailnet.testing.LocalTailnet starts a
control server, DERP relay and STUN server on 127.0.0.1.

    python examples/demo.py
"""

from __future__ import annotations

import threading

import tailnet
from tailnet.testing import LocalTailnet


def echo_once(listener: tailnet.Listener) -> None:
    conn, _peer = listener.accept()
    with conn:
        data = conn.recv(1024)
        conn.sendall(b"echo from beta: " + data)


def main() -> None:
    with LocalTailnet() as net:
        print(f"local tailnet control server at {net.control_url}")
        with net.server("alpha") as alpha, net.server("beta") as beta:
            print(f"alpha is up with tailnet IPs {', '.join(map(str, alpha.ips))}")
            print(f"beta  is up with tailnet IPs {', '.join(map(str, beta.ips))}")

            listener = beta.listen("tcp", ":7000")
            server = threading.Thread(target=echo_once, args=(listener,))
            server.start()

            with alpha.dial("tcp", "beta:7000", timeout=30) as conn:
                conn.sendall(b"hello over the tailnet")
                reply = conn.recv(1024)
            print(f"alpha -> beta:7000 ({conn.getpeername()[0]}) replied: {reply.decode()!r}")
            server.join()
            listener.close()


if __name__ == "__main__":
    main()
