"""Close delivers: a script that sends, closes and exits loses nothing.

Each sender is a process of its own (``send_and_exit.py``) that does what
users' scripts do: send 4 MiB, close the socket, close the server (the end
of its ``with`` block) and exit at once, or forget to close the server and
let interpreter exit do it. The receiver, in this process, checks every
byte and that the stream ended with the sender's FIN (end-of-file), not an
error. Sync, asyncio and trio senders, dialing and accepting, 20 runs each.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness.helpers import eventually, sha256
from harness.send_and_exit import payload

import tailnet
from tailnet.testing import LocalTailnet

SENDER = str(Path(__file__).parent / "harness" / "send_and_exit.py")
SIZE = 4 << 20
RUNS = 20
#: Senders at once: each is a node joining the tailnet, which is most of a run's time.
PARALLEL = 4


@pytest.fixture
def receiver() -> Iterator[tuple[LocalTailnet, tailnet.Server]]:
    """A tailnet of its own (every sender joins it as a new node) and the receiving node."""
    with LocalTailnet() as net, net.server("receiver") as node:
        yield net, node


def read_to_eof(conn: socket.socket) -> bytes:
    """Everything until the peer's FIN; an abort raises instead."""
    chunks = []
    while chunk := conn.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


class Sender:
    """One send_and_exit.py process."""

    def __init__(self, net: LocalTailnet, tmp_path: Path, flavor: str, role: str, name: str, *args: str):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, SENDER, flavor, role, name, str(tmp_path / name), str(SIZE), *args],
            env={**os.environ, **net.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line == "ready\n", f"{self.name}: {line!r} {self.stderr()}"

    def exit_status(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, err

    def stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate()[1]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate()


def run_many(runs: int, one: Callable[[int], str | None]) -> None:
    """Run ``one(i)`` for each run, PARALLEL at a time; fail listing every run that returned a problem."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        problems = [p for p in pool.map(one, range(runs)) if p]
    assert problems == [], f"{len(problems)} of {runs} runs lost data:\n" + "\n".join(problems)


def check(name: str, received: bytes, status: tuple[int, str]) -> str | None:
    """A description of what went wrong in one run, or None."""
    expected = payload(name, SIZE)
    if received != expected:
        return f"{name}: received {len(received)} of {SIZE} bytes (sha256 {sha256(received)[:12]})"
    code, err = status
    if code != 0:
        return f"{name}: the sender exited {code}: {err[-2000:]}"
    return None


def run_dialing_senders(
    receiver: tuple[LocalTailnet, tailnet.Server],
    tmp_path: Path,
    flavor: str,
    prefix: str,
    first_port: int,
    runs: int,
    *options: str,
) -> None:
    """``runs`` senders that dial the receiving node, each on a port of its own; check every byte."""
    net, node = receiver
    lock = threading.Lock()

    def one(run: int) -> str | None:
        name = f"{prefix}-{run}"
        port = first_port + run
        with lock:  # listen is quick; keep the node's listener table simple
            listener = node.listen("tcp", f":{port}")
        sender = Sender(net, tmp_path, flavor, "dial", name, f"{node.ips[0]}:{port}", *options)
        try:
            with listener:
                conn, _ = listener.accept(timeout=120)
            with conn:
                received = read_to_eof(conn)
            return check(name, received, sender.exit_status())
        finally:
            sender.kill()

    run_many(runs, one)


@pytest.mark.parametrize("flavor", ["sync", "asyncio", "trio"])
def test_a_dialer_that_sends_and_exits_delivers_every_byte(
    flavor: str, receiver: tuple[LocalTailnet, tailnet.Server], tmp_path: Path
) -> None:
    run_dialing_senders(receiver, tmp_path, flavor, f"tx-{flavor}", 9000, RUNS)


@pytest.mark.parametrize("flavor", ["sync", "asyncio", "trio"])
def test_an_acceptor_that_sends_and_exits_delivers_every_byte(
    flavor: str, receiver: tuple[LocalTailnet, tailnet.Server], tmp_path: Path
) -> None:
    net, node = receiver

    def one(run: int) -> str | None:
        name = f"rx-{flavor}-{run}"
        sender = Sender(net, tmp_path, flavor, "accept", name)
        try:
            sender.wait_ready()
            eventually(lambda: node.status().peer(name) is not None, timeout=60)
            with node.dial("tcp", f"{name}:7", timeout=60) as conn:
                received = read_to_eof(conn)
            return check(name, received, sender.exit_status())
        finally:
            sender.kill()

    run_many(RUNS, one)


def test_a_script_that_forgets_to_close_its_server_delivers_every_byte(
    receiver: tuple[LocalTailnet, tailnet.Server], tmp_path: Path
) -> None:
    """Interpreter exit closes the servers left open, as gracefully as close() does."""
    run_dialing_senders(receiver, tmp_path, "sync", "forgetful", 9100, 5, "--forget-close")


@pytest.mark.parametrize("how", ["--sendfile", "--small-send-buffer"])
def test_a_writer_the_bridge_holds_back_is_woken_and_delivers(
    receiver: tuple[LocalTailnet, tailnet.Server], tmp_path: Path, how: str
) -> None:
    """sendfile and a small SO_SNDBUF used to leave the writer asleep for good.

    The bridge keeps one byte of the caller's data queued (so that an
    abort reads as a reset), which keeps that data's whole kernel buffer
    charged to the writer; Linux wakes a blocked writer only below a
    quarter of its send buffer, and sendfile's 64 KiB buffers, or any
    buffer with a 32 KiB SO_SNDBUF, stayed above it. The sender hung
    after 256 KiB (sendfile) or 64 KiB; its exit status then times out.
    """
    run_dialing_senders(receiver, tmp_path, "sync", f"held-{how.strip('-')}", 9200, 4, how)


def test_writes_after_close_drained_a_held_connection_fail() -> None:
    """Server.close() ends a connection the application still holds with a FIN
    after what it wrote; a write that comes after that FIN must fail, not
    vanish into a socketpair that nobody reads any more.

    The writer waits until the peer has read the end of the stream, so its
    write always comes after the FIN: before the fix it was accepted
    without an error (and lost) whenever the bridge had not been torn down
    yet, which is most of the time.
    """
    with LocalTailnet() as net, net.server("peer") as peer, peer.listen("tcp", ":7") as listener:
        for run in range(5):
            sender = net.server(f"holder-{run}")
            try:
                conn = sender.dial("tcp", f"{peer.ips[0]}:7", timeout=60)
                accepted, _ = listener.accept(timeout=60)
                conn.sendall(b"before close")
                closer = threading.Thread(target=sender.close)
                closer.start()
                with accepted:
                    assert read_to_eof(accepted) == b"before close"
                with conn, pytest.raises((ConnectionResetError, BrokenPipeError)):
                    conn.sendall(b"after the FIN" * 1000)
                closer.join(120)
                assert not closer.is_alive()
            finally:
                sender.close()


@pytest.mark.parametrize("close", ["with-block", "forgotten"])
def test_what_a_forgotten_makefile_writer_buffers_is_delivered(
    receiver: tuple[LocalTailnet, tailnet.Server], tmp_path: Path, close: str
) -> None:
    """A script writes through makefile("wb") and never flushes or closes the file.

    Over a kernel socket the file keeps the socket open and the interpreter
    flushes it as it collects it. The server's close (the end of its with
    block, or interpreter exit for a forgotten server) flushes such
    writers first: before, the last 8 KiB never left (992,000 of
    1,000,000 bytes, then a clean end-of-file).
    """
    extra = ("--makefile", "--forget-close") if close == "forgotten" else ("--makefile",)
    run_dialing_senders(receiver, tmp_path, "sync", f"makefile-{close}", 9300, 4, *extra)
