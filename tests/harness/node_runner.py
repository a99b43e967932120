"""A tailnet node in its own process, driven over stdin/stdout (tests/harness/multihost.py).

    python node_runner.py HOSTNAME CONTROL_URL STATE_DIR

The auth key comes from $TS_AUTHKEY (never argv). It prints {"started": true},
then answers each JSON command line with one JSON line; a failed command
answers {"error": "<exception class>", "message": ..., "bases": [...]}. It
exits at end of input, closing the server.

    {"cmd": "up", "timeout": 60}              -> {"ips": [...]}
    {"cmd": "echo", "port": 7}                echo every connection on :port
    {"cmd": "echo_stats"}                     -> {"open": n, "served": n, "failed": n, "errors": [...]}
    {"cmd": "transfer", "id": "t", "address": "host:7", "size": N, "rate": B/s}
        start sending N random bytes to an echo service (paced at rate bytes
        per second if given), half-close, read the echo back; in a thread
    {"cmd": "progress", "id": "t"}            -> {"sent": n, "received": n, "done": bool}
    {"cmd": "wait", "id": "t", "timeout": s}  -> the transfer's result:
        {"intact": bool, "sent": n, "received": n, "failure": "..." or null}
    {"cmd": "echo_once", "address": ..., "size": N, "timeout": s}   transfer + wait
    {"cmd": "ping", "peer": "beta", "timeout": s}   -> {"path": "direct"|"derp"|..., "latency": s}
    {"cmd": "status"}   -> {"peers": {name: {"path": ..., "online": bool}}}
    {"cmd": "report"}   -> {"fds", "goroutines", "handles", "ops", "rss_kb", "threads"}
    {"cmd": "close"}    close the server (the process stays, for "report")
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

import tailnet
from tailnet.testing import debug_counter

CHUNK = 64 << 10


class Transfer:
    """Send random bytes to an echo service and check that they come back intact."""

    def __init__(self, server: tailnet.Server, address: str, size: int, rate: float, timeout: float) -> None:
        self.size, self.rate = size, rate
        self.sent = self.received = 0
        self.failure: str | None = None
        self._sent_hash, self._received_hash = hashlib.sha256(), hashlib.sha256()
        self._conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._run, args=(server, address, timeout), daemon=True)
        self.thread.start()

    def _run(self, server: tailnet.Server, address: str, timeout: float) -> None:
        try:
            with server.dial("tcp", address, timeout=timeout) as conn:
                self._conn = conn
                writer = threading.Thread(target=self._send, args=(conn,), daemon=True)
                writer.start()
                while chunk := conn.recv(1 << 20):
                    self._received_hash.update(chunk)
                    self.received += len(chunk)
                writer.join()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.failure = self.failure or f"{type(exc).__name__}: {exc}"
        if self.received < self.size and self.failure is None:
            self.failure = f"EOF after {self.received} of {self.size} bytes"

    def _send(self, conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            while self.sent < self.size:
                chunk = os.urandom(min(CHUNK, self.size - self.sent))
                self._sent_hash.update(chunk)
                conn.sendall(chunk)
                self.sent += len(chunk)
                if self.rate:  # pace: sleep until this many bytes are due
                    time.sleep(max(0.0, started + self.sent / self.rate - time.monotonic()))
            conn.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.failure = self.failure or f"{type(exc).__name__} while sending: {exc}"

    def result(self) -> dict[str, Any]:
        intact = (
            self.failure is None
            and self.received == self.sent == self.size
            and self._received_hash.digest() == self._sent_hash.digest()
        )
        return {"intact": intact, "sent": self.sent, "received": self.received, "failure": self.failure}


class EchoService:
    """Echo every connection on a port; count them."""

    def __init__(self, listener: tailnet.Listener) -> None:
        self.open = self.served = 0
        self.errors: list[str] = []  # why each failed connection ended
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: tailnet.Listener) -> None:
        for conn, _peer in listener:
            with self._lock:
                self.open += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        error = None
        try:
            with conn:
                while data := conn.recv(1 << 20):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.open -= 1
            self.served += error is None
            if error is not None:
                self.errors.append(error)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "open": self.open,
                "served": self.served,
                "failed": len(self.errors),
                "errors": self.errors,
            }


def report() -> dict[str, Any]:
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "goroutines": debug_counter("goroutines"),
        "handles": debug_counter("handles"),
        "ops": debug_counter("ops"),
        "rss_kb": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
    }


class Runner:
    def __init__(self, hostname: str, control_url: str, state_dir: str) -> None:
        self.server = tailnet.Server(hostname, control_url=control_url, state_dir=state_dir, ephemeral=True)
        self.transfers: dict[str, Transfer] = {}
        self.echoes: dict[int, EchoService] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "up":
            self.server.up(timeout=request.get("timeout"))
            return {"ips": [str(ip) for ip in self.server.ips]}
        if cmd == "echo":
            self.echoes[request["port"]] = EchoService(self.server.listen("tcp", f":{request['port']}"))
            return {"ok": True}
        if cmd == "echo_stats":
            return self.echoes[request.get("port", 7)].stats()
        if cmd in ("transfer", "echo_once"):
            transfer = Transfer(
                self.server,
                request["address"],
                request["size"],
                request.get("rate", 0),
                request.get("dial_timeout", 60),
            )
            if cmd == "echo_once":
                return self._wait(transfer, request.get("timeout", 120))
            self.transfers[request["id"]] = transfer
            return {"ok": True}
        if cmd == "progress":
            t = self.transfers[request["id"]]
            return {"sent": t.sent, "received": t.received, "done": not t.thread.is_alive()}
        if cmd == "wait":
            return self._wait(self.transfers.pop(request["id"]), request.get("timeout", 120))
        if cmd == "ping":
            result = self.server.ping(request["peer"], timeout=request.get("timeout", 10))
            return {"path": result.path.value, "latency": result.latency, "endpoint": result.endpoint}
        if cmd == "status":
            peers = self.server.status(timeout=request.get("timeout", 10)).peers
            return {"peers": {p.name: {"path": p.path.value, "online": p.online} for p in peers}}
        if cmd == "report":
            return report()
        if cmd == "close":
            self.server.close()
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    @staticmethod
    def _wait(transfer: Transfer, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        transfer.thread.join(timeout)
        if transfer.thread.is_alive():
            message = f"transfer still running after {timeout} s"
            return {"error": "Hang", "message": message, **transfer.result()}
        return {**transfer.result(), "seconds": round(time.monotonic() - started, 2)}


def describe(exc: BaseException) -> dict[str, Any]:
    bases = [c.__name__ for c in type(exc).__mro__]
    return {"error": type(exc).__name__, "message": str(exc), "bases": bases}


def main(hostname: str, control_url: str, state_dir: str) -> None:
    # The node's log goes to stderr, which the harness keeps in a file per node.
    verbose = bool(os.environ.get("NODE_RUNNER_VERBOSE"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr)
    try:
        runner = Runner(hostname, control_url, state_dir)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        print(json.dumps(describe(exc)), flush=True)
        return
    print(json.dumps({"started": True}), flush=True)
    try:
        for line in sys.stdin:
            try:
                reply = runner.handle(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - reported to the test
                reply = describe(exc)
            print(json.dumps(reply), flush=True)
    finally:
        runner.server.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
