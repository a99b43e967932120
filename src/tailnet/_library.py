"""Loading the bundled shared library, once per process.

The library is found next to this package with :mod:`importlib.resources`
(so wheels, editable installs and zip-free installs all work) and opened with
cffi in ABI mode. It starts a Go runtime, which does not survive
``os.fork()``: a child of a process that loaded it gets
:class:`~tailnet.ForkedProcessError` from every call instead of a deadlock.
"""

from __future__ import annotations

import importlib.resources
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
    path = importlib.resources.files(__package__).joinpath(_LIB_NAME)
    with importlib.resources.as_file(path) as real_path:
        if not real_path.exists():
            raise LibraryNotFoundError(
                f"{_LIB_NAME} is missing from the tailnet package ({real_path}): "
                "reinstall tailnet, or build it with `python build_libtailscale.py`"
            )
        return ffi.dlopen(str(real_path))


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
