"""Nodes on the local tailnet send nothing off this machine: no log upload,
no port-mapping probes, no DNS. scripts/in-netns routes every non-local
packet to the veth end tn1, which this test watches with a raw socket."""

from __future__ import annotations

import ipaddress
import select
import socket

import pytest

from tailnet.testing import LocalTailnet

ETH_P_ALL = 0x0003
in_test_netns = pytest.mark.skipif(
    "tn1" not in {name for _, name in socket.if_nameindex()}, reason="needs scripts/in-netns"
)
ICMPV6 = 58
HOP_BY_HOP = 0


def hop_by_hop_next(frame: bytes) -> int | None:
    """The header after an IPv6 hop-by-hop header: ICMPv6 for the MLD reports the
    kernel sends in a new namespace's first seconds (link-local, like neighbour discovery)."""
    return frame[54] if frame[20] == HOP_BY_HOP and len(frame) > 54 else None


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
            found.append(f"IPv4 to {ipaddress.IPv4Address(frame[30:34])} proto {frame[23]}")
        elif ethertype == 0x86DD and ICMPV6 not in (frame[20], hop_by_hop_next(frame)):
            found.append(f"IPv6 to {ipaddress.IPv6Address(frame[38:54])} next header {frame[20]}")


@in_test_netns
def test_nothing_leaves_the_machine(local_tailnet: LocalTailnet) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as capture:
        capture.bind(("tn1", 0))
        capture.setblocking(False)
        with (
            local_tailnet.server("quiet-a") as a,
            local_tailnet.server("quiet-b") as b,
            b.listen("tcp", ":7") as listener,
        ):
            conn = a.dial("tcp", "quiet-b:7", timeout=30)
            served, _ = listener.accept(timeout=30)
            conn.sendall(b"x")
            assert served.recv(1) == b"x"
            conn.close()
            served.close()
        # The watch covers the nodes' whole life, from start to close.
        assert stray_packets(capture) == []


@in_test_netns
def test_the_watch_sees_stray_packets() -> None:
    """The capture above can fail: a packet to another network is seen."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as capture:
        capture.bind(("tn1", 0))
        capture.setblocking(False)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"probe", ("198.51.100.7", 5351))  # TEST-NET-2, NAT-PMP's port
        assert select.select([capture], [], [], 10)[0]
        assert any("198.51.100.7" in s for s in stray_packets(capture))
