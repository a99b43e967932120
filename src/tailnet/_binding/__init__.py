"""The C API of libtailnet, wrapped once: tailnet's binding layer (psycopg's ``pq``).

Every call into the library goes through here and nowhere else:
:mod:`.library` finds and opens it on first use, :mod:`.calls` has one
typed function per ``tailnet_*`` export (buffers, error messages and
return codes handled once), and :mod:`.formats` parses and builds the
C API's text and byte formats. The rest of tailnet works with handles
(ints), descriptors and Python values.
"""

from __future__ import annotations

from . import calls, formats
from .library import ffi, lib

__all__ = ["calls", "ffi", "formats", "lib"]
