"""A tailnet program run as a separate process by the tests.

It uses only the documented API and reads its tailnet from the environment
(TS_CONTROL_URL, as set by LocalTailnet.environ). It prints one line when it
reaches the point the test waits for.

    python node_process.py echo HOSTNAME STATE_DIR   serve one echo connection on :7, then exit
    python node_process.py block-up HOSTNAME STATE_DIR   Ctrl-C target: up() forever
    python node_process.py block-up-signalled-elsewhere HOSTNAME STATE_DIR [on_event]
        up() forever, and SIGINT to another thread once the main thread waits in poll
    python node_process.py block-accept HOSTNAME STATE_DIR
    python node_process.py block-dial HOSTNAME STATE_DIR ADDRESS
    python node_process.py send HOSTNAME STATE_DIR ADDRESS TEXT   print what an echo at ADDRESS returns
    python node_process.py try-up HOSTNAME STATE_DIR SECONDS      print "up" or the exception's class name
    python node_process.py flood HOSTNAME STATE_DIR ADDRESS STREAMS BYTES
        dial STREAMS connections, send BYTES on each at once, half-close, read a byte back; print "sent"
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import sys
import threading
import time
from pathlib import Path

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


#: The numbers of the system calls select.poll makes, by machine.
POLL_CALLS = {"x86_64": {"7", "271"}, "aarch64": {"73"}}.get(platform.machine(), set())


def signal_elsewhere_once_waiting(main_thread: int, function: str) -> None:
    """Once the main thread sleeps in poll inside ``function``, run the SIGINT handler on this thread.

    Python notes the signal, but no poll returns for it: the case of a
    signal that arrives just before the main thread's poll begins.
    """
    status = Path(f"/proc/{os.getpid()}/task/{main_thread}/syscall")
    frames = sys._current_frames  # the one way to see where another thread is
    ident = threading.main_thread().ident
    assert ident is not None  # it runs
    while not (status.read_text().split()[0] in POLL_CALLS and frames()[ident].f_code.co_name == function):
        time.sleep(0.001)
    print("signalled while it waited", flush=True)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)


def flood(server: tailnet.Server, address: str, streams: int, size: int) -> None:
    """Send size bytes on each of streams connections at once, as many uploads to one service."""
    conns = [server.dial("tcp", address, timeout=60) for _ in range(streams)]
    errors: list[BaseException] = []

    def send(conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(600)  # a hang guard
                conn.sendall(bytes(size))
                conn.shutdown(socket.SHUT_WR)
                if conn.recv(1) != b"\x01":
                    raise ConnectionError("no acknowledgement")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main(mode: str, hostname: str, state_dir: str, *rest: str) -> None:
    server = tailnet.Server(hostname, state_dir=state_dir, ephemeral=True)
    try:
        if mode == "block-up":
            print("blocking", flush=True)
            server.up()
        if mode == "block-up-signalled-elsewhere":
            print("blocking", flush=True)
            waits_in = "_relay" if rest == ("on_event",) else "_wait"  # where up() polls
            args = (threading.get_native_id(), waits_in)
            threading.Thread(target=signal_elsewhere_once_waiting, args=args, daemon=True).start()
            if rest == ("on_event",):  # up() then waits for events, in a loop of its own
                server.up(on_event=lambda event: None)
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
        elif mode == "flood":
            flood(server, rest[0], int(rest[1]), int(rest[2]))
            print("sent", flush=True)
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
