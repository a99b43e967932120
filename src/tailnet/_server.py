"""What the sync and async servers share: construction, plain properties, and the seams.

:class:`ServerBase` is the common base of :class:`~tailnet.Server` and
:class:`~tailnet.AsyncServer`: the constructor and the properties that
never block. :func:`node_of` and :func:`core_of` are the documented seams
through which tailnet's integrations (:mod:`tailnet.asgi`) reach the
blocking core under a server or listener of either facade.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from ._addresses import IPAddress
from ._config import DEFAULT_LINGER, ServerConfig
from ._info import BackendState
from ._node import ListenerCore, Node
from ._public import present, qualified_name
from ._state import StateStore

__all__ = ["ServerBase", "core_of", "node_of"]

#: The constructor's arguments, documented once for both servers.
ARGUMENTS_DOC = """
    Args:
        hostname: The node's name on the tailnet (a DNS label). Defaults to
            the script's name.
        authkey: Auth key to join without an interactive login; defaults to
            ``$TS_AUTHKEY`` or ``$TS_AUTH_KEY``.
        control_url: Coordination server; defaults to ``$TS_CONTROL_URL``,
            else Tailscale's.
        state_dir: Where the node keeps its identity; defaults to a
            per-hostname directory in the user's data dir. Created (mode
            0700) and checked when the node starts: one it cannot use
            raises :class:`~tailnet.StateDirError`, one others may read or
            another user owns gets an
            :class:`~tailnet.InsecureStateDirWarning`. With a ``store``
            it holds only the rest (log configuration, certificate
            cache), and without one the node has no directory.
        store: Keep the node's state elsewhere than in ``state_dir``:
            ``"mem"`` (in memory only, gone at exit; needs
            ``ephemeral=True``) or a :class:`~tailnet.StateStore` (bytes
            by key, e.g. in SQLite or a Kubernetes Secret). Without a
            ``state_dir`` the node then writes nothing to disk. See
            docs/state.md.
        ephemeral: Remove the node from the tailnet when it goes offline.
        tags: ACL tags to advertise, e.g. ``["tag:server"]``.
        port: The UDP port for WireGuard and peer-to-peer traffic
            (tsnet's ``Port``), for a host whose firewall opens one port;
            0 (the default) picks a free one. If the port is taken when
            the node starts, the node picks another and logs it.
        linger: How long, in seconds, closing the server lets its
            connections finish delivering what was written to them (until
            the peer has acknowledged it), as a kernel does after
            ``close()``: those the program closed, and those it still holds
            open, which are closed as a process exit closes its sockets.
            Connections still delivering then are aborted, with one
            WARNING on the ``tailnet`` logger. Servers still open at
            interpreter exit are closed the same way.
"""


@present
class ServerBase:
    """What :class:`~tailnet.Server` and :class:`~tailnet.AsyncServer` share."""

    # A server's one attribute: no instance __dict__ (nor __weakref__ in help()).
    __slots__ = ("_node",)

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
        store: StateStore | str | None = None,
        port: int = 0,
    ) -> None:
        config = ServerConfig.from_arguments(
            hostname=hostname,
            authkey=authkey,
            control_url=control_url,
            state_dir=state_dir,
            ephemeral=ephemeral,
            tags=tags,
            linger=linger,
            store=store,
            port=port,
        )
        self._node = Node(config)

    @property
    def hostname(self) -> str:
        """The node's hostname."""
        return self._node.config.hostname

    @property
    def state_dir(self) -> str | None:
        """The node's directory; None for a node with a ``store`` and no ``state_dir`` (nothing on disk)."""
        directory = self._node.state_dir
        return None if directory is None else str(directory)

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        """The node's tailnet IPs (IPv4 first); empty until it has joined."""
        return self._node.ips()

    @property
    def state(self) -> BackendState:
        """The backend state as last reported (never blocks); NO_STATE before start."""
        return self._node.state()[0]

    @property
    def login_url(self) -> str | None:
        """The URL of the interactive login the node waits for, else None (never blocks)."""
        return self._node.state()[1]

    @property
    def cert_domains(self) -> tuple[str, ...]:
        """Domains this node can get TLS certificates for (its DNS names); empty until it runs.

        Empty on a tailnet without HTTPS certificates: then ``listen_tls``
        raises :class:`~tailnet.CertificateUnavailableError`.
        """
        return self._node.cert_domains()

    @property
    def closed(self) -> bool:
        """Whether the server has been closed."""
        return self._node.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{qualified_name(self)} {self.hostname!r} {state}>"


class _HasCore(Protocol):
    _core: ListenerCore


def node_of(server: ServerBase) -> Node:
    """The blocking core under a server of either facade (a seam for integrations)."""
    return server._node


def core_of(listener: _HasCore) -> ListenerCore:
    """The blocking core under a listener of either facade (a seam for integrations)."""
    return listener._core
