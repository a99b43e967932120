"""Small helpers many tests share: echoes, waits, descriptor and counter checks."""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import tailnet
from tailnet._binding.calls import debug_dump_goroutines
from tailnet.testing import LocalTailnet, debug_counter


def open_fds() -> set[int]:
    """The descriptors open in this process."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def describe_fds(fds: set[int]) -> str:
    """What each descriptor is, for a failure message."""
    described = []
    for fd in sorted(fds):
        try:
            described.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            described.append(f"{fd} -> (closed)")
    return ", ".join(described)


def settle_fds(baseline: set[int], timeout: float = 30.0) -> None:
    """Wait until no descriptor beyond ``baseline`` is open; name the extras if some stay."""
    deadline = time.monotonic() + timeout
    while extra := open_fds() - baseline:
        if time.monotonic() > deadline:
            raise AssertionError(f"descriptors still open after {timeout} s: {describe_fds(extra)}")
        time.sleep(0.01)


def go_counter(name: str) -> int:
    """One of the library's debug counters (goroutines, ops, handles, ...)."""
    return debug_counter(name)


def settle_goroutines(at_most: int, timeout: float = 120.0) -> None:
    """Wait until at most ``at_most`` goroutines run; if some stay, say what they are.

    The timeout guards against a leak, not against a slow machine: a closing
    node's goroutines can take seconds to end under load. On failure the
    message counts the remaining goroutines by where they were created.
    """
    eventually(
        lambda: go_counter("goroutines") <= at_most,
        timeout,
        explain=lambda: f"{go_counter('goroutines')} goroutines, not <= {at_most}:\n{goroutine_summary()}",
    )


def goroutine_summary(most: int = 12) -> str:
    """The library's goroutines counted by where each was created (from a stack dump)."""
    fd, path = tempfile.mkstemp(prefix="goroutines-", suffix=".txt")
    os.close(fd)
    try:
        debug_dump_goroutines(path)
        text = Path(path).read_text()
    finally:
        os.unlink(path)
    creators = collections.Counter(
        line.strip().split(" in goroutine")[0] for line in text.splitlines() if line.startswith("created by ")
    )
    return "\n".join(f"{n:5} {creator}" for creator, n in creators.most_common(most))


#: How long a condition may take to settle: a hang guard, far above any slowness.
SETTLE_GUARD = 120.0


def eventually(
    check: Callable[[], bool], timeout: float = SETTLE_GUARD, explain: Callable[[], str] | None = None
) -> None:
    """Poll a condition that settles asynchronously (goroutines ending).

    The default timeout only guards against a hang: on a loaded machine a
    cancelled operation's goroutine (in a tsnet ``Start``, say) can take
    seconds to end. ``explain``, if given, adds to the failure message
    what the state was.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            detail = f":\n{explain()}" if explain else ""
            raise AssertionError(f"condition not reached in {timeout} s{detail}")
        time.sleep(0.01)


#: In a child's environment: on SIGABRT it writes each thread's Python stack to stderr.
DUMP_ON_ABORT = {"PYTHONFAULTHANDLER": "1"}

#: How long a child may take to exit once told to: a hang guard, far above any slowness.
EXIT_GUARD = 120.0

#: A tailnet program the tests run as a separate process (its modes: its docstring).
NODE = str(Path(__file__).parent / "node_process.py")


def run_node_process(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """Run node_process.py MODE HOSTNAME [ARGS] with env (state in tmp_path/HOSTNAME)."""
    return subprocess.Popen(
        [sys.executable, NODE, *args[:2], str(tmp_path / args[1]), *args[2:]],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spawn_node_process(
    local_tailnet: LocalTailnet, tmp_path: Path, *args: str, **env_overrides: str
) -> subprocess.Popen[str]:
    """:func:`run_node_process` on the local tailnet."""
    env = {**os.environ, **local_tailnet.environ, **DUMP_ON_ABORT, **env_overrides}
    return run_node_process(env, tmp_path, *args)


def exit_output(proc: subprocess.Popen[str], guard: float = EXIT_GUARD) -> tuple[str, str]:
    """Wait for ``proc`` to exit and return its stdout and stderr.

    If it is still running after ``guard`` seconds, it hangs: abort it and
    fail with where its threads were (it must have run with DUMP_ON_ABORT).
    """
    try:
        return proc.communicate(timeout=guard)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=guard)
        pytest.fail(f"still running after {guard:.0f} s; stdout {out!r}; its threads:\n{err[-6000:]}")


def read_until_error(sock: socket.socket) -> tuple[bytes, OSError]:
    """Everything sock receives, and the error that ends it (end-of-file fails the test)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except OSError as exc:
            return b"".join(chunks), exc
        assert chunk, f"end-of-file instead of an error, after {len(b''.join(chunks))} bytes"
        chunks.append(chunk)


def recv_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def send_and_close_write(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data``, then shut down the sending direction (EOF)."""
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)


def assert_echoes_intact(conn: socket.socket, size: int) -> None:
    """Send size random bytes through an echo, half-close, check every byte back."""
    data = os.urandom(size)
    writer = threading.Thread(target=send_and_close_write, args=(conn, data))
    writer.start()
    received = recv_all(conn)
    writer.join()
    assert len(received) == len(data)
    assert sha256(received) == sha256(data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def echo_until_eof(conn: socket.socket) -> None:
    """Echo everything conn receives, then half-close it and close it."""
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


class EchoServer:
    """Accepts on a listener and echoes each connection until EOF, in a thread."""

    def __init__(self, listener: tailnet.Listener) -> None:
        self.listener = listener
        self.peers: list[tuple[str, int]] = []
        self.locals: list[tuple[str, int]] = []
        self._echoes: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for conn, peer in self.listener:
            self.peers.append(peer)
            self.locals.append(conn.getsockname())
            echo = threading.Thread(target=echo_until_eof, args=(conn,), daemon=True)
            echo.start()
            self._echoes.append(echo)

    def close(self) -> None:
        """Stop accepting, then wait until every echo has seen its client's EOF.

        A client that closed has sent its FIN, but on a busy machine the
        echo thread may not have read it yet; closing the node under it
        then (as a test's teardown does next) is an abort by the server,
        which its ``recv`` rightly reports as ``ConnectionReset``.
        """
        self.listener.close()
        deadline = time.monotonic() + EXIT_GUARD  # a hang guard, not a speed limit
        self.thread.join(EXIT_GUARD)
        for echo in self._echoes:
            echo.join(max(0.0, deadline - time.monotonic()))
        open_echoes = sum(echo.is_alive() for echo in self._echoes)
        assert not open_echoes, f"{open_echoes} echoed connections not closed by their clients"
        self.thread.join(10)


class LoopbackEcho:
    """A plain TCP echo on 127.0.0.1, in a thread: the local service a proxy or tailscaled forwards to."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.peers: list[tuple[str, int]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:  # closed
                return
            self.peers.append(peer)
            threading.Thread(target=echo_until_eof, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() (close alone would not)
        self.sock.close()
        self.thread.join(10)


def knows(node: tailnet.Server, *peers: tailnet.Server) -> None:
    """Wait until node's network map lists peers (maps propagate asynchronously).

    Until then a peer's name does not resolve and its address is unknown.
    """
    eventually(lambda: all(node.status().peer(p.hostname) is not None for p in peers), timeout=60)


async def aknows(node: tailnet.AsyncServer, peer: tailnet.AsyncServer) -> None:
    """:func:`knows` for the async API."""
    with anyio.fail_after(30):
        while (await node.status()).peer(peer.hostname) is None:
            await anyio.sleep(0.05)


def vanished_peer(net: LocalTailnet, dialer: tailnet.Server, hostname: str) -> str:
    """The tailnet IP of a node that joined and left: in dialer's map, answering nothing.

    A dial to it waits (its SYNs go unanswered) until its timeout, a cancel
    or a close. (An address no node has fails at once: test_names.py.)
    """
    gone = net.server(hostname, ephemeral=False).up(timeout=60)
    knows(dialer, gone)
    ip = str(gone.ips[0])
    gone.close()
    return ip


async def avanished_peer(net: LocalTailnet, dialer: tailnet.AsyncServer, hostname: str) -> str:
    """:func:`vanished_peer` for the async API."""
    gone = await net.async_server(hostname, ephemeral=False).up(timeout=60)
    await aknows(dialer, gone)
    ip = str(gone.ips[0])
    await gone.aclose()
    return ip


def node_name_base(request: pytest.FixtureRequest) -> str:
    """A hostname prefix unique to the requesting test (its name, cut to fit)."""
    return "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
