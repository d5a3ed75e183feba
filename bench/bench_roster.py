"""Benchmark: the city-size roster — generate, write files, read them back, load into SQLite.

Run: ``python bench/bench_roster.py [--size city] [--seed 1]``. Prints each phase's wall time and the
peak resident memory of this process. The floor printed beside the load is raw ``sqlite3.executemany``
of the same people rows into a table of the same shape, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path

from mobilize.db import create_engine, create_sessionmaker, session_scope
from mobilize.migrate import upgrade
from rosters.demo import generate_city
from rosters.exporter import write_roster
from rosters.importer import read_roster
from rosters.loader import load_roster
from rosters.vocabulary import load_skills, load_workgroups


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_floor(roster, path: Path) -> float:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, phone TEXT UNIQUE, name TEXT, kind TEXT, community TEXT,"
                " grid TEXT, lat REAL, lon REAL, address TEXT, work_unit TEXT, party INT, leader INT, pg TEXT, wg TEXT,"
                " availability TEXT, status TEXT, leave_until TEXT, team TEXT)")
    rows = [(p.phone, p.name, str(p.kind), p.community_code, p.grid_code, p.lat, p.lon, p.address, p.work_unit,
             p.party_member, p.group_leader, p.peacetime_group, p.wartime_group, str(p.availability), str(p.status),
             str(p.leave_until) if p.leave_until else None, p.team_code) for p in roster.people]
    start = time.perf_counter()
    con.executemany("INSERT INTO people (phone, name, kind, community, grid, lat, lon, address, work_unit, party, leader,"
                    " pg, wg, availability, status, leave_until, team) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return time.perf_counter() - start


async def load(roster, url: str) -> tuple[float, float]:
    engine = create_engine(url)
    await upgrade(engine)
    maker = create_sessionmaker(engine)
    start = time.perf_counter()
    async with session_scope(maker) as session:
        await load_roster(session, roster, workgroups=load_workgroups())
    first = time.perf_counter() - start
    start = time.perf_counter()
    async with session_scope(maker) as session:
        report = await load_roster(session, roster, workgroups=load_workgroups())
    again = time.perf_counter() - start
    assert report.changed == 0
    await engine.dispose()
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="city")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    skills, workgroups = load_skills(), load_workgroups()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        roster = generate_city(args.size, args.seed, today=date(2026, 11, 21))
        gen = time.perf_counter() - t
        print(f"roster: {len(roster.units)} units, {len(roster.people)} people, {len(roster.teams)} teams")
        print(f"generate            {gen:7.2f} s")
        t = time.perf_counter()
        write_roster(tmp / "city.xlsx", roster)
        print(f"write XLSX          {time.perf_counter() - t:7.2f} s")
        t = time.perf_counter()
        write_roster(tmp / "city.csv", roster)
        print(f"write CSV           {time.perf_counter() - t:7.2f} s")
        for name, paths in (("XLSX", [tmp / "city.xlsx"]),
                            ("CSV", [tmp / "city.units.csv", tmp / "city.csv", tmp / "city.teams.csv"])):
            t = time.perf_counter()
            read = read_roster(paths, skills=skills, workgroups=workgroups)
            print(f"read+validate {name:5} {time.perf_counter() - t:7.2f} s  ({len(read.people)} people)")
        floor = raw_floor(roster, tmp / "raw.db")
        first, again = asyncio.run(load(roster, f"sqlite+aiosqlite:///{tmp / 'bench.db'}"))
        print(f"load into SQLite    {first:7.2f} s  (raw sqlite3 executemany of the people rows: {floor:.2f} s, "
              f"ratio {first / floor:.0f}x)")
        print(f"re-load, unchanged  {again:7.2f} s")
        print(f"peak RSS            {peak_mb():7.0f} MB")


if __name__ == "__main__":
    main()
