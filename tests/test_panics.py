"""No Go panic crosses into Python: it becomes an InternalError, and the process carries on."""

from __future__ import annotations

import pytest
from harness.helpers import EchoServer, assert_echoes_intact, go_counter

import tailnet
from tailnet._binding import calls
from tailnet._node import Operation
from tailnet._waiting_sync import wait_readable


def panic(server: tailnet.Server | None, where: str) -> Operation:
    """Call tailnet_debug_panic; raise what it reports, or return its operation."""
    handles = calls.debug_panic(server._node.handle if server is not None else 0, where.encode())
    assert handles is not None
    return Operation(handles)


def test_panic_in_a_call_is_an_internal_error() -> None:
    with pytest.raises(tailnet.InternalError, match="tailnet_debug_panic in the call") as info:
        panic(None, "call")
    assert "goroutine" in str(info.value)  # the stack, for the bug report


def test_panic_in_an_operation_is_an_internal_error(pair: tuple[tailnet.Server, tailnet.Server]) -> None:
    a, b = pair
    op = panic(a, "op")
    try:
        wait_readable(op.wait_fd, 30)
        with pytest.raises(tailnet.InternalError, match="tailnet_debug_panic in an operation"):
            op.result()
    finally:
        op.free()
    assert go_counter("ops") == 0
    # The server and the process carry on.
    echo = EchoServer(b.listen("tcp", ":7"))
    with a.dial("tcp", f"{b.hostname}:7", timeout=30) as conn:
        assert_echoes_intact(conn, 64 << 10)
    echo.close()


def test_bad_where_is_a_configuration_error() -> None:
    with pytest.raises(tailnet.ConfigurationError, match="where"):
        panic(None, "nowhere")
