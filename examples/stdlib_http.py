"""The standard library's http.server and http.client over the tailnet, unchanged.

    python examples/stdlib_http.py

The "files" node shares a directory with ``http.server.SimpleHTTPRequestHandler``
on ``tailnet.socketserver.ThreadingTCPServer`` (socketserver's API on a
tailnet listener). The client node talks to it with ``http.client``, giving
the connection a socket dialed on the tailnet. No extra packages needed.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import tempfile
import threading
from pathlib import Path

import tailnet
from tailnet.socketserver import ThreadingTCPServer
from tailnet.testing import LocalTailnet


def fetch(ts: tailnet.Server, host: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, 80)
    conn.sock = ts.dial("tcp", (host, 80), timeout=30)  # instead of conn.connect()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as shared, LocalTailnet() as net:
        Path(shared, "readme.txt").write_text("shared over the tailnet with http.server\n")
        with net.server("files") as files, net.server("reader") as reader:
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=shared)
            with ThreadingTCPServer(files.listen("tcp", ":80"), handler) as httpd:
                threading.Thread(target=httpd.serve_forever, daemon=True).start()
                status, body = fetch(reader, "files", "/readme.txt")
                print(f"reader GET http://files/readme.txt -> {status} {body.decode()!r}")
                status, _ = fetch(reader, "files", "/nope")
                print(f"reader GET http://files/nope -> {status}")
                httpd.shutdown()


if __name__ == "__main__":
    main()
