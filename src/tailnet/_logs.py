"""Forwarding the Go side's log lines to the ``tailnet`` logger.

All servers of a process share one pipe; the library writes lines
"<server handle> <level> <text>" into it and one daemon thread turns them
into :mod:`logging` records on the ``tailnet`` logger (user-facing messages
at INFO, the node's verbose log at DEBUG, only if that level is enabled
when the server is created). A login URL is one WARNING record, logged as
soon as the node knows the URL and again only if it changes; the record
carries the URL as its ``login_url`` attribute, and with the ``qr`` extra
installed and stderr a terminal its message also draws it as a QR code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

from ._info import LoginRequired

__all__ = ["LOGGER", "LogPump"]

LOGGER = logging.getLogger("tailnet")

_LEVELS = {"I": logging.INFO, "D": logging.DEBUG}

#: The level of a line that is a login URL (the library writes each new one once).
_LOGIN = "L"


class LogPump:
    """The process-wide pipe and the thread that reads it."""

    _instance: LogPump | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._read_fd, self.write_fd = os.pipe()
        self._names: dict[int, str] = {}
        thread = threading.Thread(target=self._run, name="tailnet-log", daemon=True)
        thread.start()

    @classmethod
    def get(cls) -> LogPump:
        """The pump, started on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = LogPump()
            return cls._instance

    def register(self, handle: int, hostname: str) -> None:
        """Name the records of a server handle after its hostname."""
        self._names[handle] = hostname

    def unregister(self, handle: int) -> None:
        """Forget a server once it has closed (its lines are flushed by then)."""
        self._names.pop(handle, None)

    def _run(self) -> None:
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    # A failing user filter or handler must not stop the pump
                    # (logging already reports handler errors on stderr).
                    with contextlib.suppress(Exception):
                        self._emit(line.decode("utf-8", "replace"))

    def _emit(self, line: str) -> None:
        handle, _, rest = line.partition(" ")
        level, _, text = rest.partition(" ")
        name = self._names.get(int(handle) if handle.isdigit() else -1, "?")
        if level == _LOGIN:  # the user must act: visible without logging configured
            LOGGER.warning(
                "[%s] to join the tailnet, log in at: %s%s",
                name,
                text,
                _qr_for_terminal(text),
                extra={"login_url": text},
            )
            return
        LOGGER.log(_LEVELS.get(level, logging.INFO), "[%s] %s", name, text)


def _qr_for_terminal(url: str) -> str:
    """A QR code of ``url`` on lines of its own if stderr is a terminal and the qr extra installed."""
    if not sys.stderr.isatty():
        return ""
    try:
        return "\n" + LoginRequired(url).qr()
    except ImportError:
        return ""
