"""Optional dependencies: each integration module imports its own, never ``import tailnet``.

An integration module does::

    try:
        import httpx
    except ImportError as exc:
        raise missing("httpx", "httpx", "tailnet.httpx") from exc
"""

from __future__ import annotations

from ._exceptions import MissingDependencyError

__all__ = ["missing"]


def missing(package: str, extra: str, feature: str) -> MissingDependencyError:
    """The error for a missing optional package, naming the extra that installs it."""
    return MissingDependencyError(
        f"{feature} needs the {package!r} package, which is not installed: pip install 'tailnet[{extra}]'"
    )
