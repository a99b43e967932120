"""A bot that only dials out, like a Discord bot: it polls a chat API on another node.

    python examples/outbound_bot.py

A Discord or Slack bot listens on nothing: it calls its platform's API
and acts on what it reads. Here the "platform" is a small chat API on a
node named "chat" (Starlette on uvicorn); the "bot" node opens no listener
at all, polls ``GET /messages`` over the tailnet with httpx, and answers
commands with ``POST /messages``. Because the bot only dials out, it runs
anywhere the tailnet reaches: no open port, no public address. Needs
``pip install 'tailnet[asgi,httpx]' starlette``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import tailnet
from tailnet.testing import LocalTailnet

# --- the chat service (stands in for the platform's API) ---------------------

messages: list[dict[str, object]] = []


async def list_messages(request: Request) -> JSONResponse:
    after = int(request.query_params.get("after", "0"))
    return JSONResponse(messages[after:])


async def post_message(request: Request) -> JSONResponse:
    message = {"id": len(messages), **(await request.json())}
    messages.append(message)
    return JSONResponse(message, status_code=201)


chat = Starlette(
    routes=[Route("/messages", list_messages), Route("/messages", post_message, methods=["POST"])]
)

# --- the bot: outbound connections only ----------------------------------------

COMMANDS: dict[str, Callable[[], str]] = {"!ping": lambda: "pong", "!time": lambda: time.strftime("%H:%M:%S")}


def run_bot(ts: tailnet.Server, answers_wanted: int, poll_every: float = 0.2) -> None:
    """Poll the chat, answer commands, stop after ``answers_wanted`` answers."""
    answered, seen = 0, 0
    with httpx.Client(transport=ts.httpx_transport(), base_url="http://chat", timeout=30) as api:
        while answered < answers_wanted:
            for message in api.get("/messages", params={"after": seen}).json():
                seen = message["id"] + 1
                if command := COMMANDS.get(message["text"]):
                    api.post("/messages", json={"author": "bot", "text": command()})
                    answered += 1
            time.sleep(poll_every)


def main() -> None:
    with LocalTailnet() as net, net.server("chat") as chat_node:
        listener = chat_node.listen("tcp", ":80")  # before the thread: early requests wait for it
        threading.Thread(
            target=chat_node.serve_asgi, args=(chat, listener), kwargs={"log_level": "warning"}
        ).start()

        with (
            net.server("alice") as alice,
            httpx.Client(transport=alice.httpx_transport(), timeout=30) as client,
        ):
            for text in ("hi all", "!ping", "!time"):
                client.post("http://chat/messages", json={"author": "alice", "text": text})

        with net.server("bot") as bot:  # never calls bot.listen()
            run_bot(bot, answers_wanted=2)

        for message in messages:
            print(f"{message['author']:>5}: {message['text']}")
        chat_node.close()  # serve_asgi returns


if __name__ == "__main__":
    main()
