"""whois, status, ping, state and watch (sync API) on a real local tailnet."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest
from harness.helpers import eventually, go_counter, knows, open_fds, settle_fds, settle_goroutines

import tailnet
from tailnet._binding import calls, library
from tailnet._waiting_sync import wait_readable
from tailnet.testing import LocalTailnet

Node = Callable[..., tailnet.Server]


def accepted_peer(client: tailnet.Server, server: tailnet.Server) -> tuple[str, int]:
    """Dial server from client and return the peer address server's accept saw."""
    knows(client, server)
    with server.listen("tcp", ":0") as listener:
        port = int(listener.address.rsplit(":", 1)[1])
        with client.dial("tcp", (str(server.ips[0]), port), timeout=30):
            conn, peer = listener.accept(timeout=30)
            conn.close()
    return peer


def test_whois_of_an_accepted_connection_names_the_dialer(tailnet_node: Node) -> None:
    server = tailnet_node("whois-server")
    client = tailnet_node("whois-client", tags=["tag:web", "tag:db"])
    peer = accepted_peer(client, server)

    who = server.whois(peer)

    assert who.node_name == "whois-client"
    assert who.node.hostname == "whois-client"
    assert who.node.dns_name == "whois-client.tailnet.test"
    assert set(who.tags) == {"tag:web", "tag:db"}
    assert who.node.tagged
    assert ipaddress.ip_address(peer[0]) in who.node.ips
    assert set(who.node.ips) == set(client.ips)
    assert who.login_name.startswith("user-")
    assert who.login_name == who.user.login_name
    # The same answer for "ip:port", the bare IP, and an ipaddress object.
    assert server.whois(f"{peer[0]}:{peer[1]}") == who
    assert server.whois(peer[0]).node == who.node
    assert server.whois(client.ips[1]).node == who.node


def test_whois_of_an_untagged_node_has_its_user(tailnet_node: Node) -> None:
    server, client = tailnet_node("whois-u-server"), tailnet_node("whois-u-client")
    who = server.whois(accepted_peer(client, server))
    assert who.tags == ()
    assert not who.node.tagged
    assert who.user == client.status().self_node.user


@pytest.fixture(scope="module")
def capability_tailnet() -> Iterator[LocalTailnet]:
    grants = {"example.com/cap/admin": [{"level": 2}, "text"], "example.com/cap/empty": []}
    with LocalTailnet(app_capabilities=grants) as net:
        yield net


def test_whois_reports_granted_capabilities(capability_tailnet: LocalTailnet) -> None:
    with capability_tailnet.server("caps-a") as a, capability_tailnet.server("caps-b") as b:
        who = b.whois(a.ips[0])
        assert who.capabilities["example.com/cap/admin"] == ({"level": 2}, "text")
        assert who.has_capability("example.com/cap/empty")
        assert who.capabilities["example.com/cap/empty"] == ()
        assert not who.has_capability("example.com/cap/other")
        with pytest.raises(TypeError):
            who.capabilities["x"] = ()  # type: ignore[index]


def test_status_lists_self_and_peer(tailnet_node: Node) -> None:
    a = tailnet_node("status-a", tags=["tag:status"])
    b = tailnet_node("status-b")
    knows(a, b)

    status = a.status()

    assert status.state is tailnet.BackendState.RUNNING
    assert status.magicdns_suffix == "tailnet.test"
    assert status.login_url is None
    assert status.version
    me = status.self_node
    assert (me.name, me.dns_name) == ("status-a", "status-a.tailnet.test")
    assert me.ips == a.ips
    assert me.online
    assert me.tags == ("tag:status",)
    assert me.os == "linux"
    peer = status.peer("status-b")
    assert peer is not None
    assert isinstance(peer, tailnet.PeerStatus)
    assert peer.ips == b.ips
    assert peer.online
    assert peer.tags == ()
    assert peer.dns_name == "status-b.tailnet.test"
    assert peer.path in set(tailnet.ConnectionPath)
    assert status.peer("status-b.tailnet.test.") == peer
    assert status.peer(b.ips[0]) == peer
    assert status.peer("not-a-peer") is None
    assert all(p.name != "status-a" for p in status.peers)


def test_status_shows_a_direct_path_after_traffic(tailnet_node: Node) -> None:
    a, b = tailnet_node("path-a"), tailnet_node("path-b")
    knows(a, b)

    def direct() -> bool:
        a.ping("path-b")
        peer = a.status().peer("path-b")
        assert peer is not None
        return peer.direct and peer.endpoint is not None and peer.active

    eventually(direct, timeout=30)


def test_ping_reports_latency_and_path(tailnet_node: Node) -> None:
    a, b = tailnet_node("ping-a"), tailnet_node("ping-b")
    knows(a, b)

    result = a.ping("ping-b")

    assert result.latency > 0
    assert result.ip == b.ips[0]
    assert result.node_name == "ping-b"
    assert result.kind is tailnet.PingKind.DISCO
    assert result.path in {tailnet.ConnectionPath.DIRECT, tailnet.ConnectionPath.DERP}
    if result.direct:
        assert result.endpoint
    else:
        assert result.derp_region == "local"
    # Both nodes share a host: the direct path is found.
    eventually(lambda: a.ping(b.ips[0]).direct, timeout=30)


@pytest.mark.parametrize(
    ("kind", "name"), [("tsmp", "tsmp"), ("icmp", "icmp"), (tailnet.PingKind.TSMP, "tsmp-enum")]
)
def test_ping_through_the_tunnel(tailnet_node: Node, kind: str, name: str) -> None:
    a, b = tailnet_node(f"tunnel-{name}-a"), tailnet_node(f"tunnel-{name}-b")
    knows(a, b)
    result = a.ping(b.ips[1], kind=kind)  # IPv6 too
    assert result.latency > 0
    assert result.kind is tailnet.PingKind(kind)
    assert result.path is tailnet.ConnectionPath.UNKNOWN


def test_ping_of_a_silent_peer_times_out(local_tailnet: LocalTailnet, tailnet_node: Node) -> None:
    a = tailnet_node("silent-a")
    with local_tailnet.server("silent-b") as b:
        knows(a, b)
        ip = b.ips[0]
    # b is gone but the control server still lists it: nothing will answer.
    with pytest.raises(tailnet.TailnetTimeout):
        a.ping(ip, timeout=1)
    assert go_counter("ops") == 0


def test_state_and_watch_follow_the_node_to_running(local_tailnet: LocalTailnet) -> None:
    with closing(local_tailnet.server("watch-up")) as server:
        assert server.state is tailnet.BackendState.NO_STATE
        assert server.login_url is None
        with server.watch() as watcher:
            thread = threading.Thread(target=server.up, kwargs={"timeout": 60})
            thread.start()
            states = []
            for event in watcher:
                assert isinstance(event, tailnet.StateChanged), event
                states.append(event.state)
                if event.state is tailnet.BackendState.RUNNING:
                    break
            thread.join(60)
        assert tailnet.BackendState.STARTING in states[: states.index(tailnet.BackendState.RUNNING)]
        assert server.status().state is tailnet.BackendState.RUNNING
        assert server.login_url is None
        with server.watch() as watcher:  # a new watcher starts with the current state
            assert watcher.receive(timeout=30) == tailnet.StateChanged(tailnet.BackendState.RUNNING)
            with pytest.raises(tailnet.TailnetTimeout):
                watcher.receive(timeout=0.2)


def test_up_delivers_events_to_a_callback(local_tailnet: LocalTailnet) -> None:
    events: list[tailnet.WatchEvent] = []
    with closing(local_tailnet.server("up-events")) as server:
        server.up(timeout=60, on_event=events.append)
        assert tailnet.StateChanged(tailnet.BackendState.STARTING) in events
        assert all(isinstance(e, tailnet.StateChanged) for e in events)


def test_an_exception_in_the_callback_stops_up(local_tailnet: LocalTailnet) -> None:
    class Stop(Exception):
        pass

    def fail(event: tailnet.WatchEvent) -> None:
        raise Stop

    with closing(local_tailnet.server("up-raises")) as server, pytest.raises(Stop):
        server.up(timeout=60, on_event=fail)
    eventually(lambda: go_counter("ops") == 0)  # the cancelled up ends


def test_watch_ends_when_the_server_closes(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("watch-close").up(timeout=60)
    watcher = server.watch()
    seen: list[tailnet.WatchEvent] = []
    thread = threading.Thread(target=lambda: seen.extend(watcher))
    thread.start()
    eventually(lambda: bool(seen))
    server.close()
    thread.join(30)
    assert not thread.is_alive()
    with pytest.raises(tailnet.ClosedError):
        watcher.receive()
    watcher.close()


def test_closing_watchers_stops_their_goroutines(tailnet_node: Node) -> None:
    server = tailnet_node("watch-leak")
    server.watch().close()  # warm up
    goroutines = go_counter("goroutines")
    fds = open_fds()
    for _ in range(20):
        watcher = server.watch()
        assert watcher.receive(timeout=30) == tailnet.StateChanged(tailnet.BackendState.RUNNING)
        watcher.close()
        assert watcher.fileno() == -1
    settle_goroutines(goroutines + 5)
    settle_fds(fds)


def test_bad_input_gets_typed_errors_and_leaks_nothing(tailnet_node: Node) -> None:
    a = tailnet_node("errors-a")
    a.status()  # warm up
    fds, handles = open_fds(), go_counter("handles")

    with pytest.raises(tailnet.PeerNotFound) as info:
        a.whois("100.100.100.100:80")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, tailnet.HostUnreachable)
    with pytest.raises(tailnet.PeerNotFound):
        a.ping("100.100.100.100")
    with pytest.raises(tailnet.PeerNotFound):
        a.ping("no-such-peer")
    with pytest.raises(tailnet.ConfigurationError, match="own address"):
        a.ping(a.ips[0])
    for bad in ["nonsense", "", "1.2.3.4:99999", "host:80"]:
        with pytest.raises(tailnet.ConfigurationError):
            a.whois(bad)
    with pytest.raises(TypeError):
        a.whois(12345)  # type: ignore[arg-type]
    with pytest.raises(tailnet.ConfigurationError, match="kind"):
        a.ping("errors-a", kind="smoke")
    with pytest.raises(tailnet.ConfigurationError):
        a.ping("")
    with pytest.raises(TypeError):
        a.ping(None)  # type: ignore[arg-type]
    with pytest.raises(tailnet.ConfigurationError):
        a.status(timeout=-1)

    assert go_counter("ops") == 0
    assert go_counter("handles") == handles
    settle_fds(fds)


def test_use_after_close_raises_closed(local_tailnet: LocalTailnet) -> None:
    server = local_tailnet.server("info-closed").up(timeout=60)
    ip = server.ips[0]
    server.close()
    calls: list[Callable[[], object]] = [
        lambda: server.whois(ip),
        server.status,
        lambda: server.ping(ip),
        server.watch,
        lambda: server.state,
        lambda: server.login_url,
    ]
    for call in calls:
        with pytest.raises(tailnet.ClosedError):
            call()
    assert go_counter("ops") == 0


def test_status_works_before_up(local_tailnet: LocalTailnet) -> None:
    with closing(local_tailnet.server("status-early")) as server:
        status = server.status(timeout=30)  # starts the node, does not wait for it
        assert isinstance(status.state, tailnet.BackendState)
        server.up(timeout=60)
        assert server.status().state is tailnet.BackendState.RUNNING


def test_long_results_are_never_truncated(tailnet_node: Node) -> None:
    a = tailnet_node("long-a")
    pending = a._node.begin_status(30)
    try:
        wait_readable(pending.op.wait_fd, 30)
        pending.op.result()
        whole = pending.op.text()
        assert len(whole) > 64
        # A tiny first buffer: the size is reported, nothing partial is returned.
        ffi = library.ffi()
        buf, needed = ffi.new("char[]", 16), ffi.new("size_t *")
        assert library.lib().tailnet_op_text(pending.op._handle, buf, 16, needed) == 0
        assert needed[0] == len(whole.encode()) + 1
        assert ffi.string(buf) == b""
        # The binding's op_text asks again with the size reported.
        again = calls.op_text(pending.op._handle)
        assert again == whole
        assert tailnet.Status is type(pending.parse(again))
    finally:
        pending.op.free()


def test_ephemeral_nodes_stay_listed_on_the_local_tailnet(
    local_tailnet: LocalTailnet, tailnet_node: Node
) -> None:
    """Tailscale's control server removes an ephemeral node soon after it goes
    offline; the local tailnet's (testcontrol) never removes nodes, as
    LocalTailnet documents. This pins that down so the docs stay true."""
    observer = tailnet_node("eph-observer")
    with local_tailnet.server("eph-gone", ephemeral=True) as gone:
        knows(observer, gone)
        ip = gone.ips[0]
    # Given time to go, it stays.
    with pytest.raises(tailnet.TailnetTimeout):
        observer.ping(ip, timeout=2)
    assert observer.status().peer(ip) is not None
