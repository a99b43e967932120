"""The server's datagram counter and its control protocol (as in go/cmd/tsnetbench).

A round: the client sends ``begin SIZE`` ("ok"), warms the path with 1-byte
datagrams (answered), sends its datagrams of SIZE bytes, then ``end SENT``;
the server answers ``RECEIVED SECONDS`` (first to last arrival) once SENT
have come or none has for ``UDP_QUIET`` seconds.
"""

from __future__ import annotations

import threading
import time

from ._spec import UDP_QUIET, now_ns

__all__ = ["UdpCounter"]


class UdpCounter:
    """Counts the datagrams of a round; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size = -1
        self._n = 0
        self._first = self._last = 0

    def arrived(self, size: int) -> None:
        """One datagram of size bytes arrived."""
        now = now_ns()
        with self._lock:
            if size == self._size:
                if self._n == 0:
                    self._first = now
                self._n += 1
                self._last = now

    def begin(self, size: int) -> str:
        """Start a round counting datagrams of size bytes."""
        with self._lock:
            self._size, self._n = size, 0
        return "ok\n"

    def settled(self, want: int, asked_ns: int) -> str | None:
        """The answer to ``end want`` once the round is over, else None."""
        with self._lock:
            n, first, last = self._n, self._first, self._last
        quiet_since = max(last, asked_ns) if n else asked_ns
        if n < want and now_ns() - quiet_since <= UDP_QUIET * 1e9:
            return None
        return f"{n} {(last - first) / 1e9 if n else 0.0:.9f}\n"

    def command(self, line: str) -> str:
        """Answer one control line, waiting (blocking) for the end of a round."""
        verb, number = parse(line)
        if verb == "begin":
            return self.begin(number)
        asked = now_ns()
        while (reply := self.settled(number, asked)) is None:
            time.sleep(0.01)
        return reply


def parse(line: str) -> tuple[str, int]:
    """``verb number`` of a control line; ValueError if it is not one."""
    verb, _, number = line.strip().partition(" ")
    if verb not in ("begin", "end"):
        raise ValueError(f"unknown control line {line!r}")
    return verb, int(number)
