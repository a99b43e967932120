"""Every exception tailnet raises, in one place.

All derive from :class:`TailnetError`, and each also derives from the
built-in exception a networking user would already catch (``TimeoutError``,
``ConnectionRefusedError``, ``ValueError``, ...), so existing ``except``
clauses keep working.
"""

from __future__ import annotations

import errno

__all__ = [
    "AddressInUseError",
    "AuthenticationError",
    "ClosedError",
    "ConfigurationError",
    "ConnectionRefused",
    "ForkedProcessError",
    "HostUnreachable",
    "InternalError",
    "LibraryNotFoundError",
    "PeerNotFound",
    "TailnetError",
    "TailnetTimeout",
]


class TailnetError(Exception):
    """Base class of every error raised by tailnet."""


class ConfigurationError(TailnetError, ValueError):
    """An argument is invalid: fix the call (the message says how)."""


class ClosedError(TailnetError, OSError):
    """The server or listener is closed, or was closed while waiting."""

    def __init__(self, message: str = "the tailnet server is closed") -> None:
        super().__init__(errno.EBADF, message)


class TailnetTimeout(TailnetError, TimeoutError):
    """The operation did not finish before its timeout."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ETIMEDOUT, message)


class ConnectionRefused(TailnetError, ConnectionRefusedError):
    """The peer refused (or reset) the connection: nothing listens there."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ECONNREFUSED, message)


class HostUnreachable(TailnetError, OSError):
    """The host is not a known tailnet name or address, or has no route."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EHOSTUNREACH, message)


class PeerNotFound(HostUnreachable, LookupError):
    """No node of the tailnet has this address or name (``whois``, ``ping``)."""


class AddressInUseError(TailnetError, OSError):
    """The port is already taken by another listener on this node."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EADDRINUSE, message)


class AuthenticationError(TailnetError, PermissionError):
    """The control server rejected this node's login (e.g. a bad auth key)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


class ForkedProcessError(TailnetError, RuntimeError):
    """tailnet was used in a child process after ``os.fork()``.

    The Go runtime inside tailnet does not survive ``fork()``. Create servers
    after forking, or use ``multiprocessing`` with the "spawn" or
    "forkserver" start method.
    """


class LibraryNotFoundError(TailnetError, ImportError):
    """The bundled shared library is missing (a broken or partial install)."""


class InternalError(TailnetError, RuntimeError):
    """A bug in tailnet; please report it with the message."""
