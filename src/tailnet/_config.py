"""Server configuration: defaults, environment fallbacks, the state dir."""

from __future__ import annotations

import errno
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._exceptions import ConfigurationError, InsecureStateDirWarning, StateDirError
from ._state import MEMORY, StateStore, check_store

__all__ = [
    "DEFAULT_LINGER",
    "ServerConfig",
    "claim_state_dir",
    "prepare_state_dir",
    "release_state_dir",
]

_NON_LABEL = re.compile(r"[^a-z0-9-]+")


def default_hostname() -> str:
    """A DNS label from the running script's name ("tailnet" for python -c / REPL)."""
    stem = Path(sys.argv[0]).stem.lower() if sys.argv and sys.argv[0] else ""
    label = _NON_LABEL.sub("-", stem).strip("-")[:63].strip("-")
    if not label or label.startswith(("python", "ipython", "pytest")):
        return "tailnet"
    return label


def user_data_dir() -> Path:
    """Where per-user application data lives on this platform."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _env(*names: str) -> str | None:
    for name in names:
        if value := os.environ.get(name):
            return value
    return None


#: How long closing a server lets its connections finish delivering, in seconds.
DEFAULT_LINGER = 10.0


def _check_linger(linger: object) -> float:
    if isinstance(linger, bool) or not isinstance(linger, int | float):
        raise TypeError(f"linger must be a number of seconds, not {type(linger).__name__}")
    if not 0 <= linger < math.inf:
        raise ConfigurationError(f"linger must be a finite number of seconds >= 0, not {linger}")
    return float(linger)


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"port must be 0 (any) or a UDP port 1-65535, not {port}")
    return port


def _check_authkey(source: str, key: str) -> None:
    """Reject a key with whitespace in it (a line end read with it, a paste); never show the key."""
    for index, char in enumerate(key):
        if char.isspace():
            what = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
            raise ConfigurationError(
                f"{source} contains {what.get(char, 'whitespace')} (character {index + 1} of {len(key)}); "
                "auth keys have none: strip it (e.g. key.strip() on a key read from a file)"
            )


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")


@dataclass(frozen=True)
class ServerConfig:
    """Everything a node is configured with before it starts.

    Values are checked for type here and for content by the library, which
    raises :class:`~tailnet.ConfigurationError` with the reason.
    """

    hostname: str
    state_dir: Path | None
    authkey: str | None = field(repr=False)
    control_url: str | None
    ephemeral: bool
    tags: tuple[str, ...]
    linger: float = DEFAULT_LINGER
    store: StateStore | str | None = None
    port: int = 0

    @classmethod
    def from_arguments(
        cls,
        *,
        hostname: str | None,
        authkey: str | None,
        control_url: str | None,
        state_dir: str | os.PathLike[str] | None,
        ephemeral: bool,
        tags: Iterable[str],
        linger: float = DEFAULT_LINGER,
        store: StateStore | str | None = None,
        port: int = 0,
    ) -> ServerConfig:
        """Apply defaults and environment fallbacks to the user's arguments."""
        hostname = default_hostname() if hostname is None else hostname
        _check_str("hostname", hostname)
        source = "authkey"
        if authkey is None:
            source = next((name for name in ("TS_AUTHKEY", "TS_AUTH_KEY") if os.environ.get(name)), source)
            authkey = _env("TS_AUTHKEY", "TS_AUTH_KEY")
        if authkey is not None:
            _check_str("authkey", authkey)
            _check_authkey(source, authkey)
        control_url = control_url if control_url is not None else _env("TS_CONTROL_URL")
        if control_url is not None:
            _check_str("control_url", control_url)
        if not isinstance(ephemeral, bool):
            raise TypeError(f"ephemeral must be a bool, not {type(ephemeral).__name__}")
        if isinstance(tags, str):
            raise TypeError("tags must be an iterable of 'tag:name' strings, not a single str")
        tag_tuple = tuple(tags)
        for tag in tag_tuple:
            _check_str("each tag", tag)
            if "," in tag:
                raise ConfigurationError(f"tag {tag!r} must not contain a comma")
        directory = None if state_dir is None else Path(os.fspath(state_dir))
        if store is not None:
            store = check_store(store)
            if store == MEMORY and not ephemeral:
                raise ConfigurationError(
                    "store='mem' needs ephemeral=True: a node that forgets its identity at exit "
                    "would leave a stale node on the tailnet after every run"
                )
        return cls(
            hostname,
            directory,
            authkey,
            control_url,
            ephemeral,
            tag_tuple,
            _check_linger(linger),
            store,
            _check_port(port),
        )

    def resolved_state_dir(self) -> Path | None:
        """The node's directory: as given, else per hostname in the user data dir.

        None for a node with a store and no ``state_dir``: it has no
        directory and writes nothing to disk.
        """
        if self.state_dir is not None:
            return self.state_dir
        if self.store is not None:
            return None
        return user_data_dir() / "tailnet" / self.hostname

    def options(self) -> list[tuple[str, str]]:
        """The (key, value) pairs for the C API's tailnet_set, hostname first."""
        opts = [("hostname", self.hostname)]
        if self.authkey:
            opts.append(("authkey", self.authkey))
        if self.control_url:
            opts.append(("control_url", self.control_url))
        opts.append(("ephemeral", "true" if self.ephemeral else "false"))
        if self.tags:
            opts.append(("tags", ",".join(self.tags)))
        if self.store == MEMORY:
            opts.append(("store", MEMORY))
        if self.port:
            opts.append(("port", str(self.port)))
        return opts


_dirs_lock = threading.Lock()
_dirs_in_use: set[Path] = set()


def claim_state_dir(path: Path) -> Path:
    """Resolve path and reserve it for one server of this process; creates nothing.

    Two live servers sharing a state directory would corrupt each other's
    identity, so a second claim raises :class:`ConfigurationError`.
    :func:`prepare_state_dir` creates and checks it when the node starts.
    """
    try:
        path = path.expanduser().resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, an unknown ~user, a symlink loop
        raise ConfigurationError(f"state dir {str(path)!r} is not a usable path: {exc}") from exc
    with _dirs_lock:
        if path in _dirs_in_use:
            raise ConfigurationError(
                f"state dir {path} is in use by another tailnet server in this process: "
                "give each server its own hostname or state_dir"
            )
        _dirs_in_use.add(path)
    return path


def release_state_dir(path: Path) -> None:
    """Give back a directory taken with :func:`claim_state_dir`."""
    with _dirs_lock:
        _dirs_in_use.discard(path)


#: Files of the state dir that hold secrets (tsnet writes them 0600).
_SECRET_FILES = ("tailscaled.state",)

_ELSEWHERE = "pass a state_dir of your own"


def prepare_state_dir(path: Path) -> None:
    """Create the state dir (mode 0700) if needed and check that this user can use it.

    Raises :class:`StateDirError` naming the directory and the fix when it
    cannot be created, is not a directory, is read-only or is another
    user's that this one may not write; warns
    (:class:`InsecureStateDirWarning`) when another user owns it or others
    may read it.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:  # exist_ok: it exists and is not a directory
        raise StateDirError(
            f"state dir {path} is a file, not a directory: remove it or {_ELSEWHERE}", str(path)
        ) from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if _exists(p) and not p.is_dir()), path.parent)
        raise StateDirError(
            f"cannot create state dir {path}: {blocker} is a file, not a directory; {_ELSEWHERE}", str(path)
        ) from None
    except OSError as exc:
        raise StateDirError(
            f"cannot create state dir {path}: {_why_not_writable(path, exc)}", str(path)
        ) from exc
    _check_usable(path)
    _warn_if_exposed(path)


def _why_not_writable(path: Path, exc: OSError) -> str:
    """What keeps path (or the parent it would be created in) from being written, and the fix."""
    if exc.errno == errno.EROFS:
        return f"it is on a read-only file system; mount it read-write or {_ELSEWHERE}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        where = next((p for p in (path, *path.parents) if _exists(p)), path)
        return (
            f"{where} belongs to {_owner(where)} (mode {_mode(where):o}) "
            f"and this user ({_me()}) may not write it; "
            f"run as {_owner(where)}, give it to this user (chown {_me()} {where}) or {_ELSEWHERE}"
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{exc.strerror}; free some space or {_ELSEWHERE}"
    return f"{exc.strerror}; {_ELSEWHERE}"


def _check_usable(path: Path) -> None:
    """Raise StateDirError unless this user can list, read and write path and its state file."""
    for item in (path, *(path / name for name in _SECRET_FILES)):
        mode = os.R_OK | os.W_OK | (os.X_OK if item == path else 0)
        if item != path and not _exists(item):
            continue
        if os.access(item, mode, effective_ids=os.access in os.supports_effective_ids):
            continue
        readonly = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        exc = OSError(errno.EROFS if readonly else errno.EACCES, "")
        what = "state dir" if item == path else "state file"
        raise StateDirError(f"{what} {item} cannot be written: {_why_not_writable(item, exc)}", str(path))


def _warn_if_exposed(path: Path) -> None:
    """Warn if another user owns the state dir, or group or others may read it or its state file."""
    me = os.geteuid()
    owner = path.stat().st_uid
    if owner != me:
        warnings.warn(
            InsecureStateDirWarning(
                f"{path} belongs to {_owner(path)}, not to this user ({_me()}): "
                "that user can read or replace this node's private keys; "
                f"give it to this user (chown {_me()} {path}) or {_ELSEWHERE}"
            ),
            stacklevel=_caller_stacklevel(),
        )
    for item in (path, *(path / name for name in _SECRET_FILES)):
        try:
            stat = item.stat()
        except FileNotFoundError:
            continue
        mode = stat.st_mode & 0o777
        if mode & 0o077:
            fix = f"chmod {'700' if item == path else '600'} {item}"
            if stat.st_uid != me:
                fix = f"its owner ({_owner(item)}) can: {fix}"
            warnings.warn(
                InsecureStateDirWarning(
                    f"{item} is open to other users (mode {mode:o}); it holds this node's private keys: {fix}"
                ),
                stacklevel=_caller_stacklevel(),
            )


def _exists(path: Path) -> bool:
    """Whether path exists; False also when this user may not look (pathlib raises then)."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def _mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0


def _owner(path: Path) -> str:
    """The user owning path, by name if it has one ("uid N" otherwise)."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return "another user"
    return _user_name(uid)


def _me() -> str:
    return _user_name(os.geteuid())


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _caller_stacklevel() -> int:
    """The stacklevel that points a warning at the first caller outside tailnet."""
    package = str(Path(__file__).parent)
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(package):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level
