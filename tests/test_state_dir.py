"""A state dir the node cannot use raises StateDirError naming it and the fix.

The constructor does no I/O: the directory is created and checked when
the node starts. The tests run as root, who may write anything, so the
cases of another user run a child process as ``nobody``, and the
read-only one bind-mounts the directory read-only in a private mount
namespace (root cannot write there either).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tailnet
from tailnet.testing import QUIET_ENVIRONMENT

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None,
    reason="needs root, setpriv and unshare",
)

#: Starts a node on the state dir in argv[1]; prints what happened as JSON.
CHILD = """
import json, sys, warnings, tailnet
warnings.simplefilter("always")
out = {}
with warnings.catch_warnings(record=True) as caught:
    server = tailnet.Server("child", state_dir=sys.argv[1])
    out["constructed"] = True
    try:
        server.start()
        out["started"] = True
    except tailnet.TailnetError as exc:
        out["error"] = [type(exc).__name__, str(exc), getattr(exc, "path", None)]
    finally:
        server.close()
out["warnings"] = [[w.category.__name__, str(w.message)] for w in caught]
print(json.dumps(out))
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="tailnet-state-dir-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def run_child(state_dir: Path, control_url: str, *, prefix: list[str], home: Path) -> dict[str, Any]:
    """Run CHILD (with ``prefix``: as another user, in a mount namespace) on state_dir."""
    script = home / "child.py"
    script.write_text(CHILD)
    script.chmod(0o644)
    env = {**os.environ, **QUIET_ENVIRONMENT, "TS_CONTROL_URL": control_url, "HOME": str(home)}
    env.pop("TS_AUTHKEY", None)
    if prefix is AS_NOBODY and (why := nobody_cannot_run_tailnet()):
        pytest.skip(why)
    done = subprocess.run(
        [*prefix, sys.executable, str(script), str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@functools.cache
def nobody_cannot_run_tailnet() -> str | None:
    """Why ``nobody`` cannot import tailnet from this checkout, or None if it can.

    A checkout in a directory only root may enter (``mktemp -d`` makes mode
    700) hides its Python and its editable install from other users.
    """
    done = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", "import tailnet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return None
    lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
    return (
        f"user nobody cannot run tailnet from this checkout ({lines[-1]}); "
        "check it out where other users may read it to run these tests"
    )


def start(path: Path, control_url: str) -> tailnet.Server:
    return tailnet.Server("state-dir", state_dir=path, control_url=control_url).start()


def test_the_constructor_creates_nothing(tmp_path: Path, silent_control: str) -> None:
    state = tmp_path / "a" / "b"
    server = tailnet.Server("lazy", state_dir=state, control_url=silent_control)
    try:
        assert not (tmp_path / "a").exists()
        server.start()
        assert state.is_dir()
    finally:
        server.close()


def test_a_file_is_not_a_state_dir(tmp_path: Path, silent_control: str) -> None:
    state = tmp_path / "file"
    state.write_text("not a directory")
    server = tailnet.Server("file-dir", state_dir=state, control_url=silent_control)
    try:
        with pytest.raises(tailnet.StateDirError, match="is a file, not a directory: remove it") as info:
            server.start()
        assert str(state) in str(info.value)
        assert info.value.path == str(state)
        assert isinstance(info.value, tailnet.ConfigurationError)
        # Fixed, the same server starts.
        state.unlink()
        server.start()
        assert state.is_dir()
    finally:
        server.close()


def test_a_file_in_the_path_is_named(tmp_path: Path, silent_control: str) -> None:
    (tmp_path / "file").write_text("")
    server = tailnet.Server("file-parent", state_dir=tmp_path / "file" / "state", control_url=silent_control)
    try:
        with pytest.raises(tailnet.StateDirError, match=f"{tmp_path / 'file'} is a file, not a directory"):
            server.start()
    finally:
        server.close()


@pytest.mark.parametrize("call", ["up", "dial", "listen", "status"])
def test_every_call_that_starts_the_node_checks_it(call: str, tmp_path: Path, silent_control: str) -> None:
    state = tmp_path / "file"
    state.write_text("")
    server = tailnet.Server("first-call", state_dir=state, control_url=silent_control)
    calls: dict[str, Callable[[], object]] = {
        "up": lambda: server.up(timeout=60),
        "dial": lambda: server.dial("tcp", "100.64.0.1:80", timeout=60),
        "listen": lambda: server.listen("tcp", ":80"),
        "status": lambda: server.status(timeout=60),
    }
    try:
        with pytest.raises(tailnet.StateDirError):
            calls[call]()
    finally:
        server.close()


@needs_root
def test_another_users_dir_that_this_user_may_not_write(shared_tmp: Path, silent_control: str) -> None:
    state = shared_tmp / "roots"
    state.mkdir(mode=0o700)  # root's
    result = run_child(state, silent_control, prefix=AS_NOBODY, home=shared_tmp)
    assert result["constructed"] is True
    name, message, path = result["error"]
    assert name == "StateDirError"
    assert path == str(state)
    assert f"{state} belongs to root (mode 700) and this user (nobody) may not write it" in message
    assert f"chown nobody {state}" in message


@needs_root
def test_a_state_dir_inside_another_users_dir(shared_tmp: Path, silent_control: str) -> None:
    parent = shared_tmp / "roots"
    parent.mkdir(mode=0o700)
    result = run_child(parent / "state", silent_control, prefix=AS_NOBODY, home=shared_tmp)
    name, message, _ = result["error"]
    assert name == "StateDirError"
    assert f"cannot create state dir {parent / 'state'}: {parent} belongs to root" in message


@needs_root
def test_an_open_dir_of_another_user_warns_twice(shared_tmp: Path, silent_control: str) -> None:
    state = shared_tmp / "open"
    state.mkdir()
    state.chmod(0o777)  # root's, open to all, like /tmp without the sticky bit
    result = run_child(state, silent_control, prefix=AS_NOBODY, home=shared_tmp)
    assert result.get("started") is True
    assert result["warnings"] == [
        [
            "InsecureStateDirWarning",
            f"{state} belongs to root, not to this user (nobody): that user can read or replace this "
            f"node's private keys; give it to this user (chown nobody {state}) "
            "or pass a state_dir of your own",
        ],
        [
            "InsecureStateDirWarning",
            f"{state} is open to other users (mode 777); it holds this node's private keys: "
            f"its owner (root) can: chmod 700 {state}",
        ],
    ]


@needs_root
def test_another_users_dir_this_user_may_write_warns(tmp_path: Path, silent_control: str) -> None:
    state = tmp_path / "nobodys"
    state.mkdir(mode=0o700)
    shutil.chown(state, "nobody")
    server = tailnet.Server("borrowed", state_dir=state, control_url=silent_control)
    try:
        with pytest.warns(
            tailnet.InsecureStateDirWarning, match="belongs to nobody, not to this user"
        ) as caught:
            server.start()
        assert caught[0].filename == __file__
    finally:
        server.close()


@needs_root
@pytest.mark.parametrize("where", ["dir", "inside"])
def test_a_read_only_state_dir(where: str, shared_tmp: Path, silent_control: str) -> None:
    mount = shared_tmp / "ro"
    mount.mkdir(mode=0o700)
    state = mount if where == "dir" else mount / "state"
    bind = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount --bind -o ro "{mount}" "{mount}" && exec "$@"', "sh"]  # fmt: skip
    result = run_child(state, silent_control, prefix=bind, home=shared_tmp)
    name, message, path = result["error"]
    assert name == "StateDirError"
    assert path == str(state)
    assert "read-only file system; mount it read-write or pass a state_dir of your own" in message
