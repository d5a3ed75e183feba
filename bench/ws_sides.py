"""The sides of bench_ws.py: the two servers it compares, each run as its own process

    python bench/ws_sides.py floor|ours PORT DB QUEUE

and the client processes holding the websockets.

``floor``: the ``websockets`` library broadcasting each control message to every client; ``ours``: our
endpoint under uvicorn (token auth, SQLite event log, memory hub, publish after commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import resource
import sys
import time
from typing import Any

from fastapi import FastAPI, Request, WebSocket

HOST = "127.0.0.1"
TOKEN = "bench-token"
STREAM = "activation:1"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve_floor(port: int) -> None:
    """The raw floor: websockets' own server, broadcasting each control message to every client."""
    from websockets.asyncio.server import broadcast, serve

    raise_fd_limit()
    use_uvloop()
    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        if ws.request.path == "/control":
            async for message in ws:
                broadcast(clients, message)
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        async with serve(handler, HOST, port, compression=None, ping_interval=None, backlog=8192, max_queue=None):
            await asyncio.Future()

    asyncio.run(main())


def gc_pauses() -> list[tuple[float, int, float]]:
    """Record the garbage collector's pauses over 5 ms: (monotonic time, generation, ms)."""
    pauses: list[tuple[float, int, float]] = []
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.monotonic()
        else:
            ms = (time.monotonic() - started[0]) * 1000
            if ms > 5:
                pauses.append((started[0], info["generation"], round(ms, 1)))

    gc.callbacks.append(callback)
    return pauses


def serve_ours(port: int, db_path: str, queue_size: int) -> None:
    """Our endpoint under uvicorn: token auth, SQLite event log, memory hub, publish after commit."""
    from contextlib import asynccontextmanager

    import uvicorn
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from realtime import Hub, RealtimeEndpoint, append, bind_hub, models

    raise_fd_limit()
    from sqlalchemy import event

    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")

    def pragmas(dbapi_connection: Any, _record: Any) -> None:  # as the product configures SQLite
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine.sync_engine, "connect", pragmas)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    hub = Hub.from_url("memory://")
    bind_hub(sessionmaker, hub)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        async with engine.begin() as connection:
            await connection.run_sync(models.metadata.create_all)
        async with hub:
            gc.freeze()  # as the app's lifespan does
            yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    endpoint = RealtimeEndpoint(
        hub=hub,
        sessionmaker=sessionmaker,
        authenticate=lambda token: {"role": "commander"} if token == TOKEN else None,
        authorize=lambda principal, channel: channel.startswith("activation:"),
        snapshot=lambda channel, principal: {"posts": 0},
        filter=lambda principal, message: message,
        queue_size=queue_size,
        heartbeat_interval=600,
    )

    async def live_status(websocket: WebSocket) -> None:
        await endpoint(websocket)

    app.router.add_websocket_route("/ws", live_status)  # mounted as the app mounts /api/v1/ws

    @app.post("/trigger")
    async def trigger(request: Request) -> dict[str, int]:
        data = await request.json()
        async with sessionmaker() as session:
            event = await append(session, STREAM, "order.arrived", data)
            await session.commit()
        return {"seq": event.seq}

    pauses = gc_pauses()

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"subscribers": hub.subscriber_count(), "dropped": hub.dropped, "tracked": len(gc.get_objects()),
                "gc": pauses}

    uvicorn.run(
        app, host=HOST, port=port, ws="websockets-sansio", ws_per_message_deflate=False, ws_ping_interval=None,
        log_level="warning", backlog=8192, loop="uvloop", http="httptools",
    )


# --- client processes ------------------------------------------------------------------------------


def client_process(pipe: Any) -> None:
    """Hold websocket clients and record, per received event, the delay since its ``t0``."""
    from websockets.asyncio.client import connect

    raise_fd_limit()
    use_uvloop()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        connections: list[Any] = []
        readers: list[asyncio.Task[None]] = []

        async def read(ws: Any) -> None:
            with contextlib.suppress(Exception):
                async for raw in ws:
                    now = time.monotonic()
                    data = json.loads(raw)
                    if data.get("type") == "event":
                        latencies.append(now - data["body"]["t0"])

        async def open_one(url: str, ours: bool) -> None:
            ws = await connect(url, compression=None, ping_interval=None, open_timeout=120, max_queue=None)
            if ours:
                await ws.send(json.dumps({"type": "subscribe", "channel": STREAM, "since": None}))
                assert json.loads(await ws.recv())["type"] == "snapshot"
            connections.append(ws)
            readers.append(asyncio.create_task(read(ws)))

        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            if command == "connect":
                url, count, ours = args
                for start in range(0, count, 100):
                    await asyncio.gather(*(open_one(url, ours) for _ in range(min(100, count - start))))
                pipe.send(len(connections))
            elif command == "collect":
                pipe.send(latencies[:])
                latencies.clear()
            elif command == "close":
                for task in readers:
                    task.cancel()
                await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
                pipe.send("closed")
                return

    asyncio.run(main())


class Clients:
    """Two client processes sharing the connections."""

    def __init__(self, processes: int = 2) -> None:
        context = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(processes):
            parent, child = context.Pipe()
            proc = context.Process(target=client_process, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, *commands: tuple[Any, ...]) -> list[Any]:
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, url: str, count: int, ours: bool) -> int:
        share = [count // len(self.pipes) + (i < count % len(self.pipes)) for i in range(len(self.pipes))]
        return sum(self.ask(*[("connect", url, n, ours) for n in share]))

    def collect(self) -> list[float]:
        return [x for part in self.ask(*[("collect",)] * len(self.pipes)) for x in part]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask(*[("close",)] * len(self.pipes))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


if __name__ == "__main__":
    kind, port, db_path, queue_size = sys.argv[1:5]
    if kind == "floor":
        serve_floor(int(port))
    else:
        serve_ours(int(port), db_path, int(queue_size))
