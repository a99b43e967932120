"""Tailnet addresses: parsing what the library reports, checking what users pass."""

from __future__ import annotations

import ipaddress

from ._exceptions import ConfigurationError

__all__ = ["Address", "IPAddress", "format_address", "parse_address_pair", "parse_ips"]

#: An (ip, port) pair, as the socket module uses for AF_INET.
Address = tuple[str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_hostport(text: str) -> Address:
    """'100.64.0.1:80' or '[fd7a::1]:80' -> (ip, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def parse_address_pair(text: str) -> tuple[Address, Address]:
    """The library's "REMOTE LOCAL" text -> (remote, local)."""
    remote, local = text.split(" ")
    return parse_hostport(remote), parse_hostport(local)


def parse_ips(text: str) -> tuple[IPAddress, ...]:
    """A comma-separated IP list -> ipaddress objects."""
    return tuple(ipaddress.ip_address(ip) for ip in text.split(",") if ip)


def format_address(address: str | tuple[str, int]) -> str:
    """A user's dial/listen address ("host:port" or (host, port)) as "host:port"."""
    if isinstance(address, str):
        return address
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"address must be (host: str, port: int), not {address!r}")
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port {port} is out of range 0-65535")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    raise TypeError(f"address must be 'host:port' or (host, port), not {type(address).__name__}")
