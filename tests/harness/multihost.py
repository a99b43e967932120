"""Multi-host test harness: network namespaces joined through a router.

    net = Network()                       # the router namespace and its wire
    control = net.add_host("control")     # 10.99.1.2
    a, b = net.add_host("a"), net.add_host("b")   # 10.99.2.2, 10.99.3.2
    tailnet = ControlProcess(control)     # python -m tailnet.testing there
    node = NodeProcess(a, "alpha", tailnet, tmp_path)   # tests/harness/node_runner.py there
    net.wire.block("udp", a, b)           # direct path cut, DERP still up
    net.cut(control)                      # its link down
    net.close()

Topology: a star. Each host is a network namespace with one veth link to
the router namespace: the host is 10.99.K.2/24, the router 10.99.K.1, and
the host's default route points there. The router forwards everything
through its wire (tests/harness/multihost_wire.py), the userspace stand-in for
``tc netem`` that can drop, delay, block and count packets.

Namespaces are not created with ``ip netns add``: that bind-mounts them
under /var/run/netns in the mount namespace scripts/in-netns shares with the
host, where a killed test run would leave them behind. Each namespace is
instead held by a ``cat`` started with ``unshare --net`` that reads a pipe
from this process; processes enter namespaces with ``nsenter``. Every
process the harness starts (holders, the wire, control servers, nodes)
exits when its stdin reaches end of input, so however the test process
dies (even SIGKILL) the namespaces disappear with it: nothing to clean up.
Addresses are 10.99.0.0/16, private and routed nowhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
WIRE = HERE / "multihost_wire.py"
NODE_RUNNER = HERE / "node_runner.py"
ROUTED_TABLE = "100"


def available() -> str | None:
    """Why the harness cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (run through ./dev test)"
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            return f"needs {tool}"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def _check(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


class Namespace:
    """A network namespace held open by a ``cat`` reading our pipe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        self.pid = self._holder.pid
        # unshare creates the namespace before it execs cat: wait until it has.
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{self.pid}/ns/net") == own:
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not create a namespace")
            time.sleep(0.01)
        self.run_ip("link", "set", "lo", "up")

    def command(self, *argv: str) -> list[str]:
        """argv, run inside this namespace."""
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--", *argv]

    def run_ip(self, *args: str) -> None:
        _check(self.command("ip", *args))

    def sysctl(self, key: str, value: str) -> None:
        _check(self.command("sh", "-c", f"echo {value} > /proc/sys/{key.replace('.', '/')}"))

    def close(self) -> None:
        if self._holder.poll() is None:
            assert self._holder.stdin is not None
            self._holder.stdin.close()
            self._holder.wait(10)


class JsonProcess:
    """A child that talks one JSON object per line on stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self._log = log
        self.argv = argv
        stderr = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in kill
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        if log:
            stderr.close()  # type: ignore[union-attr]
        self._lock = threading.Lock()

    def read(self, timeout: float = 60) -> dict[str, Any]:
        """The next line the child prints, parsed (a timeout kills the child)."""
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            raise RuntimeError(f"{self.argv[-1]!r} exited ({self.proc.poll()}){self._tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, reply_timeout: float = 60, **request: Any) -> dict[str, Any]:
        """Send a command and return its reply."""
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            return self.read(reply_timeout)

    def _tail(self) -> str:
        if self._log and self._log.exists():
            return "\n" + self._log.read_text(errors="replace")[-3000:]
        return ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig (default SIGKILL) and reap the child."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()

    def stop(self, timeout: float = 30) -> int:
        """Close stdin (the child's cue to exit cleanly) and wait; SIGKILL if it does not."""
        if self.proc.poll() is None and self.proc.stdin:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -signal.SIGKILL
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()


class Host:
    """A namespace linked to the router: address 10.99.K.2, gateway 10.99.K.1."""

    def __init__(self, network: Network, name: str, index: int) -> None:
        self.network = network
        self.name = name
        self.ip = f"10.99.{index}.2"
        self.router_ip = f"10.99.{index}.1"
        self.router_link = f"r-{index}"
        self.ns = Namespace(name)
        router = network.router
        link = self.router_link
        router.run_ip("link", "add", link, "type", "veth", "peer", "eth0", "netns", str(self.ns.pid))
        router.run_ip("addr", "add", f"{self.router_ip}/24", "dev", self.router_link)
        router.run_ip("link", "set", self.router_link, "up")
        router.run_ip("rule", "add", "iif", self.router_link, "lookup", ROUTED_TABLE)
        self.ns.run_ip("addr", "add", f"{self.ip}/24", "dev", "eth0")
        self.ns.run_ip("link", "set", "eth0", "up")
        self.ns.run_ip("route", "add", "default", "via", self.router_ip)

    def command(self, *argv: str) -> list[str]:
        """argv, run on this host."""
        return self.ns.command(*argv)

    def python(self, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> JsonProcess:
        """Run this venv's Python on the host, talking JSON lines."""
        return self.network.track(JsonProcess(self.command(sys.executable, *args), env=env, log=log))


class Wire:
    """Controls the router's wire (see tests/harness/multihost_wire.py)."""

    def __init__(self, proc: JsonProcess) -> None:
        self._proc = proc

    def set(self, *, loss: float = 0.0, delay_ms: float = 0.0) -> None:
        """Drop each packet with probability loss and delay every packet by delay_ms."""
        self._call(cmd="set", loss=loss, delay_ms=delay_ms)

    def block(self, proto: str, a: Host, b: Host) -> None:
        """Drop every packet of proto ("udp", "tcp") between a and b."""
        self._call(cmd="block", proto=proto, a=a.ip, b=b.ip)

    def unblock(self, proto: str, a: Host, b: Host) -> None:
        self._call(cmd="unblock", proto=proto, a=a.ip, b=b.ip)

    def stats(self) -> dict[str, int]:
        """Packets seen per "proto src dst" since the last reset."""
        counts: dict[str, int] = self._call(cmd="stats")["counts"]
        return counts

    def packets(self, proto: str, a: Host, b: Host) -> int:
        """Packets of proto seen between a and b (both directions) since the last reset."""
        counts = self.stats()
        return counts.get(f"{proto} {a.ip} {b.ip}", 0) + counts.get(f"{proto} {b.ip} {a.ip}", 0)

    def dropped(self) -> int:
        """Packets dropped (loss, blocks) since the last reset."""
        count: int = self._call(cmd="stats")["dropped"]
        return count

    def reset_stats(self) -> None:
        self._call(cmd="reset_stats")

    def _call(self, **request: Any) -> dict[str, Any]:
        reply = self._proc.call(**request)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply


class Network:
    """The router namespace, its wire, and the hosts linked to it."""

    def __init__(self) -> None:
        self.hosts: list[Host] = []
        self._procs: list[JsonProcess] = []
        self.router = Namespace("router")
        try:
            self.router.sysctl("net.ipv4.ip_forward", "1")
            for conf in ("all", "default"):
                self.router.sysctl(f"net.ipv4.conf.{conf}.rp_filter", "0")
            wire = self.track(JsonProcess(self.router.command(sys.executable, str(WIRE))))
            assert wire.read(30) == {"ready": True}
            for dev in ("wire-in", "wire-out"):
                self.router.run_ip("link", "set", dev, "up")
            self.router.sysctl("net.ipv4.conf.wire-out.rp_filter", "0")
            # Whatever arrives from a host goes into the wire; what comes out of it
            # is routed normally (the main table) to its destination host.
            self.router.run_ip("route", "add", "default", "dev", "wire-in", "table", ROUTED_TABLE)
            self.wire = Wire(wire)
        except BaseException:
            self.close()
            raise

    def add_host(self, name: str) -> Host:
        host = Host(self, name, len(self.hosts) + 1)
        self.hosts.append(host)
        return host

    def track(self, proc: JsonProcess) -> JsonProcess:
        """Stop proc when the network closes."""
        self._procs.append(proc)
        return proc

    def cut(self, host: Host) -> None:
        """Take host's link down: nothing reaches it or leaves it."""
        self.router.run_ip("link", "set", host.router_link, "down")

    def restore(self, host: Host) -> None:
        """Bring host's link back up."""
        self.router.run_ip("link", "set", host.router_link, "up")

    def close(self) -> None:
        """Stop every process, then let the namespaces go."""
        for proc in reversed(self._procs):
            proc.stop(timeout=15)
        for host in self.hosts:
            host.ns.close()
        self.router.close()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ControlProcess:
    """``python -m tailnet.testing`` on a host, restartable on the same ports."""

    def __init__(self, host: Host, log_dir: Path, **ports: int) -> None:
        self.host = host
        self._log_dir = log_dir
        self.info: dict[str, Any] = {}
        self.start(**ports)

    def start(self, **ports: int) -> None:
        """Start it; keyword ports (control_port=...) fix ports, by default the previous ones."""
        ports = ports or {k: v for k, v in self.info.items() if k.endswith("_port")}
        args = ["-m", "tailnet.testing", "--json", "--address", self.host.ip]
        if self.info:
            args += ["--authkey", self.info["authkey"]]
        for name, port in ports.items():
            args += [f"--{name.replace('_', '-')}", str(port)]
        # Its own TMPDIR: a test may kill it, and it could not remove its directory then.
        env = {**os.environ, "TMPDIR": str(self._log_dir)}
        self.proc = self.host.python(*args, env=env, log=self._log_dir / "control.log")
        self.info = self.proc.read(60)

    @property
    def url(self) -> str:
        return str(self.info["control_url"])

    @property
    def authkey(self) -> str:
        return str(self.info["authkey"])

    def deny(self, *hostnames: str) -> None:
        """The tailnet's packet filter drops connections these nodes start."""
        self._command("deny", *hostnames)

    def pause(self) -> None:
        """Take the servers down (all sockets closed), keeping the tailnet's state."""
        self._command("pause")

    def resume(self) -> None:
        """Serve the same state again on the same ports: together with pause, a restart."""
        self._command("resume")

    def _command(self, *words: str) -> None:
        assert self.proc.proc.stdin is not None
        self.proc.proc.stdin.write(" ".join(words) + "\n")
        self.proc.proc.stdin.flush()
        reply = self.proc.read()
        if "error" in reply:
            raise RuntimeError(reply["error"])

    def kill(self) -> None:
        self.proc.kill()


class NodeProcess:
    """tests/harness/node_runner.py on a host: a tailnet.Server driven by commands."""

    def __init__(
        self,
        host: Host,
        hostname: str,
        control: ControlProcess,
        state_root: Path,
        *,
        control_url: str | None = None,
        authkey: str | None = None,
        up: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        from tailnet.testing import QUIET_ENVIRONMENT

        self.host = host
        self.hostname = hostname
        state = state_root / hostname
        env = {
            **os.environ,
            **QUIET_ENVIRONMENT,
            "TS_AUTHKEY": control.authkey if authkey is None else authkey,  # not in argv: ps shows argv
            **(env or {}),
        }
        argv = [str(NODE_RUNNER), hostname, control_url or control.url, str(state)]
        self.proc = host.python(*argv, env=env, log=state_root / f"{hostname}.log")
        assert self.proc.read(60) == {"started": True}
        if up:
            reply = self.call(cmd="up", timeout=90)
            assert "error" not in reply, reply

    def call(self, reply_timeout: float = 180, **request: Any) -> dict[str, Any]:
        """Send a command (see tests/harness/node_runner.py) and return its reply."""
        return self.proc.call(reply_timeout=reply_timeout, **request)

    def ok(self, reply_timeout: float = 180, **request: Any) -> dict[str, Any]:
        """call, asserting it did not fail."""
        reply = self.call(reply_timeout=reply_timeout, **request)
        assert "error" not in reply, reply
        return reply

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.kill(sig)
