"""A websocket client's side of the realtime tests: read, subscribe, run an app, add events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from conftest_realtime import Database, make_app, serve
from websockets.exceptions import ConnectionClosed

from realtime import Hub, append_many
from realtime.models import NewEvent

TIMEOUT = 10


async def recv(ws: Any) -> dict[str, Any]:
    """Return the next message that is not a heartbeat ping."""
    while True:
        data = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if data["type"] != "ping":
            return data


async def closed(ws: Any) -> tuple[int, str]:
    """Return the close code and reason, reading (and discarding) whatever comes before the close."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    return ws.close_code, ws.close_reason


def url(address: str, token: str | None = "good-commander") -> str:
    return f"ws://{address}/ws" + (f"?token={token}" if token else "")


async def subscribe(ws: Any, channel: str, since: int | None) -> None:
    await ws.send(json.dumps({"type": "subscribe", "channel": channel, "since": since}))


@contextlib.asynccontextmanager
async def running(database: Database, hub_url: str = "memory://", **options: Any):
    async with Hub.from_url(hub_url) as hub:
        async with serve(make_app(hub, database.sessionmaker, **options)) as address:
            yield hub, address


async def add_events(database: Database, stream: str, n: int, **body: Any) -> list[int]:
    async with database.sessionmaker() as session:
        stored = await append_many(session, [NewEvent(stream, "order.acknowledged", {"n": i, **body}) for i in range(n)])
        await session.commit()
    return [e.seq for e in stored]
