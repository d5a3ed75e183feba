"""Benchmark of the one key (一键启动) on the demo city: ``python bench/bench_activation.py``.

Builds the city demo (``generate_city("city", 1)``: 44,000 people, 293 communities) into a fresh
SQLite file, then times, city-wide: activate flood III, raise to I, end; and activate flood I
directly, end. Each time runs from the key press (``BEGIN IMMEDIATE``) to the commit of every order
and its events, and is broken down into the phases the activation reports in ``summary["phases_ms"]``
plus the commit. The floor printed beside it is measured in the same run on the same problem: SciPy's
``linear_sum_assignment`` per community on the same cost arrays (``bench_solver.floor``) plus a raw
``sqlite3.executemany`` of as many order rows into a table of the same shape. After each key press and
raise, the links and messages of its orders are made as the app's notifier makes them after the commit
(:mod:`mobilize.activations.fanout`), timed apart. ``--postgres URL``
runs the same on a scratch PostgreSQL database made (and dropped) beside ``URL``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select, text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/ is scripts, not a package
from bench_solver import floor as lsa_floor  # noqa: E402

from mobilize.activations.models import SolveRecord  # noqa: E402
from mobilize.activations.fanout import fan_out_next  # noqa: E402
from mobilize.activations.levels import change_level  # noqa: E402
from mobilize.activations.notices import Notices  # noqa: E402
from mobilize.activations.service import ActivateRequest, activate, end  # noqa: E402
from mobilize.activations.records import load_solve  # noqa: E402
from mobilize.db import begin_write, checkpoint, create_engine, create_sessionmaker  # noqa: E402
from mobilize.migrate import upgrade  # noqa: E402
from mobilize.plans import load_plans  # noqa: E402
from mobilize.solver import build_problem, solve  # noqa: E402
from rosters.demo import generate_city  # noqa: E402
from rosters.loader import load_roster  # noqa: E402
from rosters.vocabulary import load_skills, load_workgroups  # noqa: E402

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
TARGET_ACTIVATE_S = 1.5
TARGET_RAISE_S = 0.5


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(maker, work) -> tuple[object, float, float]:
    """Run ``work(session)`` in one write transaction; return its result, seconds to commit, commit seconds.

    Afterwards, untimed, the write-ahead log is copied into the database file as the app's background
    job does every few seconds (``mobilize.db.checkpoint``): each step starts from a settled file.
    """
    async with maker() as session:
        start = time.perf_counter()
        await begin_write(session)
        result = await work(session)
        before_commit = time.perf_counter()
        await session.commit()
        done = time.perf_counter()
    await checkpoint(maker.kw["bind"])
    return result, done - start, done - before_commit


async def fan_out(maker) -> None:
    """Make the links and messages a large dispatch left for after its commit, as the app's notifier does; print it."""
    notices, chunks, orders, longest = Notices(), 0, 0, 0.0
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        handled = await fan_out_next(maker, notices)
        if not handled:
            break
        chunks, orders, longest = chunks + 1, orders + handled, max(longest, time.perf_counter() - t)
    if chunks:
        print(f"{'':<22} then its links and messages: {orders:,} orders in {chunks} chunks after the commit, "
              f"{time.perf_counter() - start:.3f} s (longest chunk {longest * 1000:.0f} ms)")
    await checkpoint(maker.kw["bind"])  # untimed, as after every timed step: the next one starts settled


def report(name: str, activation, total: float, commit: float, target: float | None = None) -> None:
    s = activation.summary or {}
    phases = dict(s.get("phases_ms") or {})
    phases["commit"] = commit * 1000
    line = "  ".join(f"{k} {v:.0f}" for k, v in phases.items())
    slots = f"{s.get('filled', 0):,}/{s.get('slots', 0):,} filled" if "slots" in s else ""
    orders = f", {s['new_orders']:,} new orders, {s['kept']:,} kept" if "new_orders" in s else ""
    verdict = "" if target is None else f"  [target ≤ {target:.1f} s: {'met' if total <= target else 'MISSED'}]"
    print(f"{name:<22} {total:6.3f} s  {slots}{orders}{verdict}")
    print(f"{'':<22} ms: {line}")


def raw_order_floor(n: int, directory: Path) -> float:
    """Time a raw sqlite3 executemany of ``n`` order rows (same columns and indexes) and its commit."""
    for suffix in ("", "-wal", "-shm"):
        (directory / f"floor.db{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(directory / "floor.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, activation_id INT, person_id INT, post_id INT,"
                " status TEXT, leader_part INT, borrowed INT, travel_minutes INT, cost INT, explanation TEXT,"
                " created_at TEXT, updated_at TEXT, closed_reason TEXT)")
    con.execute("CREATE UNIQUE INDEX uq_open ON orders (person_id) WHERE status IN ('notified', 'acknowledged',"
                " 'en_route', 'arrived', 'escalated')")
    con.execute("CREATE INDEX ix_as ON orders (activation_id, status)")
    con.execute("CREATE INDEX ix_person ON orders (person_id)")
    con.execute("CREATE INDEX ix_post ON orders (post_id)")
    now = "2026-11-21 09:00:00.000000"
    explanation = "[7,0,0,0,35,0]"  # an order's cost parts as the app stores them (writes._explanation)
    rows = [(1, i, i % 5000, "notified", 0, 0, 7, 42, explanation, now, now) for i in range(n)]
    start = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    con.executemany("INSERT INTO orders (activation_id, person_id, post_id, status, leader_part, borrowed,"
                    " travel_minutes, cost, explanation, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("COMMIT")
    took = time.perf_counter() - start
    con.close()
    return took


async def floor_of(maker, activation_id: int, n_orders: int, directory: Path) -> tuple[float, float, float, float]:
    """Return (LSA seconds, raw write seconds, solver alone seconds, solver peak MB) for the activation's problem."""
    async with maker() as session:
        blob = (await session.execute(select(SolveRecord.inputs).where(
            SolveRecord.activation_id == activation_id))).scalar_one()
    candidates, demands, policy, _current, _assignment, _objective = load_solve(blob)
    problem = build_problem(candidates, demands, policy)
    lsa = min(lsa_floor(problem)[0] for _ in range(3))
    write = min(raw_order_floor(n_orders, directory) for _ in range(3))
    best = float("inf")
    for _ in range(3):
        gc.collect()
        t = time.perf_counter()
        solve(candidates, demands, policy)
        best = min(best, time.perf_counter() - t)
    gc.collect()
    tracemalloc.start()
    solve(candidates, demands, policy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lsa, write, best, peak / 2**20


async def scenario(url: str, directory: Path, scope: str, community: str) -> dict[str, float]:
    """Run and print the steps once; return each step's seconds and each level's floor (``floor III`` …)."""
    engine = create_engine(url)
    maker = create_sessionmaker(engine)
    skills, workgroups = load_skills(), load_workgroups()
    plans = load_plans(skills=skills, workgroups=workgroups)

    # Warm up the process (statement caches, imports) as a running server would be: a small drill.
    async def warm(session):
        act, _ = await activate(session, ActivateRequest(community, "flood", "III", drill=True), plans=plans,
                                at=AT)
        await end(session, act.id)
        return act
    await timed(maker, warm)

    results = {}
    times: dict[str, float] = {}
    for label, level in (("III", "III"), ("I", "I")):
        act, total, commit = await timed(maker, lambda s, lv=level: activate(
            s, ActivateRequest(scope, "flood", lv), plans=plans, at=AT))
        act = act[0]
        report(f"activate {label} city-wide", act, total, commit, TARGET_ACTIVATE_S)
        times[f"activate {label}"] = total
        await fan_out(maker)
        results[label] = (act, total)
        if label == "III":
            raised, total_r, commit_r = await timed(maker, lambda s, a=act.id: change_level(
                s, a, "I", plans=plans, at=AT))
            report("raise III → I", raised, total_r, commit_r, TARGET_RAISE_S)
            times["raise III → I"] = total_r
            await fan_out(maker)
            ms = raised.summary["phases_ms"]
            # every phase up to the solve's end: on SQLite the posts are written while the solver runs (their
            # phase is part of the solve's wall time), on PostgreSQL after it (not part of it)
            names = list(ms)
            resolve = sum(ms[k] for k in names[:names.index("solve") + 1])
            print(f"{'':<22} of which the re-solve (holders and candidates read, solved): {resolve / 1000:.3f} s "
                  f"[target ≤ {TARGET_RAISE_S:.1f} s: {'met' if resolve / 1000 <= TARGET_RAISE_S else 'MISSED'}]; "
                  f"the rest writes {raised.summary['new_orders']:,} orders, their posts, branches and events")
            times["re-solve"] = resolve / 1000
            results["raise"] = (raised, total_r)
        ended, total_e, commit_e = await timed(maker, lambda s, a=act.id: end(s, a))
        print(f"{'end':<22} {total_e:6.3f} s  (commit {commit_e * 1000:.0f} ms)")

    for label in ("III", "I"):
        act, total = results[label]
        n = act.summary["filled"]
        lsa, write, alone, peak = await floor_of(maker, act.id, n, directory)
        fl = times[f"floor {label}"] = lsa + write
        print(f"floor, level {label:<4} LSA per community {lsa:.3f} s + raw executemany of {n:,} orders "
              f"{write:.3f} s = {fl:.3f} s; activation/floor {total / fl:.1f}× "
              f"(solver alone {alone:.3f} s, its peak {peak:.0f} MB)")
    await engine.dispose()
    return times


def summarize(runs: list[dict[str, float]]) -> None:
    """Print each step's median and spread over the runs, the verdict on the median, and the median ratio to the floor."""
    print(f"over {len(runs)} runs (each on a fresh copy of the same city):")
    # The words: a raise "re-solves in ≤ 0.5 s". Both are judged: the re-solve, and the whole raise
    # (the re-solve plus writing its orders, posts, branches and events) against the same 0.5 s.
    for step, target in (("activate III", TARGET_ACTIVATE_S), ("raise III → I", TARGET_RAISE_S),
                         ("re-solve", TARGET_RAISE_S), ("activate I", TARGET_ACTIVATE_S)):
        values = sorted(r[step] for r in runs)
        median = statistics.median(values)
        # a raise has no floor of its own here (a partial re-solve and half the orders): no ratio for it
        ratio = f"  median/floor {median / statistics.median(r[f'floor {step[9:]}'] for r in runs):.1f}×" \
            if step.startswith("activate") else ""
        label = "  its re-solve" if step == "re-solve" else step
        print(f"  {label:<15} median {median:.3f} s (min {values[0]:.3f}, max {values[-1]:.3f})  "
              f"[≤ {target:.1f} s: {'met' if median <= target else 'MISSED'}]{ratio}")


async def build(url: str) -> tuple[str, str]:
    engine = create_engine(url)
    await upgrade(engine)
    maker = create_sessionmaker(engine)
    t = time.perf_counter()
    roster = generate_city("city", 1, today=date(2026, 11, 21))
    async with maker() as session:
        await load_roster(session, roster, workgroups=load_workgroups())
        await session.commit()
    city = next(u for u in roster.units if u.level == "city")
    community = next(u for u in roster.units if u.level == "community")
    print(f"city: {len(roster.people):,} people, {sum(u.level == 'community' for u in roster.units)} communities "
          f"(built in {time.perf_counter() - t:.1f} s); scope {city.code}")
    await engine.dispose()
    return city.code, community.code


async def scratch_postgres(url: str, name: str, drop: bool = False) -> str:
    admin = create_engine(url)
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", metavar="URL", help="also run on a scratch database beside this one")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="SQLite: run the steps N times, each on a fresh copy of the city, and print the medians "
                             "(a shared machine's noise is ±15 %% from one run to the next)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        built = tmp / "built.db"
        print("SQLite")
        scope, community = asyncio.run(build(f"sqlite+aiosqlite:///{built}"))
        runs = []
        for _ in range(max(args.repeat, 1)):
            for suffix in ("", "-wal", "-shm"):
                (tmp / f"bench.db{suffix}").unlink(missing_ok=True)
                if Path(f"{built}{suffix}").exists():
                    shutil.copy(f"{built}{suffix}", tmp / f"bench.db{suffix}")
            runs.append(asyncio.run(scenario(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", tmp, scope, community)))
        if len(runs) > 1:
            summarize(runs)
        if args.postgres:
            name = f"mobilize_bench_{os.getpid()}"
            pg = asyncio.run(scratch_postgres(args.postgres, name))
            try:
                print("PostgreSQL")
                asyncio.run(build(pg))
                asyncio.run(scenario(pg, tmp, scope, community))
            finally:
                asyncio.run(scratch_postgres(args.postgres, name, drop=True))
    print(f"peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
