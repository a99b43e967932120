"""The ``tailnet`` command (also ``python -m tailnet``).

::

    tailnet demo                      two nodes on a built-in local tailnet exchange a message
    tailnet up [-n NAME]              join the tailnet (log in if needed) and print the node's status
    tailnet status [-n NAME] [--json] the node's status
    tailnet serve DIR [--port 80]     share a directory over HTTP on the tailnet
    tailnet proxy LOCAL_PORT          expose a local TCP service on the tailnet
    tailnet forward LOCAL HOST:PORT   reach a tailnet service at a local port or unix socket
    tailnet local-tailnet             run a local tailnet for manual tests

Each node command runs as the node named by ``--hostname`` (default
"tailnet") with its identity in ``--state-dir`` (default: per hostname in
the user's data dir), so ``tailnet up -n web`` logs in once and
``tailnet serve -n web DIR`` later reuses that identity.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio

from .._exceptions import TailnetError
from .._info import BackendState
from .._waiting_sync import SIGNAL_CHECK
from ..socketserver import ThreadingTCPServer
from ..testing import _launcher as launcher
from . import _node
from ._demo import demo
from ._progress import Progress, configure_logging
from ._proxy import proxy

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]

#: How long ``tailnet status`` waits for a starting node to run (or to need a login).
STATUS_TIMEOUT = 30.0


def _up(args: argparse.Namespace) -> int:
    node = _node.server(args)
    try:
        _node.join(node, args.timeout)
        _node.print_status(_node.status(node), args.json)
    finally:
        node.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"tailnet serve: {directory} is not a directory", file=sys.stderr)
        return 2
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    node = _node.server(args)
    try:
        _node.join(node, args.timeout)
        with ThreadingTCPServer(node.listen("tcp", f":{args.port}"), handler) as httpd:
            suffix = "" if args.port == 80 else f":{args.port}"
            print(f"serving {directory.resolve()} at http://{node.hostname}{suffix}/", flush=True)
            httpd.serve_forever()
    finally:
        node.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    node = _node.server(args)
    try:
        state = _node.settle(node, STATUS_TIMEOUT if args.timeout is None else args.timeout)
        _node.print_status(_node.status(node), args.json)
    finally:
        node.close()
    return 0 if state is BackendState.RUNNING else 1


def _run_until_signalled(main: Callable[[], Awaitable[None]]) -> None:
    """``anyio.run(main)`` on asyncio, with the event loop woken every 0.1 s.

    Ctrl-C and SIGTERM raise ``KeyboardInterrupt`` from Python's handler,
    which runs only when the main thread runs Python code. A signal noted
    on another thread (a Go thread, or while the main thread was in a call
    into Go) or just before the loop began to wait leaves an idle loop
    asleep until its next event, which for a proxy with no traffic never
    comes. So the loop wakes as the sync API's waits do, every
    ``SIGNAL_CHECK`` seconds; the handler then raises as before.
    """

    async def run() -> None:
        loop = asyncio.get_running_loop()
        timer: list[asyncio.TimerHandle] = []

        def wake() -> None:
            timer[:] = [loop.call_later(SIGNAL_CHECK, wake)]

        wake()
        try:
            await main()
        finally:
            timer[0].cancel()

    anyio.run(run)


def _proxy(args: argparse.Namespace) -> int:
    async def run() -> None:
        node = _node.async_server(args)
        try:
            with Progress(node.hostname, "joining the tailnet") as progress:
                await node.up(timeout=args.timeout, on_event=progress.event)
            await proxy(node, args.port or args.local_port, args.local_host, args.local_port)
        finally:
            await node.aclose()

    _run_until_signalled(run)
    return 0


def _forward(args: argparse.Namespace) -> int:
    async def run() -> None:
        node = _node.async_server(args)
        try:
            fwd = node.forward(args.target, args.local)  # bad arguments fail before the join
            with Progress(node.hostname, "joining the tailnet") as progress:
                await node.up(timeout=args.timeout, on_event=progress.event)
            async with fwd:
                address = fwd.address
                shown = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
                print(f"forwarding {shown} -> tailnet {fwd.target}", flush=True)
                await anyio.sleep_forever()
        finally:
            await node.aclose()

    _run_until_signalled(run)
    return 0


def _local_tailnet(args: argparse.Namespace) -> int:
    return launcher.run(args, "tailnet local-tailnet")


def _demo(args: argparse.Namespace) -> int:
    demo()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tailnet",
        description="A Tailscale node in a Python process: join, serve and proxy from the shell.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: the node's)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str, *, node: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        if node:
            _node.add_node_options(sub)
        return sub

    command("demo", _demo, "two nodes on a built-in local tailnet exchange a message", node=False)
    for name, run, help_text in [
        ("up", _up, "join the tailnet (logging in if needed), print the node's status and exit"),
        (
            "status",
            _status,
            "print the node's status: state, name, IPs, peers (exit status 1 unless running)",
        ),
    ]:
        command(name, run, help_text).add_argument("--json", action="store_true", help="print JSON")
    serve = command("serve", _serve, "share a directory over HTTP on the tailnet")
    serve.add_argument("directory", metavar="DIR")
    serve.add_argument("--port", type=int, default=80, help="tailnet port (default: %(default)s)")
    fwd = command("proxy", _proxy, "expose a local TCP service on the tailnet")
    fwd.add_argument("local_port", metavar="LOCAL_PORT", type=int)
    fwd.add_argument("--port", type=int, help="tailnet port (default: LOCAL_PORT)")
    fwd.add_argument("--local-host", default="127.0.0.1", help="where the service is (default: %(default)s)")
    fwd = command("forward", _forward, "reach a tailnet service at a local port or unix socket")
    fwd.add_argument(
        "local",
        metavar="LOCAL",
        help="a port on 127.0.0.1 (0: any free one), HOST:PORT, or a unix socket path (mode 0600)",
    )
    fwd.add_argument("target", metavar="HOST:PORT", help="the tailnet service (MagicDNS name or IP)")
    local = commands.add_parser(
        "local-tailnet",
        help="run a local tailnet (control server, DERP, STUN) for manual tests",
        description=launcher.DESCRIPTION,
        epilog=launcher.COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local.set_defaults(run=_local_tailnet)
    launcher.add_options(local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    # SIGTERM stops a long-running command as Ctrl-C does: cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 0 if args.command in ("serve", "proxy", "forward", "local-tailnet") else 130
    except TailnetError as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"tailnet {args.command}: {message}", file=sys.stderr)
        return 1
