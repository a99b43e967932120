"""The build's fixes to Go modules (build_libtailscale.py, ``SOURCE_FIXES``): made to the
text they were written for, left out where the module is already fixed, refused elsewhere.

Why each fix: docs/packaging.md ("The GRO fix", "The wireguard-go pool bound"). What
they do at run time: tests/test_gro.py and tests/test_memory.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from build_libtailscale import GRO_FIX, SOURCE_FIXES, WG_POOL_FIX, BuildError, SourceFix  # noqa: E402

FIXES = [pytest.param(fix, id=fix.module) for fix in SOURCE_FIXES]


def _file(fix: SourceFix, text: str) -> str:
    return f"package x\n\n{text}"


@pytest.mark.parametrize("fix", FIXES)
def test_the_fix_changes_one_line_of_the_text_the_module_ships(fix: SourceFix) -> None:
    source = _file(fix, fix.function)
    assert fix.needed(source, "test")
    fixed = fix.apply(source)
    changed = [line for line in fixed.splitlines() if line not in source.splitlines()]
    assert len(changed) == 1, "one line changed"
    assert fix.fixed in changed[0]
    assert "tailnet" in changed[0], "the changed line says who changed it"


@pytest.mark.parametrize("fix", FIXES)
def test_an_already_fixed_module_is_left_alone(fix: SourceFix) -> None:
    assert not fix.needed(_file(fix, fix.function.replace(fix.line, fix.fixed)), "test")


@pytest.mark.parametrize(
    ("fix", "source"),
    [
        pytest.param(GRO_FIX, "package gro\n", id="no Flush"),
        pytest.param(
            GRO_FIX, GRO_FIX.function.replace("pkt.DecRef()", "pkt.DecRef() // changed"), id="another Flush"
        ),
        pytest.param(WG_POOL_FIX, "package device\n", id="no pool constant"),
        pytest.param(
            WG_POOL_FIX, WG_POOL_FIX.function.replace("= 1024\n", "= 2048\n", 1), id="other queue sizes"
        ),
        pytest.param(
            WG_POOL_FIX, WG_POOL_FIX.function.replace(WG_POOL_FIX.line, "X = 1"), id="pool constant gone"
        ),
    ],
)
def test_a_text_the_fix_was_not_written_for_is_refused(fix: SourceFix, source: str) -> None:
    module = fix.module.replace(".", r"\.")
    with pytest.raises(BuildError, match=rf"{module} vX: this {module} is not the one .*{fix.section}"):
        fix.needed(source, f"{fix.module} vX")


def test_the_pool_bound_keeps_the_buffer_size() -> None:
    # Only the count is bounded: a buffer must still hold the largest datagram.
    fixed = WG_POOL_FIX.apply(WG_POOL_FIX.function)
    assert "MaxSegmentSize             = (1 << 16) - 1" in fixed
    assert "PreallocatedBuffersPerPool = 1024 //" in fixed
