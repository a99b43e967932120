"""The forwarder's local side, for both facades: parsing ``local``, and the listening socket.

:meth:`tailnet.Server.forward` and :meth:`tailnet.AsyncServer.forward`
open a local endpoint (a TCP port, by default on 127.0.0.1, or a unix
socket) and relay each connection to a tailnet service;
:mod:`tailnet._forward_async` holds the relay. Nothing here waits.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import stat
from pathlib import Path

from ._addresses import Address
from ._binding import formats
from ._exceptions import AddressInUseError, ConfigurationError
from ._node import Node

__all__ = ["DEFAULT_HOST", "LocalEndpoint", "LocalSpec", "open_endpoint", "open_forward", "target_address"]

#: Where a forwarder listens when ``local`` names only a port.
DEFAULT_HOST = "127.0.0.1"
#: What ``local`` may be: a port, "port", "host:port", (host, port), or a unix socket path.
LocalSpec = int | str | tuple[str, int] | os.PathLike[str]
#: How many local connections may wait to be accepted.
BACKLOG = 128


def target_address(target: object) -> str:
    """The tailnet service to forward to, checked: "host:port" or (host, port)."""
    if not isinstance(target, str | tuple):
        raise TypeError(f"target must be 'host:port' or (host, port), not {type(target).__name__}")
    text = formats.format_address(target)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigurationError(f"target must be 'host:port' with a port in 1-65535, not {text!r}")
    return text


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= 65535:
        raise ConfigurationError(f"port {value} is out of range 0-65535")
    return value


def _tcp(host: str, port: int) -> tuple[str, int]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigurationError(
                f"the local host must be an IP address or 'localhost', not {host!r}"
            ) from None
        host = DEFAULT_HOST
    return host, port


def parse_local(local: object) -> tuple[str, int] | Path:
    """``local`` as (host, port) for TCP or a path for a unix socket.

    A port (int or digits) listens on 127.0.0.1; "host:port" ("[::1]:5432"
    for IPv6) or (host, port) on that address; a path (a string containing
    "/", or an :class:`os.PathLike`) on a unix socket.
    """
    if isinstance(local, os.PathLike):
        return Path(local)
    if isinstance(local, tuple):
        if len(local) != 2 or not isinstance(local[0], str):
            raise TypeError(f"local must be (host: str, port: int), not {local!r}")
        return _tcp(local[0], _port(local[1], "the local port"))
    if isinstance(local, str):
        if "/" in local:
            return Path(local)
        if local.isdigit():
            return DEFAULT_HOST, _port(int(local), "the local port")
        host, sep, port = local.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigurationError(f"local must be a port, 'host:port' or a socket path, not {local!r}")
        return _tcp(host.strip("[]") if host.startswith("[") else host, _port(int(port), "the local port"))
    return DEFAULT_HOST, _port(local, "local")


class LocalEndpoint:
    """The forwarder's listening socket (non-blocking), and its unix socket file if any."""

    def __init__(self, sock: socket.socket, path: Path | None) -> None:
        self.sock = sock
        self.path = path
        self._inode = os.stat(path).st_ino if path is not None else None

    @property
    def address(self) -> Address | str:
        """(host, port) for TCP, with the chosen port; the socket's path for a unix socket."""
        if self.path is not None:
            return str(self.path)
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop listening and remove the socket file (if it is still ours). Idempotent."""
        self.sock.close()
        if self.path is not None and self._inode is not None:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()
            self._inode = None


def _listen_unix(path: Path) -> socket.socket:
    if path.exists() or path.is_symlink():
        raise AddressInUseError(f"{path} exists; remove it first or choose another path")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Owner only, before listen(): until then nobody can connect.
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return sock


def _listen_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def open_endpoint(local: object) -> LocalEndpoint:
    """Parse ``local`` and listen there; a taken port or path raises :class:`~tailnet.AddressInUseError`."""
    where = parse_local(local)
    try:
        if isinstance(where, Path):
            sock, path = _listen_unix(where), where
        else:
            sock, path = _listen_tcp(*where), None
    except AddressInUseError:
        raise
    except OSError as exc:
        shown = where if isinstance(where, Path) else formats.format_address(where)
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError(f"{shown} is in use") from None
        raise ConfigurationError(f"cannot listen on {shown}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return LocalEndpoint(sock, path)


def open_forward(
    node: Node, target: object, local: object, timeout: float | None
) -> tuple[str, LocalEndpoint]:
    """Check a forward's arguments and open its local endpoint: (the target, the endpoint).

    The endpoint listens at once, so a taken port raises here; it is
    closed again if any other argument is bad or the node is closed.
    """
    endpoint = open_endpoint(local)
    try:
        address = target_address(target)
        formats.timeout_ms(timeout)
        node.check_open()
    except BaseException:
        endpoint.close()
        raise
    return address, endpoint
