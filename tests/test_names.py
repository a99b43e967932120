"""Names in a dial: a tailnet name is looked up in the node's map only.

A single label, or a name in the tailnet's MagicDNS domain, that no node
has fails at once with HostUnreachable and is never sent to the host's
resolver (the watch on tn1 of harness.quiet would see the query: the test
namespace's resolver address routes there). Other names are tsnet's: the
host's resolver (here a private /etc/hosts, in a mount namespace of a
child process, so no query is sent anywhere).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.helpers import EchoServer
from harness.quiet import in_test_netns, stray_packets, watch_tn1

import tailnet
from tailnet.testing import LocalTailnet

#: A hang guard only: the dials below must fail long before it.
HANG_GUARD = 60


@pytest.fixture
def capture() -> Iterator[socket.socket]:
    """A raw socket on tn1: what it receives was sent towards another network."""
    with watch_tn1() as sock:
        yield sock


def unknown_names(suffix: str) -> list[str]:
    """Names no node has: short, in other spellings, in the MagicDNS domain, the domain itself."""
    return ["nohost", "NoHost.", f"nohost.{suffix}", f"nohost.{suffix}.", suffix]


@in_test_netns
def test_unknown_tailnet_names_fail_at_once_and_stay_on_the_node(
    pair: tuple[tailnet.Server, tailnet.Server], capture: socket.socket
) -> None:
    a, _ = pair
    suffix = a.status().magicdns_suffix
    assert suffix
    for name in unknown_names(suffix):
        for network in ("tcp", "udp"):
            with pytest.raises(
                tailnet.HostUnreachable, match=re.escape(f'no node named "{name}" on the tailnet')
            ):
                a.dial(network, f"{name}:80", timeout=HANG_GUARD)
    assert stray_packets(capture) == []


@in_test_netns
def test_known_names_in_every_spelling_connect(
    pair: tuple[tailnet.Server, tailnet.Server], echo: EchoServer, capture: socket.socket
) -> None:
    a, b = pair
    fqdn = f"{b.hostname}.{a.status().magicdns_suffix}"
    for name in (b.hostname, b.hostname.upper(), fqdn, f"{fqdn}.", fqdn.upper()):
        with a.dial("tcp", f"{name}:7", timeout=HANG_GUARD) as conn:
            conn.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    assert stray_packets(capture) == []


@in_test_netns
def test_a_name_resolves_to_the_address_of_the_dials_family(
    pair: tuple[tailnet.Server, tailnet.Server], capture: socket.socket
) -> None:
    a, b = pair
    with a.dial("udp4", f"{b.hostname}:7", timeout=HANG_GUARD) as conn:
        assert conn.getpeername()[0] == str(b.ips[0])
    with a.dial("udp6", f"{b.hostname}:7", timeout=HANG_GUARD) as conn:
        assert conn.getpeername()[0] == str(b.ips[1])
    assert stray_packets(capture) == []


@in_test_netns
def test_tailnet_addresses_no_node_has_fail_at_once(
    pair: tuple[tailnet.Server, tailnet.Server], capture: socket.socket
) -> None:
    """tsnet would dial them through the host's network (here: towards tn1)."""
    a, _ = pair
    for ip in ("100.64.255.254", "fd7a:115c:a1e0::fffe"):
        for network in ("tcp", "udp"):
            with pytest.raises(tailnet.HostUnreachable, match=f"no node of the tailnet has the address {ip}"):
                a.dial(network, (ip, 80), timeout=HANG_GUARD)
    assert stray_packets(capture) == []


@pytest.mark.anyio
@in_test_netns
async def test_unknown_tailnet_names_fail_at_once_async(
    nodes: tuple[tailnet.AsyncServer, tailnet.AsyncServer], capture: socket.socket
) -> None:
    a, _ = nodes
    suffix = (await a.status()).magicdns_suffix
    for name in unknown_names(suffix):
        for network in ("tcp", "udp"):
            with pytest.raises(
                tailnet.HostUnreachable, match=re.escape(f'no node named "{name}" on the tailnet')
            ):
                await a.dial(network, f"{name}:80", timeout=HANG_GUARD)
    assert stray_packets(capture) == []


OUTSIDE_NAME_CHILD = """
import sys, time, tailnet
with tailnet.Server("outside-dialer", state_dir=sys.argv[1], ephemeral=True) as ts:
    deadline = time.monotonic() + 60  # until the map lists the peer, its address is not the tailnet's
    while ts.status().peer(sys.argv[2]) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with ts.dial("tcp", "service.outside.example:7", timeout=60) as conn:
        conn.sendall(b"via the host's resolver")
        print(conn.recv(100).decode(), flush=True)
"""


@in_test_netns
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_other_names_go_to_the_hosts_resolver(
    local_tailnet: LocalTailnet,
    pair: tuple[tailnet.Server, tailnet.Server],
    echo: EchoServer,
    capture: socket.socket,
    tmp_path: Path,
) -> None:
    """A name outside the tailnet is the host's to resolve, as in tsnet.

    The child sees a private /etc/hosts (a mount namespace) that gives the
    name the peer's tailnet address: the dial reaches the peer, and no
    query leaves.
    """
    _, b = pair
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{b.ips[0]} service.outside.example\n")
    script = tmp_path / "child.py"
    script.write_text(OUTSIDE_NAME_CHILD)
    state = tmp_path / "state"
    command = 'mount --bind "$1" /etc/hosts && exec "$2" "$3" "$4" "$5"'
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            command,
            "sh",
            str(hosts),
            sys.executable,
            str(script),
            str(state),
            b.hostname,
        ],
        env={**os.environ, **local_tailnet.environ},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 2,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "via the host's resolver"
    assert stray_packets(capture) == []
