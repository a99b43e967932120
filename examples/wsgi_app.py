"""A WSGI app (Flask, Django, or plain WSGI as here) served on the tailnet.

    python examples/wsgi_app.py

``ts.serve_wsgi(app, port)`` runs it on uvicorn through a2wsgi and blocks
until the node closes. ``environ["tailnet.peer"]`` (and ``REMOTE_ADDR``)
is the caller's tailnet address. The caller here uses requests with
tailnet's adapter. Needs ``pip install 'tailnet[wsgi,requests]'``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import requests

from tailnet.requests import TailnetAdapter
from tailnet.testing import LocalTailnet


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    peer_ip, peer_port = environ["tailnet.peer"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello {peer_ip} (port {peer_port}), you asked for {environ['PATH_INFO']}\n".encode()]


def main() -> None:
    with LocalTailnet() as net, net.server("wsgi-site") as site, net.server("visitor") as visitor:
        # Listening before the thread starts: a request made meanwhile waits for the server.
        listener = site.listen("tcp", ":8000")
        serving = threading.Thread(
            target=site.serve_wsgi, args=(app, listener), kwargs={"log_level": "warning"}
        )
        serving.start()
        with requests.Session() as session:
            session.mount("http://", TailnetAdapter(visitor))
            page = session.get("http://wsgi-site:8000/page", timeout=30).text
        print(f"visitor GET http://wsgi-site:8000/page -> {page!r}")
        site.close()  # serve_wsgi returns
        serving.join()


if __name__ == "__main__":
    main()
