"""Run a local tailnet in its own process: ``python -m tailnet.testing``.

For tests that put nodes in other processes, network namespaces or
containers, and that want to stop or restart the control server while they
run. It starts a :class:`~tailnet.testing.LocalTailnet`, prints one JSON
line on stdout::

    {"control_url": "http://10.99.1.2:40001", "authkey": "tskey-local-...",
     "address": "10.99.1.2", "control_port": 40001, "derp_port": 40002,
     "stun_port": 40003, "pid": 1234}

and then reads commands from stdin, one per line, answering each with one
JSON line (``{"ok": true}`` or ``{"error": "..."}``):

``deny NAME...``
    :meth:`LocalTailnet.deny_from` (no names: allow all again).
``pause``, ``resume``
    :meth:`LocalTailnet.pause` and :meth:`LocalTailnet.resume`: a control
    server restart that keeps the tailnet's state, as real ones do.
``quit``
    Stop (as does end of input or SIGTERM).

The auth key is random unless ``--authkey`` is given (``--no-authkey``: any
node may join) and is printed on purpose: it admits nodes to this throwaway
tailnet only. ``--control-port``/``--derp-port``/``--stun-port`` fix the ports. A new
process is a new, empty tailnet with a new control key, even on the same
ports: running nodes cannot rejoin it (see docs/reliability.md); use
``pause``/``resume`` for a restart that nodes survive.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
from typing import TextIO

from .._exceptions import TailnetError
from . import LocalTailnet

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tailnet.testing", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1", help="IP address to bind and advertise")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--authkey", help="the auth key nodes must present (default: a random one)")
    keys.add_argument("--no-authkey", action="store_true", help="let any node join")
    parser.add_argument("--magicdns-domain", default="tailnet.test")
    for name in ("control", "derp", "stun"):
        parser.add_argument(f"--{name}-port", type=int, default=0, help=f"{name} port (0: a free one)")
    return parser.parse_args(argv)


def _serve(net: LocalTailnet, commands: TextIO, out: TextIO) -> None:
    for line in commands:
        verb, *args = line.split() or [""]
        if verb == "quit":
            return
        try:
            if verb == "deny":
                net.deny_from(*args)
            elif verb == "pause" and not args:
                net.pause()
            elif verb == "resume" and not args:
                net.resume()
            else:
                raise ValueError(f"unknown command {line.strip()!r}: use deny NAME..., pause, resume or quit")
            reply: dict[str, object] = {"ok": True}
        except (TailnetError, ValueError) as exc:
            reply = {"error": str(exc)}
        print(json.dumps(reply), file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run until quit, end of input or SIGTERM; return the exit status."""
    args = _arguments(argv)
    authkey = None if args.no_authkey else args.authkey or f"tskey-local-{secrets.token_hex(16)}"
    # SIGTERM ends the command loop like end of input does, so the servers close cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        net = LocalTailnet(
            authkey=authkey,
            magicdns_domain=args.magicdns_domain,
            address=args.address,
            control_port=args.control_port,
            derp_port=args.derp_port,
            stun_port=args.stun_port,
        )
    except TailnetError as exc:
        print(f"python -m tailnet.testing: {exc}", file=sys.stderr)
        return 1
    with net:
        info = {"control_url": net.control_url, "authkey": authkey, "address": net.address}
        info.update({f"{name}_port": port for name, port in net.ports.items()})
        print(json.dumps({**info, "pid": os.getpid()}), flush=True)
        _serve(net, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
