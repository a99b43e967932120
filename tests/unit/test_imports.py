"""What ``import tailnet`` costs: the blocking API imports no async machinery.

Each check runs a fresh interpreter, since this one has imported
everything the suite uses. Nothing here loads the library.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Imported only by the async API (anyio and what it brings), or by
#: LocalAPI response parsing (http.client, with email and ssl): never by
#: ``import tailnet`` alone. ssl alone is some 6 MiB of RSS (libssl, libcrypto).
ASYNC_ONLY = ("anyio", "sniffio", "trio", "asyncio", "ssl", "http.client", "email", "cffi", "_cffi_backend")


def _modules_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout))


def _top_level(modules: set[str]) -> set[str]:
    return modules | {name.partition(".")[0] for name in modules}


def test_import_tailnet_imports_no_async_module() -> None:
    loaded = _top_level(_modules_after("import tailnet"))
    assert not loaded & set(ASYNC_ONLY), sorted(loaded & set(ASYNC_ONLY))


def test_the_sync_names_import_no_async_module() -> None:
    loaded = _top_level(
        _modules_after(
            "import tailnet\n"
            "names = [tailnet.Server, tailnet.Listener, tailnet.TailnetSocket, tailnet.DatagramSocket,"
            " tailnet.LocalAPIClient, tailnet.Watcher, tailnet.StateStore]"
        )
    )
    assert not loaded & {"anyio", "sniffio", "trio", "asyncio"}


def test_an_async_name_imports_anyio_on_first_use() -> None:
    loaded = _top_level(_modules_after("import tailnet\ntailnet.AsyncServer"))
    assert "anyio" in loaded
    assert "trio" not in loaded  # anyio picks the backend when it runs
