"""The ``tailnet`` command, run as a separate process (inside the test network namespace)."""

from __future__ import annotations

import itertools
import json
import os
import pty
import queue
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from harness.helpers import (
    DUMP_ON_ABORT,
    EXIT_GUARD,
    EchoServer,
    LoopbackEcho,
    assert_echoes_intact,
    read_until_error,
    recv_all,
)

import tailnet
from tailnet.testing import LocalTailnet

MODULE = [sys.executable, "-m", "tailnet"]


class Child:
    """A ``tailnet`` command in a process, whose output lines can be awaited with a deadline."""

    def __init__(self, *args: str, env: dict[str, str], command: Sequence[str] = MODULE) -> None:
        self.proc = subprocess.Popen(
            [*command, *args],
            env={**env, **DUMP_ON_ABORT},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, queue.Queue[str]] = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self.seen: dict[str, list[str]] = {"stdout": [], "stderr": []}
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, self.lines[name]), daemon=True).start()

    @staticmethod
    def _read(stream: IO[str], lines: queue.Queue[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put("")  # EOF

    def expect(self, pattern: str, stream: str = "stdout", timeout: float = 90) -> re.Match[str]:
        """The first (further) line of ``stream`` matching ``pattern``."""
        while True:
            try:
                line = self.lines[stream].get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} on {stream} in {timeout} s: {self.seen}") from None
            if not line:
                raise AssertionError(f"{stream} ended without {pattern!r}: {self.seen}")
            self.seen[stream].append(line)
            if match := re.search(pattern, line):
                return match

    def rest(self, stream: str) -> list[str]:
        """The lines of ``stream`` not yet read, to its end (the process must have exited)."""
        lines: list[str] = []
        while line := self.lines[stream].get(timeout=60):
            lines.append(line)
        return lines

    def write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal it and return its exit status; if it hangs, fail with where its threads are."""
        self.proc.send_signal(sig)
        return self.exit_status(f"signal {sig}")

    def exit_status(self, after: str) -> int:
        """Its exit status; if it has not exited within EXIT_GUARD, fail with where its threads are."""
        try:
            return self.proc.wait(EXIT_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # DUMP_ON_ABORT: its threads' stacks on stderr
            self.proc.wait(EXIT_GUARD)
            stacks = "".join(self.rest("stderr"))[-6000:]
            message = f"still running {EXIT_GUARD:.0f} s after {after}; its threads:\n{stacks}"
            raise AssertionError(message) from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(60)


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODULE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(local_tailnet: LocalTailnet, tmp_path: Path) -> dict[str, str]:
    """A child's environment: the session's local tailnet, state dirs under tmp_path."""
    return {**os.environ, **local_tailnet.environ, "XDG_DATA_HOME": str(tmp_path / "data")}


@pytest.fixture
def children() -> Iterator[Callable[..., Child]]:
    made: list[Child] = []

    def start(*args: str, env: dict[str, str], command: Sequence[str] = MODULE) -> Child:
        child = Child(*args, env=env, command=command)
        made.append(child)
        return child

    yield start
    for child in made:
        if child.proc.poll() is None:
            child.kill()
        for stream in (child.proc.stdin, child.proc.stdout, child.proc.stderr):
            if stream is not None:
                stream.close()


def test_console_script_and_python_m(env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("tailnet")
    for command in ([str(script)], MODULE):
        result = subprocess.run([*command, "--help"], env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        for name in ("demo", "up", "status", "serve", "proxy", "forward", "local-tailnet"):
            assert name in result.stdout


def test_demo(env: dict[str, str]) -> None:
    result = run("demo", env=env)
    assert result.returncode == 0, result.stderr
    assert "alpha is up with tailnet IPs 100." in result.stdout
    assert "replied: 'echo from beta: hello over the tailnet'" in result.stdout


def test_up_then_status_reuse_the_state_dir(env: dict[str, str], tmp_path: Path) -> None:
    up = run("up", "-n", "cli-up", "--json", env=env)
    assert up.returncode == 0, up.stderr
    assert "cli-up: joining the tailnet..." in up.stderr  # progress, not on stdout
    info = json.loads(up.stdout)
    assert info["hostname"] == "cli-up"
    assert info["state"] == "Running"
    assert info["dns_name"] == "cli-up.tailnet.test"
    assert info["ips"][0].startswith("100.")
    assert Path(info["state_dir"]) == tmp_path / "data" / "tailnet" / "cli-up"
    status = run("status", "-n", "cli-up", "--json", env=env)
    assert status.returncode == 0, status.stderr
    again = json.loads(status.stdout)
    assert again["ips"] == info["ips"]  # the same node, from its saved identity
    assert again["state"] == "Running"
    text = run("status", "-n", "cli-up", env=env)
    assert "cli-up: Running" in text.stdout
    assert f"IPs:       {', '.join(info['ips'])}" in text.stdout
    assert "name:      cli-up.tailnet.test" in text.stdout


def status_until(
    done: Callable[[subprocess.CompletedProcess[str]], bool], *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``tailnet status ARGS`` until ``done`` says its output is complete (60 s at most).

    Each run is a fresh process whose node may print before its map lists
    every peer (seen once in a loaded full run), so ask again until it does.
    """
    deadline = time.monotonic() + 60
    while True:
        status = run("status", *args, env=env)
        assert status.returncode == 0, status.stderr
        if done(status) or time.monotonic() > deadline:
            return status


def test_status_lists_peers(env: dict[str, str], tailnet_node: Callable[..., tailnet.Server]) -> None:
    peer = tailnet_node("cli-peer")
    status = status_until(lambda s: '"cli-peer"' in s.stdout, "-n", "cli-status", "--json", env=env)
    peers = {p["name"]: p for p in json.loads(status.stdout)["peers"]}
    assert peers["cli-peer"]["ips"][0] == str(peer.ips[0])
    assert peers["cli-peer"]["online"] is True
    text = status_until(lambda s: "cli-peer" in s.stdout, "-n", "cli-status", env=env).stdout
    assert re.search(rf"^    cli-peer +{re.escape(str(peer.ips[0]))} +online", text, re.MULTILINE), text


def test_local_tailnet_with_interactive_login(children: Callable[..., Child], tmp_path: Path) -> None:
    base = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    control = children("local-tailnet", "--interactive", "--json", env=base)
    info = json.loads(control.expect(r"^\{").string)
    assert info["authkey"] is None
    env = {**base, **info["environ"]}
    up = children("up", "-n", "cli-login", env=env)
    up.expect(r"cli-login: joining the tailnet", "stderr")
    url = up.expect(r"(http://\S+/auth/\S+)", "stderr").group(1)
    control.write(url)  # a bare URL approves it
    assert json.loads(control.expect(r"^\{").string) == {"ok": True}
    up.expect(r"^cli-login: Running")
    ips = up.expect(r"IPs: +(\S+),").group(1)
    assert up.proc.wait(60) == 0
    # Logged in once: status needs no login, and it is the same node.
    status = run("status", "-n", "cli-login", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["ips"][0] == ips
    # A node that never logged in says so, with the URL to log in at.
    never = run("status", "-n", "cli-never", env=env)
    assert never.returncode == 1
    assert "cli-never: NeedsLogin" in never.stdout
    never_url = re.search(r"log in at: (http://\S+/auth/\S+)", never.stdout)
    assert never_url, never.stdout
    assert (never.stdout + never.stderr).count(never_url.group(1)) == 1, never.stderr  # shown once
    assert control.stop(signal.SIGTERM) == 0


@pytest.fixture
def login_tailnet(tmp_path: Path) -> Iterator[tuple[LocalTailnet, dict[str, str]]]:
    """A local tailnet where nodes log in interactively, and a child's environment for it."""
    with LocalTailnet(interactive=True) as net:
        yield net, {**os.environ, **net.environ, "XDG_DATA_HOME": str(tmp_path / "data")}


LOGIN_URL = r"http://127\.0\.0\.1:\d+/auth/\w+"
SPINNER = re.compile(r"\r\x1b\[K([|/\\-]) cli-pty: joining the tailnet(.*?) \((\d+) s\)")


def test_up_on_a_terminal_shows_the_login_url_once_at_once_and_spins(
    login_tailnet: tuple[LocalTailnet, dict[str, str]],
) -> None:
    net, env = login_tailnet
    controller, terminal = pty.openpty()
    output = ""

    def read_until(done: Callable[[], bool]) -> None:
        nonlocal output
        while not done():
            ready, _, _ = select.select([controller], [], [], 120)  # a hang guard
            assert ready, output
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child has exited and all is read
                return
            if not chunk:
                return
            output += chunk.decode("utf-8", "replace")

    with subprocess.Popen(
        [*MODULE, "up", "-n", "cli-pty"], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    ) as child:
        os.close(terminal)
        try:
            # Watch the spinner until it has counted 6 s: past tsnet's own
            # login hint (first at about 5 s, then every 5 s).
            read_until(lambda: any(int(m.group(3)) >= 6 for m in SPINNER.finditer(output)))
            url = re.search(LOGIN_URL, output)
            assert url, output
            net.complete_login(url.group())
            read_until(lambda: False)  # to the end
            assert child.wait(60) == 0, output
        finally:
            os.close(controller)
            if child.poll() is None:
                child.kill()
    assert output.count(url.group()) == 1, output  # once on the terminal (with its QR code, drawn once)
    assert len(re.findall(r"\n▀{20,}\r\n", output)) == 1, output  # the QR code's last line
    spins = list(SPINNER.finditer(output))
    # Shown at once: before the spinner line says anything about a login, and
    # before tsnet's own hint would have come.
    assert url.start() < spins[0].start() or "log in" not in spins[0].group(2), output
    assert all(int(m.group(3)) < 5 for m in spins if m.start() < url.start()), output
    assert "waiting for you to log in" not in output[: url.start()]
    assert "URL above" not in output
    assert "TS_AUTHKEY" not in output
    # The spinner moves: every redraw shows the next frame, and the frame
    # shown as each new second is counted is not always the same one.
    frames = [m.group(1) for m in spins]
    assert len(frames) > 20
    assert all(a != b for a, b in itertools.pairwise(frames)), frames
    first_of_each_second = {m.group(3): m.group(1) for m in reversed(spins)}
    assert len(set(first_of_each_second.values())) > 1, first_of_each_second
    assert re.search(r"cli-pty: Running", output)


def test_up_without_a_terminal_writes_plain_sentences(
    login_tailnet: tuple[LocalTailnet, dict[str, str]], children: Callable[..., Child]
) -> None:
    net, env = login_tailnet
    up = children("up", "-n", "cli-plain", env=env)
    up.expect(r"^cli-plain: joining the tailnet\.\.\.$", "stderr")
    up.expect(r"^cli-plain: to join the tailnet, log in at:$", "stderr")
    url = up.expect(rf"^  ({LOGIN_URL})$", "stderr").group(1)
    up.expect(r"^cli-plain: waiting for you to log in\.$", "stderr")
    # Ten seconds on, past two of tsnet's repeated hints, the URL was shown once.
    up.expect(r"^cli-plain: still waiting for you to log in \(1\d s\)\.$", "stderr")
    net.complete_login(url)
    up.expect(r"^cli-plain: Running$")
    assert up.proc.wait(60) == 0
    stderr = up.seen["stderr"] + up.rest("stderr")
    assert "".join(stderr).count(url) == 1, stderr
    for line in stderr:  # sentences, or the URL on a line of its own
        assert re.fullmatch(r"cli-plain: [a-z].*[.:]\n|  http://\S+\n", line), stderr
    assert not any("[" in line or "URL above" in line or "TS_AUTHKEY" in line for line in stderr), stderr


def test_local_tailnet_prints_an_auth_key_nodes_need(children: Callable[..., Child], tmp_path: Path) -> None:
    base = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    control = children("local-tailnet", env=base)
    url = control.expect(r"control URL: (http://127\.0\.0\.1:\d+)").group(1)
    key = control.expect(r"auth key: +(tskey-local-\w+)").group(1)
    exports = control.expect(r"^  export (.*)$").group(1)
    control.write("deny nobody-yet")  # commands in text mode: answered on stderr in words
    control.expect(r"^not done: .*nobody-yet", "stderr")
    control.write("deny")
    control.expect(r"^allowed all again$", "stderr")
    env = {**base, **dict(pair.split("=", 1) for pair in exports.split())}
    assert env["TS_CONTROL_URL"] == url
    assert env["TS_AUTHKEY"] == key
    joined = run("up", "-n", "cli-key", env=env)
    assert joined.returncode == 0, joined.stderr
    refused = run("up", "-n", "cli-bad-key", "--authkey", "tskey-wrong", env=env)
    assert refused.returncode == 1
    assert "invalid authkey" in refused.stderr
    assert "Errno" not in refused.stderr
    assert control.stop(signal.SIGINT) == 0


def test_serve_a_directory(
    children: Callable[..., Child],
    env: dict[str, str],
    tmp_path: Path,
    tailnet_node: Callable[..., tailnet.Server],
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("served by tailnet serve\n")
    serve = children("serve", str(shared), "-n", "cli-files", "--port", "8080", "--ephemeral", env=env)
    assert serve.expect(r"^serving (\S+) at (\S+)").groups() == (str(shared), "http://cli-files:8080/")
    client = tailnet_node("cli-files-client")
    with httpx.Client(transport=client.httpx_transport()) as http:
        assert http.get("http://cli-files:8080/notes.txt").text == "served by tailnet serve\n"
        assert http.get("http://cli-files.tailnet.test:8080/nothing").status_code == 404
    assert serve.stop(signal.SIGINT) == 0


def test_serve_refuses_a_missing_directory(env: dict[str, str], tmp_path: Path) -> None:
    result = run("serve", str(tmp_path / "missing"), "-n", "cli-missing", env=env)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


def test_proxy_exposes_a_local_service(
    children: Callable[..., Child], env: dict[str, str], tailnet_node: Callable[..., tailnet.Server]
) -> None:
    echo = LoopbackEcho()
    proxy = children("proxy", str(echo.port), "-n", "cli-proxy", "--port", "7000", "--ephemeral", env=env)
    proxy.expect(rf"^forwarding tailnet cli-proxy:7000 -> 127\.0\.0\.1:{echo.port}")
    client = tailnet_node("cli-proxy-client")
    for _ in range(2):
        with client.dial("tcp", "cli-proxy:7000", timeout=30) as conn:
            conn.settimeout(60)
            assert_echoes_intact(conn, 1 << 20)
    echo.close()  # the service goes away: a connection through the proxy is aborted
    with client.dial("tcp", "cli-proxy:7000", timeout=30) as conn:
        conn.settimeout(60)
        with pytest.raises(tailnet.ConnectionReset):
            conn.recv(1)
    proxy.expect("cannot reach 127.0.0.1", "stderr")
    assert proxy.stop(signal.SIGTERM) == 0


class LoopbackTeller:
    """A local TCP service that sends 1 MiB to each client, then closes, or resets."""

    payload = os.urandom(1 << 20)

    def __init__(self, reset: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.reset = reset
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(self.payload)
            if self.reset:  # l_onoff 1, l_linger 0: close sends a RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.thread.join(60)
        self.sock.close()


@pytest.mark.parametrize("command", ["proxy", "forward"])
def test_sigterm_noted_on_another_thread_stops_an_idle_async_command(
    children: Callable[..., Child],
    env: dict[str, str],
    tailnet_node: Callable[..., tailnet.Server],
    command: str,
) -> None:
    """SIGTERM whose handler runs on another thread still stops proxy and forward.

    Under load, `tailnet proxy` once stayed up 120 s after SIGTERM, idle in
    its event loop: the signal had been noted, but nothing woke the loop.
    The harness makes that certain (it raises SIGTERM on a thread of its
    own once the main thread waits in epoll_wait); before the fix the
    child never exited.
    """
    echo = LoopbackEcho()
    node = tailnet_node("cli-signalled-target")
    listener = node.listen("tcp", ":7")
    args: tuple[str, ...]
    if command == "proxy":
        args = ("proxy", str(echo.port), "-n", "cli-signalled", "--port", "7001", "--ephemeral")
    else:
        args = ("forward", "0", f"{node.hostname}:7", "-n", "cli-signalled", "--ephemeral")
    harness = Path(__file__).parent / "harness" / "cli_signalled_elsewhere.py"
    child = children(*args, env=env, command=[sys.executable, str(harness)])
    try:
        child.expect("^forwarding ")
        child.expect("^signalled while it waited", "stderr", timeout=EXIT_GUARD)
        status = child.exit_status("SIGTERM")
        assert status == 0, child.rest("stderr")
    finally:
        listener.close()
        echo.close()


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_proxy_passes_a_close_and_a_reset_on(
    children: Callable[..., Child],
    env: dict[str, str],
    tailnet_node: Callable[..., tailnet.Server],
    reset: bool,
) -> None:
    """The service's last data and how it ended reach the tailnet client, as without the proxy."""
    teller = LoopbackTeller(reset)
    name = f"cli-proxy-{'reset' if reset else 'close'}"
    proxy = children("proxy", str(teller.port), "-n", name, "--port", "7000", "--ephemeral", env=env)
    proxy.expect(rf"^forwarding tailnet {name}:7000")
    client = tailnet_node(f"{name}-client")
    try:
        with client.dial("tcp", f"{name}:7000", timeout=30) as conn:
            conn.settimeout(60)
            if reset:
                data, error = read_until_error(conn)
                assert isinstance(error, tailnet.ConnectionReset), error
                assert teller.payload.startswith(data)
            else:
                assert recv_all(conn) == teller.payload  # all of it, then end-of-file
    finally:
        teller.close()
    assert proxy.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("unix", [False, True])
def test_forward_reaches_a_tailnet_service(
    children: Callable[..., Child],
    env: dict[str, str],
    tailnet_node: Callable[..., tailnet.Server],
    tmp_path: Path,
    unix: bool,
) -> None:
    service = tailnet_node(f"cli-fwd-svc-{int(unix)}")
    echo = EchoServer(service.listen("tcp", ":7"))
    local = str(tmp_path / "svc.sock") if unix else "0"
    name = f"cli-fwd-{int(unix)}"
    forward = children("forward", local, f"{service.hostname}:7", "-n", name, "--ephemeral", env=env)
    shown = forward.expect(rf"^forwarding (\S+) -> tailnet {service.hostname}:7$").group(1)
    if unix:
        assert shown == local
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(local)
    else:
        host, port = shown.rsplit(":", 1)
        assert host == "127.0.0.1"
        conn = socket.create_connection((host, int(port)), timeout=60)
    with conn:
        conn.settimeout(60)
        assert_echoes_intact(conn, 1 << 20)
    assert forward.stop(signal.SIGTERM) == 0
    assert not Path(local).exists()
    echo.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("proxy", "not-a-port"), "invalid int value"),
        (("frobnicate",), "invalid choice"),
        (("forward", "5432", "db"), "target must be 'host:port'"),
        (("forward", "db.example:5432", "db:5432"), "the local host must be an IP address"),
    ],
)
def test_bad_arguments(env: dict[str, Any], args: tuple[str, ...], message: str) -> None:
    result = run(*args, env=env)
    assert result.returncode == (1 if args[0] == "forward" else 2)
    assert message in result.stderr
