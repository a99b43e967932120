"""A real ``tailscaled`` (userspace networking) as a child process, for interop tests.

It runs with its state, LocalAPI socket and log in one directory, the quiet
environment (no log upload, no port mapping), ``--port=0``, and is always
stopped by :meth:`Tailscaled.close`. Every wait polls ``tailscale status
--json`` (or the log) against a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tailnet.testing import QUIET_ENVIRONMENT


def poll(check: Callable[[], Any], what: str, timeout: float, describe: Callable[[], str]) -> Any:
    """Call ``check`` until it returns something truthy; return that, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s\n{describe()}")
        time.sleep(0.1)
    return result


class Tailscaled:
    """``tailscaled --tun=userspace-networking`` plus its ``tailscale`` CLI."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.socket = root / "tailscaled.sock"
        self.log_path = root / "tailscaled.log"
        self.env = {**os.environ, **QUIET_ENVIRONMENT}
        self.hostname = ""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(bin_dir / "tailscaled"),
                    "--tun=userspace-networking",
                    f"--statedir={root / 'state'}",
                    f"--socket={self.socket}",
                    "--port=0",
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            poll(self._local_api_answers, "tailscaled's LocalAPI", 60, self.log_tail)
        except BaseException:
            self.close()
            raise

    def cli_args(self, *args: str) -> list[str]:
        return [str(self.bin_dir / "tailscale"), f"--socket={self.socket}", *args]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``tailscale ARGS`` against this daemon."""
        return subprocess.run(
            self.cli_args(*args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def _local_api_answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"tailscaled exited with {self.process.returncode}\n{self.log_tail()}")
        return self.cli("status", "--json", timeout=30).stdout.lstrip().startswith("{")

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        assert result.stdout.lstrip().startswith("{"), result.stderr
        status: dict[str, Any] = json.loads(result.stdout)
        return status

    def up(self, control_url: str, authkey: str, hostname: str) -> None:
        """``tailscale up`` against ``control_url``; returns once the node is Running."""
        self.hostname = hostname
        result = self.cli(
            "up",
            f"--login-server={control_url}",
            f"--authkey={authkey}",
            f"--hostname={hostname}",
            "--timeout=90s",
            timeout=120,
        )
        assert result.returncode == 0, f"tailscale up: {result.stderr}\n{self.log_tail()}"
        poll(
            lambda: self.status()["BackendState"] == "Running" and self.status()["Self"]["TailscaleIPs"],
            "tailscaled Running with IPs",
            60,
            self.log_tail,
        )

    @property
    def ips(self) -> list[str]:
        """The node's tailnet addresses, IPv4 first."""
        return list(self.status()["Self"]["TailscaleIPs"])

    def wait_for_peer(self, ip: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until the control server has told this node about the peer with ``ip``."""

        def peer() -> dict[str, Any] | None:
            for candidate in (self.status().get("Peer") or {}).values():
                if ip in candidate.get("TailscaleIPs", []):
                    found: dict[str, Any] = candidate
                    return found
            return None

        found: dict[str, Any] = poll(peer, f"tailscaled sees peer {ip}", timeout, self.log_tail)
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "tailscaled log (tail):\n" + "\n".join(self.log().splitlines()[-lines:])

    def close(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after 10 s) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
