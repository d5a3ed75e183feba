"""The HTTP load process of bench_acks.py: a separate process posting requests at a bounded concurrency.

:func:`load` runs the requests in a spawned process (an asyncio client, ``concurrency`` at a time) and
returns the wall time, each request's latency and the outcome counts; :func:`report` prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import statistics
import time
from collections import Counter
from urllib.parse import urlparse

GOAL_RATE, GOAL_P99_MS = 1000.0, 200.0
REQUEST_TIMEOUT = 30.0


class _Conn:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams (httpx's pool tops out near 400 requests/s
    at 64 connections on this box, below what is measured here)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive",
                 *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        if "content-length" not in fields:
            raise RuntimeError(f"response without Content-Length: {status_line}")
        payload = await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _load(base: str, requests: list[tuple[str, str, dict | None, str | None]], concurrency: int, out) -> None:
    """Run in a separate process: send ``requests`` (method, path, json, idempotency key) over ``concurrency``
    keep-alive connections; send back (wall seconds, [latency seconds], Counter of outcomes)."""
    import json

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    url = urlparse(base)

    async def main() -> tuple[float, list[float], Counter]:
        latencies: list[float] = []
        outcomes: Counter = Counter()
        queue = iter(requests)

        async def worker() -> None:
            conn = _Conn(url.hostname, url.port)
            try:
                for method, path, body, key in queue:
                    data = None if body is None else json.dumps(body).encode()
                    start = time.perf_counter()
                    try:
                        status, _ = await asyncio.wait_for(
                            conn.request(method, path, data, {"Idempotency-Key": key} if key else {}), REQUEST_TIMEOUT)
                        outcome = str(status)
                    except (OSError, asyncio.IncompleteReadError, TimeoutError, RuntimeError) as exc:
                        outcome = type(exc).__name__
                        await conn.close()
                    latencies.append(time.perf_counter() - start)
                    outcomes[outcome] += 1
            finally:
                await conn.close()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, outcomes

    out.send(asyncio.run(main()))
    out.close()


def load(base: str, requests: list, concurrency: int, timeout: float) -> tuple[float, list[float], Counter]:
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_load, args=(base, requests, concurrency, send), daemon=True)
    proc.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise RuntimeError(f"the load process did not finish within {timeout:.0f} s")
        return receive.recv()
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000


def report(name: str, wall: float, latencies: list[float], outcomes: Counter, goal: bool = False,
           cpu: float | None = None) -> None:
    ok = outcomes.get("200", 0)
    rate = ok / wall if wall else 0.0
    errors = {k: v for k, v in outcomes.items() if k != "200"}
    print(f"  {name:<30} {len(latencies):>6,} requests in {wall:6.2f} s = {rate:7.0f}/s ok   "
          f"p50 {pct(latencies, 50):6.1f} ms  p95 {pct(latencies, 95):6.1f} ms  p99 {pct(latencies, 99):6.1f} ms  "
          f"max {max(latencies) * 1000:6.0f} ms  mean {statistics.fmean(latencies) * 1000:5.1f} ms  "
          f"errors {sum(errors.values())}{' ' + str(dict(errors)) if errors else ''}"
          + (f"  server CPU {cpu / len(latencies) * 1000:.2f} ms/request" if cpu else ""))
    if goal:
        met = rate >= GOAL_RATE and pct(latencies, 99) <= GOAL_P99_MS and not errors
        print(f"  {'':<30} [goal ≥ {GOAL_RATE:,.0f} acks/s at p99 ≤ {GOAL_P99_MS:.0f} ms: {'met' if met else 'MISSED'}]")
