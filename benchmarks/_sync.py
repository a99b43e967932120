"""The workloads on blocking sockets and threads: tailnet's sync API, or plain loopback sockets.

The twin of go/cmd/tsnetbench (same services, ports and timings): a
thread per connection on the server, a thread per stream on the client,
as a program using the blocking API would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ._spec import (
    DIAL_TIMEOUT,
    PORT_CONTROL,
    PORT_ECHO,
    PORT_GREET,
    PORT_SINK,
    PORT_UDP,
    RTT_WARMUP,
    Sizes,
    mbps,
    now_ns,
    percentile_us,
    rss_mib,
    state_dir,
)
from ._udp import UdpCounter

__all__ = ["Loopback", "TailnetNetwork", "measure_memory", "run_client", "run_server"]


class Datagrams(Protocol):
    """A UDP socket: the part of ``socket.socket`` and ``tailnet.DatagramSocket`` used here."""

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int: ...
    def recvfrom(self, bufsize: int, /) -> tuple[bytes, Any]: ...
    def settimeout(self, timeout: float | None, /) -> None: ...


class Accepting(Protocol):
    """A listener: ``socket.socket`` and ``tailnet.Listener`` both accept like this."""

    def accept(self) -> tuple[socket.socket, Any]: ...


class Network(Protocol):
    """Where a worker listens and dials."""

    host: str
    startup_ms: float | None

    def listen(self, port: int) -> Accepting: ...
    def dial(self, host: str, port: int) -> socket.socket: ...
    def datagrams(self, port: int) -> Datagrams | None: ...


class TailnetNetwork:
    """A tailnet node of this process (``tailnet.Server``); joining it is timed."""

    def __init__(self, role: str) -> None:
        import tailnet  # here: the loopback baseline should not pay for importing it

        start = now_ns()
        self.server = tailnet.Server(
            f"py-{role}-{os.getpid()}", state_dir=state_dir(role), ephemeral=True
        ).up(timeout=60)
        self.startup_ms: float | None = (now_ns() - start) / 1e6
        self.host = str(self.server.ips[0])

    def listen(self, port: int) -> Accepting:
        return self.server.listen("tcp", f":{port}")

    def dial(self, host: str, port: int) -> socket.socket:
        return self.server.dial("tcp", (host, port), timeout=DIAL_TIMEOUT)

    def datagrams(self, port: int) -> Datagrams | None:
        """A UDP socket on the node, or None while tailnet has no UDP."""
        listen_packet = getattr(self.server, "listen_packet", None)
        if listen_packet is None:
            return None
        sock: Datagrams = listen_packet("udp4", f"{self.host}:{port}")
        return sock


class Loopback:
    """Plain sockets on 127.0.0.1: what Python itself costs, with no tailnet."""

    host = "127.0.0.1"
    startup_ms: float | None = None

    def listen(self, port: int) -> Accepting:
        return socket.create_server((self.host, port), backlog=1024)

    def dial(self, host: str, port: int) -> socket.socket:
        sock = socket.create_connection((host, port), timeout=DIAL_TIMEOUT)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does
        return sock

    def datagrams(self, port: int) -> Datagrams | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, port))
        return sock


def _thread(target: Callable[..., object], *args: object) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


# --- the server -------------------------------------------------------------


def run_server(net: Network, sizes: Sizes) -> None:
    """Run the services and print the server line; return when stdin closes."""
    counter = UdpCounter()
    services: list[tuple[int, bytes, Callable[[socket.socket], None]]] = [
        (PORT_ECHO, b"", lambda c: _echo(c, sizes.chunk)),
        (PORT_SINK, b"", lambda c: _sink(c, sizes.chunk)),
        (PORT_GREET, b"\x01", lambda c: _drain(c, 64)),
        (PORT_CONTROL, b"", lambda c: _control(c, counter)),
    ]
    for port, hello, handle in services:
        _thread(_serve, net.listen(port), hello, handle)
    udp = net.datagrams(PORT_UDP)
    if udp is not None:
        _thread(_count_datagrams, udp, counter)
    print(json.dumps({"host": net.host, "startup_ms": net.startup_ms, "udp": udp is not None}), flush=True)
    sys.stdin.read()


def _serve(listener: Accepting, hello: bytes, handle: Callable[[socket.socket], None]) -> None:
    """Accept forever: write hello (if any) at once, then run handle in a thread of its own."""
    while True:
        conn, _ = listener.accept()
        if hello:
            try:
                conn.sendall(hello)
            except OSError:
                conn.close()
                continue
        _thread(_handle, conn, handle)


def _handle(conn: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    with conn, contextlib.suppress(OSError):  # the client went away
        handle(conn)


def _echo(conn: socket.socket, chunk: int) -> None:
    while data := conn.recv(chunk):
        conn.sendall(data)


def _drain(conn: socket.socket, chunk: int) -> None:
    buf = bytearray(chunk)
    while conn.recv_into(buf):
        pass


def _sink(conn: socket.socket, chunk: int) -> None:
    _drain(conn, chunk)
    conn.sendall(b"\x01")


def _control(conn: socket.socket, counter: UdpCounter) -> None:
    with conn.makefile("rb") as lines:
        for line in lines:
            conn.sendall(counter.command(line.decode()).encode())


def _count_datagrams(sock: Datagrams, counter: UdpCounter) -> None:
    while True:
        data, sender = sock.recvfrom(65536)
        if len(data) == 1:
            sock.sendto(data, sender)
        else:
            counter.arrived(len(data))


# --- the client -------------------------------------------------------------


def run_client(net: Network, host: str, sizes: Sizes, workloads: list[str]) -> dict[str, Any]:
    """Warm up, run the workloads against the server at host, return the figures."""
    client = _Client(net, host, sizes)
    if net.startup_ms is not None:
        client.figures["startup_ms"] = net.startup_ms
    client.warm()
    for name in workloads:
        getattr(client, name)()
    return client.figures


class _Client:
    def __init__(self, net: Network, host: str, sizes: Sizes) -> None:
        self.net, self.host, self.sizes = net, host, sizes
        self.figures: dict[str, Any] = {}

    def warm(self) -> None:
        """Round trips for sizes.warm seconds: the path to the peer settles (DERP -> direct)."""
        with self.net.dial(self.host, PORT_ECHO) as conn:
            end = now_ns() + int(self.sizes.warm * 1e9)
            while now_ns() < end:
                _ping(conn)

    def rtt(self) -> None:
        """1-byte round trips on one connection."""
        samples = []
        with self.net.dial(self.host, PORT_ECHO) as conn:
            for i in range(RTT_WARMUP + self.sizes.rtt_count):
                took = _ping(conn)
                if i >= RTT_WARMUP:
                    samples.append(took)
        self.figures["rtt_p50_us"] = percentile_us(samples, 50)
        self.figures["rtt_p99_us"] = percentile_us(samples, 99)

    def bulk(self) -> None:
        """One stream of bulk_bytes to the sink."""
        with self.net.dial(self.host, PORT_SINK) as conn:
            start = now_ns()
            _send_and_await(conn, self.sizes.bulk_bytes, self.sizes.chunk)
            self.figures["bulk_mbps"] = mbps(self.sizes.bulk_bytes, (now_ns() - start) / 1e9)

    def concurrent(self) -> None:
        """Streams opened first, then all sending at once, a thread each."""
        conns = [self.net.dial(self.host, PORT_SINK) for _ in range(self.sizes.streams)]
        errors: list[BaseException] = []

        def send(conn: socket.socket) -> None:
            try:
                _send_and_await(conn, self.sizes.stream_bytes, self.sizes.chunk)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(c,)) for c in conns]
        start = now_ns()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = (now_ns() - start) / 1e9
        for conn in conns:
            conn.close()
        if errors:
            raise errors[0]
        self.figures["concurrent_mbps"] = mbps(self.sizes.stream_bytes * len(conns), took)

    def connect(self) -> None:
        """Connections one after another, timed from dial to the greeting's byte."""
        samples = []
        for _ in range(self.sizes.connect_count):
            start = now_ns()
            with self.net.dial(self.host, PORT_GREET) as conn:
                _recv_exactly(conn, 1)
                samples.append(now_ns() - start)
        self.figures["connect_p50_us"] = percentile_us(samples, 50)
        self.figures["connect_p99_us"] = percentile_us(samples, 99)

    def udp(self) -> None:
        """Datagrams as fast as they go; the server counts them."""
        sock = self.net.datagrams(0)
        if sock is None:
            self.figures.setdefault("notes", []).append("udp: this tailnet has no UDP (listen_packet)")
            return
        with self.net.dial(self.host, PORT_CONTROL) as ctl, ctl.makefile("rb") as lines:
            _ask(ctl, lines, f"begin {self.sizes.udp_size}")
            to = (self.host, PORT_UDP)
            _warm_datagrams(sock, to)
            payload = bytes(self.sizes.udp_size)
            for _ in range(self.sizes.udp_count):
                sock.sendto(payload, to)
            got, seconds = _ask(ctl, lines, f"end {self.sizes.udp_count}").split()
        received = int(got)
        self.figures["udp_pps"] = (received - 1) / float(seconds) if received > 1 and float(seconds) else 0.0
        self.figures["udp_loss"] = 1 - received / self.sizes.udp_count


def _ping(conn: socket.socket) -> int:
    start = now_ns()
    conn.sendall(b"\x01")
    _recv_exactly(conn, 1)
    return now_ns() - start


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed early")
        data += chunk
    return data


def _send_and_await(conn: socket.socket, total: int, chunk: int) -> None:
    buf = memoryview(bytes(chunk))
    sent = 0
    while sent < total:
        part = buf[: min(chunk, total - sent)]
        conn.sendall(part)
        sent += len(part)
    conn.shutdown(socket.SHUT_WR)
    _recv_exactly(conn, 1)


def _ask(ctl: socket.socket, lines: Any, line: str) -> str:
    ctl.sendall(f"{line}\n".encode())
    reply: str = lines.readline().decode().strip()
    if not reply or reply.startswith("error"):
        raise RuntimeError(f"control: {reply or 'closed'}")
    return reply


def _warm_datagrams(sock: Datagrams, to: tuple[str, int]) -> None:
    end = now_ns() + 30 * 10**9
    sock.settimeout(0.01)
    try:
        while now_ns() < end:
            sock.sendto(b"\x00", to)
            try:
                sock.recvfrom(64)
            except TimeoutError:
                continue
            return
        raise RuntimeError("no datagram was answered within 30 s")
    finally:
        sock.settimeout(None)


# --- memory -----------------------------------------------------------------


def measure_memory(net: Network, host: str, conns: int, settle: float) -> dict[str, float]:
    """RSS with the network idle (one node, or none on loopback), then with conns connections open."""
    time.sleep(settle)
    figures = {"rss_idle_mb": rss_mib()}
    socks = [net.dial(host, PORT_SINK) for _ in range(conns)]
    time.sleep(settle)
    figures["rss_conns_mb"] = rss_mib()
    for sock in socks:
        sock.close()
    return figures
