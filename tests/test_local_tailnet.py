"""LocalTailnet's options: address and ports, the packet filter, pause/resume, the runner."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.helpers import EchoServer, eventually, knows

import tailnet
import tailnet._cli as tailnet_cli
import tailnet.testing.__main__ as testing_main
from tailnet.testing import DEBUG_COUNTERS, LocalTailnet, debug_counter


@pytest.fixture(scope="module")
def net() -> Iterator[LocalTailnet]:
    """A tailnet of this module's own: these tests change its filter and pause it."""
    with LocalTailnet() as local:
        yield local


def test_info_names_the_ports(net: LocalTailnet) -> None:
    assert net.address == "127.0.0.1"
    assert net.control_url == f"http://127.0.0.1:{net.ports['control']}"
    assert set(net.ports) == {"control", "derp", "stun"}
    assert all(0 < port < 65536 for port in net.ports.values())
    assert not net.paused


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"address": "0.0.0.0"}, tailnet.ConfigurationError),
        ({"address": "not-an-ip"}, tailnet.ConfigurationError),
        ({"address": "192.0.2.250"}, tailnet.TailnetError),  # not an address of this host
        ({"control_port": 70000}, tailnet.ConfigurationError),
        ({"derp_port": -1}, tailnet.ConfigurationError),
        ({"stun_port": "1"}, TypeError),
        ({"address": 1}, TypeError),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        LocalTailnet(**kwargs)


def test_fixed_ports_and_another_address(net: LocalTailnet) -> None:
    # 192.0.2.1 is the test namespace's veth address (scripts/in-netns).
    with LocalTailnet(address="192.0.2.1") as other:
        assert other.control_url.startswith("http://192.0.2.1:")
        ports = dict(other.ports)
    with LocalTailnet(address="192.0.2.1", control_port=ports["control"], derp_port=ports["derp"]) as again:
        assert again.ports["control"] == ports["control"]
        assert again.ports["derp"] == ports["derp"]
        with again.server("on-veth") as node:
            assert node.ips


def test_packet_filter_denies_one_peer(net: LocalTailnet) -> None:
    with net.server("pf-server") as server, net.server("pf-friend") as friend, net.server("pf-foe") as foe:
        echo = EchoServer(server.listen("tcp", ":7"))
        for client in (friend, foe):  # before the filter: both connect
            with client.dial("tcp", "pf-server:7", timeout=30) as conn:
                conn.sendall(b"x")
                assert conn.recv(1) == b"x"
        net.deny_from("pf-foe")
        try:

            def foe_is_dropped() -> bool:
                try:
                    foe.dial("tcp", "pf-server:7", timeout=2).close()
                except tailnet.TailnetTimeout:
                    return True
                return False

            eventually(foe_is_dropped, timeout=60)
            accepted = len(echo.peers)
            with pytest.raises(tailnet.TailnetTimeout):
                foe.dial("tcp", "pf-server:7", timeout=3)
            assert len(echo.peers) == accepted  # the listener never saw it
            with friend.dial("tcp", "pf-server:7", timeout=30) as conn:  # others still get in
                conn.sendall(b"y")
                assert conn.recv(1) == b"y"
            # The denied node still accepts connections: the filter is on what it starts.
            foe_echo = EchoServer(foe.listen("tcp", ":7"))
            with server.dial("tcp", "pf-foe:7", timeout=30) as conn:
                conn.sendall(b"z")
                assert conn.recv(1) == b"z"
            foe_echo.close()
        finally:
            net.deny_from()
        eventually(lambda: not foe_is_dropped(), timeout=60)  # allowed again
        echo.close()


def test_deny_from_unknown_or_bad_names(net: LocalTailnet) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="no node named"):
        net.deny_from("nobody-by-this-name")
    with pytest.raises(tailnet.ConfigurationError):
        net.deny_from("a,b")
    with pytest.raises(TypeError):
        net.deny_from(5)  # type: ignore[arg-type]


def test_pause_and_resume_keep_the_tailnet(net: LocalTailnet) -> None:
    with net.server("pause-a") as a, net.server("pause-b") as b:
        echo = EchoServer(b.listen("tcp", ":7"))
        knows(a, b)  # what a knows when control goes down is all it will know
        net.pause()
        net.pause()  # idempotent
        assert net.paused
        with a.dial("tcp", "pause-b:7", timeout=30) as conn:  # peers talk while control is down
            conn.sendall(b"p")
            assert conn.recv(1) == b"p"
        net.resume()
        assert not net.paused
        with net.server("pause-late") as late:  # joins after the restart, reaches the old nodes

            def reaches_b() -> bool:
                try:
                    with late.dial("tcp", "pause-b:7", timeout=5) as conn:
                        conn.sendall(b"r")
                        return conn.recv(1) == b"r"
                except tailnet.TailnetError:
                    return False

            eventually(reaches_b, timeout=90)
        echo.close()


def test_runner_prints_its_tailnet_and_obeys_commands() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tailnet.testing", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        info = json.loads(proc.stdout.readline())
        assert info["control_url"] == f"http://127.0.0.1:{info['control_port']}"
        assert info["authkey"].startswith("tskey-local-")
        with tailnet.Server(
            "runner-node", control_url=info["control_url"], authkey=info["authkey"], ephemeral=True
        ) as node:
            assert node.ips
            for command, reply in [
                ("deny runner-node", {"ok": True}),
                ("deny", {"ok": True}),
                ("pause", {"ok": True}),
                ("resume", {"ok": True}),
                ("bogus", None),
            ]:
                proc.stdin.write(command + "\n")
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
                assert answer == reply if reply else "error" in answer, (command, answer)
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


LAUNCHERS = {
    "python -m tailnet.testing": [sys.executable, "-m", "tailnet.testing"],
    "tailnet local-tailnet": [sys.executable, "-m", "tailnet", "local-tailnet"],
}


def launcher_parsers() -> dict[str, argparse.ArgumentParser]:
    """The two launchers' parsers, as their commands build them."""
    cli = tailnet_cli._parser()
    (commands,) = (a for a in cli._actions if isinstance(a, argparse._SubParsersAction))
    return {
        "python -m tailnet.testing": testing_main.parser(),
        "tailnet local-tailnet": commands.choices["local-tailnet"],
    }


def test_both_launchers_take_the_same_options_each_with_help() -> None:
    def options(parser: argparse.ArgumentParser) -> list[tuple[object, ...]]:
        return [(a.option_strings, a.default, a.type, a.metavar, a.help) for a in parser._actions]

    parsers = launcher_parsers()
    first, second = (options(p) for p in parsers.values())
    assert first == second
    names = {name for action in parsers["tailnet local-tailnet"]._actions for name in action.option_strings}
    assert {"--authkey", "--no-authkey", "--interactive", "--magicdns-domain", "--address", "--json"} <= names
    assert {"--control-port", "--derp-port", "--stun-port"} <= names
    for action in parsers["tailnet local-tailnet"]._actions:
        assert action.help, action.option_strings
    for name, command in LAUNCHERS.items():
        text = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True).stdout
        assert "--magicdns-domain DOMAIN" in text, name
        assert "approve URL" in text, name  # the stdin commands
        assert "``" not in text, name  # no raw reStructuredText
        assert ":meth:" not in text, name
    with pytest.raises(SystemExit):  # one way in at a time
        parsers["python -m tailnet.testing"].parse_args(["--interactive", "--authkey", "k"])


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_both_launchers_run_an_interactive_tailnet_and_obey_commands(launcher: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*LAUNCHERS[launcher], "--interactive", "--json", "--magicdns-domain", "launch.test"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None

    def command(line: str) -> dict[str, Any]:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        reply: dict[str, Any] = json.loads(proc.stdout.readline())
        return reply

    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {
            "control_url", "authkey", "magicdns_domain", "address", "control_port", "derp_port",
            "stun_port", "environ", "pid",
        }  # fmt: skip
        assert info["authkey"] is None
        assert info["magicdns_domain"] == "launch.test"
        assert info["environ"]["TS_CONTROL_URL"] == info["control_url"]
        assert "TS_AUTHKEY" not in info["environ"]
        with contextlib.closing(
            tailnet.Server("launched", control_url=info["control_url"], state_dir=tmp_path, ephemeral=True)
        ) as node:
            node.start()
            eventually(lambda: node.login_url is not None, timeout=60)
            assert command(f"approve {node.login_url}") == {"ok": True}
            node.up(timeout=60)
            assert node.status().self_node.dns_name.rstrip(".") == "launched.launch.test"
            assert command("deny launched") == {"ok": True}
            assert command("deny") == {"ok": True}
            assert "error" in command("approve http://127.0.0.1:1/auth/nope")
            assert "error" in command("bogus")
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_debug_counters_read_and_unknown_names_are_refused(local_tailnet: LocalTailnet) -> None:
    with local_tailnet.server("counted") as server:
        server.up(timeout=60)
        assert debug_counter("handles") >= 1  # the server's own handle
        assert debug_counter("goroutines") > 0
    for name in DEBUG_COUNTERS:
        assert debug_counter(name) >= 0
    for bad in ["", "nope", "goroutines\x00"]:
        with pytest.raises(tailnet.ConfigurationError, match="no debug counter"):
            debug_counter(bad)


#: A local tailnet with interactive login in a process of its own: a crash
#: there fails the test instead of killing the test run.
_INTERACTIVE_TAILNET = """
import sys
from tailnet.testing import LocalTailnet
with LocalTailnet(interactive=True) as net:
    print(net.control_url, flush=True)
    sys.stdin.readline()
"""


@contextlib.contextmanager
def tailnet_in_a_child(script: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run script (a local tailnet that prints one line, then waits for stdin's end) in a child.

    Yields the child and its line; once the body is done the child must
    exit 0 when told to. It is killed however the body ends.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        yield proc, proc.stdout.readline()
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdin.close()
        proc.stdout.close()


_HOSTED_TAILNET = """
import json, sys
from tailnet.testing import LocalTailnet
with LocalTailnet() as net:
    print(json.dumps(net.environ), flush=True)
    sys.stdin.readline()
"""


def test_a_request_the_control_server_does_not_serve_is_an_error_not_an_abort(tmp_path: Path) -> None:
    """A node's LocalAPI id-token request made testcontrol panic in a goroutine of its own.

    That aborted the process hosting the local tailnet (SIGABRT), so the
    tailnet is hosted by a child here: the request must fail, and the
    child must go on serving.
    """
    with tailnet_in_a_child(_HOSTED_TAILNET) as (proc, line):
        env = json.loads(line)
        options = {
            "control_url": env["TS_CONTROL_URL"],
            "authkey": env.get("TS_AUTHKEY", "k"),
            "ephemeral": True,
        }
        with tailnet.Server("unserved-a", state_dir=tmp_path / "a", **options) as node:
            node.up(timeout=60)
            with pytest.raises(tailnet.LocalAPIError, match="404"):
                node.local_api().request("GET", "/localapi/v0/id-token?aud=test", timeout=60)
            assert proc.poll() is None  # the host process lives
            with tailnet.Server("unserved-b", state_dir=tmp_path / "b", **options) as late:
                late.up(timeout=60)  # and its control server still registers nodes


def http_get(url: str) -> tuple[int, str]:
    """GET url as a browser or curl would (no proxy); the status and body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def test_the_control_server_survives_unknown_requests_and_logs_in_from_a_browser() -> None:
    with tailnet_in_a_child(_INTERACTIVE_TAILNET) as (proc, line):
        control_url = line.strip()
        for path in ("/", "/favicon.ico", "/machine/map", "/machine/tka/init/begin", "/auth/0123abcd"):
            status, body = http_get(control_url + path)
            assert status == 404, (path, status, body)
        assert "no login is waiting" in http_get(control_url + "/auth/0123abcd")[1]
        assert proc.poll() is None  # still serving

        def log_in(event: tailnet.WatchEvent) -> None:
            if isinstance(event, tailnet.LoginRequired):
                status, body = http_get(event.url)  # what a browser does with the URL
                assert status == 200, body
                assert "Logged in" in body

        node = tailnet.Server("browser-login", control_url=control_url, ephemeral=True, authkey="")
        with contextlib.closing(node):
            node.up(timeout=60, on_event=log_in)
            assert node.state is tailnet.BackendState.RUNNING
        assert proc.poll() is None
