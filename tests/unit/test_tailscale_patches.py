"""The build's patches to tailscale.com (build_libtailscale.py, ``TAILSCALE_PATCHES``):
each edit is made only where its text occurs as often as it was written for.

A tailscale version whose text moved must fail the build with a message that names
the file, never build half-patched. Why each patch: docs/architecture.md and
docs/packaging.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from build_libtailscale import TAILSCALE_PATCHES, BuildError, patch_text  # noqa: E402

EDITS = (("\tgo panic(", "\tpanic(", 2), ("old()", "new()", 1))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "file.go"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_edit_is_made_where_it_matches_as_expected(tmp_path: Path) -> None:
    path = _write(tmp_path, "a\n\tgo panic(x)\nold()\n\tgo panic(y)\n")
    assert patch_text(path, EDITS) == "a\n\tpanic(x)\nnew()\n\tpanic(y)\n"
    assert "go panic" in path.read_text(), "the file itself is not changed"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a\n\tgo panic(x)\nold()\n", id="fewer-matches"),
        pytest.param("\tgo panic(x)\n\tgo panic(y)\n\tgo panic(z)\nold()\n", id="more-matches"),
        pytest.param("\tgo panic(x)\n\tgo panic(y)\n", id="one-edit-missing"),
        pytest.param("\tpanic(x)\n\tpanic(y)\nnew()\n", id="already-patched"),
    ],
)
def test_text_that_moved_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BuildError, match="is not what TAILSCALE_PATCHES expects") as caught:
        patch_text(path, EDITS)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", sorted(TAILSCALE_PATCHES))
def test_each_file_s_edits_agree_with_each_other(tmp_path: Path, name: str) -> None:
    """Text holding each edit's old text as often as it expects takes all of them, in order.

    The edits of one file can overlap: testcontrol's first takes away one of
    the twelve ``go panic(`` the second then expects eleven of.
    """
    edits = TAILSCALE_PATCHES[name]
    path = _write(tmp_path, "".join(f"{old}\n" * count for old, _, count in edits))
    patched = patch_text(path, edits)
    for old, new, _ in edits:
        assert old != new, name
        assert old not in patched, name
        assert new in patched, name
