"""Unit tests of tailnet's pure parts: they need no Go build and no tailnet.

They run in the default suite, and on their own on a bare checkout
(``PYTHONPATH=src python -m pytest tests/unit -p no:tailnet``): nothing
here may load the library, and the session fails if something did.
"""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a run of only these tests if any of them opened the library."""
    from tailnet._binding.library import _State

    if session.config.getoption("--unit-only") and _State.lib is not None:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        raise pytest.UsageError("a unit test loaded the Go library")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--unit-only", action="store_true", help="fail if a test loads the Go library (tests/unit alone)"
    )
