"""Acks from phones over HTTP, city-wide: ``python bench/bench_acks.py [--orders 10000] [--postgres URL]``.

Builds the city demo (``generate_city("city", 1)``: 44,000 people, 293 communities, and the demo's
operators) into a fresh SQLite file, starts ``mobilize serve`` (uvicorn, one process) on a free port of
127.0.0.1, activates the whole city (flood, level I) through the API and reads the personal links from
the outbox, as the SMS gateway would. Then a separate load process (an asyncio httpx client, bounded
concurrency, default 64) posts ``{"action": "acknowledge"}`` to ``/api/v1/m/{token}/actions`` for
``--orders`` distinct orders, each with its own ``Idempotency-Key``, and reports the sustained rate and
the latency percentiles; then declines on a sample (each decline runs a backup search over the
street, a one-slot solve) at a lower concurrency. The client's own ceiling is measured first on
``GET /healthz`` with the same concurrency, so a client-bound figure shows as such.

Goal (the issue "Dispatch on phones"): ≥ 1,000 acks/s at p99 ≤ 200 ms on SQLite on this machine.
Everything is bounded (counts, a timeout per request and per phase) and on loopback only.
``--postgres URL`` runs the same on a scratch PostgreSQL database made (and dropped) beside ``URL``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import httpx
from bench_activation import scratch_postgres  # a scratch PostgreSQL database beside URL's
from http_load import load, report

HOST = "127.0.0.1"
SECRET = "bench-secret-key-0123456789abcdef0123456789"
PASSWORD = "demo-password-1"


# --- the city and the server -----------------------------------------------------------------------


async def build(url: str) -> tuple[str, float]:
    """Migrate, load the city demo and the demo's operators; return the city code and seconds taken."""
    from mobilize.db import create_engine, create_sessionmaker, session_scope
    from mobilize.migrate import upgrade
    from mobilize.operators import OperatorCreate, create_operator
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.vocabulary import load_workgroups

    start = time.perf_counter()
    engine = create_engine(url)
    await upgrade(engine)
    roster = generate_city("city", 1, today=date.today())
    maker = create_sessionmaker(engine)
    async with session_scope(maker) as session:
        await load_roster(session, roster, workgroups=load_workgroups())
    city = next(u.code for u in roster.units if u.level == "city")
    street = next(u.code for u in roster.units if u.level == "street")
    communities = [u.code for u in roster.units if u.level == "community"]
    async with session_scope(maker) as session:
        for username, role, scope in [("admin", "admin", None), ("street", "street_commander", street),
                                      ("cmd_a", "community_commander", communities[0]),
                                      ("cmd_b", "community_commander", communities[1]),
                                      ("planner", "drill_planner", city)]:
            await create_operator(session, OperatorCreate(username=username, password=PASSWORD, role=role,
                                                          scope_code=scope), actor="bench")
    await engine.dispose()
    return city, time.perf_counter() - start


async def links_and_outbox(url: str, activation_id: int) -> tuple[dict[int, str], int]:
    """Return order id -> token from the outbox's notifications, and how many outbox rows are pending."""
    from sqlalchemy import func, select

    from mobilize.db import create_engine, create_sessionmaker, session_scope
    from mobilize.notify.models import OutboxMessage

    engine = create_engine(url)
    try:
        async with session_scope(create_sessionmaker(engine)) as s:
            rows = (await s.execute(select(OutboxMessage.order_id, OutboxMessage.payload).where(
                OutboxMessage.activation_id == activation_id, OutboxMessage.kind == "order_notified"))).all()
            pending = (await s.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending"))))).scalar_one()
    finally:
        await engine.dispose()
    # Read right after the activation: the notifier drops a link from its row once the message is sent.
    return {oid: urlparse(p["link"]).path.rsplit("/", 1)[-1] for oid, p in rows if "link" in p}, pending


async def pending_outbox(url: str) -> int:
    return (await links_and_outbox(url, -1))[1]


async def statuses(url: str, ids: list[int]) -> Counter:
    from sqlalchemy import select

    from mobilize.activations.models import Order
    from mobilize.db import create_engine, create_sessionmaker, session_scope

    engine = create_engine(url)
    out: Counter = Counter()
    try:
        async with session_scope(create_sessionmaker(engine)) as s:
            for i in range(0, len(ids), 900):
                out.update((await s.execute(select(Order.status).where(Order.id.in_(ids[i:i + 900])))).scalars())
    finally:
        await engine.dispose()
    return out


async def ack_transactions(url: str) -> tuple[int, int]:
    """Return (acks, transactions they were written in): a transaction's events share one timestamp."""
    from sqlalchemy import distinct, func, select

    from mobilize.db import create_engine, create_sessionmaker, session_scope
    from realtime.models import event_log

    engine = create_engine(url)
    try:
        async with session_scope(create_sessionmaker(engine)) as s:
            row = (await s.execute(select(func.count(), func.count(distinct(event_log.c.at))).where(
                event_log.c.type == "order.acknowledged", event_log.c.stream.like("activation:%")))).one()
    finally:
        await engine.dispose()
    return row[0], row[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """``mobilize serve`` in a subprocess on loopback (its log to a file in ``tmp``)."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "MOBILIZE_DATABASE_URL": url, "MOBILIZE_SECRET_KEY": SECRET,
               "MOBILIZE_LOG_LEVEL": "WARNING", "MOBILIZE_NOTIFY_CHANNEL": "log",
               # the links are read from the outbox right after the activation: made in its transaction, not after
               "MOBILIZE_NOTICES_INLINE": "1000000"}
        self.proc = subprocess.Popen([sys.executable, "-m", "mobilize.cli", "serve", "--host", HOST,
                                      "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=tmp)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start: " + (tmp / f"server-{self.port}.log").read_text()[-2000:])

    def cpu(self) -> float:
        """Return the CPU seconds the server process has used so far (Linux; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- the run ---------------------------------------------------------------------------------------


async def refresh_deadlines(url: str) -> None:
    """Give a kept activation's unanswered orders fresh ack deadlines (so a reused copy is not all overdue)."""
    from datetime import timedelta

    from sqlalchemy import update

    from mobilize.activations.models import Order
    from mobilize.db import create_engine, create_sessionmaker, session_scope, utcnow

    engine = create_engine(url)
    try:
        async with session_scope(create_sessionmaker(engine)) as s:
            deadline = utcnow() + timedelta(minutes=10)
            await s.execute(update(Order).where(Order.status == "notified").values(
                ack_deadline_at=deadline, next_check_at=deadline))
    finally:
        await engine.dispose()


def run(url: str, tmp: Path, args: argparse.Namespace) -> None:
    kept = Path(args.reuse) if args.reuse else None
    if kept is not None and (kept / "bench.db").exists() and url.startswith("sqlite"):
        import json
        import shutil

        shutil.copy(kept / "bench.db", url.split("///", 1)[1])
        asyncio.run(refresh_deadlines(url))
        saved = json.loads((kept / "tokens.json").read_text())
        print(f"  reusing the activation kept in {kept} ({len(saved['tokens']):,} links)")
        server = Server(url, tmp)
        try:
            measure(server, url, {int(k): v for k, v in saved["tokens"].items()}, time.monotonic(), args)
        finally:
            server.stop()
            shutil.copy(server.log_path, kept / "server.log")  # for a look after the run
        return
    city, seconds = asyncio.run(build(url))
    print(f"  city demo loaded in {seconds:.1f} s")
    server = Server(url, tmp)
    try:
        with httpx.Client(base_url=server.base, timeout=600) as client:
            r = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
            r.raise_for_status()
            start = time.perf_counter()
            r = client.post("/api/v1/activations", json={"scope": city, "hazard": "flood", "level": "I"},
                            headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            if r.status_code != 201:
                raise RuntimeError(f"activation refused: {r.status_code} {r.text[:500]}")
            activated = time.monotonic()
            act = r.json()
        summary = act["summary"]
        print(f"  city-wide flood I through the API in {time.perf_counter() - start:.1f} s: "
              f"{summary.get('filled', 0):,}/{summary.get('slots', 0):,} slots filled")
        tokens, pending = asyncio.run(links_and_outbox(url, act["id"]))
        # The notifier is sending every order's message: let it drain first, so acks are measured alone.
        start = time.perf_counter()
        while pending and time.perf_counter() - start < args.drain_timeout:
            time.sleep(1)
            pending = asyncio.run(pending_outbox(url))
        print(f"  {len(tokens):,} links read from the outbox; notifier drained in {time.perf_counter() - start:.1f} s"
              + (f" ({pending:,} still pending)" if pending else ""))
        if kept is not None and url.startswith("sqlite"):  # keep a copy of the activated city for --reuse
            import json
            import sqlite3

            kept.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(url.split("///", 1)[1]) as src, sqlite3.connect(kept / "bench.db") as dst:
                src.backup(dst)
            (kept / "tokens.json").write_text(json.dumps({"tokens": tokens}))
        measure(server, url, tokens, activated, args)
    finally:
        server.stop()


def measure(server: Server, url: str, tokens: dict[int, str], activated: float, args: argparse.Namespace) -> None:
    """The load phases: the client's floor, acks, replays, declines."""
    order_ids = sorted(tokens)
    random.Random(1).shuffle(order_ids)
    warm, n = 200, min(args.orders, len(order_ids) - 200 - args.declines)
    ack_ids, decline_ids = order_ids[warm:warm + n], order_ids[warm + n:warm + n + args.declines]

    def ack(oid: int, tag: str) -> tuple:
        return "POST", f"/api/v1/m/{tokens[oid]}/actions", {"action": "acknowledge"}, f"{tag}-{oid:08}"

    timeout = args.phase_timeout

    def phase(requests: list, concurrency: int) -> tuple[float, list[float], Counter, float]:
        cpu = server.cpu()
        return *load(server.base, requests, concurrency, timeout), server.cpu() - cpu

    wall, lat, out, cpu = phase([("GET", "/healthz", None, None)] * n, args.concurrency)
    report(f"client floor GET /healthz (c={args.concurrency})", wall, lat, out, cpu=cpu)
    floor = cpu / len(lat)
    load(server.base, [ack(o, "warm") for o in order_ids[:warm]], args.concurrency, timeout)  # warm-up
    before = asyncio.run(ack_transactions(url))
    wall, lat, out, cpu = phase([ack(o, "ack") for o in ack_ids], args.concurrency)
    report(f"acknowledge (c={args.concurrency})", wall, lat, out, goal=True, cpu=cpu)
    if cpu and floor:
        print(f"  {'':<30} server CPU per ack {cpu / len(lat) * 1000:.2f} ms = {cpu / len(lat) / floor:.1f}× a "
              f"/healthz request: one free core would serve ≈ {len(lat) / cpu:,.0f} acks/s")
    done = asyncio.run(statuses(url, ack_ids))
    after = asyncio.run(ack_transactions(url))
    acks, transactions = after[0] - before[0], after[1] - before[1]
    print(f"  {'':<30} orders now: {dict(done)}; {acks:,} acks written in {transactions:,} transactions "
          f"({acks / max(transactions, 1):.1f} per transaction)")
    wall, lat, out, cpu = phase([ack(o, "ack") for o in ack_ids[:2000]], args.concurrency)
    report("same acks repeated (replays)", wall, lat, out, cpu=cpu)

    declines = [("POST", f"/api/v1/m/{tokens[o]}/actions", {"action": "decline", "reason": "ill"}, f"dec-{o:08}")
                for o in decline_ids]
    wall, lat, out, cpu = phase(declines, args.decline_concurrency)
    report(f"decline + backup (c={args.decline_concurrency})", wall, lat, out, cpu=cpu)
    done = asyncio.run(statuses(url, decline_ids))
    print(f"  {'':<30} declined orders now: {dict(done)}")
    server.log.flush()
    errors = [line for line in server.log_path.read_text(errors="replace").splitlines()
              if line.startswith(("ERROR", "sqlalchemy.", "sqlite3.", "asyncpg.")) or "Error:" in line]
    if errors:
        print(f"  server log, errors ({len(errors)} lines; last 8):")
        for line in errors[-8:]:
            print(f"    {line[:240]}")
    elapsed = time.monotonic() - activated
    if elapsed > 9 * 60:
        print(f"  note: {elapsed:.0f} s since activation: the 10-minute ack deadlines were near, "
              "the sweeper may have joined in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="distinct orders to acknowledge (10,000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight for acks (64)")
    parser.add_argument("--declines", type=int, default=200, help="orders to decline (200)")
    parser.add_argument("--decline-concurrency", type=int, default=8, help="requests in flight for declines (8)")
    parser.add_argument("--phase-timeout", type=float, default=300, help="seconds a load phase may take (300)")
    parser.add_argument("--drain-timeout", type=float, default=240, help="seconds to wait for the notifier (240)")
    parser.add_argument("--postgres", metavar="URL", help="also run on a scratch database beside this one")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    parser.add_argument("--reuse", metavar="DIR", help="keep the activated city (SQLite) in DIR, or reuse it from "
                        "there: skips the 1-minute build for repeated measurements")
    args = parser.parse_args()
    print(f"bench_acks: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"{args.orders:,} acks at c={args.concurrency}, {args.declines} declines at c={args.decline_concurrency}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.no_sqlite:
            print("SQLite")
            run(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", tmp, args)
        if args.postgres:
            name = f"mobilize_bench_acks_{os.getpid()}"
            pg = asyncio.run(scratch_postgres(args.postgres, name))
            try:
                print("PostgreSQL")
                run(pg, tmp, args)
            finally:
                asyncio.run(scratch_postgres(args.postgres, name, drop=True))


if __name__ == "__main__":
    main()
