"""An HTTPS service with the tailnet's certificate, and a LocalAPI call.

On a tailnet with HTTPS certificates enabled, ``listen_tls`` fetches a
certificate for the node's DNS name by itself. The local tailnet used here
has no ACME server, so its own CA stands in (``install_certificate``), and
the client trusts that CA. Runs entirely on this machine:

    python examples/https_service.py
"""

from __future__ import annotations

import ssl
import threading
import time

import tailnet
from tailnet.testing import LocalTailnet


def serve_once(listener: tailnet.Listener) -> None:
    conn, peer = listener.accept()  # the TLS handshake is already done
    with conn:
        request = conn.recv(65536).decode()  # plaintext
        path = request.split()[1]
        body = f"hello {peer[0]}, you asked for {path}\n".encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)


def wait_until_known(node: tailnet.Server, peer: tailnet.Server, timeout: float = 30) -> None:
    """Network maps spread asynchronously: a peer's name resolves once it is listed."""
    deadline = time.monotonic() + timeout
    while node.status().peer(peer.hostname) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node.hostname} does not know {peer.hostname} yet")
        time.sleep(0.05)


def main() -> None:
    with LocalTailnet() as net, net.server("web") as web, net.server("client") as client:
        net.install_certificate(web)  # a real tailnet: not needed
        domain = web.cert_domains[0]
        listener = web.listen_tls("tcp", ":443", timeout=60)
        server = threading.Thread(target=serve_once, args=(listener,))
        server.start()

        context = ssl.create_default_context(cadata=net.ca_pem)
        with context.wrap_socket(
            client.dial("tcp", f"{domain}:443", timeout=30), server_hostname=domain
        ) as tls:
            tls.sendall(f"GET /hello HTTP/1.1\r\nHost: {domain}\r\n\r\n".encode())
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
        print(f"https://{domain}/hello -> {response.decode().splitlines()[-1]!r}")
        server.join()
        listener.close()

        status = web.local_api().get("/localapi/v0/status")
        print(f"LocalAPI: {status['Self']['DNSName']} is {status['BackendState']}")


if __name__ == "__main__":
    main()
