"""The synchronous API: :class:`Server` and :class:`Listener`.

Each method is the core's call (:mod:`tailnet._node`) plus a wait of
:mod:`tailnet._waiting_sync`; :mod:`tailnet._server_async` mirrors it name
for name.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from ._addresses import Address, IPAddress
from ._binding import formats
from ._datagram import DatagramNetwork, StreamNetwork, is_datagram_network
from ._datagram_sync import DatagramSocket, TailnetDatagramSocket
from ._exceptions import ClosedError
from ._forward import LocalSpec, open_forward
from ._forward_sync import Forwarder
from ._info import PING_TIMEOUT, Loopback, PeerIdentity, PingKind, PingResult, Status, WatchEvent
from ._localapi_sync import LocalAPIClient
from ._logs import LOGGER
from ._node import ListenerCore, Node, open_nodes
from ._public import present, qualified_name
from ._server import ARGUMENTS_DOC, ServerBase
from ._stream_sync import TailnetSocket
from ._waiting_sync import SIGNAL_CHECK, complete, finish, retry, wait_readable, wait_writable
from ._watch_sync import Watcher, up_with_events

if TYPE_CHECKING:
    from ._asgi_scope import ASGIApp
    from .asgi import WSGIApp
    from .httpx import HTTPTransport

__all__ = ["Listener", "Server", "close_nodes"]


def close_nodes(nodes: Iterable[Node], *, at_exit: bool = False) -> None:
    """Close nodes, their connections delivering for up to each one's linger time.

    They close concurrently. Ctrl-C while waiting cuts the linger short
    (the connections still delivering are aborted) and is then raised.
    First, what their connections' ``makefile`` writers still buffer is
    flushed (see :func:`flush_writers`).
    """
    nodes = list(nodes)
    try:
        flush_writers(nodes, at_exit=at_exit)
    except BaseException:  # interrupted: close without lingering
        for node in nodes:
            if (op := node.begin_close()) is not None:
                node.finish_close(op, completed=False)
        raise
    closing = [(node, op) for node in nodes if (op := node.begin_close()) is not None]
    for index, (node, op) in enumerate(closing):
        completed = False
        try:
            wait_readable(op.wait_fd)
            completed = True
        finally:
            node.finish_close(op, completed=completed)
            if not completed:  # interrupted: cut the others short too
                for other, other_op in closing[index + 1 :]:
                    other.finish_close(other_op, completed=False)


def flush_writers(nodes: list[Node], *, at_exit: bool = False) -> None:
    """Flush what the ``makefile`` writers of the nodes' connections still buffer.

    A kernel socket stays open while a file object made from it does, and
    the interpreter flushes a forgotten writer as it collects it, even at
    exit; here closing the node ends its connections first, so it flushes
    them itself. A thread of its own flushes them, each once its
    descriptor takes more, while this one waits for at most the longest
    linger time: a flush that waits on a peer that does not read, or on
    another thread blocked in the same writer, cannot hold close up for
    longer (the abort after the linger ends it, and one WARNING says so).
    A text writer's own buffer is flushed only at interpreter exit: it is
    not safe to flush while another thread writes to it, and its bytes
    below are.
    """
    writers = [(file, fd) for node in nodes if node.config.linger > 0 for file, fd in node.take_writers()]
    if not writers:
        return
    deadline = time.monotonic() + max(node.config.linger for node in nodes)

    def flush_all() -> None:
        for file, fd in writers:
            target = file.buffer if isinstance(file, io.TextIOWrapper) and not at_exit else file
            with contextlib.suppress(Exception):
                wait_writable(fd, max(0.0, deadline - time.monotonic()), "flushing a makefile() writer")
                target.flush()

    flusher = threading.Thread(target=flush_all, name="tailnet-flush-writers", daemon=True)
    flusher.start()
    while flusher.is_alive() and (remaining := deadline - time.monotonic()) > 0:
        flusher.join(min(remaining, SIGNAL_CHECK))
    if flusher.is_alive():
        LOGGER.warning(
            "closing with %d makefile() writer(s) not flushed within the linger time: their buffers are cut",
            len(writers),
        )


@atexit.register
def _close_at_exit() -> None:
    """Close the servers a program left open, as their process exit would close sockets."""
    close_nodes(open_nodes(), at_exit=True)


@present
class Listener:
    """Accepts tailnet TCP connections; returned by :meth:`Server.listen`.

    Iterating yields connections until the listener or its server closes.
    """

    def __init__(self, core: ListenerCore) -> None:
        self._core = core

    @property
    def address(self) -> str:
        """The address it listens on, e.g. ":8080" (with the chosen port if 0 was asked for)."""
        return self._core.address

    def accept(self, timeout: float | None = None) -> tuple[TailnetSocket, Address]:
        """Wait for a connection and return ``(socket, (peer_ip, peer_port))``.

        The socket is blocking, like :meth:`socket.socket.accept`'s. Raises
        :class:`~tailnet.ClosedError` once the listener closes and
        :class:`~tailnet.TailnetTimeout` after ``timeout`` seconds.
        """
        formats.timeout_ms(timeout)  # validate
        conn = retry(self._core.receive, self._core.sock, timeout, "accept", closed="the listener is closed")
        return TailnetSocket.adopt_connection(conn), conn.remote

    def fileno(self) -> int:
        """A descriptor that is readable when :meth:`accept` will not block."""
        return self._core.sock.fileno()

    def close(self) -> None:
        """Stop listening. Idempotent."""
        self._core.close()

    def __iter__(self) -> Iterator[tuple[TailnetSocket, Address]]:
        """Yield accepted connections until the listener closes."""
        while True:
            try:
                yield self.accept()
            except ClosedError:
                return

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._core.closed else "open"
        return f"<{qualified_name(self)} {self.address} {state}>"


@present
class Server(ServerBase):
    __doc__ = (
        """A Tailscale node in this process, with a blocking API (like Go's ``tsnet.Server``).

    ::

        with tailnet.Server(hostname="my-service") as ts:
            conn = ts.dial("tcp", "other-node:8080")

    The constructor checks its arguments and does no I/O; ``up`` (or
    ``with``) creates the state directory and joins the tailnet; ``listen`` and ``dial`` work as
    on any host of the tailnet. :class:`AsyncServer` is the same on asyncio
    and trio.
    """
        + ARGUMENTS_DOC
    )
    __slots__ = ()

    def start(self) -> Server:
        """Start the node without waiting for it to join the tailnet."""
        self._node.start()
        return self

    def up(
        self, timeout: float | None = None, *, on_event: Callable[[WatchEvent], object] | None = None
    ) -> Server:
        """Join the tailnet and wait until the node is running; returns self.

        Without an auth key the node waits for an interactive login: its
        URL is logged on the ``tailnet`` logger (at WARNING, once, as soon
        as it is known), is
        :attr:`login_url` meanwhile, and reaches ``on_event`` as a
        :class:`~tailnet.LoginRequired` event. ``on_event`` is called in
        this thread with each event (state changes too) while waiting.
        Raises :class:`~tailnet.TailnetTimeout` after ``timeout`` seconds
        (its message says what the node was waiting for: the login and its
        URL, the control server, an admin's approval),
        :class:`~tailnet.AuthenticationError` if the control server refused
        the login (or needs an auth key and none was given) and
        :class:`~tailnet.ClosedError` if :meth:`close` is called
        meanwhile.
        """
        if on_event is None:
            finish(self._node.begin_up(timeout))
        else:
            up_with_events(self._node, timeout, on_event)
        return self

    @overload
    def dial(
        self, network: StreamNetwork, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetSocket: ...
    @overload
    def dial(
        self, network: DatagramNetwork, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetDatagramSocket: ...
    @overload
    def dial(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetSocket | TailnetDatagramSocket: ...
    def dial(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> TailnetSocket | TailnetDatagramSocket:
        """Connect to ``address`` ("host:port" or (host, port)) on the tailnet.

        ``host`` is a tailnet IP or MagicDNS name; ``network`` is ``"tcp"``,
        ``"tcp4"`` or ``"tcp6"`` for a connected, blocking
        :class:`TailnetSocket`, or ``"udp"``, ``"udp4"`` or ``"udp6"`` for a
        connected :class:`TailnetDatagramSocket`. A single-label name, a
        name in the tailnet's MagicDNS domain or a tailnet IP that no node
        has raises :class:`~tailnet.HostUnreachable` at once, without
        asking any resolver; other names are resolved by the host (see
        "Names in a dial" in docs/python-api.md).
        """
        conn = self._node.connection(*finish(self._node.begin_dial(network, address, timeout)))
        if is_datagram_network(network):
            return TailnetDatagramSocket.adopt(conn.fd, conn.remote, conn.local)
        return TailnetSocket.adopt_connection(conn)

    def listen(self, network: str, address: str | tuple[str, int]) -> Listener:
        """Listen for tailnet connections on ``address`` (":port" or "ip:port")."""
        return Listener(self._node.listen(network, address))

    def listen_packet(self, network: str, address: str | tuple[str, int]) -> DatagramSocket:
        """Open a UDP socket on ``address``: "ip:port" (a tailnet IP of this node) or ":port".

        ``network`` is ``"udp"``, ``"udp4"`` or ``"udp6"``. ":port" binds
        every tailnet IP of the node in those families (so the node must be
        up); port 0 picks one.
        """
        return DatagramSocket(self._node.listen_packet(network, address))

    def listen_tls(
        self, network: str, address: str | tuple[str, int], timeout: float | None = None
    ) -> Listener:
        """Listen with TLS, using the tailnet's certificate for this node (like Go's ``ListenTLS``).

        Joins the tailnet if needed and fetches the certificate first, so a
        tailnet that offers none raises
        :class:`~tailnet.CertificateUnavailableError` here rather than at the
        first handshake. Accepted sockets carry plaintext: the handshake is
        done before :meth:`Listener.accept` returns them.
        """
        return Listener(self._node.listener(*finish(self._node.begin_listen_tls(network, address, timeout))))

    def listen_funnel(
        self,
        network: str,
        address: str | tuple[str, int],
        *,
        funnel_only: bool = False,
        timeout: float | None = None,
    ) -> Listener:
        """Listen with TLS on the public internet through Tailscale Funnel (Go's ``ListenFunnel``).

        ``network`` is ``"tcp"`` and ``address`` ``":port"`` (443, 8443 or
        10000 on Tailscale). Tailnet peers can connect too unless
        ``funnel_only``. Raises :class:`~tailnet.FunnelUnavailableError` if
        the tailnet does not allow it, and
        :class:`~tailnet.CertificateUnavailableError` without a certificate.
        """
        op = self._node.begin_listen_funnel(network, address, funnel_only, timeout)
        return Listener(self._node.listener(*finish(op)))

    def loopback(self) -> Loopback:
        """Start the node's SOCKS5 proxy and LocalAPI server on 127.0.0.1 (once).

        Returns their address and credentials (:class:`~tailnet.Loopback`).
        Starts the node if needed, without waiting for it to join.
        """
        return self._node.loopback()

    def local_api(self) -> LocalAPIClient:
        """A client for the node's LocalAPI (over :meth:`loopback`)."""
        return LocalAPIClient(self._node, self.loopback())

    def whois(self, address: str | tuple[str, int] | IPAddress, timeout: float | None = None) -> PeerIdentity:
        """Who is behind a tailnet address, e.g. an accepted connection's peer.

        ``address`` is ``(ip, port)`` (as ``accept`` returns), ``"ip:port"``
        or an IP. Returns the node, its user, tags and capabilities as the
        control server reports them: use it to authorize callers. Raises
        :class:`~tailnet.PeerNotFound` if no node has that address.
        """
        return complete(self._node.begin_whois(address, timeout))

    def status(self, timeout: float | None = None) -> Status:
        """This node, its peers and the tailnet (starts the node if needed)."""
        return complete(self._node.begin_status(timeout))

    def ping(
        self,
        peer: str | IPAddress,
        kind: PingKind | str = PingKind.DISCO,
        timeout: float | None = PING_TIMEOUT,
    ) -> PingResult:
        """Ping a peer (a tailnet IP or its name) and report latency and path.

        ``kind``: ``"disco"`` (default; reports whether the path is direct
        or through which DERP region), ``"tsmp"`` or ``"icmp"``. A ping
        not answered within 1 s is sent again (then after 2, 4, 8 s), so
        one lost packet costs a retry, not a failure; the result is the
        first answer's. Raises :class:`~tailnet.PeerNotFound` for a peer
        this node does not know (one that joined moments ago may not be
        known yet) and :class:`~tailnet.TailnetTimeout` if no answer comes
        in ``timeout`` seconds.
        """
        return complete(self._node.begin_ping(peer, kind, timeout))

    def watch(self) -> Watcher:
        """Watch the node's state changes and login URLs (starts the node if needed).

        ::

            with ts.watch() as events:
                for event in events:
                    if isinstance(event, tailnet.LoginRequired):
                        print("log in at", event.url)
                    elif event == tailnet.StateChanged(tailnet.BackendState.RUNNING):
                        break
        """
        return Watcher(self._node.watch())

    def forward(
        self, target: str | tuple[str, int], local: LocalSpec = 0, *, timeout: float | None = None
    ) -> Forwarder:
        """Relay connections to a local endpoint to the tailnet service ``target``.

        For client libraries that dial ``host:port`` themselves (database
        drivers, gRPC, SSH)::

            with ts.forward("db:5432") as fwd:
                host, port = fwd.address
                conn = psycopg.connect(host=host, port=port, user="app")

        ``target`` is "host:port" or (host, port) on the tailnet (a
        MagicDNS name or tailnet IP). ``local`` is where to listen: a port
        on 127.0.0.1 (default 0: one the system picks; see
        :attr:`Forwarder.address`), "host:port" or (host, port), or a unix
        socket path (created with mode 0600, removed on close; a path
        that exists raises :class:`~tailnet.AddressInUseError`). Each
        local connection is relayed over its own tailnet connection,
        dialed when it is accepted (``timeout`` bounds the dial; if it
        fails, the local client gets a reset). Closes delivered and
        resets are passed on both ways (see ``docs/forwarding.md``). A
        TCP port is open to every user of this machine; a unix socket
        keeps them out.
        """
        address, endpoint = open_forward(self._node, target, local, timeout)
        return Forwarder(self._node, address, endpoint, timeout)

    def httpx_transport(self, **options: Any) -> HTTPTransport:
        """An :class:`httpx.HTTPTransport` dialing through this node.

        ``httpx.Client(transport=ts.httpx_transport())`` then reaches
        ``http://peer-name:8080/`` by MagicDNS name or tailnet IP.
        ``options`` are :class:`httpx.HTTPTransport`'s (``verify``,
        ``http2``, ``limits``, ``retries``, ...). Needs ``tailnet[httpx]``.
        """
        from .httpx import HTTPTransport

        return HTTPTransport(self, **options)

    def serve_asgi(self, app: ASGIApp | str, port: int | Listener = 80, **options: Any) -> None:
        """Serve an ASGI app (Starlette, FastAPI, ...) with uvicorn on tailnet ``port``; blocks.

        ``port`` is a port to listen on, or a :class:`~tailnet.Listener`
        you made (connections made meanwhile wait for the server). Returns
        when this server closes; Ctrl-C (in the main thread) shuts down
        gracefully, then raises KeyboardInterrupt. ``options`` are
        :class:`uvicorn.Config`'s except ``host``/``port``. Each scope's
        ``client`` is the peer's tailnet address, also in
        ``scope["extensions"]["tailnet"]["peer"]``, and
        ``scope["extensions"]["tailnet"]["whois"]`` says who is calling (a
        :class:`~tailnet.PeerIdentity`, see :mod:`tailnet.asgi`). Needs
        ``tailnet[asgi]``.
        """
        from . import asgi

        if isinstance(port, Listener):
            listener = port
        else:
            listener = self.listen("tcp", asgi.listen_address(port, "Listener"))
        asgi.run(listener, app, server=self, **options)

    def serve_wsgi(
        self, app: WSGIApp, port: int | Listener = 80, *, workers: int = 10, **options: Any
    ) -> None:
        """Serve a WSGI app (Flask, Django, ...) on tailnet ``port``; blocks, like :meth:`serve_asgi`.

        Runs on uvicorn through a2wsgi with ``workers`` threads;
        ``environ["tailnet.peer"]`` is the peer's tailnet ``(ip, port)`` and
        ``environ["tailnet.whois"]`` its :class:`~tailnet.PeerIdentity`.
        Needs ``tailnet[wsgi]``.
        """
        from . import asgi

        self.serve_asgi(asgi.from_wsgi(app, workers=workers), port, **options)

    def close(self) -> None:
        """Leave the tailnet: close listeners, connections and the node. Idempotent.

        Connections first finish delivering what was written to them, for
        up to the server's ``linger`` time (see :class:`Server`); Ctrl-C
        meanwhile aborts them at once.
        """
        close_nodes([self._node])

    def __enter__(self) -> Server:
        try:
            return self.up()
        except BaseException:  # __exit__ will not run: close here (its store thread too)
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
