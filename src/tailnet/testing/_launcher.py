"""A local tailnet in a process of its own: ``tailnet local-tailnet`` and ``python -m tailnet.testing``.

Both are this one launcher: :func:`add_options` builds their options and
:func:`run` does the work, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from .._exceptions import TailnetError
from .._waiting_sync import sleep_forever, wait_readable
from . import LocalTailnet

__all__ = ["COMMANDS", "DESCRIPTION", "add_options", "run"]

DESCRIPTION = "Run a local tailnet (control server, DERP relay, STUN) for manual tests and test harnesses."

#: The commands read from stdin, for --help.
COMMANDS = """\
commands on stdin, one per line:
  approve URL     complete the interactive login a node waits on at URL (a bare URL does too)
  deny NAME...    drop connections these nodes start (no names: allow all again)
  pause, resume   take the servers down and back up, keeping the tailnet (a control server restart)
  quit            stop (as do end of input, Ctrl-C and SIGTERM)

Each command is answered with one line: on stderr, or as JSON ({"ok": true} or
{"error": "..."}) on stdout with --json. A new process is a new, empty tailnet
with a new control key, even on the same ports: running nodes cannot rejoin it;
pause and resume are the restart that nodes survive.
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    """The launcher's options, the same for both of its commands."""
    login = parser.add_mutually_exclusive_group()
    login.add_argument(
        "--authkey", metavar="KEY", help="the auth key nodes must present (default: a random one)"
    )
    login.add_argument("--no-authkey", action="store_true", help="any node may join: no key, no login")
    login.add_argument(
        "--interactive",
        action="store_true",
        help="nodes log in interactively (no auth key); approve each login URL on stdin",
    )
    parser.add_argument(
        "--magicdns-domain",
        metavar="DOMAIN",
        default="tailnet.test",
        help="the tailnet's DNS suffix: nodes are <hostname>.DOMAIN (default: %(default)s)",
    )
    parser.add_argument(
        "--address",
        metavar="IP",
        default="127.0.0.1",
        help="the IP address to listen on and advertise, for nodes in other namespaces or containers "
        "(default: %(default)s)",
    )
    for name, server in (("control", "control server"), ("derp", "DERP relay"), ("stun", "STUN server")):
        parser.add_argument(
            f"--{name}-port",
            metavar="PORT",
            type=int,
            default=0,
            help=f"the {server}'s port (default: a free one)",
        )
    parser.add_argument(
        "--json", action="store_true", help="print the tailnet as one JSON line and answer commands in JSON"
    )


def run(args: argparse.Namespace, prog: str) -> int:
    """Run the local tailnet ``args`` describe until quit, end of input or a signal; the exit status."""
    if args.interactive or args.no_authkey:
        authkey = None
    else:
        authkey = args.authkey or f"tskey-local-{secrets.token_hex(16)}"
    # SIGTERM stops it as Ctrl-C does, so the servers close cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        net = LocalTailnet(
            authkey=authkey,
            interactive=args.interactive,
            magicdns_domain=args.magicdns_domain,
            address=args.address,
            control_port=args.control_port,
            derp_port=args.derp_port,
            stun_port=args.stun_port,
        )
    except TailnetError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    try:
        with net:
            _announce(net, authkey, args)
            _serve(net, sys.stdin, sys.stdout if args.json else sys.stderr, as_json=args.json)
    except KeyboardInterrupt:
        pass
    return 0


def describe(net: LocalTailnet, authkey: str | None) -> dict[str, Any]:
    """What a node or a harness needs to know of the tailnet, as JSON data."""
    info: dict[str, Any] = {
        "control_url": net.control_url,
        "authkey": authkey,
        "magicdns_domain": net.magicdns_domain,
        "address": net.address,
    }
    info.update({f"{name}_port": port for name, port in net.ports.items()})
    return {**info, "environ": net.environ, "pid": os.getpid()}


def _announce(net: LocalTailnet, authkey: str | None, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(describe(net, authkey)), flush=True)
        return
    login = "(none: nodes log in interactively)" if args.interactive else "(none: any node may join)"
    print(f"local tailnet running (Ctrl-C to stop)\n  control URL: {net.control_url}")
    print(f"  auth key:    {authkey or login}")
    print(f"  MagicDNS:    <hostname>.{net.magicdns_domain}")
    print("nodes join it with this environment:")
    print("  export " + " ".join(f"{k}={v}" for k, v in net.environ.items()), flush=True)
    if args.interactive:
        print("paste a node's login URL here to approve it", file=sys.stderr, flush=True)


def _serve(net: LocalTailnet, commands: TextIO, out: TextIO, *, as_json: bool) -> None:
    """Obey commands until quit or end of input; wait for a signal if there is no input to read."""
    try:
        if commands.isatty():
            # A background job reading its terminal would be stopped (SIGTTIN):
            # it reads EIO instead, and keeps serving.
            signal.signal(signal.SIGTTIN, signal.SIG_IGN)
        for line in _lines(commands):
            if not line.strip():
                continue
            if line.split()[0] == "quit":
                return
            _reply(out, as_json, *_obey(net, line))
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        sleep_forever()  # until Ctrl-C or SIGTERM


def _lines(commands: TextIO) -> Iterator[str]:
    """The lines of ``commands`` as they come, read so that a Ctrl-C is never lost.

    A blocking read of a file, as ``for line in commands`` does, can miss a
    signal that arrives just before the read begins (see
    :mod:`tailnet._waiting_sync`); waiting in the library's helper cannot.
    """
    fd = commands.fileno()
    encoding = getattr(commands, "encoding", None) or "utf-8"
    pending = b""
    while True:
        wait_readable(fd, what="reading commands")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line.decode(encoding, "replace") for line in lines)
    if pending:
        yield pending.decode(encoding, "replace")


def _obey(net: LocalTailnet, line: str) -> tuple[str | None, str | None]:
    """Do one command; (what was done, None) or (None, why not)."""
    verb, *words = line.split()
    if verb.startswith(("http://", "https://")):
        verb, words = "approve", [verb, *words]
    try:
        if verb == "approve" and len(words) == 1:
            net.complete_login(words[0])
            return f"approved {words[0]}", None
        if verb == "deny":
            net.deny_from(*words)
            return (f"denied connections from {', '.join(words)}" if words else "allowed all again"), None
        if verb == "pause" and not words:
            net.pause()
            return "paused", None
        if verb == "resume" and not words:
            net.resume()
            return "resumed", None
    except TailnetError as exc:
        return None, str(exc)
    return None, f"unknown command {line.strip()!r}: use approve URL, deny NAME..., pause, resume or quit"


def _reply(out: TextIO, as_json: bool, done: str | None, error: str | None) -> None:
    if as_json:
        reply: dict[str, object] = {"ok": True} if error is None else {"error": error}
        print(json.dumps(reply), file=out, flush=True)
    else:
        print(done if error is None else f"not done: {error}", file=out, flush=True)
