"""The synchronous API: :class:`Server` and :class:`Listener`."""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import overload

from ._addresses import Address
from ._base import ServerBase
from ._core import Connection, ListenerCore, Node, Operation, open_nodes, timeout_ms
from ._datagram import DatagramNetwork, StreamNetwork, is_datagram_network
from ._datagram_sync import DatagramSocket, TailnetDatagramSocket
from ._exceptions import ClosedError
from ._integrations import SyncIntegrations
from ._localapi import LocalAPIClient
from ._node_info import WatchEvent
from ._node_sync import NodeInfoMethods, up_with_events
from ._services import Loopback, begin_listen_funnel, begin_listen_tls, listener_from_result, loopback
from ._socket import TailnetSocket
from ._wait import wait_readable, wait_socket

__all__ = ["Listener", "Server"]


def _finish(op: Operation) -> tuple[int, str]:
    """Wait for op and collect it; on any exit (Ctrl-C included) free it."""
    try:
        wait_readable(op.wait_fd)
        return op.result()
    finally:
        op.free()


def _socket(conn: Connection) -> TailnetSocket:
    return TailnetSocket.adopt_connection(conn)


def close_nodes(nodes: Iterable[Node]) -> None:
    """Close nodes, their connections delivering for up to each one's linger time.

    They close concurrently. Ctrl-C while waiting cuts the linger short
    (the connections still delivering are aborted) and is then raised.
    """
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


@atexit.register
def _close_at_exit() -> None:
    """Close the servers a program left open, as their process exit would close sockets."""
    close_nodes(open_nodes())


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
        timeout_ms(timeout)  # validate
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                conn = self._core.receive()
            except BlockingIOError:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not wait_socket(self._core.sock, remaining, "accept"):
                    raise ClosedError("the listener is closed") from None  # by another thread
                continue
            return _socket(conn), conn.remote

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
        return f"<tailnet.Listener {self.address} {state}>"


class Server(ServerBase, NodeInfoMethods, SyncIntegrations):
    __doc__ = ServerBase.__doc__

    def start(self) -> Server:
        """Start the node without waiting for it to join the tailnet."""
        self._node.start()
        return self

    def up(
        self, timeout: float | None = None, *, on_event: Callable[[WatchEvent], object] | None = None
    ) -> Server:
        """Join the tailnet and wait until the node is running; returns self.

        Without an auth key the node waits for an interactive login: its
        URL is logged on the ``tailnet`` logger (at WARNING), is
        :attr:`login_url` meanwhile, and reaches ``on_event`` as a
        :class:`~tailnet.LoginRequired` event. ``on_event`` is called in
        this thread with each event (state changes too) while waiting.
        Raises :class:`~tailnet.TailnetTimeout` after ``timeout`` seconds
        and :class:`~tailnet.ClosedError` if :meth:`close` is called
        meanwhile.
        """
        if on_event is None:
            _finish(self._node.begin_up(timeout))
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
        connected :class:`TailnetDatagramSocket`.
        """
        conn = Connection.parse(*_finish(self._node.begin_dial(network, address, timeout)), self._node)
        if is_datagram_network(network):
            return TailnetDatagramSocket.adopt(conn.fd, conn.remote, conn.local)
        return _socket(conn)

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
        return Listener(
            listener_from_result(
                self._node, *_finish(begin_listen_tls(self._node, network, address, timeout))
            )
        )

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
        op = begin_listen_funnel(self._node, network, address, funnel_only, timeout)
        return Listener(listener_from_result(self._node, *_finish(op)))

    def loopback(self) -> Loopback:
        """Start the node's SOCKS5 proxy and LocalAPI server on 127.0.0.1 (once).

        Returns their address and credentials (:class:`~tailnet.Loopback`).
        Starts the node if needed, without waiting for it to join.
        """
        return loopback(self._node)

    def local_api(self) -> LocalAPIClient:
        """A client for the node's LocalAPI (over :meth:`loopback`)."""
        return LocalAPIClient(self._node, self.loopback())

    def close(self) -> None:
        """Leave the tailnet: close listeners, connections and the node. Idempotent.

        Connections first finish delivering what was written to them, for
        up to the server's ``linger`` time (see :class:`Server`); Ctrl-C
        meanwhile aborts them at once.
        """
        close_nodes([self._node])

    def __enter__(self) -> Server:
        return self.up()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
