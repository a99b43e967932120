"""A real headscale control server as a child process, for interop tests.

It listens on 127.0.0.1 only, keeps its SQLite database, keys and CLI
socket in one directory, checks for no updates, fetches no DERP map (its
only DERP region is the local tailnet's relay, from a file), and is always
stopped by :meth:`Headscale.close`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

from harness.tailscaled import poll


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (headscale needs fixed ports in its config)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def to_yaml(value: object) -> str:
    """JSON-like data as YAML flow style with bare keys.

    headscale reads a DERP map file with yaml.v3 into tailcfg.DERPMap: keys
    are the Go field names in lower case, and region IDs are integer keys,
    which JSON (string keys only) cannot express.
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{str(key).lower()}: {to_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_yaml(item) for item in value) + "]"
    return json.dumps(value)


class PreAuthKey(NamedTuple):
    """A key as headscale's CLI created it."""

    id: int
    key: str


class Headscale:
    """``headscale serve`` on loopback with the given DERP map, plus its CLI."""

    def __init__(
        self,
        binary: Path,
        root: Path,
        derp_map: dict[str, Any],
        *,
        base_domain: str = "hs.test",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.binary = binary
        self.root = root
        self.log_path = root / "headscale.log"
        port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        derp_file = root / "derp.yaml"
        derp_file.write_text(to_yaml(derp_map) + "\n")
        config: dict[str, Any] = {
            "server_url": self.url,
            "listen_addr": f"127.0.0.1:{port}",
            "metrics_listen_addr": f"127.0.0.1:{free_port()}",
            "grpc_listen_addr": f"127.0.0.1:{free_port()}",
            "noise": {"private_key_path": str(root / "noise_private.key")},
            "prefixes": {"v4": "100.64.0.0/10", "v6": "fd7a:115c:a1e0::/48", "allocation": "sequential"},
            # No embedded DERP, no DERP map URL (the default fetches Tailscale's): the file only.
            "derp": {
                "server": {"enabled": False},
                "urls": [],
                "paths": [str(derp_file)],
                "auto_update_enabled": False,
            },
            "disable_check_updates": True,
            "database": {
                "type": "sqlite",
                "sqlite": {"path": str(root / "db.sqlite"), "write_ahead_log": True},
            },
            "policy": {"mode": "file", "path": ""},
            "dns": {
                "magic_dns": True,
                "base_domain": base_domain,
                "override_local_dns": False,
                "nameservers": {"global": []},
            },
            "unix_socket": str(root / "headscale.sock"),
            "unix_socket_permission": "0770",
            "logtail": {"enabled": False},
            "taildrop": {"enabled": False},
            "log": {"level": "info", "format": "text"},
        }
        if tls:
            config["tls_cert_path"], config["tls_key_path"] = str(tls[0]), str(tls[1])
        self.config = root / "config.yaml"
        self.config.write_text(json.dumps(config, indent=1) + "\n")  # JSON is YAML
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "--config", str(self.config), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            poll(self._ready, "headscale answering", 60, self.log_tail)
        except BaseException:
            self.close()
            raise

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"headscale exited with {self.process.returncode}\n{self.log_tail()}")
        if not (self.root / "headscale.sock").exists():
            return False
        plain = self.url.replace("https://", "http://")  # readiness only: the socket answers or not
        try:
            with urllib.request.urlopen(f"{plain}/health", timeout=5) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError:
            return True  # answered (e.g. a plain HTTP request to the TLS port)
        except OSError:
            return False

    def cli(self, *args: str) -> Any:
        """Run ``headscale ARGS -o json`` and return its parsed output."""
        result = subprocess.run(
            [str(self.binary), "--config", str(self.config), *args, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"headscale {' '.join(args)}: {result.stdout}{result.stderr}"
        return json.loads(result.stdout)

    def create_user(self, name: str) -> int:
        user_id: int = self.cli("users", "create", name)["id"]
        return user_id

    def create_authkey(self, user_id: int, *, reusable: bool = True) -> PreAuthKey:
        """A pre-auth key for the user, valid for an hour."""
        args = ["preauthkeys", "create", "--user", str(user_id), "--expiration", "1h"]
        created = self.cli(*args, *["--reusable"] * reusable)
        return PreAuthKey(created["id"], created["key"])

    def expire_authkey(self, key: PreAuthKey) -> None:
        self.cli("preauthkeys", "expire", "--id", str(key.id))

    def nodes(self) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = self.cli("nodes", "list") or []
        return nodes

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return "headscale log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop headscale (SIGTERM, then SIGKILL after 10 s) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
