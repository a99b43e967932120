"""What the sync and async servers share: construction and plain properties."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ._addresses import IPAddress
from ._config import DEFAULT_LINGER, ServerConfig
from ._core import Node
from ._node_core import node_state
from ._node_info import BackendState
from ._services import cert_domains

__all__ = ["ServerBase"]


class ServerBase:
    """A Tailscale node in this process (like Go's ``tsnet.Server``).

    Creating it does no I/O. ``up`` (or ``with`` / ``async with``) joins the
    tailnet; ``listen`` and ``dial`` work as on any host of the tailnet.

    Args:
        hostname: The node's name on the tailnet (a DNS label). Defaults to
            the script's name.
        authkey: Auth key to join without an interactive login; defaults to
            ``$TS_AUTHKEY`` or ``$TS_AUTH_KEY``.
        control_url: Coordination server; defaults to ``$TS_CONTROL_URL``,
            else Tailscale's.
        state_dir: Where the node keeps its identity; defaults to a
            per-hostname directory in the user's data dir (mode 0700).
        ephemeral: Remove the node from the tailnet when it goes offline.
        tags: ACL tags to advertise, e.g. ``["tag:server"]``.
        linger: How long, in seconds, closing the server lets its
            connections finish delivering what was written to them (until
            the peer has acknowledged it), as a kernel does after
            ``close()``: those the program closed, and those it still holds
            open, which are closed as a process exit closes its sockets.
            Connections still delivering then are aborted, with one
            WARNING on the ``tailnet`` logger. Servers still open at
            interpreter exit are closed the same way.
    """

    def __init__(
        self,
        hostname: str | None = None,
        *,
        authkey: str | None = None,
        control_url: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        ephemeral: bool = False,
        tags: Iterable[str] = (),
        linger: float = DEFAULT_LINGER,
    ) -> None:
        config = ServerConfig.from_arguments(
            hostname=hostname,
            authkey=authkey,
            control_url=control_url,
            state_dir=state_dir,
            ephemeral=ephemeral,
            tags=tags,
            linger=linger,
        )
        self._node = Node(config)

    @property
    def hostname(self) -> str:
        """The node's hostname."""
        return self._node.config.hostname

    @property
    def state_dir(self) -> str:
        """The node's state directory."""
        return str(self._node.state_dir)

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        """The node's tailnet IPs (IPv4 first); empty until it has joined."""
        return self._node.ips()

    @property
    def state(self) -> BackendState:
        """The backend state as last reported (never blocks); NO_STATE before start."""
        return node_state(self._node)[0]

    @property
    def login_url(self) -> str | None:
        """The URL of the interactive login the node waits for, else None (never blocks)."""
        return node_state(self._node)[1]

    @property
    def cert_domains(self) -> tuple[str, ...]:
        """Domains this node can get TLS certificates for (its DNS names); empty until it runs.

        Empty on a tailnet without HTTPS certificates: then ``listen_tls``
        raises :class:`~tailnet.CertificateUnavailableError`.
        """
        return cert_domains(self._node)

    @property
    def closed(self) -> bool:
        """Whether the server has been closed."""
        return self._node.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<tailnet.{type(self).__name__} {self.hostname!r} {state}>"
