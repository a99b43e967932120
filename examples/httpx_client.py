"""httpx reaching a service on another node by its MagicDNS name (sync and async).

    python examples/httpx_client.py

A "weather" node serves a small HTTP API (the standard library's
http.server, on a tailnet listener). A client node calls it with httpx,
first with ``httpx.Client`` then with ``httpx.AsyncClient``, by short name
(``http://weather/``) and by fully qualified name
(``http://weather.tailnet.test/``). Needs ``pip install 'tailnet[httpx]'``.
"""

from __future__ import annotations

import http.server
import json
import threading

import anyio
import httpx

import tailnet
from tailnet.socketserver import ThreadingTCPServer
from tailnet.testing import LocalTailnet


class WeatherAPI(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"city": self.path.strip("/"), "sky": "clear", "asked_by": self.client_address[0]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def sync_client(ts: tailnet.Server) -> None:
    with httpx.Client(transport=ts.httpx_transport(), timeout=30) as client:
        for url in ("http://weather/paris", "http://weather.tailnet.test/oslo"):
            print(f"sync  GET {url} -> {client.get(url).json()}")


async def async_client(ts: tailnet.AsyncServer) -> None:
    async with httpx.AsyncClient(transport=ts.httpx_transport(), timeout=30) as client:
        responses = [await client.get(f"http://weather/{city}") for city in ("lima", "kyoto")]
        for response in responses:
            print(f"async GET {response.url} -> {response.json()}")


def main() -> None:
    with (
        LocalTailnet() as net,
        net.server("weather") as weather,
        ThreadingTCPServer(weather.listen("tcp", ":80"), WeatherAPI) as httpd,
    ):
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        with net.server("sync-caller") as caller:
            sync_client(caller)

        async def run_async() -> None:
            async with net.async_server("async-caller") as async_caller:
                await async_client(async_caller)

        anyio.run(run_async)
        httpd.shutdown()


if __name__ == "__main__":
    main()
