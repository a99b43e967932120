"""A tailnet program run as a separate process by the tests.

It uses only the documented API and reads its tailnet from the environment
(TS_CONTROL_URL, as set by LocalTailnet.environ). It prints one line when it
reaches the point the test waits for.

    python node_process.py echo HOSTNAME STATE_DIR   serve one echo connection on :7,
                                                     exit after a line on stdin
    python node_process.py block-up HOSTNAME STATE_DIR   Ctrl-C target: up() forever
    python node_process.py block-accept HOSTNAME STATE_DIR
    python node_process.py block-dial HOSTNAME STATE_DIR ADDRESS
"""

from __future__ import annotations

import socket
import sys

import tailnet


def main(mode: str, hostname: str, state_dir: str, *rest: str) -> None:
    server = tailnet.Server(hostname, state_dir=state_dir, ephemeral=True)
    try:
        if mode == "block-up":
            print("blocking", flush=True)
            server.up()
        server.up(timeout=60)
        if mode == "echo":
            with server.listen("tcp", ":7") as listener:
                print("ready", flush=True)
                conn, _ = listener.accept()
                with conn:
                    while data := conn.recv(1 << 20):
                        conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                # Closing the server aborts its connections and drops data not
                # yet delivered (as Go's tsnet.Server.Close does): stay up
                # until the test says it has everything.
                sys.stdin.readline()
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
