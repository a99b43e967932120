"""Loading the bundled shared library, once per process.

The library is found next to the generated cffi module ``_ffi.py``: the
build installs the two side by side, in a wheel and in an editable install
alike (where the Python sources stay in the source tree). It is opened with
cffi in ABI mode. It starts a Go runtime, which does not survive
``os.fork()``: a child of a process that loaded it gets
:class:`~tailnet.ForkedProcessError` from every call instead of a deadlock.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ._exceptions import ForkedProcessError, LibraryNotFoundError

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
    """The library once opened, and whether this process was forked from one that had opened it."""

    lib: Any = None
    forked = False


try:
    from ._ffi import ffi
except ImportError as exc:  # pragma: no cover - broken install
    raise LibraryNotFoundError(
        "tailnet's generated cffi module is missing: "
        "reinstall tailnet (pip install --force-reinstall tailnet)"
    ) from exc


def _open() -> Any:
    # Not importlib.resources: importing it (zipfile, tempfile, ...) costs
    # almost 1 MiB of resident memory, for a file that is never in a zip.
    ffi_file = sys.modules[f"{__package__}._ffi"].__file__ or ""
    path = os.path.join(os.path.dirname(os.path.abspath(ffi_file)), _LIB_NAME)
    if not os.path.exists(path):
        raise LibraryNotFoundError(
            f"{_LIB_NAME} is missing from the tailnet package ({path}): "
            "reinstall tailnet, or build it with `python build_libtailscale.py`"
        )
    return ffi.dlopen(path)


def _forward_environment(handle: Any) -> None:
    for key, value in os.environ.items():
        if key.startswith(_FORWARDED_PREFIX) and key not in _SECRET_VARIABLES:
            handle.tailnet_setenv(os.fsencode(key), os.fsencode(value), ffi.NULL, 0)


def lib() -> Any:
    """The opened library, loading it on first use.

    Raises :class:`ForkedProcessError` in a forked child of a process that
    had loaded it.
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
            handle = _open()
            _forward_environment(handle)
            _State.lib = handle
    return _State.lib


def _after_fork_in_child() -> None:
    _State.forked = _State.lib is not None


os.register_at_fork(after_in_child=_after_fork_in_child)
