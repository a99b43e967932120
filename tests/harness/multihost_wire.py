"""The router's wire: a userspace stand-in for tc netem, run by tests/harness/multihost.py.

This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is off) and this machine
has no nft/iptables, so impairments are done here: the router namespace
routes every packet it forwards into the TUN device ``wire-in``; this
process reads it, drops, delays or counts it, and writes it to the TUN
device ``wire-out``, from where the kernel routes it on to its destination.
TUN devices without offloads receive packets segmented to the MTU and with
complete checksums, so what is written back is valid as is.

Commands, one JSON object per line on stdin, each answered by one JSON line:

    {"cmd": "set", "loss": 0.2, "delay_ms": 100}   every packet, both ways
    {"cmd": "block", "proto": "udp", "a": IP, "b": IP}   drop proto between a and b
    {"cmd": "unblock", "proto": "udp", "a": IP, "b": IP}
    {"cmd": "stats"}     {"counts": {"udp 10.99.2.2 10.99.3.2": n, ...}, "dropped": n}
    {"cmd": "reset_stats"}

It prints {"ready": true} once both devices exist, and exits at end of input.
"""

from __future__ import annotations

import fcntl
import heapq
import itertools
import json
import os
import random
import select
import struct
import sys
import time
from collections import Counter
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
PROTOCOLS = {6: "tcp", 17: "udp", 1: "icmp"}
MAX_PACKET = 65535


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def flow(packet: bytes) -> tuple[str, str, str]:
    """(protocol, source, destination) of an IPv4 packet."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return ("other", "", "")
    proto = PROTOCOLS.get(packet[9], str(packet[9]))
    return proto, ".".join(map(str, packet[12:16])), ".".join(map(str, packet[16:20]))


class Wire:
    def __init__(self, inbound: int, outbound: int) -> None:
        self.inbound, self.outbound = inbound, outbound
        self.loss = 0.0
        self.delay = 0.0
        self.blocked: set[tuple[str, frozenset[str]]] = set()
        self.counts: Counter[str] = Counter()
        self.dropped = 0
        self.queue: list[tuple[float, int, bytes]] = []
        self.seq = itertools.count()
        self.random = random.Random(8)  # impairment, not security

    def command(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        if cmd == "set":
            self.loss = float(request.get("loss", 0.0))
            self.delay = float(request.get("delay_ms", 0.0)) / 1000
        elif cmd in ("block", "unblock"):
            key = (request["proto"], frozenset((request["a"], request["b"])))
            (self.blocked.add if cmd == "block" else self.blocked.discard)(key)
        elif cmd == "stats":
            return {"counts": dict(self.counts), "dropped": self.dropped}
        elif cmd == "reset_stats":
            self.counts.clear()
            self.dropped = 0
        else:
            return {"error": f"unknown command {cmd!r}"}
        return {"ok": True}

    def take(self, packet: bytes, now: float) -> None:
        proto, src, dst = flow(packet)
        self.counts[f"{proto} {src} {dst}"] += 1
        if (proto, frozenset((src, dst))) in self.blocked or (self.loss and self.random.random() < self.loss):
            self.dropped += 1
            return
        if self.delay:
            heapq.heappush(self.queue, (now + self.delay, next(self.seq), packet))
        else:
            self.send(packet)

    def send(self, packet: bytes) -> None:
        try:
            os.write(self.outbound, packet)
        except OSError:  # the kernel refused it (e.g. no route any more): as if lost
            self.dropped += 1

    def flush(self, now: float) -> float | None:
        """Send what is due; return seconds until the next packet is."""
        while self.queue and self.queue[0][0] <= now:
            self.send(heapq.heappop(self.queue)[2])
        return self.queue[0][0] - now if self.queue else None

    def pump(self) -> None:
        """Read every packet waiting on the inbound device."""
        now = time.monotonic()
        for _ in range(256):
            try:
                packet = os.read(self.inbound, MAX_PACKET)
            except BlockingIOError:
                return
            self.take(packet, now)


def main() -> None:
    wire = Wire(open_tun("wire-in"), open_tun("wire-out"))
    print(json.dumps({"ready": True}), flush=True)
    stdin = sys.stdin.fileno()
    pending = b""
    while True:
        wait = wire.flush(time.monotonic())
        readable, _, _ = select.select([wire.inbound, stdin], [], [], wait)
        if wire.inbound in readable:
            wire.pump()
        if stdin in readable:
            chunk = os.read(stdin, 65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    print(json.dumps(wire.command(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
