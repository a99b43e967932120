"""Nodes in separate processes; Ctrl-C; fork."""

from __future__ import annotations

import os
import platform
import signal
import socket
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from harness.helpers import assert_echoes_intact, exit_output
from harness.helpers import spawn_node_process as spawn

import tailnet
from tailnet.testing import LocalTailnet


@pytest.mark.parametrize("run", range(5))
def test_an_echo_server_that_exits_after_its_last_write_delivers_8_mib(
    run: int, local_tailnet: LocalTailnet, tailnet_node: Callable[..., tailnet.Server], tmp_path: Path
) -> None:
    """The echo process closes the connection and its server, and exits, right after its last sendall."""
    proc = spawn(local_tailnet, tmp_path, "echo", f"proc-echo-{run}")
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        client = tailnet_node(f"proc-client-{run}")
        with client.dial("tcp", f"proc-echo-{run}:7", timeout=30) as conn:
            assert_echoes_intact(conn, 8 << 20)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("mode", ["block-up", "block-accept", "block-dial"])
def test_ctrl_c_interrupts_blocking_calls(mode: str, tmp_path: Path, local_tailnet: LocalTailnet) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # a control server that never answers
    if mode == "block-up":
        proc = spawn(
            local_tailnet,
            tmp_path,
            mode,
            "ctrlc-up",
            TS_CONTROL_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
        )
    elif mode == "block-accept":
        proc = spawn(local_tailnet, tmp_path, mode, "ctrlc-accept")
    else:  # a node that joined and left: in the map, answering nothing, so the dial waits (no timeout)
        gone = local_tailnet.server("ctrlc-gone", ephemeral=False).up(timeout=60)
        address = f"{gone.ips[0]}:80"
        gone.close()
        proc = spawn(local_tailnet, tmp_path, mode, "ctrlc-dial", address)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == "blocking\n", proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = exit_output(proc)
        assert proc.returncode == 130, err
        assert out == "interrupted\n"
    finally:
        proc.kill()
        proc.communicate()  # reap it and close its pipes, also when the test failed
        silent.close()


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "aarch64") or not Path("/proc/self/syscall").exists(),
    reason="needs /proc/PID/syscall and poll's numbers (known for x86_64 and aarch64)",
)
@pytest.mark.parametrize("wait", ["up", "up-on-event"])
def test_ctrl_c_noted_but_not_delivered_to_the_waiting_thread_interrupts(
    wait: str, tmp_path: Path, local_tailnet: LocalTailnet
) -> None:
    """A SIGINT whose handler ran elsewhere wakes no ``poll``: the waiting main thread must notice it anyway.

    That is also what happens when the signal arrives just before the wait
    begins; under load it left up() and accept() asleep after Ctrl-C.
    ``up(on_event=...)`` waits in a loop of its own, so it is tried too.
    """
    silent = socket.create_server(("127.0.0.1", 0))
    proc = spawn(
        local_tailnet,
        tmp_path,
        "block-up-signalled-elsewhere",
        f"ctrlc-elsewhere-{wait}",
        *(["on_event"] if wait == "up-on-event" else []),
        TS_CONTROL_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
    )
    try:
        out, err = exit_output(proc)
        assert proc.returncode == 130, err
        assert out == "blocking\nsignalled while it waited\ninterrupted\n"
    finally:
        proc.kill()
        proc.communicate()
        silent.close()


def test_fork_child_gets_a_clear_error(local_tailnet: LocalTailnet, tmp_path: Path) -> None:
    assert local_tailnet.control_url  # the library (and Go runtime) is loaded
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: must not deadlock
        try:
            tailnet.Server("child", state_dir=tmp_path)
            os.write(write, b"no error")
        except tailnet.ForkedProcessError as exc:
            os.write(write, b"ok " + str(exc).encode()[:200])
        except BaseException as exc:  # noqa: BLE001 - report anything from the child
            os.write(write, repr(exc).encode()[:200])
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message.startswith("ok "), message
    assert "fork" in message
