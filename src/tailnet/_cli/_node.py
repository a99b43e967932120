"""Node options shared by the commands, joining with progress, and the status they print."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._async import AsyncServer
from .._sync import Server
from ._progress import Progress

__all__ = ["add_node_options", "async_server", "join", "print_status", "server", "status"]

DEFAULT_HOSTNAME = "tailnet"


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """The options that say which node a command runs as."""
    group = parser.add_argument_group("node")
    group.add_argument(
        "-n",
        "--hostname",
        default=DEFAULT_HOSTNAME,
        help="the node's name on the tailnet (default: %(default)s); it also names its state dir",
    )
    group.add_argument(
        "--state-dir", help="where the node keeps its identity (default: per hostname in the user's data dir)"
    )
    group.add_argument(
        "--authkey", help="auth key to join without an interactive login (default: $TS_AUTHKEY)"
    )
    group.add_argument(
        "--control-url", help="coordination server (default: $TS_CONTROL_URL, else Tailscale's)"
    )
    group.add_argument(
        "--ephemeral", action="store_true", help="remove the node from the tailnet when it stops"
    )
    group.add_argument(
        "--timeout", type=float, default=None, help="give up joining after this many seconds (default: wait)"
    )


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "authkey": args.authkey,
        "control_url": args.control_url,
        "state_dir": args.state_dir,
        "ephemeral": args.ephemeral,
    }


def server(args: argparse.Namespace) -> Server:
    """The node the command line describes (not started)."""
    return Server(args.hostname, **_options(args))


def async_server(args: argparse.Namespace) -> AsyncServer:
    """The same node, for the async commands."""
    return AsyncServer(args.hostname, **_options(args))


def join(node: Server, timeout: float | None) -> Server:
    """Bring the node up, showing progress (and, through logging, the login URL if one is needed)."""
    with Progress(f"{node.hostname}: joining the tailnet"):
        return node.up(timeout=timeout)


def status(node: Server | AsyncServer) -> dict[str, Any]:
    """What is known about a running node, as plain data (printed as text or JSON)."""
    return {
        "hostname": node.hostname,
        "ips": [str(ip) for ip in node.ips],
        "state_dir": node.state_dir,
    }


def print_status(info: dict[str, Any], as_json: bool) -> None:
    """Print :func:`status` for people, or as one JSON object."""
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"{info['hostname']}: running")
    print(f"  IPs:       {', '.join(info['ips'])}")
    print(f"  state dir: {info['state_dir']}")
