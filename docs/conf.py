"""Sphinx configuration: the docs site built from docs/ (``./dev docs``, offline, warnings are errors)."""

from __future__ import annotations

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

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
