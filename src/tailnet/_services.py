"""The blocking core of tsnet's services: TLS and Funnel listeners, cert domains, loopback.

Like :mod:`tailnet._core` (whose :class:`~tailnet._core.Node` these
functions act on), nothing here waits: ``listen_tls`` and ``listen_funnel``
return an :class:`~tailnet._core.Operation` that each facade waits for in
its own way, then turns into a listener with :func:`listener_from_result`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import ClassVar

from ._addresses import Address, format_address, parse_hostport
from ._core import ListenerCore, Node, Operation, _call, _check_network, c_string, timeout_ms
from ._exceptions import InternalError
from ._library import ffi, lib

__all__ = [
    "Loopback",
    "begin_listen_funnel",
    "begin_listen_tls",
    "cert_domains",
    "listener_from_result",
    "loopback",
]

_DOMAINS_SIZE = 4096
_ADDR_SIZE = 64
#: Each loopback credential is 32 hex digits; the library refuses smaller buffers.
_CRED_SIZE = 64


@dataclass(frozen=True, repr=False)
class Loopback:
    """The node's loopback server (Go's ``tsnet.Server.Loopback``).

    One port on 127.0.0.1 serves both a SOCKS5 proxy onto the tailnet
    (username :attr:`proxy_username`, password :attr:`proxy_credential`)
    and the LocalAPI (HTTP basic auth with password
    :attr:`local_api_credential` plus the header ``Sec-Tailscale:
    localapi``; see :meth:`tailnet.Server.local_api`). Anyone on this
    machine holding a credential can use it, and the LocalAPI credential
    grants full control of the node: keep both secret. Neither appears in
    this object's repr.
    """

    address: Address
    """``("127.0.0.1", port)``."""
    proxy_credential: str
    """The SOCKS5 password."""
    local_api_credential: str
    """The LocalAPI basic-auth password."""

    proxy_username: ClassVar[str] = "tsnet"
    """The SOCKS5 username (fixed by tsnet)."""

    @property
    def proxy_url(self) -> str:
        """``socks5://tsnet:<credential>@127.0.0.1:<port>``, for SOCKS-capable clients. Secret."""
        host, port = self.address
        return f"socks5://{self.proxy_username}:{self.proxy_credential}@{host}:{port}"

    def __repr__(self) -> str:
        host, port = self.address
        return (
            f"Loopback(address=({host!r}, {port}), proxy_credential=<hidden>, local_api_credential=<hidden>)"
        )


def begin_listen_tls(
    node: Node, network: str, address: str | tuple[str, int], timeout: float | None
) -> Operation:
    """Start a TLS listener (up, checks, certificate fetch); see ``tailnet_listen_tls``."""
    network = _check_network(network)
    addr = format_address(address)
    return node._begin(
        lib().tailnet_listen_tls, c_string("network", network), c_string("address", addr), timeout_ms(timeout)
    )


def begin_listen_funnel(
    node: Node, network: str, address: str | tuple[str, int], funnel_only: bool, timeout: float | None
) -> Operation:
    """Start a Funnel listener; see ``tailnet_listen_funnel``."""
    network = _check_network(network)
    addr = format_address(address)
    if not isinstance(funnel_only, bool):
        raise TypeError(f"funnel_only must be a bool, not {type(funnel_only).__name__}")
    return node._begin(
        lib().tailnet_listen_funnel,
        c_string("network", network),
        c_string("address", addr),
        int(funnel_only),
        timeout_ms(timeout),
    )


def listener_from_result(node: Node, fd: int, text: str) -> ListenerCore:
    """The listener a listen operation produced: its descriptor and "HANDLE BOUND" text."""
    handle, _, bound = text.partition(" ")
    if not handle.isdigit() or not bound:
        socket.close(fd)
        raise InternalError(f"unexpected listener description {text!r}")
    return ListenerCore(node, int(handle), fd, bound)


def cert_domains(node: Node) -> tuple[str, ...]:
    """The domains the node can get TLS certificates for (empty before it runs)."""
    node._check_open()
    buf = ffi.new("char[]", _DOMAINS_SIZE)
    _call(lib().tailnet_cert_domains, node._handle, buf, _DOMAINS_SIZE)
    return tuple(d for d in ffi.string(buf).decode().split(",") if d)


def loopback(node: Node) -> Loopback:
    """Start the node's loopback server (once) and describe it."""
    node._check_open()
    addr = ffi.new("char[]", _ADDR_SIZE)
    proxy, api = ffi.new("char[]", _CRED_SIZE), ffi.new("char[]", _CRED_SIZE)
    _call(
        lib().tailnet_loopback,
        node._handle,
        addr,
        _ADDR_SIZE,
        proxy,
        _CRED_SIZE,
        api,
        _CRED_SIZE,
    )
    return Loopback(
        parse_hostport(ffi.string(addr).decode()), ffi.string(proxy).decode(), ffi.string(api).decode()
    )
