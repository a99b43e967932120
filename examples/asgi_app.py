"""A Starlette (FastAPI-style) app served on the tailnet with uvicorn, in one call.

    python examples/asgi_app.py

The app greets each caller by its tailnet address: ``request.client`` is
the peer's tailnet IP, and the scope's ``"tailnet"`` extension carries it
too. ``await tg.start(ts.serve_asgi, app)`` returns once the app has
started; cancelling the task group shuts uvicorn down gracefully. Needs
``pip install 'tailnet[asgi,httpx]' starlette``.
"""

from __future__ import annotations

import functools

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tailnet.testing import LocalTailnet


async def hello(request: Request) -> JSONResponse:
    assert request.client is not None
    peer = request.scope["extensions"]["tailnet"]["peer"]
    return JSONResponse({"hello": request.client.host, "tailnet_peer": list(peer)})


app = Starlette(routes=[Route("/hello", hello)])


async def main() -> None:
    with LocalTailnet() as net:
        async with (
            net.async_server("api") as api,
            net.async_server("caller") as caller,
            anyio.create_task_group() as tg,
        ):
            await tg.start(functools.partial(api.serve_asgi, app, 80, log_level="warning"))
            async with httpx.AsyncClient(transport=caller.httpx_transport(), timeout=30) as client:
                response = await client.get("http://api/hello")
            print(f"caller ({caller.ips[0]}) GET http://api/hello -> {response.json()}")
            tg.cancel_scope.cancel()  # uvicorn shuts down gracefully


if __name__ == "__main__":
    anyio.run(main)
