"""A bot that posts its report to a monitoring node with aiohttp, then exits.

    python examples/aiohttp_report.py                     # a local tailnet with its own monitor
    TS_CONTROL_URL=... TS_AUTHKEY=... python examples/aiohttp_report.py http://monitor:8080/report

The bot (a Discord bot's shape: aiohttp is discord.py's HTTP stack) joins
the tailnet as an ephemeral node, POSTs a JSON report of a few thousand
events to the monitor by its MagicDNS name through
``ts.aiohttp_connector()``, prints what the monitor acknowledged and
exits: closing the session and the node right after the last write loses
nothing.

Given a URL, it joins the tailnet named by ``$TS_CONTROL_URL`` and
``$TS_AUTHKEY``. Without one it starts a local tailnet whose "monitor"
node is an ``aiohttp.web`` app on a tailnet listener
(:class:`tailnet.aiohttp.TailnetSite`), which names the bot with
:func:`tailnet.aiohttp.whois`. Needs ``pip install 'tailnet[aiohttp]'``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

import aiohttp
from aiohttp import web

import tailnet
import tailnet.aiohttp
from tailnet.testing import LocalTailnet

EVENTS = 20_000


def make_report() -> bytes:
    events = [{"seq": n, "event": "heartbeat", "latency_ms": n % 250} for n in range(EVENTS)]
    return json.dumps({"bot": "report-bot", "events": events}).encode()


async def post_report(ts: tailnet.AsyncServer, url: str) -> None:
    """The bot's whole job: one POST by MagicDNS name, then it is done."""
    report = make_report()
    async with (
        aiohttp.ClientSession(connector=ts.aiohttp_connector()) as session,
        session.post(url, data=report, headers={"Content-Type": "application/json"}) as response,
    ):
        response.raise_for_status()
        ack = await response.json()
    print(f"sent {len(report)} bytes sha256 {hashlib.sha256(report).hexdigest()}")
    print(f"monitor: {ack}")


async def bot(url: str) -> None:
    # A bot in a container or a function: no state on disk, gone from the tailnet once closed.
    async with tailnet.AsyncServer("report-bot", ephemeral=True, store="mem") as ts:
        await post_report(ts, url)


async def receive(request: web.Request) -> web.Response:
    report = await request.json()
    caller = tailnet.aiohttp.whois(request)
    return web.json_response(
        {"from": None if caller is None else caller.node_name, "events": len(report["events"])}
    )


async def with_local_monitor() -> None:
    with LocalTailnet() as net:
        async with net.async_server("monitor") as monitor, net.async_server("report-bot") as ts:
            app = web.Application(client_max_size=16 << 20)
            app.router.add_post("/report", receive)
            runner = web.AppRunner(app)
            await runner.setup()
            listener = await monitor.listen("tcp", ":8080")
            await tailnet.aiohttp.TailnetSite(runner, listener, server=monitor).start()
            try:
                await post_report(ts, "http://monitor:8080/report")
            finally:
                await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(bot(sys.argv[1]) if len(sys.argv) > 1 else with_local_monitor())
