"""HTTP services and certificates for the HTTP integration tests."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import tailnet
from tailnet.socketserver import ThreadingTCPServer


class InspectHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with JSON describing it as the server saw it (keep-alive on)."""

    protocol_version = "HTTP/1.1"
    release: threading.Event  # set on the class by InspectService

    def do_GET(self) -> None:
        if self.path == "/hang":  # never answers until the service closes
            self.release.wait()
            return
        self._reply(b"")

    def do_POST(self) -> None:
        self._reply(self.rfile.read(int(self.headers["Content-Length"])))

    def _reply(self, body: bytes) -> None:
        info = {
            "method": self.command,
            "path": self.path,
            "host": self.headers["Host"],
            "client": list(self.client_address),
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        data = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class InspectService:
    """:class:`InspectHandler` on a node's port, served by the stdlib in a thread."""

    def __init__(self, node: tailnet.Server, port: int) -> None:
        self.release = threading.Event()
        handler = type("Handler", (InspectHandler,), {"release": self.release})
        self.httpd = ThreadingTCPServer(node.listen("tcp", f":{port}"), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def make_certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for ``names``: (certfile, keyfile)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subject_alt_names = ",".join(f"DNS:{name}" for name in names)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={names[0]}",
         "-keyout", str(key), "-out", str(cert), "-addext", f"subjectAltName={subject_alt_names}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
