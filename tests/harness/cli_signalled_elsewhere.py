"""The ``tailnet`` command line, sent SIGTERM on another thread once its event loop idles.

    python cli_signalled_elsewhere.py COMMAND [ARGS...]

Runs ``tailnet COMMAND ARGS...`` (``proxy`` or ``forward``) in this
process. Once the command has printed its "forwarding ..." line and its
main thread waits in ``epoll_wait`` inside the event loop's ``select``, a
thread of its own raises SIGTERM on itself: Python notes the signal (its C
handler runs on that thread), but the main thread's wait is not
interrupted. That is what happens when the kernel delivers the signal to
a Go thread, or to the main thread just before its wait begins; only an
event loop that wakes by itself (the command's does, every 0.1 s) gets to
raise it. The command must then exit 0, as after any SIGTERM.
"""

from __future__ import annotations

import io
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

from tailnet._cli import main

#: epoll_wait, epoll_pwait, epoll_pwait2 system call numbers.
EPOLL_CALLS = {"x86_64": {"232", "281", "441"}, "aarch64": {"22", "441"}}.get(platform.machine(), set())


class _Announcing(io.TextIOWrapper):
    """Standard output that sets an event once the command says it is forwarding."""

    forwarding = threading.Event()

    def write(self, text: str) -> int:
        if text.startswith("forwarding"):
            self.forwarding.set()
        return super().write(text)


def signal_elsewhere_once_idle(main_thread: int) -> None:
    """SIGTERM on this thread once the main thread idles in the event loop after "forwarding"."""
    _Announcing.forwarding.wait()
    status = Path(f"/proc/{os.getpid()}/task/{main_thread}/syscall")
    frames = sys._current_frames  # the one way to see where another thread is
    ident = threading.main_thread().ident
    assert ident is not None
    while not (status.read_text().split()[0] in EPOLL_CALLS and frames()[ident].f_code.co_name == "select"):
        time.sleep(0.001)
    print("signalled while it waited", file=sys.stderr, flush=True)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)


if __name__ == "__main__":
    sys.stdout = _Announcing(sys.stdout.buffer, encoding="utf-8", line_buffering=True)
    args = (threading.get_native_id(),)
    threading.Thread(target=signal_elsewhere_once_idle, args=args, daemon=True).start()
    sys.exit(main(sys.argv[1:]))
