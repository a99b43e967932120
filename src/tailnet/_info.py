"""Typed node information: identities (whois), status, ping results, events, the loopback.

Every type is a frozen dataclass or an enum built from the library's JSON
(tailnet's own schema, documented in docs/c-api.md), so code using them
does not depend on the shape of tailscale's internal structures.
"""

from __future__ import annotations

import enum
import io
import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from ._addresses import Address, IPAddress
from ._exceptions import InternalError
from ._public import present

__all__ = [
    "PING_TIMEOUT",
    "BackendError",
    "BackendState",
    "ConnectionPath",
    "LoginRequired",
    "Loopback",
    "NodeInfo",
    "PeerIdentity",
    "PeerStatus",
    "PingKind",
    "PingResult",
    "StateChanged",
    "Status",
    "UserProfile",
    "WatchEvent",
    "parse_event",
    "parse_ping",
    "parse_status",
    "parse_whois",
]

T = TypeVar("T")


class BackendState(str, enum.Enum):
    """The state of a node's backend, as Go's ``ipn.State``.

    A node goes ``NO_STATE`` → (``NEEDS_LOGIN`` →) ``STARTING`` →
    ``RUNNING``; ``NEEDS_LOGIN`` waits for an interactive login (see
    :class:`LoginRequired`), ``NEEDS_MACHINE_AUTH`` for an administrator's
    approval.
    """

    NO_STATE = "NoState"
    IN_USE_OTHER_USER = "InUseOtherUser"
    NEEDS_LOGIN = "NeedsLogin"
    NEEDS_MACHINE_AUTH = "NeedsMachineAuth"
    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"


class ConnectionPath(str, enum.Enum):
    """How packets to a peer travel."""

    DIRECT = "direct"
    """Straight to the peer over UDP (``endpoint`` is its address)."""
    PEER_RELAY = "peer-relay"
    """Through a peer relay (``peer_relay`` is its address)."""
    DERP = "derp"
    """Through a DERP relay server (``derp_region`` names it)."""
    NONE = "none"
    """No path known (status only: the peer has no DERP home yet)."""
    UNKNOWN = "unknown"
    """Not reported (TSMP and ICMP pings travel through the tunnel and do not say)."""


#: Default deadline of a ping, in seconds: an unanswered disco ping never
#: completes by itself.
PING_TIMEOUT = 10.0


class PingKind(str, enum.Enum):
    """What a ping exercises (Go's ``tailcfg.PingType``)."""

    DISCO = "disco"
    """WireGuard-level discovery ping: reports the path (direct or which DERP)."""
    TSMP = "tsmp"
    """Through the tunnel, answered by the peer's Tailscale stack."""
    ICMP = "icmp"
    """An ICMP echo through the tunnel, answered by the peer's IP stack."""


@dataclass(frozen=True)
class UserProfile:
    """A tailnet user."""

    id: int
    login_name: str
    """E.g. ``"alice@example.com"``; for tagged nodes the control server's placeholder."""
    display_name: str


@dataclass(frozen=True)
class NodeInfo:
    """A node of the tailnet (this one or a peer)."""

    id: str
    """Stable node ID."""
    name: str
    """MagicDNS short name: what you dial (``"beta"``)."""
    hostname: str
    """The hostname the node reported (not necessarily unique)."""
    dns_name: str
    """MagicDNS FQDN without the trailing dot (``"beta.tailnet.test"``)."""
    ips: tuple[IPAddress, ...]
    online: bool
    """Connected to the control server, as the control server reports it."""
    os: str
    tags: tuple[str, ...]
    """ACL tags the control server applied (``"tag:server"``); empty for user-owned nodes."""
    user: UserProfile | None
    last_seen: datetime | None
    """When an offline node was last online (None while online or unknown)."""
    derp_region: str | None
    """Code of the node's home DERP region."""

    @property
    def tagged(self) -> bool:
        """Whether the node's identity is its tags rather than a user."""
        return bool(self.tags)


@dataclass(frozen=True)
class PeerStatus(NodeInfo):
    """A peer in :class:`Status`, with the path to it."""

    path: ConnectionPath
    """Direct if a direct UDP path is known, else how packets are relayed."""
    endpoint: str | None
    """The peer's ``ip:port`` on the direct path."""
    peer_relay: str | None
    active: bool
    """Whether packets were exchanged recently."""
    rx_bytes: int
    tx_bytes: int
    last_handshake: datetime | None

    @property
    def direct(self) -> bool:
        """Whether the path is direct."""
        return self.path is ConnectionPath.DIRECT


@dataclass(frozen=True)
class Status:
    """This node, its peers and the tailnet (Go's ``LocalClient.Status``)."""

    state: BackendState
    self_node: NodeInfo
    """This node (before it has joined, with what it knows so far: no IPs, no user)."""
    peers: tuple[PeerStatus, ...]
    """Every peer, sorted by MagicDNS name."""
    magicdns_suffix: str
    """The tailnet's DNS suffix (``"tailnet.test"``); "" before joining."""
    tailnet: str
    """The tailnet's name."""
    login_url: str | None
    """The pending interactive login's URL."""
    health: tuple[str, ...]
    """Current health warnings (empty when all is well)."""
    version: str
    """Tailscale version of the embedded node."""

    def peer(self, name_or_ip: str | IPAddress) -> PeerStatus | None:
        """The peer with this MagicDNS name, FQDN, hostname or tailnet IP, or None."""
        key = str(name_or_ip).lower().rstrip(".")
        for peer in self.peers:
            names = (peer.name.lower(), peer.dns_name.lower(), peer.hostname.lower())
            if key in names or key in (str(ip) for ip in peer.ips):
                return peer
        return None


@dataclass(frozen=True)
class PeerIdentity:
    """Who is behind a tailnet address: the result of ``whois``.

    Use it to authorize callers: ``identity.login_name``, ``identity.tags``
    and ``identity.capabilities`` come from the control server, not from
    the peer.
    """

    node: NodeInfo
    user: UserProfile
    capabilities: Mapping[str, tuple[Any, ...]] = field(hash=False)
    """Capabilities the tailnet's policy grants this peer (app capability
    grants), each with its JSON values."""

    @property
    def node_name(self) -> str:
        """The peer node's MagicDNS short name."""
        return self.node.name

    @property
    def login_name(self) -> str:
        """The login of the user owning the node."""
        return self.user.login_name

    @property
    def tags(self) -> tuple[str, ...]:
        """The peer node's ACL tags."""
        return self.node.tags

    def has_capability(self, capability: str) -> bool:
        """Whether the tailnet grants the peer ``capability``."""
        return capability in self.capabilities


@dataclass(frozen=True)
class PingResult:
    """An answered ping."""

    ip: IPAddress
    """The address pinged."""
    node_name: str
    """The answering peer's MagicDNS short name."""
    kind: PingKind
    latency: float
    """Round-trip time in seconds."""
    path: ConnectionPath
    """DIRECT, DERP or PEER_RELAY for disco pings; UNKNOWN for TSMP and ICMP."""
    endpoint: str | None
    """The peer's ``ip:port`` when direct."""
    derp_region_id: int | None
    derp_region: str | None
    """Code of the DERP region that relayed the ping."""
    peer_relay: str | None

    @property
    def direct(self) -> bool:
        """Whether the ping travelled a direct path."""
        return self.path is ConnectionPath.DIRECT


@dataclass(frozen=True)
class StateChanged:
    """The node's backend changed state (the first event is the current state)."""

    state: BackendState


@dataclass(frozen=True)
class LoginRequired:
    """The node waits for an interactive login: open ``url`` in a browser."""

    url: str

    def qr(self) -> str:
        """The URL as a QR code drawn with block characters, for a terminal.

        Needs the ``qr`` extra (``pip install 'tailnet[qr]'``, which installs
        segno); raises :class:`ImportError` saying so otherwise.
        """
        try:
            import segno
        except ImportError:
            raise ImportError("QR codes need the qr extra: pip install 'tailnet[qr]'") from None
        out = io.StringIO()
        segno.make(self.url, micro=False).terminal(out=out, compact=True)
        return out.getvalue()


@dataclass(frozen=True)
class BackendError:
    """The node's backend reported an error (e.g. the control server refused it)."""

    message: str


#: What watching a node yields.
WatchEvent = StateChanged | LoginRequired | BackendError


# ---- parsing the library's JSON -------------------------------------------


@dataclass(frozen=True, repr=False)
class Loopback:
    """The node's loopback server (Go's ``tsnet.Server.Loopback``).

    One port on 127.0.0.1 serves both a SOCKS5 proxy onto the tailnet
    (username :attr:`proxy_username`, password :attr:`proxy_credential`)
    and the LocalAPI (HTTP basic auth with password
    :attr:`local_api_credential` plus the header ``Sec-Tailscale:
    localapi``; see :meth:`tailnet.Server.local_api`). Anyone on this
    machine holding a credential can use it, and the LocalAPI credential
    grants full control of the node: keep both secret. Neither appears in
    this object's repr.
    """

    address: Address
    """``("127.0.0.1", port)``."""
    proxy_credential: str
    """The SOCKS5 password."""
    local_api_credential: str
    """The LocalAPI basic-auth password."""

    proxy_username: ClassVar[str] = "tsnet"
    """The SOCKS5 username (fixed by tsnet)."""

    @property
    def proxy_url(self) -> str:
        """``socks5://tsnet:<credential>@127.0.0.1:<port>``, for SOCKS-capable clients. Secret."""
        host, port = self.address
        return f"socks5://{self.proxy_username}:{self.proxy_credential}@{host}:{port}"

    def __repr__(self) -> str:
        host, port = self.address
        return (
            f"Loopback(address=({host!r}, {port}), proxy_credential=<hidden>, local_api_credential=<hidden>)"
        )


def _parsed(what: str, text: str, build: Callable[[Any], T]) -> T:
    """Build a value from the library's JSON; a mismatch is a bug (InternalError)."""
    try:
        return build(json.loads(text))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InternalError(f"unexpected {what} from the library ({exc!r}): {text[:200]!r}") from None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ips(values: list[str]) -> tuple[IPAddress, ...]:
    return tuple(ipaddress.ip_address(v) for v in values)


def _user(d: dict[str, Any]) -> UserProfile:
    return UserProfile(id=int(d["id"]), login_name=str(d["login_name"]), display_name=str(d["display_name"]))


def _node_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(d["id"]),
        "name": str(d["name"]),
        "hostname": str(d["hostname"]),
        "dns_name": str(d["dns_name"]),
        "ips": _ips(d["ips"]),
        "online": bool(d["online"]),
        "os": str(d["os"]),
        "tags": tuple(str(t) for t in d["tags"]),
        "user": _user(d["user"]) if "user" in d else None,
        "last_seen": _time(d.get("last_seen")),
        "derp_region": d.get("derp_region") or None,
    }


def _peer(d: dict[str, Any]) -> PeerStatus:
    return PeerStatus(
        **_node_fields(d),
        path=ConnectionPath(d["path"]),
        endpoint=d.get("endpoint") or None,
        peer_relay=d.get("peer_relay") or None,
        active=bool(d["active"]),
        rx_bytes=int(d["rx_bytes"]),
        tx_bytes=int(d["tx_bytes"]),
        last_handshake=_time(d.get("last_handshake")),
    )


def parse_status(text: str) -> Status:
    """A :class:`Status` from the library's status JSON."""

    def build(d: dict[str, Any]) -> Status:
        return Status(
            state=BackendState(d["state"]),
            self_node=NodeInfo(**_node_fields(d["self"])),
            peers=tuple(_peer(p) for p in d["peers"]),
            magicdns_suffix=str(d["magicdns_suffix"]),
            tailnet=str(d["tailnet"]),
            login_url=d.get("login_url") or None,
            health=tuple(str(h) for h in d["health"]),
            version=str(d["version"]),
        )

    return _parsed("status", text, build)


def parse_whois(text: str) -> PeerIdentity:
    """A :class:`PeerIdentity` from the library's whois JSON."""

    def build(d: dict[str, Any]) -> PeerIdentity:
        caps = {str(k): tuple(v) for k, v in d["capabilities"].items()}
        return PeerIdentity(
            node=NodeInfo(**_node_fields(d["node"])),
            user=_user(d["user"]),
            capabilities=MappingProxyType(caps),
        )

    return _parsed("whois result", text, build)


def parse_ping(text: str) -> PingResult:
    """A :class:`PingResult` from the library's ping JSON."""

    def build(d: dict[str, Any]) -> PingResult:
        return PingResult(
            ip=ipaddress.ip_address(d["ip"]),
            node_name=str(d["node_name"]),
            kind=PingKind(d["kind"]),
            latency=float(d["latency_seconds"]),
            path=ConnectionPath(d["path"]),
            endpoint=d.get("endpoint") or None,
            derp_region_id=d.get("derp_region_id") or None,
            derp_region=d.get("derp_region_code") or None,
            peer_relay=d.get("peer_relay") or None,
        )

    return _parsed("ping result", text, build)


def parse_event(line: bytes) -> WatchEvent:
    """One watch event from a JSON line."""

    def build(d: dict[str, Any]) -> WatchEvent:
        if "state" in d:
            return StateChanged(BackendState(d["state"]))
        if "login_url" in d:
            return LoginRequired(str(d["login_url"]))
        return BackendError(str(d["error"]))

    return _parsed("watch event", line.decode("utf-8", "replace"), build)


for _name in __all__:
    if _name[0].isupper() and _name not in {"PING_TIMEOUT", "WatchEvent"}:
        present(globals()[_name])
