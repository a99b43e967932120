"""Soak: connect, transfer, close for minutes on end; nothing may grow.

    ./dev soak [MINUTES]        (default 10; runs in the private netns)

One process, a local tailnet, two long-lived nodes (one serves an echo) and
four worker threads that dial, send 256 KiB, check every byte and close,
over and over; a fifth thread restarts a third node from its state dir
every few seconds and has it echo to itself. Every 30 s it prints the
process's descriptors, Go goroutines, RSS and live Go heap. After a warm-up
(the first fifth, at least a minute: TIME_WAIT endpoints and Go's heap
find their level) the rest must stay flat: descriptors and goroutines no
higher than the warm-up's peak plus a small margin, RSS and heap no more
than 25 % above it. Exit status 0 if so, 1 if anything grew or a transfer
failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import tailnet
from tailnet.testing import LocalTailnet, debug_counter

TRANSFER = 256 << 10
SAMPLE_EVERY = 30.0
#: Allowed growth over the warm-up's peak.
MARGIN = {"fds": 4, "goroutines": 30, "rss_mib": 0.25, "heap_mib": 0.25}


def sample() -> dict[str, float]:
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "goroutines": debug_counter("goroutines"),
        "rss_mib": round(rss / 1024, 1),
        "heap_mib": round(debug_counter("heap_bytes") / (1 << 20), 1),
    }


def echo_forever(listener: tailnet.Listener) -> None:
    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    for conn, _ in listener:
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def transfer(conn: socket.socket) -> bool:
    """Send TRANSFER random bytes through an echo; True if all came back intact."""
    data = os.urandom(TRANSFER)

    def send() -> None:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=send)
    writer.start()
    got = hashlib.sha256()
    size = 0
    while chunk := conn.recv(1 << 16):
        got.update(chunk)
        size += len(chunk)
    writer.join()
    return size == TRANSFER and got.digest() == hashlib.sha256(data).digest()


class Soak:
    def __init__(self, net: LocalTailnet, client: tailnet.Server, target: str, root: Path) -> None:
        self.net, self.client, self.target, self.root = net, client, target, root
        self.stop = threading.Event()
        self.lock = threading.Lock()
        #: Held by the restarter through each cycle: samples are taken
        #: between cycles, when the third node is not running, so they
        #: compare like with like.
        self.cycle = threading.Lock()
        self.counts = {"transfers": 0, "failures": 0, "restarts": 0}

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def worker(self) -> None:
        while not self.stop.is_set():
            try:
                with self.client.dial("tcp", (self.target, 7), timeout=30) as conn:
                    ok = transfer(conn)
            except OSError as exc:
                print(f"transfer failed: {exc!r}", file=sys.stderr)
                ok = False
            self.count("transfers" if ok else "failures")

    def restarter(self) -> None:
        """A node restarted from its state dir again and again, echoing to itself."""
        while not self.stop.is_set():
            with self.cycle:
                self.restart_once()
            self.stop.wait(2)

    def restart_once(self) -> None:
        try:
            with (
                self.net.server("soak-restart", state_dir=self.root / "restart", ephemeral=False) as node,
                node.listen("tcp", ":7") as listener,
            ):
                threading.Thread(target=echo_forever, args=(listener,), daemon=True).start()
                with node.dial("tcp", (str(node.ips[0]), 7), timeout=30) as conn:
                    ok = transfer(conn)
            self.count("restarts" if ok else "failures")
        except OSError as exc:
            print(f"restart cycle failed: {exc!r}", file=sys.stderr)
            self.count("failures")


def verdict(samples: list[dict[str, float]], warm: int) -> list[str]:
    """What grew after the warm-up (the first `warm` samples)."""
    grown = []
    for key, margin in MARGIN.items():
        base = max(s[key] for s in samples[:warm])
        limit = base * (1 + margin) if isinstance(margin, float) else base + margin
        peak = max(s[key] for s in samples[warm:])
        if peak > limit:
            grown.append(f"{key}: {peak} after the warm-up, limit {limit:g} (warm-up peak {base})")
    return grown


def run(soak: Soak, duration: float) -> list[dict[str, float]]:
    """Run the workers for duration seconds, sampling every SAMPLE_EVERY."""
    samples: list[dict[str, float]] = []
    threads = [threading.Thread(target=soak.worker) for _ in range(4)]
    threads.append(threading.Thread(target=soak.restarter))
    for t in threads:
        t.start()
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            soak.stop.wait(min(SAMPLE_EVERY, duration - elapsed))
            with soak.cycle:
                now = sample()
            samples.append({"t": round(time.monotonic() - started), **now, **soak.counts})
            print(json.dumps(samples[-1]), flush=True)
    finally:
        soak.stop.set()
        for t in threads:
            t.join(60)
    return samples


def main(minutes: float) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        LocalTailnet() as net,
        net.server("soak-server") as server,
        net.server("soak-client") as client,
        server.listen("tcp", ":7") as listener,
    ):
        threading.Thread(target=echo_forever, args=(listener,), daemon=True).start()
        samples = run(Soak(net, client, str(server.ips[0]), Path(tmp)), minutes * 60)
    warm = max(2, len(samples) // 5, int(60 // SAMPLE_EVERY))
    grown = verdict(samples, warm) if len(samples) > warm else ["too short to judge (needs > 1 min)"]
    failures = samples[-1]["failures"] if samples else 0
    summary = {
        "minutes": minutes,
        "samples": len(samples),
        "grown": grown,
        **(samples[-1] if samples else {}),
    }
    print("soak:", json.dumps(summary), flush=True)
    ok = not grown and not failures
    print("soak: flat" if ok else f"soak: FAILED ({failures} failed transfers; grown: {grown})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
