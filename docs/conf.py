"""Sphinx configuration: the docs site built from docs/ (``./dev docs``, offline, warnings are errors)."""

from __future__ import annotations

from typing import Any

from docutils import nodes

import tailnet

project = "tailnet"
author = "tailnet developers"
copyright = "tailnet developers"
release = tailnet.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"tailnet {release}"
html_static_path = ["_static"]
html_css_files = ["tailnet.css"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a class's public bases: one tailnet does not export stands for its own bases.

    (ServerBase, TailnetAddressedSocket: no reader can import them, so
    ``TailnetSocket``'s base reads ``socket.socket``.)
    """
    public: list[type] = []
    for base in bases:
        if base.__module__ == "tailnet" and not hasattr(tailnet, base.__name__):
            _public_bases(app, name, obj, options, inherited := list(base.__bases__))
            public += [b for b in inherited if b not in public]
        elif base not in public:
            public.append(base)
    bases[:] = public


def _drop_bases_object(app: object, doctree: nodes.document) -> None:
    """Drop "Bases: object": it says nothing (show-inheritance is on for the classes whose bases do)."""
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if paragraph.astext() == "Bases: object" and paragraph.parent is not None:
            paragraph.parent.remove(paragraph)


def setup(app: Any) -> None:
    """Hooks for this site."""
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("doctree-read", _drop_bases_object)
