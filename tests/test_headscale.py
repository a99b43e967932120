"""tailnet nodes on a real headscale (the self-hosted control server).

headscale is built (once, cached: tests/harness/gotools.py) at the release pinned
there and runs on 127.0.0.1 with SQLite; its DERP map is the local
tailnet's relay (LocalTailnet.derp_map), so nothing is fetched from
anywhere. Users and pre-auth keys come from its own CLI.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import gotools
from harness.headscale import Headscale
from harness.helpers import EchoServer, assert_echoes_intact, eventually, run_node_process

import tailnet
from tailnet.testing import QUIET_ENVIRONMENT, LocalTailnet

# The first run builds headscale (about 10 minutes when Go's build cache is
# cold): the per-test timeout covers the test, not that one-off build.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(300, func_only=True)]


@pytest.fixture(scope="module")
def headscale_bin() -> Path:
    tools = gotools.require(gotools.headscale_tools())
    return tools.path("headscale")


@pytest.fixture(scope="module")
def headscale(
    headscale_bin: Path, local_tailnet: LocalTailnet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Headscale]:
    server = Headscale(headscale_bin, tmp_path_factory.mktemp("headscale"), local_tailnet.derp_map)
    yield server
    server.close()


@pytest.fixture(scope="module")
def authkey(headscale: Headscale) -> str:
    return headscale.create_authkey(headscale.create_user("alice")).key


def headscale_node(headscale: Headscale, hostname: str, key: str, state_root: Path) -> tailnet.Server:
    """A node (not yet up) whose control server is ``headscale``."""
    return tailnet.Server(
        hostname, control_url=headscale.url, authkey=key, state_dir=state_root / hostname, ephemeral=True
    )


def reachable(node: tailnet.Server, peer: tailnet.Server) -> None:
    """Wait until ``node``'s map lists ``peer`` with its DERP home.

    headscale lists a new peer before it relays where the peer can be
    reached; a connection started in between waits for TCP retransmits.
    """

    def ready() -> bool:
        status = node.status().peer(peer.hostname)
        return status is not None and status.derp_region is not None

    eventually(ready, timeout=30)


@pytest.fixture
def hs_node(headscale: Headscale, authkey: str, tmp_path: Path) -> Iterator[Callable[..., tailnet.Server]]:
    """Make nodes that are up on headscale; they close after the test."""
    made: list[tailnet.Server] = []

    def make(hostname: str, *, key: str = authkey) -> tailnet.Server:
        server = headscale_node(headscale, hostname, key, tmp_path)
        made.append(server)
        return server.up(timeout=60)

    yield make
    for server in reversed(made):
        server.close()


@pytest.fixture(scope="module")
def hs_pair(
    headscale: Headscale, authkey: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[tailnet.Server, tailnet.Server, EchoServer]]:
    """A client and a server node on headscale, the server echoing on port 7."""
    state = tmp_path_factory.mktemp("hs-pair")
    with (
        headscale_node(headscale, "hs-client", authkey, state) as client,
        headscale_node(headscale, "hs-server", authkey, state) as server,
    ):
        reachable(client, server)
        reachable(server, client)
        echo = EchoServer(server.listen("tcp", ":7"))
        try:
            yield client, server, echo
        finally:
            echo.close()


@pytest.mark.parametrize("address", ["name", "fqdn", "ipv4", "ipv6"])
def test_two_nodes_on_headscale_echo(
    address: str, hs_pair: tuple[tailnet.Server, tailnet.Server, EchoServer]
) -> None:
    client, server, echo = hs_pair
    host = {
        "name": "hs-server",
        "fqdn": "hs-server.hs.test",  # MagicDNS under headscale's base_domain
        "ipv4": str(server.ips[0]),
        "ipv6": str(server.ips[1]),
    }[address]
    with client.dial("tcp", (host, 7), timeout=60) as conn:
        assert_echoes_intact(conn, 1 << 20)
    assert echo.peers[-1][0] == str(client.ips[1 if address == "ipv6" else 0])


def test_headscale_registers_the_nodes_with_their_addresses(
    headscale: Headscale, hs_node: Callable[..., tailnet.Server]
) -> None:
    node = hs_node("hs-listed")
    listed = {entry["name"]: entry for entry in headscale.nodes()}
    assert set(listed["hs-listed"]["ip_addresses"]) == {str(ip) for ip in node.ips}
    assert listed["hs-listed"]["user"]["name"] == "alice"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("hskey-auth-" + "A" * 12 + "-" + "b" * 64, "invalid pre auth key"),  # well-formed, never issued
        ("hskey-auth-tooShort", "failed to parse auth-key"),
    ],
    ids=["unknown", "malformed"],
)
def test_headscale_rejects_a_key_it_did_not_issue(
    key: str, message: str, hs_node: Callable[..., tailnet.Server]
) -> None:
    with pytest.raises(tailnet.AuthenticationError, match=message):
        hs_node("hs-impostor", key=key)


def test_a_single_use_key_admits_one_node(
    headscale: Headscale, hs_node: Callable[..., tailnet.Server]
) -> None:
    key = headscale.create_authkey(headscale.create_user("bob"), reusable=False)
    assert hs_node("hs-single-1", key=key.key).ips
    with pytest.raises(tailnet.AuthenticationError, match="authkey already used"):
        hs_node("hs-single-2", key=key.key)


def test_an_expired_key_is_rejected(headscale: Headscale, hs_node: Callable[..., tailnet.Server]) -> None:
    key = headscale.create_authkey(headscale.create_user("erin"))
    headscale.expire_authkey(key)
    with pytest.raises(tailnet.AuthenticationError, match="authkey expired"):
        hs_node("hs-expired", key=key.key)


# ---- headscale behind TLS, with a certificate from a private CA ------------


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed CA certificate for 127.0.0.1 (and its key), made with Go's own generator."""
    go = gotools.go_binary()
    assert go is not None  # headscale_bin skipped already otherwise
    directory = tmp_path_factory.mktemp("ca")
    goroot = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(
        [go, "run", f"{goroot}/src/crypto/tls/generate_cert.go", "--host", "127.0.0.1", "--ca"],
        cwd=directory,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GOPROXY": "off"},
        capture_output=True,
        check=True,
        timeout=600,
    )
    return directory / "cert.pem", directory / "key.pem"


@pytest.fixture(scope="module")
def tls_headscale(
    headscale_bin: Path,
    local_tailnet: LocalTailnet,
    private_ca: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Headscale]:
    server = Headscale(
        headscale_bin, tmp_path_factory.mktemp("headscale-tls"), local_tailnet.derp_map, tls=private_ca
    )
    yield server
    server.close()


def spawn_node(
    headscale: Headscale, key: str, cert: Path | None, tmp_path: Path, *args: str
) -> subprocess.Popen[str]:
    """node_process.py in a process of its own, so it can trust ``cert`` from the start."""
    env = {**os.environ, **QUIET_ENVIRONMENT, "TS_CONTROL_URL": headscale.url, "TS_AUTHKEY": key}
    if cert is not None:
        env["SSL_CERT_FILE"] = str(cert)
    return run_node_process(env, tmp_path, *args)


def test_nodes_reach_headscale_over_tls_when_they_trust_its_ca(
    tls_headscale: Headscale, private_ca: tuple[Path, Path], tmp_path: Path
) -> None:
    assert tls_headscale.url.startswith("https://")
    key = tls_headscale.create_authkey(tls_headscale.create_user("carol")).key
    server = spawn_node(tls_headscale, key, private_ca[0], tmp_path, "echo", "tls-echo")
    client = None
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n", server.stderr and server.stderr.read()
        client = spawn_node(
            tls_headscale, key, private_ca[0], tmp_path, "send", "tls-client", "tls-echo:7", "over TLS"
        )
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err
        assert out == "over TLS\n"
    finally:
        for proc in (server, client):
            if proc is not None:
                proc.kill()
                proc.communicate()


def test_a_node_that_does_not_trust_the_ca_cannot_log_in(
    tls_headscale: Headscale, headscale_bin: Path, tmp_path: Path
) -> None:
    key = tls_headscale.create_authkey(tls_headscale.create_user("dave")).key
    proc = spawn_node(tls_headscale, key, None, tmp_path, "try-up", "tls-untrusting", "5")
    try:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out == "TailnetTimeout\n"
    finally:
        proc.kill()
        proc.communicate()


def test_the_binary_is_the_pinned_release(headscale_bin: Path) -> None:
    printed = subprocess.run(
        [str(headscale_bin), "version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"headscale version {gotools.HEADSCALE_VERSION}\n" in printed.stdout
