"""Nodes on the local tailnet send nothing off this machine: no log upload,
no port-mapping probes, no DNS. scripts/in-netns routes every non-local
packet to the veth end tn1, which this test watches with a raw socket
(harness.quiet)."""

from __future__ import annotations

import select
import socket

from harness.quiet import ETH_P_ALL, in_test_netns, stray_packets, watch_tn1

from tailnet.testing import LocalTailnet


@in_test_netns
def test_nothing_leaves_the_machine(local_tailnet: LocalTailnet) -> None:
    with watch_tn1() as capture:
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
    with watch_tn1() as capture:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"probe", ("198.51.100.7", 5351))  # TEST-NET-2, NAT-PMP's port
        assert select.select([capture], [], [], 10)[0]
        assert any("198.51.100.7" in s for s in stray_packets(capture))


@in_test_netns
def test_the_watch_hears_nothing_before_it_is_bound() -> None:
    """watch_tn1 opens its socket for no protocol: one opened for all hears every interface until bound.

    On a loaded machine the old watch, opened for all protocols, once caught
    a loopback packet of the local tailnet (127.0.0.1 to 127.0.0.1) that way.
    """
    with (
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as quiet,
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as eager,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        udp.bind(("127.0.0.1", 0))
        udp.sendto(b"probe", udp.getsockname())
        assert udp.recv(16) == b"probe"
        for sock in (quiet, eager):
            sock.bind(("tn1", ETH_P_ALL))
            sock.setblocking(False)
        assert any("to 127.0.0.1 proto 17" in s for s in stray_packets(eager))
        assert stray_packets(quiet) == []
