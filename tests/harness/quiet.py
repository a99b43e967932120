"""The watch on packets that would leave the machine.

scripts/in-netns routes every non-local packet of the test namespace to the
veth end tn1, which has no address: a raw socket on tn1 sees whatever a
node tried to send off this machine (log upload, port mapping, DNS).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator

import pytest

ETH_P_ALL = 0x0003
in_test_netns = pytest.mark.skipif(
    "tn1" not in {name for _, name in socket.if_nameindex()}, reason="needs scripts/in-netns"
)
ICMPV6 = 58
HOP_BY_HOP = 0


@contextlib.contextmanager
def watch_tn1() -> Iterator[socket.socket]:
    """A non-blocking raw socket that receives every frame reaching tn1, and nothing else.

    It is opened for no protocol, then bound to tn1 for all of them: a packet
    socket opened for all protocols receives from every interface until it is
    bound, and on a loaded machine a loopback packet of the local tailnet
    once came in through that window.
    """
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind(("tn1", ETH_P_ALL))  # Python puts the protocol in network order
        sock.setblocking(False)
        yield sock


def hop_by_hop_next(frame: bytes) -> int | None:
    """The header after an IPv6 hop-by-hop header: ICMPv6 for the MLD reports the
    kernel sends in a new namespace's first seconds (link-local, like neighbour discovery)."""
    return frame[54] if frame[20] == HOP_BY_HOP and len(frame) > 54 else None


def describe_ipv4(frame: bytes) -> str:
    """One IPv4 frame: addresses, protocol, and for TCP and UDP the ports (TCP: flags)."""
    proto, header = frame[23], 14 + (frame[14] & 0x0F) * 4
    text = f"IPv4 to {ipaddress.IPv4Address(frame[30:34])} proto {proto}"
    text += f" from {ipaddress.IPv4Address(frame[26:30])}"
    if proto in (6, 17) and len(frame) >= header + 4:
        ports = (
            int.from_bytes(frame[header : header + 2], "big"),
            int.from_bytes(frame[header + 2 : header + 4], "big"),
        )
        text += f" ports {ports[0]} -> {ports[1]}"
        if proto == 6 and len(frame) > header + 13:
            text += f" flags {frame[header + 13]:#04x}"
    return text


def stray_packets(sock: socket.socket) -> list[str]:
    """Describe captured IP packets (IPv6 neighbour discovery and MLD aside)."""
    found: list[str] = []
    while True:
        try:
            frame = sock.recv(65535)
        except BlockingIOError:
            return found
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == 0x0800:
            found.append(describe_ipv4(frame))
        elif ethertype == 0x86DD and ICMPV6 not in (frame[20], hop_by_hop_next(frame)):
            found.append(f"IPv6 to {ipaddress.IPv6Address(frame[38:54])} next header {frame[20]}")
