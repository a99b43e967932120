"""How tailnet's public classes present themselves: as ``tailnet.Name``.

Every public class is defined in a private module (``tailnet._server_sync``
...) and exported by the package; :func:`present` makes ``__module__`` say
``tailnet``, so that ``help()``, reprs, tracebacks, pickling and the docs
name it as users import it. The shared bases of public classes
(``ServerBase``, ``TailnetAddressedSocket``) are presented too, so that
``help()`` names no private module: they are not exported, and the docs
leave them out of a class's bases (``docs/conf.py``).
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["PACKAGE", "present", "qualified_name"]

PACKAGE = "tailnet"

C = TypeVar("C", bound=type)


def present(cls: C) -> C:
    """Make ``cls`` report the package as its module (class decorator)."""
    cls.__module__ = PACKAGE
    return cls


def qualified_name(obj: object) -> str:
    """``module.Class`` of obj's class, for reprs (``tailnet.Server`` for the public ones)."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
