"""Helpers shared by tests: seeding the demo city and logging in."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from mobilize.db import create_engine, create_sessionmaker, session_scope
from mobilize.settings import Settings

DEMO_PASSWORD = "demo-password-1"


# Seeding the demo city (roster load plus five argon2 password hashes) is the slow part of most tests' set-up.
# The first seed of a test process is kept (a SQLite file; a PostgreSQL schema of the session database) and
# later seeds of an empty database copy it in: the rows are exactly those the real loader wrote.
_SEEDED: dict[tuple[str, str, int], tuple[str, dict[str, str]]] = {}


async def seed_demo(settings: Settings, size: str = "small", seed: int = 1) -> dict[str, str]:
    """Load the demo city and its operators; return the codes tests need (street, two communities)."""
    url = settings.database_url
    kind = "sqlite" if url.startswith("sqlite") else "postgres"
    key = (url if kind == "postgres" else "sqlite", size, seed)
    cached = _SEEDED.get(key)
    if cached is not None and await _restore(url, kind, cached[0]):
        return dict(cached[1])
    empty = cached is None and await _is_empty(url, kind)
    codes = await _seed(settings, size, seed)
    if empty:  # kept only when the database held nothing else: the copy is the demo city and nothing more
        _SEEDED[key] = (await _keep(url, kind, size, seed), codes)
    return dict(codes)


async def _is_empty(url: str, kind: str) -> bool:
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(_sqlite_path(url), timeout=30) as conn:
            found = conn.execute(_ANY_ROW).fetchone()[0]
        conn.close()
        return not found
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return not (await conn.execute(text(_ANY_ROW))).scalar()
    finally:
        await engine.dispose()


_ANY_ROW = ("SELECT EXISTS (SELECT 1 FROM org_units) OR EXISTS (SELECT 1 FROM operators) "
            "OR EXISTS (SELECT 1 FROM instance_meta)")


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


async def _keep(url: str, kind: str, size: str, seed: int) -> str:
    """Keep a copy of the freshly seeded database ``url``; return where it is."""
    if kind == "sqlite":
        import sqlite3
        import tempfile

        where = tempfile.mkdtemp(prefix="mobilize-seed-") + f"/demo-{size}-{seed}.db"
        with sqlite3.connect(_sqlite_path(url)) as source, sqlite3.connect(where) as target:
            source.backup(target)
        source.close(), target.close()
        return where
    schema = f"seed_cache_{size}_{seed}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        for table in await _public_tables(conn):
            await conn.execute(text(f'CREATE TABLE "{schema}"."{table}" AS TABLE public."{table}"'))
    await engine.dispose()
    return schema


async def _public_tables(conn) -> list[str]:
    return list((await conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
    ))).scalars())


async def _restore(url: str, kind: str, kept: str) -> bool:
    """Copy the kept seed into ``url`` if that database is empty; False (nothing done) otherwise."""
    if kind == "sqlite":
        import sqlite3

        target = sqlite3.connect(_sqlite_path(url), timeout=30)
        try:
            if target.execute(_ANY_ROW).fetchone()[0]:
                return False
            with sqlite3.connect(kept) as source:
                source.backup(target)
            source.close()
            return True
        finally:
            target.close()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if (await conn.execute(text(_ANY_ROW))).scalar():
                return False
            await conn.execute(text("SET LOCAL session_replication_role = replica"))  # rows copied as they were
            for table in await _public_tables(conn):
                await conn.execute(text(f'INSERT INTO public."{table}" SELECT * FROM "{kept}"."{table}"'))
            serials = (await conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND (column_default LIKE 'nextval%' OR is_identity = 'YES')"))).all()
            for table, column in serials:
                await conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('public.\"{table}\"', '{column}'), "
                    f'COALESCE((SELECT MAX("{column}") FROM public."{table}"), 0) + 1, false)'))
        return True
    except Exception:  # noqa: BLE001 - e.g. not allowed to defer foreign keys: seed the slow way
        return False
    finally:
        await engine.dispose()


async def _seed(settings: Settings, size: str, seed: int) -> dict[str, str]:
    from datetime import date

    from mobilize.operators import OperatorCreate, create_operator
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.vocabulary import load_workgroups

    roster = generate_city(size, seed, today=date(2026, 11, 21))
    engine = create_engine(settings.database_url)
    maker = create_sessionmaker(engine)
    async with session_scope(maker) as session:
        await load_roster(session, roster, workgroups=load_workgroups())
    city = next(u.code for u in roster.units if u.level == "city")
    street = next(u.code for u in roster.units if u.level == "street")
    communities = [u.code for u in roster.units if u.level == "community"]
    codes = {"city": city, "street": street, "community_a": communities[0], "community_b": communities[1]}
    async with session_scope(maker) as session:
        for username, role, scope in [
            ("admin", "admin", None),
            ("street", "street_commander", street),
            ("cmd_a", "community_commander", codes["community_a"]),
            ("cmd_b", "community_commander", codes["community_b"]),
            ("planner", "drill_planner", city),
        ]:
            await create_operator(session, OperatorCreate(username=username, password=DEMO_PASSWORD, role=role,
                                                          scope_code=scope), actor="test")
    await engine.dispose()
    return codes


async def login(client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Return the Authorization header of a logged-in operator."""
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``mobilize serve`` in a subprocess on a free port of 127.0.0.1, for tests that need a real server."""

    def __init__(self, database_url: str, cwd, **env: str) -> None:
        import os
        import subprocess
        import sys
        import time

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "MOBILIZE_DATABASE_URL": database_url, "MOBILIZE_LOG_LEVEL": "WARNING",
                   "MOBILIZE_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "mobilize.cli", "serve", "--port", str(self.port)],
                                     env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("server did not start: " + self.proc.stderr.read().decode(errors="replace")[-2000:])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
