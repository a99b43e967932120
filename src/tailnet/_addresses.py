"""The types of tailnet addresses: ``(ip, port)`` pairs and IPs."""

from __future__ import annotations

import ipaddress

__all__ = ["Address", "IPAddress"]

#: An (ip, port) pair, as the socket module uses for AF_INET.
Address = tuple[str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
