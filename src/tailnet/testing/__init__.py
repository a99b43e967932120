"""A complete tailnet on 127.0.0.1, for tests and demos: no account, no internet.

:class:`LocalTailnet` runs Tailscale's own test control server, a DERP
relay and a STUN server inside this process, on free loopback ports (or on
another address of this host, see ``address``)::

    from tailnet.testing import LocalTailnet

    with LocalTailnet() as net:
        a = net.server("alpha").up()
        b = net.server("beta").up()

It ships inside the tailnet wheel, so it needs no Go toolchain. Installing
tailnet also installs a pytest plugin with the ``local_tailnet`` and
``tailnet_node`` fixtures (see :mod:`tailnet.testing.pytest_plugin`), and
``python -m tailnet.testing`` (the same as ``tailnet local-tailnet``)
runs one in its own process.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from .._binding import calls
from .._binding.formats import c_string
from .._exceptions import ClosedError, ConfigurationError
from .._server_sync import Server

if TYPE_CHECKING:
    from .._server_async import AsyncServer

__all__ = ["DEBUG_COUNTERS", "QUIET_ENVIRONMENT", "LocalTailnet", "debug_counter", "set_knob"]

#: Knobs every node on a local tailnet runs with: upload no logs, probe no
#: gateway for port mapping. Applied process-wide by :class:`LocalTailnet`
#: and included in :attr:`LocalTailnet.environ` for child processes.
QUIET_ENVIRONMENT = {"TS_NO_LOGS_NO_SUPPORT": "true", "TS_DISABLE_PORTMAPPER": "1"}


#: The library's debug counters that :func:`debug_counter` reads.
DEBUG_COUNTERS = (
    "goroutines",
    "ops",
    "handles",
    "stuck_closes",
    "dropped_datagrams",
    "heap_bytes",
    "go_heap_bytes",
    "go_heap_free_bytes",
    "go_heap_released_bytes",
    "go_stack_bytes",
    "go_runtime_bytes",
    "go_total_bytes",
    "dropped_reloc_bytes",
    "gc_percent",
    "gomaxprocs",
)


def debug_counter(name: str) -> int:
    """One of the library's process-wide debug counters, for leak tests and soaks.

    ``goroutines`` (Go goroutines alive), ``ops`` (blocking calls not yet
    collected), ``handles`` (servers, listeners and operations not yet
    freed), ``stuck_closes`` (closes that gave up waiting for tsnet's own
    shutdown), ``dropped_datagrams`` (UDP messages the library could not
    send) and ``heap_bytes`` (the live Go heap after a full collection:
    slow). A leak test reads a counter, runs its cycle, and checks that the
    counter came back. The ``go_*`` counters say, without a collection,
    where the Go runtime's memory is: heap objects, heap kept free for
    growth, heap released to the system, goroutine stacks, the runtime's
    own structures, and the total (``benchmarks/memory.py`` reports them);
    ``dropped_reloc_bytes`` is how much of the library's relocation table
    it unmapped once loaded (Linux; docs/architecture.md), ``gc_percent``
    the Go runtime's GOGC (50 unless the ``GOGC`` variable was set) and
    ``gomaxprocs`` its GOMAXPROCS (one less than Go's default, at least 1,
    unless ``GOMAXPROCS`` or ``TAILNET_GOMAXPROCS`` was set).
    """
    if name not in DEBUG_COUNTERS:
        raise ConfigurationError(f"no debug counter {name!r}; one of {', '.join(DEBUG_COUNTERS)}")
    return calls.debug_counter(name.encode())


def set_knob(name: str, value: str) -> None:
    """Set one of Tailscale's ``TS_*`` environment knobs for this process's nodes.

    The library's Go runtime took its own copy of the environment when it
    was loaded, so changing :data:`os.environ` afterwards changes nothing:
    this does. It applies to nodes and connections made from then on, in
    the whole process; ``""`` restores the default. For example
    ``set_knob("TS_NETSTACK_KEEPALIVE_IDLE", "1s")`` and
    ``TS_NETSTACK_KEEPALIVE_INTERVAL`` shorten how long a connection to a
    vanished peer lasts (docs/reliability.md). Auth keys are refused
    (:class:`~tailnet.ConfigurationError`): pass them to the server.
    """
    calls.setenv(c_string("name", name), c_string("value", value))


def apply_quiet_environment() -> None:
    """Make nodes of this process upload no logs and do no port mapping."""
    for key, value in QUIET_ENVIRONMENT.items():
        calls.setenv(key.encode(), value.encode())


_ACME_KNOB = "TS_DEBUG_ACME_DIRECTORY_URL"


class _AcmeDirectory:
    """Where this process's nodes send certificate (ACME) requests.

    Once a :class:`LocalTailnet` was made they go to its control server,
    which refuses them, so they never leave the machine. The knob is
    process-wide: the most recent open local tailnet owns it; after the last
    one closes it keeps naming that tailnet's (closed) port, so requests
    are still refused locally rather than sent to Let's Encrypt.
    """

    _owners: ClassVar[list[LocalTailnet]] = []
    _lock = threading.Lock()

    @classmethod
    def claim(cls, net: LocalTailnet) -> None:
        with cls._lock:
            cls._owners.append(net)
            cls._apply()

    @classmethod
    def release(cls, net: LocalTailnet) -> None:
        with cls._lock:
            if net in cls._owners:
                cls._owners.remove(net)
                if cls._owners:
                    cls._apply()

    @classmethod
    def _apply(cls) -> None:
        url = cls._owners[-1]._acme_environment()[_ACME_KNOB]
        calls.setenv(_ACME_KNOB.encode(), url.encode())


class LocalTailnet:
    """Control server + DERP + STUN on loopback (or another address of this host).

    Args:
        authkey: If set, nodes must present exactly this auth key.
        interactive: Nodes without an auth key wait for an interactive
            login; complete it with :meth:`complete_login`.
        magicdns_domain: The tailnet's DNS suffix.
        app_capabilities: Capabilities every node grants every other, as a
            policy grant ``{"src": ["*"], "dst": ["*"], "app": ...}``
            would: ``{"example.com/cap/admin": [{"level": 2}]}``. They
            appear in :meth:`~tailnet.Server.whois` results.
        https: Offer nodes TLS certificate domains (``<host>.<domain>``).
            There is no ACME server: certificate requests fail with a clear
            error unless :meth:`install_certificate` put one in the node's
            cache. With False the control server also sends no DNS
            configuration (Tailscale's test control server ties cert
            domains to it); names still resolve for ``dial``.
        funnel: Grant nodes Funnel on ports 443, 8443 and 10000.
        address: The IP address the three servers bind to and advertise in
            the control URL and DERP map. Nodes in other network namespaces
            or containers need one they can reach.
        control_port: Fixed port of the control server (0: a free one).
        derp_port: Fixed port of the DERP relay (0: a free one).
        stun_port: Fixed UDP port of the STUN server (0: a free one).

    Nodes get the tags they advertise (tag ownership is not modeled), and
    every peer is reported online (the control server does not track
    sessions). Nodes are never removed, ephemeral ones included.

    :meth:`pause` and :meth:`resume` take the servers down and bring them
    back with their state: a control server restart as nodes see it.
    """

    def __init__(
        self,
        *,
        authkey: str | None = None,
        interactive: bool = False,
        magicdns_domain: str = "tailnet.test",
        app_capabilities: Mapping[str, Sequence[Any]] | None = None,
        https: bool = True,
        funnel: bool = True,
        address: str = "127.0.0.1",
        control_port: int = 0,
        derp_port: int = 0,
        stun_port: int = 0,
    ) -> None:
        apply_quiet_environment()
        ports = {"control_port": control_port, "derp_port": derp_port, "stun_port": stun_port}
        for name, value in ports.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not isinstance(address, str):
            raise TypeError(f"address must be a str, not {type(address).__name__}")
        config = json.dumps(
            {
                "authkey": authkey or "",
                "interactive": interactive,
                "magicdns_domain": magicdns_domain,
                "app_capabilities": {name: list(values) for name, values in (app_capabilities or {}).items()},
                "https": https,
                "funnel": funnel,
                "address": address,
                **ports,
            }
        )
        handle, control_url = calls.localnet_start(config.encode())
        self._handle: int | None = handle
        self._authkey = authkey
        self.control_url: str = control_url
        """The control server's URL, for ``Server(control_url=...)``."""
        self.magicdns_domain = magicdns_domain
        """The DNS suffix of node names (``<hostname>.<magicdns_domain>``)."""
        info = self._info()
        self.address: str = info["address"]
        """The IP address the servers listen on."""
        self.ports: dict[str, int] = {name: int(info[f"{name}_port"]) for name in ("control", "derp", "stun")}
        """The ports in use: ``{"control": ..., "derp": ..., "stun": ...}``."""
        self._state_root = tempfile.TemporaryDirectory(prefix="tailnet-local-")
        _AcmeDirectory.claim(self)

    def _acme_environment(self) -> dict[str, str]:
        return {_ACME_KNOB: f"{self.control_url}/acme/directory"}

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(calls.localnet_info(self._live()))
        return info

    @property
    def environ(self) -> dict[str, str]:
        """Environment for a child process whose ``tailnet.Server()`` should join this tailnet."""
        env = {**QUIET_ENVIRONMENT, **self._acme_environment(), "TS_CONTROL_URL": self.control_url}
        if self._authkey:
            env["TS_AUTHKEY"] = self._authkey
        return env

    def server(self, hostname: str, **kwargs: Any) -> Server:
        """A :class:`~tailnet.Server` on this tailnet (not yet up).

        Defaults: this tailnet's control URL and auth key, a fresh state
        directory removed on :meth:`close` (none with a ``store``), ephemeral. Keyword arguments
        override them.
        """
        return Server(hostname, **self._server_options(hostname, kwargs))

    def async_server(self, hostname: str, **kwargs: Any) -> AsyncServer:
        """An :class:`~tailnet.AsyncServer` on this tailnet, as :meth:`server`."""
        from .._server_async import AsyncServer

        return AsyncServer(hostname, **self._server_options(hostname, kwargs))

    def _server_options(self, hostname: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {"control_url": self.control_url, "authkey": self._authkey, "ephemeral": True, **kwargs}
        if "state_dir" not in options and options.get("store") is None:
            options["state_dir"] = tempfile.mkdtemp(prefix=f"{hostname}-", dir=self._state_root.name)
        return options

    @property
    def derp_map(self) -> dict[str, Any]:
        """The DERP map this tailnet's nodes get (``tailcfg.DERPMap`` as JSON data).

        Its one region is this tailnet's DERP relay (self-signed, marked
        ``InsecureForTests``) and STUN server: give it to another control
        server, such as headscale (``derp.paths``), to run that one offline.
        """
        derp_map: dict[str, Any] = json.loads(calls.localnet_derp_map(self._live()))
        return derp_map

    def complete_login(self, url: str) -> None:
        """Approve the interactive login a node is waiting on at ``url``."""
        calls.localnet_complete_auth(self._live(), c_string("url", url))

    @property
    def ca_pem(self) -> str:
        """The PEM certificate of this tailnet's CA, which :meth:`install_certificate` signs with.

        Trust it in TLS clients: ``ssl.create_default_context(cadata=net.ca_pem)``.
        """
        return calls.localnet_ca(self._live())

    def install_certificate(self, server: Server | AsyncServer) -> tuple[str, ...]:
        """Put a certificate for each of ``server``'s cert domains into its certificate cache.

        The local tailnet has no ACME server; this stands in for one, so
        that ``listen_tls`` and ``listen_funnel`` work offline. The server
        must be up (its cert domains are known then); the certificates are
        signed by :attr:`ca_pem` and valid for 30 days. Returns the domains.
        """
        domains = server.cert_domains
        if not domains:
            raise ConfigurationError(
                f"{server.hostname!r} has no cert domains: bring it up first, on a tailnet with https=True"
            )
        if server.state_dir is None:
            raise ConfigurationError(
                f"{server.hostname!r} has no directory (a store and no state_dir), so no certificate cache"
            )
        for domain in domains:
            calls.localnet_install_cert(self._live(), server.state_dir, c_string("domain", domain))
        return domains

    def deny_from(self, *hostnames: str) -> None:
        """Set the tailnet's packet filter: drop connections these nodes start.

        Every node then drops connections that a node named here originates
        (its SYNs to a listener go unanswered, so its dials time out), and
        keeps accepting everyone else. Connections a denied node *accepts*
        still work. Each call replaces the list; ``deny_from()`` allows all
        again. Names must be of nodes that have joined; nodes apply the new
        filter within a moment (it travels with their next netmap).
        """
        for name in hostnames:
            if not isinstance(name, str):
                raise TypeError(f"hostnames must be str, not {type(name).__name__}")
            if not name or "," in name:
                raise ConfigurationError(f"{name!r} is not a node name")
        calls.localnet_deny_from(self._live(), c_string("hostnames", ",".join(hostnames)))

    def pause(self) -> None:
        """Take the control server, DERP and STUN down, keeping the tailnet's state.

        Every listener and connection closes, as if their process had died;
        nodes keep running on what they know. Idempotent.
        """
        calls.localnet_pause(self._live())

    def resume(self) -> None:
        """Serve again after :meth:`pause`: same ports, same keys, same nodes.

        That is what nodes see when a real control server restarts; they
        reconnect by themselves. Raises :class:`~tailnet.AddressInUseError`
        if a port was taken meanwhile (it may be retried). Idempotent.
        """
        calls.localnet_resume(self._live())

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` took the servers down."""
        return bool(self._info()["paused"])

    def _live(self) -> int:
        if self._handle is None:
            raise ClosedError("the local tailnet is closed")
        return self._handle

    def close(self) -> None:
        """Stop the servers. Nodes on it lose their control connection. Idempotent."""
        if self._handle is not None:
            _AcmeDirectory.release(self)
            calls.localnet_close(self._handle)
            self._handle = None
            self._state_root.cleanup()

    def __enter__(self) -> LocalTailnet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LocalTailnet {self.control_url}{' closed' if self._handle is None else ''}>"
