"""Forwarding the Go side's log lines to the ``tailnet`` logger.

All servers of a process share one pipe; the library writes lines
"<server handle> <level> <text>" into it and one daemon thread turns them
into :mod:`logging` records on the ``tailnet`` logger (user-facing messages
at INFO, login URLs at WARNING, the node's verbose log at DEBUG). With the
``qr`` extra installed and stderr a terminal, a login URL's record also
draws it as a QR code, once per URL. Lines are forwarded only while that
logger is enabled for the level when the server is created, so an
unconfigured program pays nothing.
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

#: tsnet's message asking for an interactive login ("... or go to: URL").
_LOGIN_URL_HINT = "go to: http"


class LogPump:
    """The process-wide pipe and the thread that reads it."""

    _instance: LogPump | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._read_fd, self.write_fd = os.pipe()
        self._names: dict[int, str] = {}
        self._qr_urls: dict[int, str] = {}  # per server: the login URL last drawn as a QR code
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
        self._qr_urls.pop(handle, None)

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
        key = int(handle) if handle.isdigit() else -1
        name = self._names.get(key, "?")
        severity = _LEVELS.get(level, logging.INFO)
        if _LOGIN_URL_HINT in text:  # the user must act: visible without logging configured
            severity = logging.WARNING
            text += self._login_qr(key, text.rsplit(" ", 1)[-1])
        LOGGER.log(severity, "[%s] %s", name, text)

    def _login_qr(self, key: int, url: str) -> str:
        """A QR code of a new login URL for a terminal, if the qr extra is installed."""
        if self._qr_urls.get(key) == url or not sys.stderr.isatty():
            return ""
        try:
            qr = LoginRequired(url).qr()
        except ImportError:
            return ""
        self._qr_urls[key] = url
        return "\n" + qr
