"""Helpers for the UDP tests (sync and async)."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable

import tailnet
from harness.helpers import eventually
from tailnet import MAX_DATAGRAM, MAX_DATAGRAM6

#: Sizes around every edge: tiny, the tailnet MTU (1280 less 28 or 48 bytes
#: of headers), fragmentation, and the maxima.
EDGE_SIZES = [0, 1, 2, 3, 7, 8, 100, 512, 1024, 1199, 1200, 1201, 1231, 1232, 1233, 1251, 1252, 1253]
SIZES_V4 = [*EDGE_SIZES, 1280, 1400, 1500, 2048, 4096, 8192, 9000, 16384, 32768, 65000, 65506, MAX_DATAGRAM]
SIZES_V6 = [s for s in EDGE_SIZES if s <= MAX_DATAGRAM6]

Address = tuple[str, int]


def payloads(sizes: list[int]) -> list[bytes]:
    """Random datagrams of the given sizes (distinct sizes, so each is recognisable)."""
    return [os.urandom(size) for size in sizes]


def exchange(
    send: Callable[[bytes], object],
    receive: Callable[[float], tuple[bytes, Address]],
    datagrams: list[bytes],
    source: Address,
    *,
    rounds: int = 8,
    wait: float = 5.0,
) -> None:
    """Send every datagram (all queued at once) to an echo and collect the echoes.

    UDP may lose a datagram, so what did not come back within ``wait``
    seconds is sent again, up to ``rounds`` times. Every echo must be
    exactly one datagram that was sent (a merged or split one would not
    be) and come from ``source``.
    """
    sent = set(datagrams)
    pending = set(datagrams)
    for _ in range(rounds):
        for datagram in sorted(pending, key=len):
            send(datagram)
        deadline = time.monotonic() + wait
        while pending and (remaining := deadline - time.monotonic()) > 0:
            try:
                data, sender = receive(remaining)
            except TimeoutError:
                break
            assert sender == source
            assert data in sent, f"a {len(data)}-byte datagram that was never sent: boundaries lost"
            pending.discard(data)
        if not pending:
            return
    raise AssertionError(f"{len(pending)} datagrams never echoed, sizes {sorted(map(len, pending))}")


class UDPEcho:
    """Echoes every datagram a DatagramSocket receives, in a thread; records senders."""

    def __init__(self, sock: tailnet.DatagramSocket) -> None:
        self.sock = sock
        self.senders: set[Address] = set()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
                self.senders.add(sender)
                self.sock.sendto(data, sender)
        except tailnet.ClosedError as exc:
            self.error = exc

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)
        assert not self.thread.is_alive()


#: System calls a thread waiting for a datagram sits in: poll/ppoll, recvfrom/recvmsg.
_WAITING_SYSCALLS = {"x86_64": {7, 271, 45, 47}, "aarch64": {73, 207, 212}}


def wait_until_blocked(thread: threading.Thread) -> None:
    """Wait until thread sits in a system call that waits for data (Linux /proc)."""
    waiting = _WAITING_SYSCALLS.get(platform.machine())
    path = f"/proc/self/task/{thread.native_id}/syscall"
    if waiting is None or not os.path.exists(path):
        return

    def blocked() -> bool:
        with open(path) as f:
            number = f.read().split(" ", 1)[0]
        return number.isdigit() and int(number) in waiting

    eventually(blocked)
