"""An HTTP service that authorizes each request by who is calling, with no passwords or tokens.

    python examples/whois_http.py

Tailscale tells a node who is behind every connection: the peer's node,
its user and ACL tags, as the control server vouches for them. When tailnet
serves an ASGI app, that identity is in the request's scope
(``scope["extensions"]["tailnet"]["whois"]``, a ``tailnet.PeerIdentity``),
so a Starlette (or FastAPI) dependency can check it. Here the "admin" API
answers nodes tagged ``tag:ops`` and refuses everyone else with 403. Needs
``pip install 'tailnet[asgi,httpx]' starlette``.
"""

from __future__ import annotations

import functools

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import tailnet
from tailnet.testing import LocalTailnet

ALLOWED_TAGS = {"tag:ops"}


def caller(request: Request) -> tailnet.PeerIdentity | None:
    """Who sent this request (None if the node could not say)."""
    identity: tailnet.PeerIdentity | None = request.scope["extensions"]["tailnet"]["whois"]
    return identity


async def restart(request: Request) -> Response:
    who = caller(request)
    if who is None or not ALLOWED_TAGS & set(who.tags):
        name = "unknown" if who is None else who.node_name
        return PlainTextResponse(f"{name} may not restart anything\n", status_code=403)
    return JSONResponse({"restarted": True, "by": who.node_name, "tags": list(who.tags)})


app = Starlette(routes=[Route("/restart", restart, methods=["POST"])])


async def main() -> None:
    with LocalTailnet() as net:
        async with (
            net.async_server("admin-api") as api,
            net.async_server("ops-laptop", tags=["tag:ops"]) as ops,
            net.async_server("guest") as guest,
            anyio.create_task_group() as tg,
        ):
            await tg.start(functools.partial(api.serve_asgi, app, 80, log_level="warning"))
            for node in (ops, guest):
                async with httpx.AsyncClient(transport=node.httpx_transport(), timeout=30) as client:
                    response = await client.post("http://admin-api/restart")
                print(f"{node.hostname}: {response.status_code} {response.text.strip()}")
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
