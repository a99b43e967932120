"""The LocalAPI exchange both clients share: HTTP/1.1 to the node's loopback server, stdlib only.

tsnet serves the LocalAPI (what the ``tailscale`` CLI talks to) on its
loopback port: every request needs the loopback's LocalAPI credential as
HTTP basic auth and the header ``Sec-Tailscale: localapi``. One request
per connection (``Connection: close``), so a response is everything read
until EOF; that excludes streaming endpoints such as ``watch-ipn-bus``.

Building the request and parsing the response live here (sans-IO,
:class:`Exchange`); the clients of :mod:`tailnet._localapi_sync` and
:mod:`tailnet._localapi_async` only move the bytes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import socket
from dataclasses import dataclass, field
from typing import Any, cast

from ._binding import formats
from ._exceptions import ConfigurationError, LocalAPIError, TailnetTimeout
from ._info import Loopback
from ._public import present

__all__ = ["Body", "Exchange", "LocalAPIResponse", "check_timeout", "grow"]

#: Largest response read (a full status of a big tailnet is a few MB).
_MAX_RESPONSE = 64 << 20
_METHOD = re.compile(r"[A-Z]{3,10}")
#: A path and query: printable ASCII without spaces (no header injection).
_PATH = re.compile(r"/[!-~]*")

Body = bytes | str | dict[str, Any] | list[Any] | None


@present
@dataclass(frozen=True)
class LocalAPIResponse:
    """A LocalAPI response whose status was below 400."""

    status: int
    reason: str
    headers: dict[str, str] = field(repr=False)
    """Header names in lower case."""
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body decoded as JSON (None if empty)."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise LocalAPIError(self.status, f"LocalAPI response is not JSON: {exc}") from None


def _encode_body(body: Body) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    if isinstance(body, dict | list):
        return json.dumps(body).encode(), "application/json"
    raise TypeError(f"body must be bytes, str, a JSON dict/list or None, not {type(body).__name__}")


class _RecordedResponse:
    """What http.client.HTTPResponse needs of a socket, over bytes already read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str, *args: object) -> io.BytesIO:
        return io.BytesIO(self._data)


class Exchange:
    """One request to the LocalAPI: its bytes, and the parsing of its response."""

    def __init__(self, loopback: Loopback, method: str, path: str, body: Body) -> None:
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            raise ConfigurationError(f"method must be an HTTP method such as 'GET', not {method!r}")
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise ConfigurationError(
                f"path must start with '/' and hold no spaces or control characters: {path!r}"
            )
        self.method, self.path = method, path
        content, content_type = _encode_body(body)
        host, port = loopback.address
        auth = base64.b64encode(f":{loopback.local_api_credential}".encode()).decode()
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host}:{port}",
            f"Authorization: Basic {auth}",
            "Sec-Tailscale: localapi",
            "Connection: close",
            f"Content-Length: {len(content)}",
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        self.data = ("\r\n".join(lines) + "\r\n\r\n").encode() + content

    def response(self, raw: bytes) -> LocalAPIResponse:
        """Parse the raw response; raise :class:`LocalAPIError` for a status >= 400."""
        # Imported here, not at the top: http.client brings in email and ssl,
        # 7 MiB of resident memory in every process that imports tailnet.
        import http.client

        parser = http.client.HTTPResponse(cast(socket.socket, _RecordedResponse(raw)), method=self.method)
        try:
            parser.begin()
            body = parser.read()
        except (http.client.HTTPException, ValueError) as exc:
            raise LocalAPIError(
                0, f"LocalAPI {self.method} {self.path}: malformed response ({exc!r})"
            ) from None
        if parser.status >= 400:
            detail = body[:300].decode("utf-8", "replace").strip()
            raise LocalAPIError(
                parser.status,
                f"LocalAPI {self.method} {self.path}: HTTP {parser.status} {parser.reason}: {detail}",
            )
        headers = {name.lower(): value for name, value in parser.getheaders()}
        return LocalAPIResponse(parser.status, parser.reason, headers, body)

    def unreachable(self, exc: BaseException) -> LocalAPIError:
        """The error for a transport failure."""
        reason = getattr(exc, "strerror", None) or repr(exc)
        return LocalAPIError(
            0, f"LocalAPI {self.method} {self.path}: no response from the loopback server: {reason}"
        )

    def timed_out(self, timeout: float | None) -> TailnetTimeout:
        """The error for a request that took longer than timeout."""
        return TailnetTimeout(
            f"LocalAPI {self.method} {self.path} timed out after {formats.seconds(timeout)}"
        )


def check_timeout(timeout: float | None) -> None:
    """Check a request's timeout argument (seconds or None)."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ConfigurationError(f"timeout must be >= 0 seconds or None, not {timeout}")


def grow(received: bytearray, chunk: bytes, exchange: Exchange) -> None:
    """Append a chunk of the response, refusing one larger than any LocalAPI answer."""
    received += chunk
    if len(received) > _MAX_RESPONSE:
        raise LocalAPIError(
            0, f"LocalAPI {exchange.method} {exchange.path}: response over {_MAX_RESPONSE} bytes"
        )
