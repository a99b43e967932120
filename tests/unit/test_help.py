"""What ``help()`` shows of the public classes: tailnet's names, no private paths, no boilerplate."""

from __future__ import annotations

import inspect
import pydoc

import pytest

import tailnet

PUBLIC_CLASSES = [name for name in tailnet.__all__ if inspect.isclass(getattr(tailnet, name))]


def help_text(obj: object) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_public_classes_are_tailnet_names_with_no_private_module_in_help(name: str) -> None:
    cls = getattr(tailnet, name)
    assert cls.__module__ == "tailnet"
    assert "tailnet._" not in help_text(cls)


@pytest.mark.parametrize("cls", [tailnet.Server, tailnet.AsyncServer])
def test_servers_help_reads_cleanly(cls: type) -> None:
    text = help_text(cls)
    assert f"class {cls.__name__}(ServerBase)" in text
    assert "__dict__" not in text
    assert "__weakref__" not in text
    for name in ("up", "dial", "listen", "close" if cls is tailnet.Server else "aclose", "hostname"):
        assert f"\n |  {name}" in text or f"\n |  async {name}(" in text, name


def test_async_server_does_not_repeat_the_servers_docstring() -> None:
    def paragraphs(doc: str | None) -> set[str]:
        assert doc
        return {" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n") if len(p.split()) > 4}

    sync, asynchronous = paragraphs(tailnet.Server.__doc__), paragraphs(tailnet.AsyncServer.__doc__)
    assert not sync & asynchronous
    assert "Args:" in (tailnet.Server.__doc__ or "")
    assert "same arguments" in " ".join((tailnet.AsyncServer.__doc__ or "").split())
