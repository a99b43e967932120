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


def _file(text: str) -> str:
    return f"package x\n\n{text}"


@pytest.mark.parametrize("fix", FIXES)
def test_the_fix_changes_one_line_of_the_text_the_module_ships(fix: SourceFix) -> None:
    source = _file(fix.function)
    assert fix.needed(source, "test")
    fixed = fix.apply(source)
    changed = [line for line in fixed.splitlines() if line not in source.splitlines()]
    assert len(changed) == 1, "one line changed"
    assert fix.fixed in changed[0]
    assert "tailnet" in changed[0], "the changed line says who changed it"


@pytest.mark.parametrize("fix", FIXES)
def test_an_already_fixed_module_is_left_alone(fix: SourceFix) -> None:
    assert not fix.needed(_file(fix.function.replace(fix.line, fix.fixed)), "test")


@pytest.mark.parametrize(
    ("fix", "source", "says"),
    [
        pytest.param(GRO_FIX, "package gro\n", "no", id="no Flush"),
        pytest.param(
            GRO_FIX,
            GRO_FIX.function.replace("pkt.DecRef()", "pkt.DecRef() // changed"),
            "another",
            id="another Flush",
        ),
        pytest.param(WG_POOL_FIX, "package device\n", "no", id="no PopulatePools"),
        pytest.param(
            WG_POOL_FIX,
            WG_POOL_FIX.function.replace("device.BatchSize()", "128"),
            "another",
            id="another PopulatePools",
        ),
        pytest.param(
            WG_POOL_FIX,
            WG_POOL_FIX.function.replace(WG_POOL_FIX.line, "device.pool.inboundElements = nil"),
            "no",
            id="the pool's line gone",
        ),
    ],
)
def test_a_text_the_fix_was_not_written_for_is_refused(fix: SourceFix, source: str, says: str) -> None:
    module = fix.module.replace(".", r"\.")
    with pytest.raises(
        BuildError, match=rf"{module} vX: this {module} is not the one .*has {says} .*{fix.section}"
    ):
        fix.needed(source, f"{fix.module} vX")


def test_the_pool_bound_is_on_inbound_elements_only() -> None:
    # The message buffers are shared with the send path: bounding them can deadlock.
    fixed = WG_POOL_FIX.apply(WG_POOL_FIX.function)
    assert "inboundElements = NewWaitPool(1024, " in fixed
    for pool in (
        "inboundElementsContainer",
        "outboundElementsContainer",
        "messageBuffers",
        "outboundElements",
    ):
        assert f"device.pool.{pool} = NewWaitPool(PreallocatedBuffersPerPool, " in fixed
