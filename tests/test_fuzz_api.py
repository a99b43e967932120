"""Hostile input to the public Python API (hypothesis).

Every call with any argument returns, or raises a TypeError (wrong type) or
a tailnet.TailnetError (wrong value, closed, timed out, ...): never another
exception, a crash, a hang or a leaked descriptor. Calls may come in any
order, including after close.
"""

from __future__ import annotations

import ipaddress
import math
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.helpers import go_counter, open_fds, settle_fds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import tailnet
from tailnet.testing import LocalTailnet

#: What a call may raise: a wrong type, or the library's own typed errors.
ALLOWED = (TypeError, tailnet.TailnetError)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory; a failure prints how to reproduce it
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Text that is often almost right: labels, ports, URLs, NULs, surrogates, huge.
label = st.text(string.ascii_letters + string.digits + "-", min_size=0, max_size=70)
nasty = st.text(min_size=0, max_size=40) | st.sampled_from(
    ["", "\x00", "a\x00b", "\udc80", "é", " ", ":", "[]", "[::1]", "-", "a" * 300, "%s%n", "../x"]
)
texty = label | nasty
ports = st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 80, 65535, 65536, -1])
hosts = texty | st.sampled_from(["100.64.0.1", "fd7a:115c:a1e0::1", "localhost", "0.0.0.0", "::"])
addresses = (
    st.builds(lambda h, p: f"{h}:{p}", hosts, ports)
    | texty
    | st.tuples(hosts, ports)
    | st.tuples(hosts, texty)
    | st.tuples(hosts)
    | st.integers()
    | st.none()
    | st.binary(max_size=10)
)
networks = (
    st.sampled_from(["tcp", "tcp4", "tcp6", "udp", "", "TCP", "tcp\x00"]) | texty | st.none() | st.integers()
)
#: Short or invalid: a valid address with no timeout may rightly wait forever.
timeouts = (
    st.floats(min_value=0, max_value=0.3)
    | st.sampled_from([-1, -0.0, math.nan, -math.inf, True, "1", b"1", [1]])
    | st.integers(min_value=-(2**70), max_value=0)
)
anything = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | texty
    | st.binary(max_size=8)
    | st.lists(texty, max_size=3)
)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call fn; return its result, or None if it raised an allowed exception."""
    try:
        return fn(*args, **kwargs)
    except ALLOWED:
        return None


def accept_and_close(listener: tailnet.Listener, timeout: Any) -> None:
    """Accept as a user would, and close what arrives: a dropped socket warns."""
    accepted = outcome(listener.accept, timeout=timeout)
    if accepted is not None:
        accepted[0].close()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Default state dirs go under tmp_path, not the user's data dir; nothing leaks."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for var in ("TS_AUTHKEY", "TS_AUTH_KEY", "TS_CONTROL_URL"):
        monkeypatch.delenv(var, raising=False)
    tailnet.Server("warm-up", state_dir=tmp_path / "warm-up").close()  # the log pump's pipe: once per process
    fds, handles = open_fds(), go_counter("handles")
    yield tmp_path
    settle_fds(fds)
    assert go_counter("handles") == handles
    assert go_counter("ops") == 0


@FUZZ
@given(
    hostname=texty | anything,
    authkey=texty | anything,
    control_url=st.builds(
        lambda s, h: f"{s}{h}", st.sampled_from(["http://", "https://", "ftp://", ""]), texty
    )
    | anything,
    state_dir=st.none() | label | nasty,
    ephemeral=anything,
    tags=st.lists(texty, max_size=3)
    | st.lists(st.builds(lambda t: f"tag:{t}", texty), max_size=3)
    | anything,
)
def test_server_construction(
    sandbox: Path, hostname: Any, authkey: Any, control_url: Any, state_dir: Any, ephemeral: Any, tags: Any
) -> None:
    if isinstance(state_dir, str):
        state_dir = sandbox / "dirs" / state_dir.replace("\x00", "").replace("..", "_").lstrip("/")
    kwargs = {"authkey": authkey, "control_url": control_url, "state_dir": state_dir, "ephemeral": ephemeral}
    if tags is not None:
        kwargs["tags"] = tags
    server = outcome(tailnet.Server, hostname, **kwargs)
    if server is not None:
        try:  # closed however the checks end, so no descriptor outlives the example
            shown = repr(server)
            assert shown
            # The key never shows, unless it is also the name or part of it (rhJ7 and rhJ7).
            if isinstance(authkey, str) and len(authkey) > 3 and authkey not in str(hostname):
                assert authkey not in shown
        finally:
            server.close()


@pytest.fixture(scope="module")
def node(local_tailnet: LocalTailnet) -> Iterator[tailnet.Server]:
    with local_tailnet.server("fuzz-node") as server:
        yield server


@FUZZ
@given(network=networks, address=addresses, timeout=timeouts)
def test_dial(sandbox: Path, node: tailnet.Server, network: Any, address: Any, timeout: Any) -> None:
    conn = outcome(node.dial, network, address, timeout=timeout)
    if conn is not None:
        conn.close()


@FUZZ
@given(network=networks, address=addresses, timeout=timeouts)
def test_listen_and_accept(
    sandbox: Path, node: tailnet.Server, network: Any, address: Any, timeout: Any
) -> None:
    listener = outcome(node.listen, network, address)
    if listener is not None:
        with listener:
            accept_and_close(listener, timeout)


@FUZZ
@given(network=networks, address=addresses, data=st.binary(max_size=70000) | anything, to=addresses)
def test_datagrams(
    sandbox: Path, node: tailnet.Server, network: Any, address: Any, data: Any, to: Any
) -> None:
    sock = outcome(node.listen_packet, network, address)
    if sock is not None:
        with sock:
            outcome(sock.sendto, data, to)


@FUZZ
@given(
    address=addresses | st.sampled_from([ipaddress.ip_address("100.64.0.1"), ipaddress.ip_address("::1")]),
    peer=hosts | anything,
    kind=st.sampled_from(["disco", "tsmp", "icmp", "DISCO", ""]) | anything,
    timeout=timeouts,
)
def test_whois_status_ping(
    sandbox: Path, node: tailnet.Server, address: Any, peer: Any, kind: Any, timeout: Any
) -> None:
    outcome(node.whois, address, timeout=timeout)
    outcome(node.ping, peer, kind=kind, timeout=timeout)
    outcome(node.status, timeout=timeout)


@FUZZ
@given(
    authkey=st.none() | texty,
    interactive=st.booleans(),
    magicdns_domain=texty,
    address=hosts,
    port=ports | anything,
)
def test_local_tailnet_options(
    sandbox: Path, authkey: Any, interactive: Any, magicdns_domain: Any, address: Any, port: Any
) -> None:
    net = outcome(
        LocalTailnet,
        authkey=authkey,
        interactive=interactive,
        magicdns_domain=magicdns_domain,
        address=address,
        control_port=port,
    )
    if net is not None:
        outcome(net.deny_from, magicdns_domain)
        outcome(net.complete_login, magicdns_domain)
        net.close()


class ServerLifecycle(RuleBasedStateMachine):
    """Any order of calls on one server and its listeners, closing included."""

    net: LocalTailnet
    counter = 0

    def __init__(self) -> None:
        super().__init__()
        ServerLifecycle.counter += 1
        self.server = self.net.server(f"fuzz-life-{ServerLifecycle.counter}")
        self.listeners: list[tailnet.Listener] = []
        self.closed = False

    @rule(timeout=st.sampled_from([0, 0.05, 30]))
    def up(self, timeout: float) -> None:
        outcome(self.server.up, timeout=timeout)

    @rule()
    def start(self) -> None:
        outcome(self.server.start)

    @rule(port=st.sampled_from([0, 7, 8, 70000]))
    def listen(self, port: int) -> None:
        listener = outcome(self.server.listen, "tcp", f":{port}")
        if listener is not None:
            self.listeners.append(listener)

    @precondition(lambda self: self.listeners)
    @rule(timeout=st.sampled_from([0, 0.05]), which=st.integers(0, 5))
    def accept(self, timeout: float, which: int) -> None:
        # A dial_self before may have queued a connection, which accept returns.
        accept_and_close(self.listeners[which % len(self.listeners)], timeout)

    @precondition(lambda self: self.listeners)
    @rule(which=st.integers(0, 5))
    def close_listener(self, which: int) -> None:
        self.listeners[which % len(self.listeners)].close()

    @rule(port=st.sampled_from([7, 8, 9]), timeout=st.sampled_from([0, 0.2, 5]))
    def dial_self(self, port: int, timeout: float) -> None:
        ips = outcome(lambda: self.server.ips)
        host = str(ips[0]) if ips else "fuzz-life-0"
        conn = outcome(self.server.dial, "tcp", (host, port), timeout=timeout)
        if conn is not None:
            conn.close()

    @rule(timeout=st.sampled_from([0, 0.2]))
    def ask(self, timeout: float) -> None:
        outcome(self.server.status, timeout=timeout)
        outcome(self.server.whois, ("100.64.0.1", 1), timeout=timeout)
        outcome(self.server.ping, "fuzz-node", timeout=timeout)
        outcome(lambda: (self.server.state, self.server.login_url))

    @rule()
    def close(self) -> None:
        self.server.close()
        self.closed = True

    @invariant()
    def closed_means_closed(self) -> None:
        assert self.server.closed == self.closed
        if self.closed:
            with pytest.raises(tailnet.ClosedError):
                self.server.listen("tcp", ":1")

    def teardown(self) -> None:
        for listener in self.listeners:
            listener.close()
        self.server.close()


def test_any_order_of_calls(sandbox: Path, local_tailnet: LocalTailnet) -> None:
    ServerLifecycle.net = local_tailnet
    run_state_machine_as_test(
        ServerLifecycle,
        settings=settings(max_examples=15, stateful_step_count=12, deadline=None, database=None),
    )
