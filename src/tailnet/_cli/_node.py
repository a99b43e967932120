"""Node options shared by the commands, joining with progress, and the status they print."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .._exceptions import TailnetTimeout
from .._info import BackendState, LoginRequired, StateChanged, Status
from .._server_async import AsyncServer
from .._server_sync import Server
from ._progress import Progress

__all__ = ["add_node_options", "async_server", "join", "print_status", "server", "settle", "status"]

DEFAULT_HOSTNAME = "tailnet"

#: States in which a starting node stops changing by itself (NEEDS_LOGIN too, once its URL is known:
#: before that it is often a passing state, e.g. while an auth key is being used).
SETTLED = frozenset({BackendState.RUNNING, BackendState.NEEDS_MACHINE_AUTH, BackendState.STOPPED})


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
        "--state-dir",
        help="where the node keeps its identity (default: per hostname in the user's data dir)",
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
    """Bring the node up, showing its progress and, if one is needed, the login URL."""
    with Progress(node.hostname, "joining the tailnet") as progress:
        return node.up(timeout=timeout, on_event=progress.event)


def settle(node: Server, timeout: float) -> BackendState:
    """Start the node; wait (at most ``timeout`` s) until it runs or waits for a login at a URL."""
    deadline = time.monotonic() + timeout
    with Progress(node.hostname, "starting") as progress, node.watch() as events:
        while True:
            try:
                event = events.receive(timeout=max(0.0, deadline - time.monotonic()))
            except TailnetTimeout:
                return node.state
            if isinstance(event, LoginRequired):
                progress.shown_elsewhere(event.url)  # the status shows it
                return BackendState.NEEDS_LOGIN
            progress.event(event)
            if isinstance(event, StateChanged) and event.state in SETTLED:
                return event.state


def status(node: Server) -> dict[str, Any]:
    """The node's status as plain data (printed as text or JSON)."""
    return _describe(node, node.status())


def _describe(node: Server, st: Status) -> dict[str, Any]:
    me = st.self_node
    return {
        "hostname": node.hostname,
        "state": st.state.value,
        "login_url": st.login_url,
        "dns_name": me.dns_name,
        "ips": [str(ip) for ip in me.ips],
        "user": me.user.login_name if me.user else None,
        "tags": list(me.tags),
        "tailnet": st.tailnet,
        "state_dir": node.state_dir,
        "peers": [
            {
                "name": peer.name,
                "dns_name": peer.dns_name,
                "ips": [str(ip) for ip in peer.ips],
                "online": peer.online,
                "path": peer.path.value,
            }
            for peer in st.peers
        ],
        "health": list(st.health),
    }


def print_status(info: dict[str, Any], as_json: bool) -> None:
    """Print :func:`status` for people, or as one JSON object."""
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"{info['hostname']}: {info['state']}")
    if info["login_url"]:
        print(f"  log in at: {info['login_url']}")
    if info["ips"]:
        print(f"  name:      {info['dns_name']}")
        print(f"  IPs:       {', '.join(info['ips'])}")
        print(f"  owner:     {', '.join(info['tags']) or info['user']}")
    print(f"  state dir: {info['state_dir']}")
    for warning in info["health"]:
        print(f"  health:    {warning}")
    if info["peers"]:
        print("  peers:")
        width = max(len(peer["name"]) for peer in info["peers"])
        for peer in info["peers"]:
            online = "online" if peer["online"] else "offline"
            print(
                f"    {peer['name']:<{width}}  {', '.join(peer['ips'][:1]):<15}  {online:<7}  {peer['path']}"
            )
