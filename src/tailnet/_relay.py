"""A relay: one local connection and one tailnet connection, copied both ways.

Used by :meth:`tailnet.AsyncServer.forward` (local clients to a tailnet
service) and by ``tailnet proxy`` (tailnet clients to a local service). It
keeps the promises of tailnet's sockets across the relay:

- **Close delivers.** A side's end-of-file is passed on as a half-close
  after everything it sent, so the other direction goes on until its own
  end-of-file; the relay closes both sockets only then.
- **An abort is an error.** A reset (or any error) on either side aborts
  both: the tailnet peer gets a RST (:meth:`TailnetStream.reset`) and the
  local TCP peer a RST (``SO_LINGER`` 0), so neither mistakes it for a
  clean end. A unix socket has no RST: its peer reads an error only if it
  had data unread, else end-of-file.
"""

from __future__ import annotations

import contextlib
import socket
import struct

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ._logs import LOGGER
from ._stream_async import TailnetStream

__all__ = ["Relay", "reset_on_close"]

#: What a copy's failure may raise: a reset, a closed socket.
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
#: ``struct linger`` with l_onoff 1 and l_linger 0: close() sends a RST.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
#: How much one copy reads at a time.
_CHUNK = 256 * 1024


def reset_on_close(stream: anyio.abc.SocketStream) -> None:
    """Make closing a local TCP stream send a RST (nothing for a unix socket)."""
    sock: socket.socket = stream.extra(SocketAttribute.raw_socket)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)


class Relay:
    """One local connection and its tailnet connection, copied both ways."""

    def __init__(self, local: anyio.abc.SocketStream, remote: TailnetStream) -> None:
        self.local = local
        self.remote = remote
        self.aborted = False
        self._scope = anyio.CancelScope()

    async def run(self) -> None:
        """Copy both ways until both sides have ended, then close both."""
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._copy, self.local, self.remote)
                    tg.start_soon(self._copy, self.remote, self.local)
        finally:
            with anyio.CancelScope(shield=True):
                await self.remote.aclose()
                await self.local.aclose()

    async def _copy(self, source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        try:
            while True:
                try:
                    chunk = await source.receive(_CHUNK)
                except anyio.EndOfStream:
                    break
                await sink.send(chunk)
            await sink.send_eof()
        except _BROKEN as exc:
            LOGGER.debug("forwarded connection %s aborted: %r", self.remote, exc)
            self.abort()

    def abort(self) -> None:
        """Reset both sides (once) and stop copying."""
        if not self.aborted:
            self.aborted = True
            reset_on_close(self.local)
            self.remote.reset()
        self._scope.cancel()
