"""A service that knows who calls it: whois on each connection, and an allow-list.

Tailscale tells a node who is behind every connection: the peer's node,
its user and tags, as the control server vouches for them. This service
greets users on its allow-list and refuses everyone else, with no passwords
or tokens. Run on a local tailnet, entirely on this machine:

    python examples/allowlist.py
"""

from __future__ import annotations

import threading

import tailnet
from tailnet.testing import LocalTailnet


def serve(ts: tailnet.Server, listener: tailnet.Listener, allowed: set[str]) -> None:
    """Answer each connection according to who made it."""
    for conn, peer in listener:
        with conn:
            try:
                who = ts.whois(peer)
            except tailnet.PeerNotFound:
                conn.sendall(b"who are you?\n")
                continue
            if who.login_name in allowed:
                conn.sendall(f"hello {who.login_name}, calling from {who.node_name}\n".encode())
            else:
                conn.sendall(f"sorry {who.login_name}, you are not on the list\n".encode())


def call(client: tailnet.Server, address: str) -> str:
    with client.dial("tcp", address, timeout=30) as conn:
        return conn.makefile().readline().strip()


def main() -> None:
    with (
        LocalTailnet() as net,
        net.server("service") as service,
        net.server("alice") as alice,
        net.server("mallory") as mallory,
    ):
        # Each node of the local tailnet logs in as its own user; a real
        # allow-list would hold logins such as "alice@example.com".
        me = alice.status().self_node.user
        assert me is not None  # alice has logged in
        listener = service.listen("tcp", ":8080")
        thread = threading.Thread(target=serve, args=(service, listener, {me.login_name}), daemon=True)
        thread.start()
        for client in (alice, mallory):
            print(f"{client.hostname}: {call(client, 'service:8080')}")
        listener.close()
        thread.join(10)


if __name__ == "__main__":
    main()
