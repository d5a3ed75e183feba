"""Websocket fan-out benchmark: our endpoint (uvicorn + auth + event log + hub) against a raw floor.

    .venv/bin/python bench/bench_ws.py [--clients 5000] [--rounds 6] [--broadcasts 10] [--profile out.json]

Both servers run at once, each with 5,000 clients held by its own two client processes. In each
round the two sides take turns, one broadcast each, ``--broadcasts`` times (who goes first
alternates between rounds), so both are measured under the same machine load, seconds apart. A message's latency is the
time from just before the trigger until a client has it (``time.monotonic`` is one clock for every
process on the box). Each round prints both sides' p50/p99, the server CPU per broadcast and the
ratio; the verdict takes the median p99 ratio over the rounds (a shared 2-core box makes a single
measurement lie), and the spread and the load average are printed with it. The floor is the
``websockets`` library serving the message with ``websockets.broadcast``; ours appends an event to
the SQLite log through an HTTP POST, commits, and the hub publishes it after commit to every
subscriber's bounded queue and websocket. Both run on uvloop, without per-message compression.
``--profile`` records our server with py-spy during the rounds.

Then a subscriber that never reads joins 200 others (16 KB messages, enough to fill the kernel's 4 MB
socket buffer): the server's memory must stay bounded (it is told to resync and dropped) while the
others keep their latency, compared with phases on the same server without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import psutil
from ws_sides import HOST, STREAM, TOKEN, Clients, raise_fd_limit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- measurement -------------------------------------------------------------------------------------


def start_server(kind: str, port: int, db_path: str, queue_size: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws_sides.py"), kind,
            str(port), db_path, str(queue_size)]
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


async def interleaved(floor_port: int, ours_port: int, count: int, spacing: float, ours_first: bool) -> None:
    """Send ``count`` broadcasts on each side, alternating one by one, so both meet the same machine load."""
    from websockets.asyncio.client import connect

    async with (
        connect(f"ws://{HOST}:{floor_port}/control", compression=None, ping_interval=None) as control,
        httpx.AsyncClient(base_url=f"http://{HOST}:{ours_port}") as http,
    ):
        for n in range(2 * count):
            if (n % 2 == 0) == ours_first:
                response = await http.post("/trigger", json={"t0": time.monotonic(), "n": n, "pad": ""})
                response.raise_for_status()
            else:
                message = {"type": "event", "stream": STREAM, "seq": n + 1, "event": "order.arrived",
                           "at": "2024-07-01T08:00:00+00:00", "body": {"t0": time.monotonic(), "n": n, "pad": ""}}
                await control.send(json.dumps(message, separators=(",", ":")))
            await asyncio.sleep(spacing)


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


class Side:
    """One server (floor or ours) with its own two client processes, connected once and kept for all rounds."""

    def __init__(self, kind: str, count: int, tmp: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.server = start_server(kind, self.port, os.path.join(tmp, f"{kind}.db"), 256)
        self.clients = Clients()
        time.sleep(0.5)
        self.rss_base = rss_mb(self.server)
        path = f"/ws?token={TOKEN}" if kind == "ours" else "/"
        self.connected = self.clients.connect(f"ws://{HOST}:{self.port}{path}", count, kind == "ours")
        self.rss_connected = rss_mb(self.server)

    @property
    def per_conn_kb(self) -> float:
        return (self.rss_connected - self.rss_base) * 1024 / self.connected

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.server.pid).cpu_times()
        return times.user + times.system

    def result(self, cpu_before: float, broadcasts: int) -> dict[str, Any]:
        """Collect this side's latencies since the last collect; with its server's CPU per broadcast."""
        cpu = self.cpu_seconds() - cpu_before
        latencies = self.clients.collect()
        return {
            "deliveries": len(latencies), "expected": self.connected * broadcasts,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
            "cpu_ms": cpu * 1000 / broadcasts, "latencies": latencies,
        }

    def close(self) -> None:
        self.clients.close()
        self.server.terminate()
        self.server.wait(10)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def run_rounds(count: int, rounds: int, broadcasts: int, spacing: float, profile: str | None) -> None:
    """Alternate floor and ours phases over one pair of connected servers; print each round and the median."""
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        try:
            for kind in ("floor", "ours"):
                sides[kind] = Side(kind, count, tmp)
            floor, ours = sides["floor"], sides["ours"]
            asyncio.run(interleaved(floor.port, ours.port, 3, spacing, False))  # warm-up: caches, first frames
            time.sleep(1.5)
            spy = None
            if profile:
                exe = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
                if exe is None:
                    raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
                spy = subprocess.Popen([exe, "record", "-p",
                                        str(ours.server.pid), "-o", profile, "-f", "speedscope", "-r", "200"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"{count} clients (floor {floor.connected}, ours {ours.connected}), {rounds} rounds of "
                  f"{broadcasts} broadcasts each side, "
                  f"alternating one by one, {spacing:.2f} s apart")
            print(f"{'round':>5} {'first':<6} {'floor p50':>9} {'p99':>7} {'cpu/b':>6} {'ours p50':>9} {'p99':>7} "
                  f"{'cpu/b':>6} {'p99 x':>6} {'p50 x':>6} {'lost':>5} {'load 1/5':>10}")
            rounds_start = time.monotonic()
            ratios: list[float] = []
            ratios50: list[float] = []
            cpu_ratios: list[float] = []
            pooled: dict[str, list[float]] = {"floor": [], "ours": []}
            for n in range(rounds):
                order = ("floor", "ours") if n % 2 == 0 else ("ours", "floor")
                at_start = load()
                for side in (floor, ours):
                    side.clients.collect()
                cpu = {kind: side.cpu_seconds() for kind, side in sides.items()}
                asyncio.run(interleaved(floor.port, ours.port, broadcasts, spacing, order[0] == "ours"))
                time.sleep(1.5)
                result = {kind: side.result(cpu[kind], broadcasts) for kind, side in sides.items()}
                f, o = result["floor"], result["ours"]
                for kind in order:
                    pooled[kind] += result[kind].pop("latencies")
                ratio, ratio50 = o["p99_ms"] / f["p99_ms"], o["p50_ms"] / f["p50_ms"]
                ratios.append(ratio)
                ratios50.append(ratio50)
                if f["cpu_ms"] > 0:  # a short run can fall under the clock's tick
                    cpu_ratios.append(o["cpu_ms"] / f["cpu_ms"])
                lost = f["expected"] - f["deliveries"] + o["expected"] - o["deliveries"]
                print(f"{n + 1:>5} {order[0]:<6} {f['p50_ms']:>9.1f} {f['p99_ms']:>7.1f} {f['cpu_ms']:>6.1f} "
                      f"{o['p50_ms']:>9.1f} {o['p99_ms']:>7.1f} {o['cpu_ms']:>6.1f} {ratio:>6.2f} {ratio50:>6.2f} "
                      f"{lost:>5} {at_start:>10}", flush=True)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
            median = statistics.median(ratios)
            pooled_ratio = percentile(pooled["ours"], 0.99) / percentile(pooled["floor"], 0.99)
            verdict = "meets" if median <= 1.5 else "MISSES"
            print(f"{count} clients: p99 ours/floor median {median:.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}"
                  f" over {rounds} rounds; pooled p99 {pooled_ratio:.2f}x);"
                  f" p50 median {statistics.median(ratios50):.2f}x; server CPU per broadcast median "
                  (f"{statistics.median(cpu_ratios):.2f}x" if cpu_ratios else "not measurable") +
                  f" -> {verdict} the 1.5x target")
            stats = httpx.get(f"http://{HOST}:{ours.port}/stats").json()
            during = [(gen, ms) for at, gen, ms in stats["gc"] if at >= rounds_start]
            print(f"ours server GC: {stats['tracked']} objects tracked; {len(stats['gc'])} pauses over 5 ms since "
                  f"start, during the rounds (generation, ms): {during or 'none'}")
            for side in (floor, ours):
                print(f"{side.kind} server: RSS {side.rss_base:.1f} MB empty, {side.rss_connected:.1f} MB with "
                      f"{side.connected} clients = {side.per_conn_kb:.1f} KB per connection, "
                      f"now {rss_mb(side.server):.1f} MB")
        finally:
            for side in sides.values():
                side.close()


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


def run_slow_case(others: int, broadcasts: int, spacing: float, pad: int, rounds: int) -> None:
    """Phases without and with a never-reading subscriber, alternating on one server: the others' latency
    with one against without it, and the server's memory while it is stuck."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server("ours", port, os.path.join(tmp, "events.db"), 64)
        clients = Clients()
        try:
            time.sleep(0.5)
            clients.connect(f"ws://{HOST}:{port}/ws?token={TOKEN}", others, True)
            print(f"never-reading subscriber: {others} others, {broadcasts} broadcasts of ~{pad} B "
                  f"{spacing * 1000:.0f} ms apart per phase, queue 64")
            p99: dict[bool, list[float]] = {False: [], True: []}
            for n in range(2 * rounds):
                with_slow = n % 2 == 1
                slow = never_reading_subscriber(port) if with_slow else None
                time.sleep(0.5)
                dropped_before = httpx.get(f"http://{HOST}:{port}/stats").json()["dropped"]
                before = rss_mb(server)
                clients.collect()

                async def drive(before: float = before) -> float:
                    peak = before
                    task = asyncio.create_task(broadcast("ours", port, broadcasts, spacing, pad))
                    while not task.done():
                        peak = max(peak, rss_mb(server))
                        await asyncio.sleep(0.1)
                    await task
                    return peak

                peak = asyncio.run(drive())
                time.sleep(1.5)
                latencies = clients.collect()
                stats = httpx.get(f"http://{HOST}:{port}/stats").json()
                if slow is not None:
                    slow.close()
                p99[with_slow].append(percentile(latencies, 0.99) * 1000)
                print(f"  {'with   ' if with_slow else 'without'} it: others delivered {len(latencies)}/"
                      f"{others * broadcasts}, p50 {statistics.median(latencies) * 1000:.1f} ms, p99 "
                      f"{p99[with_slow][-1]:.1f} ms; server RSS {before:.1f} -> peak {peak:.1f} -> "
                      f"{rss_mb(server):.1f} MB; dropped {stats['dropped'] - dropped_before}, load {load()}",
                      flush=True)
            ratio = statistics.median(p99[True]) / statistics.median(p99[False])
            print(f"never-reading subscriber: others' p99 with it / without it, medians: {ratio:.2f}x")
        finally:
            clients.close()
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[5000], help="none: only the never-reading case")
    parser.add_argument("--rounds", type=int, default=6, help="alternating floor/ours rounds (the median ratio counts)")
    parser.add_argument("--broadcasts", type=int, default=10, help="broadcasts per side per round")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the server of ours during the rounds (speedscope)")
    parser.add_argument("--spacing", type=float, default=None,
                        help="seconds between broadcasts (default: 0.25 s per 1,000 clients, so they never overlap)")
    parser.add_argument("--slow-broadcasts", type=int, default=400, help="per phase of the never-reading case")
    parser.add_argument("--slow-rounds", type=int, default=3, help="phases without/with the never-reading subscriber")
    parser.add_argument("--slow-others", type=int, default=200)
    args = parser.parse_args()
    limit = raise_fd_limit()
    print(f"RLIMIT_NOFILE {limit}; {os.cpu_count()} CPUs; load {load()} at start")
    for count in args.clients:
        spacing = args.spacing if args.spacing is not None else max(0.25, count / 4000)
        run_rounds(count, args.rounds, args.broadcasts, spacing, args.profile)

    if not args.slow_broadcasts:
        return
    run_slow_case(args.slow_others, args.slow_broadcasts, 0.01, 16384, args.slow_rounds)

if __name__ == "__main__":
    main()
