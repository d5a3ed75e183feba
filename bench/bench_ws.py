"""Websocket fan-out benchmark: our endpoint (uvicorn + auth + event log + hub) against a raw floor.

    .venv/bin/python bench/bench_ws.py [--clients 1000 5000] [--broadcasts 20]

For each client count it starts a fresh server process, connects the clients from two client
processes, and times one broadcast after another: the time from just before the trigger until each
client has the message (``time.monotonic`` is one clock for every process on the box). The floor is
the ``websockets`` library serving the same message with ``websockets.broadcast``; ours appends an
event to the SQLite log through an HTTP POST, commits, and the hub publishes it after commit to every
subscriber's bounded queue and websocket. Both run on uvloop, without per-message compression.

Then a subscriber that never reads joins 200 others (16 KB messages, enough to fill the kernel's 4 MB socket buffer): the server's memory must stay bounded (it is
told to resync and dropped) while the others keep their latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import psutil
from fastapi import FastAPI, Request

HOST = "127.0.0.1"
TOKEN = "bench-token"
STREAM = "activation:1"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- servers -----------------------------------------------------------------------------------------


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
            yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.add_api_websocket_route(
        "/ws",
        RealtimeEndpoint(
            hub=hub,
            sessionmaker=sessionmaker,
            authenticate=lambda token: {"role": "commander"} if token == TOKEN else None,
            authorize=lambda principal, channel: channel.startswith("activation:"),
            snapshot=lambda channel, principal: {"posts": 0},
            filter=lambda principal, message: message,
            queue_size=queue_size,
            heartbeat_interval=600,
        ),
    )

    @app.post("/trigger")
    async def trigger(request: Request) -> dict[str, int]:
        data = await request.json()
        async with sessionmaker() as session:
            event = await append(session, STREAM, "order.arrived", data)
            await session.commit()
        return {"seq": event.seq}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return {"subscribers": hub.subscriber_count(), "dropped": hub.dropped}

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


# --- measurement -------------------------------------------------------------------------------------


def start_server(kind: str, port: int, db_path: str, queue_size: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, __file__, f"--serve-{kind}", str(port), db_path, str(queue_size)]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def rss_mb(proc: subprocess.Popen[bytes]) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def broadcast(kind: str, port: int, count: int, spacing: float, pad: int = 0) -> None:
    from websockets.asyncio.client import connect

    body_pad = "x" * pad
    if kind == "floor":
        async with connect(f"ws://{HOST}:{port}/control", compression=None, ping_interval=None) as control:
            for n in range(count):
                message = {"type": "event", "stream": STREAM, "seq": n + 1, "event": "order.arrived",
                           "at": "2024-07-01T08:00:00+00:00", "body": {"t0": time.monotonic(), "n": n, "pad": body_pad}}
                await control.send(json.dumps(message, separators=(",", ":")))
                await asyncio.sleep(spacing)
    else:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as http:
            for n in range(count):
                response = await http.post("/trigger", json={"t0": time.monotonic(), "n": n, "pad": body_pad})
                response.raise_for_status()
                await asyncio.sleep(spacing)


def run_case(kind: str, clients_count: int, broadcasts: int, spacing: float) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(kind, port, os.path.join(tmp, "events.db"), 256)
        clients = Clients()
        try:
            time.sleep(0.5)
            base = rss_mb(server)
            path = f"/ws?token={TOKEN}" if kind == "ours" else "/"
            connected = clients.connect(f"ws://{HOST}:{port}{path}", clients_count, kind == "ours")
            connected_rss = rss_mb(server)
            asyncio.run(broadcast(kind, port, 3, spacing))  # warm-up
            time.sleep(1.0)
            clients.collect()
            asyncio.run(broadcast(kind, port, broadcasts, spacing))
            time.sleep(1.5)
            latencies = clients.collect()
            return {
                "kind": kind, "clients": connected, "deliveries": len(latencies), "expected": connected * broadcasts,
                "p50_ms": statistics.median(latencies) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
                "rss_base_mb": base, "rss_mb": rss_mb(server), "per_conn_kb": (connected_rss - base) * 1024 / connected,
            }
        finally:
            clients.close()
            server.terminate()
            server.wait(10)


def never_reading_subscriber(port: int) -> socket.socket:
    """Open a websocket by hand, subscribe, and never read again (tiny receive window)."""
    import base64

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((HOST, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?token={TOKEN} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1024)
    payload = json.dumps({"type": "subscribe", "channel": STREAM, "since": None}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def run_slow_case(others: int, broadcasts: int, spacing: float, pad: int) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server("ours", port, os.path.join(tmp, "events.db"), 64)
        clients = Clients()
        try:
            time.sleep(0.5)
            clients.connect(f"ws://{HOST}:{port}/ws?token={TOKEN}", others, True)
            slow = never_reading_subscriber(port)
            time.sleep(0.5)
            before = rss_mb(server)
            peak = before
            samples: list[float] = []

            async def drive() -> None:
                nonlocal peak
                task = asyncio.create_task(broadcast("ours", port, broadcasts, spacing, pad))
                while not task.done():
                    peak = max(peak, rss_mb(server))
                    samples.append(peak)
                    await asyncio.sleep(0.1)
                await task

            asyncio.run(drive())
            time.sleep(1.5)
            latencies = clients.collect()
            stats = httpx.get(f"http://{HOST}:{port}/stats").json()
            slow.close()
            return {
                "others": others, "broadcasts": broadcasts, "body_bytes": pad, "deliveries": len(latencies),
                "expected": others * broadcasts, "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000, "rss_before_mb": before, "rss_peak_mb": peak,
                "rss_after_mb": rss_mb(server), "dropped": stats["dropped"], "subscribers": stats["subscribers"],
            }
        finally:
            clients.close()
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=None,
                        help="seconds between broadcasts (default: 0.25 s per 1,000 clients, so they never overlap)")
    parser.add_argument("--slow-broadcasts", type=int, default=400)
    parser.add_argument("--slow-others", type=int, default=200)
    parser.add_argument("--serve-floor", nargs=3, metavar=("PORT", "DB", "QUEUE"))
    parser.add_argument("--serve-ours", nargs=3, metavar=("PORT", "DB", "QUEUE"))
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(int(args.serve_floor[0]))
        return
    if args.serve_ours:
        serve_ours(int(args.serve_ours[0]), args.serve_ours[1], int(args.serve_ours[2]))
        return

    limit = raise_fd_limit()
    print(f"RLIMIT_NOFILE {limit}; {os.cpu_count()} CPUs; {args.broadcasts} broadcasts per case")
    print(f"{'server':<6} {'clients':>7} {'delivered':>12} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8} {'KB/conn':>8}")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for count in args.clients:
        for kind in ("floor", "ours"):
            spacing = args.spacing if args.spacing is not None else max(0.25, count / 4000)
            r = run_case(kind, count, args.broadcasts, spacing)
            results[(kind, count)] = r
            print(f"{kind:<6} {r['clients']:>7} {r['deliveries']:>5}/{r['expected']:<6} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f} {r['rss_mb']:>8.1f} {r['per_conn_kb']:>8.1f}", flush=True)
    for count in args.clients:
        floor, ours = results[("floor", count)], results[("ours", count)]
        ratio = ours["p99_ms"] / floor["p99_ms"]
        verdict = "meets" if ratio <= 1.5 else "MISSES"
        print(f"{count} clients: p99 ours/floor = {ratio:.2f}x (p50 {ours['p50_ms'] / floor['p50_ms']:.2f}x) "
              f"-> {verdict} the 1.5x target")

    if not args.slow_broadcasts:
        return
    s = run_slow_case(args.slow_others, args.slow_broadcasts, 0.01, 16384)
    print(
        f"never-reading subscriber + {s['others']} others, {s['broadcasts']} broadcasts of ~{s['body_bytes']} B, "
        f"queue 64: others delivered {s['deliveries']}/{s['expected']}, p50 {s['p50_ms']:.1f} ms, "
        f"p99 {s['p99_ms']:.1f} ms; server RSS {s['rss_before_mb']:.1f} -> peak {s['rss_peak_mb']:.1f} -> "
        f"{s['rss_after_mb']:.1f} MB; subscribers dropped {s['dropped']}, still subscribed {s['subscribers']}"
    )


if __name__ == "__main__":
    main()
