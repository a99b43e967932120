"""Every exception tailnet raises, in one place.

All derive from :class:`TailnetError`, and each also derives from the
built-in exception a networking user would already catch (``TimeoutError``,
``ConnectionRefusedError``, ``ValueError``, ...), so existing ``except``
clauses keep working.
"""

from __future__ import annotations

import errno

from ._public import present

__all__ = [
    "AddressInUseError",
    "AuthenticationError",
    "CertificateUnavailableError",
    "ClosedError",
    "ConfigurationError",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionTimedOut",
    "DatagramTooLarge",
    "ForkedProcessError",
    "FunnelUnavailableError",
    "HostUnreachable",
    "InsecureStateDirWarning",
    "InternalError",
    "LibraryNotFoundError",
    "LocalAPIError",
    "MissingDependencyError",
    "PeerNotFound",
    "StateDirError",
    "StateStoreError",
    "TailnetError",
    "TailnetTimeout",
    "UnsupportedError",
]


class TailnetError(Exception):
    """Base class of every error raised by tailnet."""


class ConfigurationError(TailnetError, ValueError):
    """An argument is invalid: fix the call (the message says how)."""


class StateDirError(ConfigurationError, OSError):
    """The state directory cannot be used; the message names it and says what to do.

    It is missing and cannot be created, is a file, is on a read-only file
    system, or this user may not read and write it. :attr:`path` is the
    directory. Checked when the node starts (``start``, ``up``, or the
    first call that needs the node).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        """The state directory (None if the library did not say)."""


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


class ConnectionReset(TailnetError, ConnectionResetError):
    """An established connection was aborted on the tailnet side.

    Reset by the peer, or cut by this server's close (the linger time ran
    out, or the server closed while the connection was still open). Reads
    raise it once the data that arrived before the abort has been read;
    only the peer's own close reads as end-of-file.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ECONNRESET, message)


class ConnectionTimedOut(TailnetError, TimeoutError):
    """The peer of an established connection stopped answering.

    The connection's TCP keepalive probes or unacknowledged data went
    unanswered for the keepalive bound (about two minutes by default; see
    docs/reliability.md): the peer vanished, or the network to it is gone.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ETIMEDOUT, message)


class HostUnreachable(TailnetError, OSError):
    """The host is not a known tailnet name or address, or has no route."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EHOSTUNREACH, message)


class PeerNotFound(HostUnreachable, LookupError):
    """No node of the tailnet has this address or name (``whois``, ``ping``)."""


class AddressInUseError(TailnetError, OSError):
    """The port is already taken by another listener on this node (or, for a forwarder, locally)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EADDRINUSE, message)


class DatagramTooLarge(TailnetError, OSError):
    """A UDP datagram is longer than the tailnet can carry (the message gives the limit)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EMSGSIZE, message)


class AuthenticationError(TailnetError, PermissionError):
    """The control server rejected this node's login.

    The message says whether the auth key was the problem (wrong, expired,
    used up) or the server requires one and none was given.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


class CertificateUnavailableError(TailnetError, OSError):
    """This node cannot get a TLS certificate from its tailnet.

    Raised by ``listen_tls`` and ``listen_funnel`` when the control server
    offers the node no certificate domains (HTTPS certificates not enabled
    for the tailnet, or MagicDNS off) or when fetching the certificate
    (ACME) fails. See docs/tls-and-funnel.md.
    """


class FunnelUnavailableError(TailnetError, PermissionError):
    """The tailnet does not let this node use Funnel (on that port).

    Funnel needs HTTPS certificates, the ``funnel`` node attribute and the
    port among the node's allowed Funnel ports, all granted by the tailnet's
    policy. See docs/tls-and-funnel.md.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


class StateStoreError(TailnetError, OSError):
    """The node's :class:`~tailnet.StateStore` raised, or did not answer in time.

    Raised when the node starts (``up``, ``start``, a first ``dial`` or
    ``listen``) if its store fails to read or write its state. A failure
    while the node runs is logged (WARNING on the ``tailnet`` logger) and
    the node carries on. See docs/state.md.
    """


class LocalAPIError(TailnetError, OSError):
    """A LocalAPI request failed: :attr:`status` is the HTTP status (0: no response).

    A 401 or 403 means the credentials or the ``Sec-Tailscale`` header were
    refused; the message never contains the credential.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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


class MissingDependencyError(TailnetError, ImportError):
    """An optional integration needs a package that is not installed.

    The message names the extra to install, e.g. ``pip install 'tailnet[httpx]'``.
    """


class UnsupportedError(TailnetError, NotImplementedError):
    """The operation is not available in this setting (e.g. uvicorn under trio)."""


class InsecureStateDirWarning(UserWarning):
    """The state directory (or its state file) is open to, or owned by, other users.

    It holds the node's private keys: anyone who can read it can act as the
    node. tailnet creates it with mode 0700 and never changes the mode of a
    directory that already exists; fix it with ``chmod 700``. Another user
    owning it gets the warning too (that user can read or replace the keys). (A warning,
    not an error, so that a deliberate setup keeps working; turn it into an
    error with ``warnings.simplefilter("error", InsecureStateDirWarning)``.)
    """


for _name in __all__:
    present(globals()[_name])
