"""The standard library's :mod:`socketserver` (and so :mod:`http.server`) on a tailnet listener.

::

    import http.server, tailnet
    from tailnet.socketserver import ThreadingTCPServer

    with tailnet.Server("files") as ts:
        listener = ts.listen("tcp", ":80")
        with ThreadingTCPServer(listener, http.server.SimpleHTTPRequestHandler) as httpd:
            httpd.serve_forever()

Any :class:`socketserver.BaseRequestHandler` works unchanged: its
``request`` is a :class:`~tailnet.TailnetSocket` and its
``client_address`` the peer's tailnet ``(ip, port)``. ``serve_forever``
returns on ``shutdown()`` as usual, and also when the listener or its node
closes. Standard library only: no extra to install.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
from collections.abc import Callable
from typing import Any

from ._addresses import Address
from ._exceptions import ClosedError, TailnetTimeout
from ._server_sync import Listener
from ._stream_sync import TailnetSocket
from ._waiting_sync import wait_readable

__all__ = ["TCPServer", "ThreadingTCPServer"]


class TCPServer(socketserver.BaseServer):
    """A :class:`socketserver.BaseServer` accepting from a tailnet :class:`~tailnet.Listener`.

    Args:
        listener: Where connections come from; the server closes it on
            :meth:`server_close` (and ``with`` exit).
        RequestHandlerClass: Handles each connection, as for
            :class:`socketserver.TCPServer`.

    ``server_address`` is the listener's address as ``(host, port)``
    (``host`` empty when it listens on all of the node's addresses).
    """

    def __init__(self, listener: Listener, RequestHandlerClass: Callable[..., Any]) -> None:
        host, _, port = listener.address.rpartition(":")
        super().__init__((host.strip("[]"), int(port)), RequestHandlerClass)
        self.listener = listener
        """The tailnet listener connections are accepted from."""

    def fileno(self) -> int:
        """The listener's descriptor (what ``serve_forever`` waits on)."""
        return self.listener.fileno()

    def handle_request(self) -> None:
        """Handle one connection, waiting at most ``timeout`` seconds for it (None: no limit)."""
        if self.listener.fileno() < 0:
            return
        try:
            wait_readable(self.listener.fileno(), self.timeout, "handle_request")
        except TailnetTimeout:
            self.handle_timeout()
            return
        self._handle_request_noblock()  # type: ignore[attr-defined]

    def get_request(self) -> tuple[TailnetSocket, Address]:
        """Accept one connection without blocking; stop ``serve_forever`` once the listener is closed."""
        try:
            return self.listener.accept(timeout=0)
        except ClosedError:
            # serve_forever() would wake up for the closed descriptor forever:
            # ask its loop to end, as shutdown() does (without waiting on it,
            # since this runs inside that loop).
            self._BaseServer__shutdown_request = True
            raise

    def server_close(self) -> None:
        """Close the listener."""
        self.listener.close()

    def shutdown_request(self, request: Any) -> None:
        """Half-close the connection (the peer reads EOF), then close it."""
        with contextlib.suppress(OSError):  # already closed by the peer or the node
            request.shutdown(socket.SHUT_WR)
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Close the connection."""
        request.close()


class ThreadingTCPServer(socketserver.ThreadingMixIn, TCPServer):
    """:class:`TCPServer` handling each connection in a thread of its own (daemon threads)."""

    daemon_threads = True
