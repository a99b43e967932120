"""One typed function per ``tailnet_*`` export of ``go/tailscale.h``.

Each takes and returns Python values (handles are ints; strings are
checked and encoded, :func:`~tailnet._binding.formats.c_string`), owns the
buffers the C call writes into, and turns a return code into the
exception of :mod:`tailnet._exceptions` with the call's own message.
Nothing here waits: a call that blocks in Go starts an operation and
returns its handle and wait descriptor (:data:`OpHandles`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import _exceptions as exc
from .library import ffi, lib

__all__ = [
    "ERRBUF_SIZE",
    "OpHandles",
    "cert_domains",
    "close",
    "conn_error",
    "debug_counter",
    "debug_dump_goroutines",
    "debug_panic",
    "dial",
    "error_for_code",
    "exception_class",
    "free",
    "ips",
    "listen",
    "listen_funnel",
    "listen_packet",
    "listen_tls",
    "listener_close",
    "localnet_ca",
    "localnet_close",
    "localnet_complete_auth",
    "localnet_deny_from",
    "localnet_derp_map",
    "localnet_info",
    "localnet_install_cert",
    "localnet_pause",
    "localnet_resume",
    "localnet_start",
    "loopback",
    "new",
    "op_cancel",
    "op_free",
    "op_result",
    "op_text",
    "packet_close",
    "ping",
    "raise_for_code",
    "set_logfd",
    "set_option",
    "set_store",
    "setenv",
    "shutdown",
    "start",
    "state",
    "status",
    "up",
    "watch",
    "whois",
]

#: An operation: its handle and its wait descriptor (readable once it is done).
OpHandles = tuple[int, int]

ERRBUF_SIZE = 1024
_TEXT_SIZE = 256
_DOMAINS_SIZE = 4096
_ADDR_SIZE = 64
#: Each loopback credential is 32 hex digits; the library refuses smaller buffers.
_CRED_SIZE = 64
_LOCALNET_URL_SIZE = 256
_LOCALNET_CA_SIZE = 8192
_LOCALNET_DERP_MAP_SIZE = 4096
_LOCALNET_INFO_SIZE = 512

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
    "TAILNET_ERR_STATE": exc.StateStoreError,
    "TAILNET_ERR_NO_CERT": exc.CertificateUnavailableError,
    "TAILNET_ERR_NO_FUNNEL": exc.FunnelUnavailableError,
    "TAILNET_ERR_STATE_DIR": exc.StateDirError,
    "TAILNET_ERR_INTERNAL": exc.InternalError,
}

#: Advice appended to messages, by exception class. Timeouts and rejected
#: logins get none here: the library's message says what the node waited
#: for, or whether a key was given (go/explain.go).
_ADVICE: dict[type[Exception], str] = {
    exc.HostUnreachable: "; check the name or IP against `status` and that the peer is online",
    exc.PeerNotFound: "; check the name or IP against `status()`",
    exc.CertificateUnavailableError: " (see docs/tls-and-funnel.md)",
    exc.StateStoreError: " (see docs/state.md)",
    exc.FunnelUnavailableError: " (see docs/tls-and-funnel.md)",
}

_classes: dict[int, type[Exception]] = {}


def exception_class(code: int) -> type[Exception]:
    """The exception class of a C return code (InternalError for an unknown one)."""
    if not _classes:
        library = lib()
        _classes.update({getattr(library, name): cls for name, cls in _BY_CODE.items()})
    return _classes.get(code, exc.InternalError)


def error_for_code(code: int, message: str) -> Exception:
    """The exception for a C return code other than TAILNET_OK, with advice appended."""
    cls = exception_class(code)
    if cls is exc.ClosedError:
        return exc.ClosedError(message or "the tailnet server is closed")
    return cls(message + _ADVICE.get(cls, ""))


def raise_for_code(code: int, message: str) -> None:
    """Raise the exception for a C return code; return on TAILNET_OK."""
    if code:
        raise error_for_code(code, message)


class _ErrorBuffer:
    """The buffer one call writes its error message into."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf: Any = ffi().new("char[]", ERRBUF_SIZE)

    def check(self, code: int) -> None:
        raise_for_code(code, str(ffi().string(self.buf).decode("utf-8", "replace")) if code else "")


def _call(fn: Callable[..., int], *args: Any) -> None:
    """Call a C function taking (..., errbuf, errlen); raise on error."""
    err = _ErrorBuffer()
    err.check(fn(*args, err.buf, ERRBUF_SIZE))


def _begin(fn: Callable[..., int], *args: Any) -> OpHandles:
    """Call a C function that starts an operation (..., op, wait_fd, errbuf, errlen)."""
    cffi = ffi()
    op, wait_fd = cffi.new("int64_t *"), cffi.new("int *")
    _call(fn, *args, op, wait_fd)
    return int(op[0]), int(wait_fd[0])


def _text(buf: Any) -> str:
    return str(ffi().string(buf).decode("utf-8", "replace"))


def _read_whole(call: Callable[[Any, int, Any], int], size: int = 16 * 1024) -> str:
    """Text from a call taking (buf, buflen, needed): retried with a larger buffer if short."""
    cffi = ffi()
    needed = cffi.new("size_t *")
    while True:
        buf = cffi.new("char[]", size)
        raise_for_code(call(buf, size, needed), "")
        if needed[0] <= size:
            return _text(buf)
        size = int(needed[0])


# ---- Servers


def new() -> int:
    """``tailnet_new``: a new server (not started)."""
    out = ffi().new("int64_t *")
    _call(lib().tailnet_new, out)
    return int(out[0])


def set_option(server: int, key: str, value: bytes) -> None:
    """``tailnet_set``: one configuration option (``value`` encoded, see c_string)."""
    _call(lib().tailnet_set, server, key.encode(), value)


def set_logfd(server: int, fd: int, verbose: bool) -> None:
    """``tailnet_set_logfd``: where the server's log lines go."""
    _call(lib().tailnet_set_logfd, server, fd, int(verbose))


def set_store(server: int, fd: int, timeout_ms: int) -> None:
    """``tailnet_set_store``: the caller serves the server's state over ``fd``."""
    _call(lib().tailnet_set_store, server, fd, timeout_ms)


def start(server: int) -> None:
    """``tailnet_start``: start the node without waiting for it to join."""
    _call(lib().tailnet_start, server)


def up(server: int, timeout_ms: int) -> OpHandles:
    """``tailnet_up``: join the tailnet, as an operation."""
    return _begin(lib().tailnet_up, server, timeout_ms)


def ips(server: int) -> str:
    """``tailnet_ips``: the node's tailnet IPs, comma-separated ("" before it has any)."""
    buf = ffi().new("char[]", _TEXT_SIZE)
    _call(lib().tailnet_ips, server, buf, _TEXT_SIZE)
    return _text(buf)


def shutdown(server: int, linger_ms: int) -> OpHandles:
    """``tailnet_shutdown``: close gracefully, as an operation (result "CONNS BYTES")."""
    return _begin(lib().tailnet_shutdown, server, linger_ms)


def close(server: int) -> None:
    """``tailnet_close``: close at once."""
    _call(lib().tailnet_close, server)


def free(server: int) -> None:
    """``tailnet_free``: close if needed and release the handle."""
    lib().tailnet_free(server)


def conn_error(server: int, conn: int) -> Exception | None:
    """``tailnet_conn_error``: why connection ``conn`` was aborted, or None if it was not.

    :class:`~tailnet.ConnectionReset`, :class:`~tailnet.TailnetTimeout` (the
    peer stopped answering) or :class:`~tailnet.ClosedError` (the server is
    gone), with the library's reason as the message.
    """
    err = _ErrorBuffer()
    code = int(lib().tailnet_conn_error(server, conn, err.buf, ERRBUF_SIZE))
    if code == 0:
        return None
    message = _text(err.buf)
    cls = exception_class(code)
    return exc.ClosedError(message) if cls is exc.ClosedError else cls(message)


def conn_abort(server: int, conn: int) -> None:
    """``tailnet_conn_abort``: reset connection ``conn`` (the peer gets a RST); a no-op once it ended."""
    _call(lib().tailnet_conn_abort, server, conn)


# ---- Connections and listeners


def dial(server: int, network: bytes, address: bytes, timeout_ms: int) -> OpHandles:
    """``tailnet_dial``, as an operation (result: the descriptor and "REMOTE LOCAL [ID]")."""
    return _begin(lib().tailnet_dial, server, network, address, timeout_ms)


def _bound(fn: Callable[..., int], server: int, network: bytes, address: bytes) -> tuple[int, int, str]:
    cffi = ffi()
    handle, fd, bound = cffi.new("int64_t *"), cffi.new("int *"), cffi.new("char[]", _TEXT_SIZE)
    _call(fn, server, network, address, handle, fd, bound, _TEXT_SIZE)
    return int(handle[0]), int(fd[0]), _text(bound)


def listen(server: int, network: bytes, address: bytes) -> tuple[int, int, str]:
    """``tailnet_listen``: the listener's handle, descriptor and bound address."""
    return _bound(lib().tailnet_listen, server, network, address)


def listener_close(listener: int) -> None:
    """``tailnet_listener_close``."""
    lib().tailnet_listener_close(listener)


def listen_tls(server: int, network: bytes, address: bytes, timeout_ms: int) -> OpHandles:
    """``tailnet_listen_tls``, as an operation (result: a descriptor and "HANDLE BOUND")."""
    return _begin(lib().tailnet_listen_tls, server, network, address, timeout_ms)


def listen_funnel(
    server: int, network: bytes, address: bytes, funnel_only: bool, timeout_ms: int
) -> OpHandles:
    """``tailnet_listen_funnel``, as :func:`listen_tls`."""
    return _begin(lib().tailnet_listen_funnel, server, network, address, int(funnel_only), timeout_ms)


def cert_domains(server: int) -> str:
    """``tailnet_cert_domains``: comma-separated."""
    buf = ffi().new("char[]", _DOMAINS_SIZE)
    _call(lib().tailnet_cert_domains, server, buf, _DOMAINS_SIZE)
    return _text(buf)


def loopback(server: int) -> tuple[str, str, str]:
    """``tailnet_loopback``: its "ip:port", the SOCKS5 credential and the LocalAPI credential."""
    cffi = ffi()
    addr = cffi.new("char[]", _ADDR_SIZE)
    proxy, api = cffi.new("char[]", _CRED_SIZE), cffi.new("char[]", _CRED_SIZE)
    _call(lib().tailnet_loopback, server, addr, _ADDR_SIZE, proxy, _CRED_SIZE, api, _CRED_SIZE)
    return _text(addr), _text(proxy), _text(api)


def listen_packet(server: int, network: bytes, address: bytes) -> tuple[int, int, str]:
    """``tailnet_listen_packet``: the socket's handle, descriptor and bound addresses."""
    return _bound(lib().tailnet_listen_packet, server, network, address)


def packet_close(sock: int) -> None:
    """``tailnet_packet_close``."""
    lib().tailnet_packet_close(sock)


# ---- Operations


def op_result(op: int) -> tuple[int, str]:
    """``tailnet_op_result``: the descriptor the operation made (or -1) and its text; raises its error."""
    cffi = ffi()
    fd, text = cffi.new("int *"), cffi.new("char[]", _TEXT_SIZE)
    err = _ErrorBuffer()
    err.check(lib().tailnet_op_result(op, fd, text, _TEXT_SIZE, err.buf, ERRBUF_SIZE))
    return int(fd[0]), _text(text)


def op_text(op: int) -> str:
    """``tailnet_op_text``: the whole text of a finished operation (JSON for whois, status, ping)."""
    return _read_whole(lambda buf, size, needed: lib().tailnet_op_text(op, buf, size, needed))


def op_cancel(op: int) -> None:
    """``tailnet_op_cancel``."""
    lib().tailnet_op_cancel(op)


def op_free(op: int) -> None:
    """``tailnet_op_free``: exactly once per operation."""
    lib().tailnet_op_free(op)


# ---- Node information


def whois(server: int, address: bytes, timeout_ms: int) -> OpHandles:
    """``tailnet_whois``, as an operation (JSON text)."""
    return _begin(lib().tailnet_whois, server, address, timeout_ms)


def status(server: int, timeout_ms: int) -> OpHandles:
    """``tailnet_status``, as an operation (JSON text)."""
    return _begin(lib().tailnet_status, server, timeout_ms)


def ping(server: int, target: bytes, kind: bytes, timeout_ms: int) -> OpHandles:
    """``tailnet_ping``, as an operation (JSON text)."""
    return _begin(lib().tailnet_ping, server, target, kind, timeout_ms)


def state(server: int) -> str:
    """``tailnet_state``: "STATE" or "STATE URL"."""

    def call(buf: Any, size: int, needed: Any) -> int:
        err = _ErrorBuffer()
        err.check(lib().tailnet_state(server, buf, size, needed, err.buf, ERRBUF_SIZE))
        return 0

    return _read_whole(call, 512)


def watch(server: int) -> int:
    """``tailnet_watch``: a new descriptor streaming the node's events."""
    fd = ffi().new("int *")
    _call(lib().tailnet_watch, server, fd)
    return int(fd[0])


# ---- Process


def setenv(key: bytes, value: bytes) -> None:
    """``tailnet_setenv``: a TS_* knob for the library."""
    _call(lib().tailnet_setenv, key, value)


def debug_counter(name: bytes) -> int:
    """``tailnet_debug_counter``."""
    out = ffi().new("int64_t *")
    raise_for_code(lib().tailnet_debug_counter(name, out), f"reading the {name.decode()} counter failed")
    return int(out[0])


def debug_dump_goroutines(path: str | os.PathLike[str]) -> None:
    """``tailnet_debug_dump_goroutines``."""
    _call(lib().tailnet_debug_dump_goroutines, os.fsencode(path))


def debug_panic(server: int, where: bytes) -> OpHandles | None:
    """``tailnet_debug_panic``: "call" raises InternalError, "op" returns an operation that fails so."""
    cffi = ffi()
    op, wait_fd = cffi.new("int64_t *"), cffi.new("int *")
    _call(lib().tailnet_debug_panic, server, where, op, wait_fd)
    return (int(op[0]), int(wait_fd[0])) if where == b"op" else None


# ---- Local tailnet


def localnet_start(config: bytes) -> tuple[int, str]:
    """``tailnet_localnet_start``: its handle and control URL."""
    cffi = ffi()
    handle, url = cffi.new("int64_t *"), cffi.new("char[]", _LOCALNET_URL_SIZE)
    _call(lib().tailnet_localnet_start, config, handle, url, _LOCALNET_URL_SIZE)
    return int(handle[0]), _text(url)


def localnet_complete_auth(localnet: int, url: bytes) -> None:
    """``tailnet_localnet_complete_auth``."""
    _call(lib().tailnet_localnet_complete_auth, localnet, url)


def _localnet_text(fn: Callable[..., int], localnet: int, size: int) -> str:
    buf = ffi().new("char[]", size)
    _call(fn, localnet, buf, size)
    return _text(buf)


def localnet_derp_map(localnet: int) -> str:
    """``tailnet_localnet_derp_map``: JSON."""
    return _localnet_text(lib().tailnet_localnet_derp_map, localnet, _LOCALNET_DERP_MAP_SIZE)


def localnet_info(localnet: int) -> str:
    """``tailnet_localnet_info``: JSON."""
    return _localnet_text(lib().tailnet_localnet_info, localnet, _LOCALNET_INFO_SIZE)


def localnet_ca(localnet: int) -> str:
    """``tailnet_localnet_ca``: PEM."""
    return _localnet_text(lib().tailnet_localnet_ca, localnet, _LOCALNET_CA_SIZE)


def localnet_deny_from(localnet: int, hostnames: bytes) -> None:
    """``tailnet_localnet_deny_from``."""
    _call(lib().tailnet_localnet_deny_from, localnet, hostnames)


def localnet_pause(localnet: int) -> None:
    """``tailnet_localnet_pause``."""
    _call(lib().tailnet_localnet_pause, localnet)


def localnet_resume(localnet: int) -> None:
    """``tailnet_localnet_resume``."""
    _call(lib().tailnet_localnet_resume, localnet)


def localnet_close(localnet: int) -> None:
    """``tailnet_localnet_close``."""
    lib().tailnet_localnet_close(localnet)


def localnet_install_cert(localnet: int, state_dir: str | os.PathLike[str], domain: bytes) -> None:
    """``tailnet_localnet_install_cert``."""
    _call(lib().tailnet_localnet_install_cert, localnet, os.fsencode(state_dir), domain)
