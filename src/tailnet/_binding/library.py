"""Finding and opening the bundled library, once per process, on first use.

The library is found next to the generated cffi module ``_ffi.py``: the
build installs the two side by side, in a wheel and in an editable install
alike (where the Python sources stay in the source tree). It is opened with
cffi in ABI mode on the first call that needs it, so importing tailnet (and
unit-testing its pure parts) needs no build. It starts a Go runtime, which
does not survive ``os.fork()``: a child of a process that had opened it
gets :class:`~tailnet.ForkedProcessError` from every call instead of a
deadlock.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

from .._exceptions import ConfigurationError, ForkedProcessError, LibraryNotFoundError

__all__ = ["ffi", "lib"]

_LIB_NAME = "libtailnet.dylib" if sys.platform == "darwin" else "libtailnet.so"

#: Environment knobs read by the Go side; forwarded at load time (the Go
#: runtime keeps its own copy of the environment) and by tailnet.testing.
_FORWARDED_PREFIX = "TS_"
#: Never forwarded: the auth key travels per server (tailnet_set), where it
#: is redacted; as a knob, tsnet would log it into its log buffer files.
_SECRET_VARIABLES = frozenset({"TS_AUTHKEY", "TS_AUTH_KEY"})

_lock = threading.Lock()


class _State:
    """The cffi module and library once loaded, and whether this process is a fork of one that had them."""

    ffi: Any = None
    lib: Any = None
    forked = False


def ffi() -> Any:
    """The cffi ``FFI`` of ``go/tailscale.h`` (generated at build time as ``tailnet._ffi``)."""
    if _State.ffi is None:
        try:
            module = importlib.import_module(f"{__package__.rpartition('.')[0]}._ffi")
        except ImportError as exc:
            raise LibraryNotFoundError(
                "tailnet's generated cffi module is missing: "
                "reinstall tailnet (pip install --force-reinstall tailnet)"
            ) from exc
        _State.ffi = module.ffi
    return _State.ffi


def lib() -> Any:
    """The opened library, loading it on first use.

    Raises :class:`~tailnet.ForkedProcessError` in a forked child of a
    process that had loaded it, :class:`~tailnet.LibraryNotFoundError` if
    it is missing.
    """
    if _State.lib is not None:
        if _State.forked:
            raise ForkedProcessError(
                "tailnet cannot be used in a child process after os.fork(): the Go runtime does not "
                "survive fork. Create tailnet servers after forking, or use multiprocessing with the "
                "'spawn' start method."
            )
        return _State.lib
    with _lock:
        if _State.lib is None:
            _check_environment()
            handle = _open()
            _forward_environment(handle)
            _State.lib = handle
    return _State.lib


#: The library's own GOMAXPROCS (go/gomaxprocs.go), read by its Go runtime
#: when it loads: "go" for Go's default, or a positive whole number.
_GOMAXPROCS_VARIABLE = "TAILNET_GOMAXPROCS"


def _check_environment() -> None:
    """Refuse a setting the Go runtime would read, and could only ignore, when the library loads."""
    value = os.environ.get(_GOMAXPROCS_VARIABLE)
    if value is None or value == "go" or (value.isascii() and value.isdigit() and 0 < int(value) < 1 << 31):
        return
    raise ConfigurationError(
        f"{_GOMAXPROCS_VARIABLE}={value!r}: set it to a positive whole number of processors, "
        "or to 'go' for the Go runtime's own default"
    )


def _open() -> Any:
    cffi = ffi()
    # Not importlib.resources: importing it (zipfile, tempfile, ...) costs
    # almost 1 MiB of resident memory, for a file that is never in a zip.
    ffi_file = sys.modules[f"{__package__.rpartition('.')[0]}._ffi"].__file__ or ""
    path = os.path.join(os.path.dirname(os.path.abspath(ffi_file)), _LIB_NAME)
    if not os.path.exists(path):
        raise LibraryNotFoundError(
            f"{_LIB_NAME} is missing from the tailnet package ({path}): "
            "reinstall tailnet, or build it with `python build_libtailscale.py`"
        )
    return cffi.dlopen(path)


def _forward_environment(handle: Any) -> None:
    cffi = ffi()
    for key, value in os.environ.items():
        if key.startswith(_FORWARDED_PREFIX) and key not in _SECRET_VARIABLES:
            handle.tailnet_setenv(os.fsencode(key), os.fsencode(value), cffi.NULL, 0)


def _after_fork_in_child() -> None:
    _State.forked = _State.lib is not None


os.register_at_fork(after_in_child=_after_fork_in_child)
