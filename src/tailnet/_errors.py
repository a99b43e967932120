"""Turning the C API's per-call return codes into typed exceptions."""

from __future__ import annotations

import functools
from typing import Any

from . import _exceptions as exc
from ._library import ffi, lib

__all__ = ["ErrorBuffer", "raise_for_code"]

_ERRBUF_SIZE = 1024

_BY_CODE: dict[str, type[Exception]] = {
    "TAILNET_ERR_INVALID": exc.ConfigurationError,
    "TAILNET_ERR_BAD_HANDLE": exc.ClosedError,
    "TAILNET_ERR_CLOSED": exc.ClosedError,
    "TAILNET_ERR_TIMEOUT": exc.TailnetTimeout,
    "TAILNET_ERR_CANCELED": exc.TailnetError,
    "TAILNET_ERR_REFUSED": exc.ConnectionRefused,
    "TAILNET_ERR_UNREACHABLE": exc.HostUnreachable,
    "TAILNET_ERR_AUTH": exc.AuthenticationError,
    "TAILNET_ERR_ADDR_IN_USE": exc.AddressInUseError,
    "TAILNET_ERR_NOT_FOUND": exc.PeerNotFound,
    "TAILNET_ERR_RESET": exc.ConnectionReset,
    "TAILNET_ERR_NO_CERT": exc.CertificateUnavailableError,
    "TAILNET_ERR_NO_FUNNEL": exc.FunnelUnavailableError,
    "TAILNET_ERR_INTERNAL": exc.InternalError,
}

#: Advice appended to messages, by exception class.
_ADVICE: dict[type[Exception], str] = {
    exc.TailnetTimeout: "; pass a larger timeout, or check that the control server and peer are reachable",
    exc.AuthenticationError: "; check the auth key (TS_AUTHKEY) or log in with the URL tailnet logged",
    exc.HostUnreachable: "; check the name or IP against `status` and that the peer is online",
    exc.PeerNotFound: "; check the name or IP against `status()`",
    exc.CertificateUnavailableError: " (see docs/tls-and-funnel.md)",
    exc.FunnelUnavailableError: " (see docs/tls-and-funnel.md)",
}


@functools.cache
def _exception_classes() -> dict[int, type[Exception]]:
    library = lib()
    return {getattr(library, name): cls for name, cls in _BY_CODE.items()}


class ErrorBuffer:
    """A buffer the C side writes one call's error message into."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf: Any = ffi.new("char[]", _ERRBUF_SIZE)

    @property
    def size(self) -> int:
        """The buffer's size in bytes, as passed to C."""
        return _ERRBUF_SIZE

    def message(self) -> str:
        """The message the last call wrote."""
        return str(ffi.string(self.buf).decode("utf-8", "replace"))


def raise_for_code(code: int, message: str) -> None:
    """Raise the exception for a C return code; return on TAILNET_OK."""
    if code == 0:
        return
    cls = _exception_classes().get(code, exc.InternalError)
    if cls is exc.ClosedError:
        raise exc.ClosedError(message or "the tailnet server is closed")
    raise cls(message + _ADVICE.get(cls, ""))
