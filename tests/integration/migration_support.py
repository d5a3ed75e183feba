"""What the migration tests share: moving a database to a revision (up or down), a scratch PostgreSQL
database per test, and the few rows a migration must keep."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from alembic import command
from sqlalchemy import inspect, text

from mobilize.db import create_engine
from mobilize.migrate import alembic_config, upgrade
from tests.conftest import PG_URL, _pg_reachable, _unavailable


async def migrate_to(engine, revision: str, down: bool = False) -> None:
    """Upgrade ``engine``'s database to ``revision``, or downgrade it (``down``)."""
    if not down:
        await upgrade(engine, revision)
        return

    def run(connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def insert_city_and_activation(conn) -> None:
    """Insert org unit 1 (a city) and an ended activation 1 over it, in columns every revision has."""
    await conn.execute(text("INSERT INTO org_units (id, code, name, level, path, phase, created_at, updated_at) "
                            "VALUES (1, 'C', 'city', 'city', '/1/', 'peacetime', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    await conn.execute(text("INSERT INTO activations (id, scope_unit_id, hazard, level, is_drill, status, started_by, "
                            "started_at, summary) VALUES (1, 1, 'flood', 'III', false, 'ended', 'cli', CURRENT_TIMESTAMP, "
                            "'{}')"))


async def insert_person(conn, status: str = "available") -> None:
    """Insert person 7 of community 1 with ``status``, in columns every revision has."""
    await conn.execute(text("INSERT INTO people (id, phone, name, kind, community_id, party_member, group_leader, "
                            "peacetime_group, wartime_group, availability, status, created_at, updated_at) VALUES "
                            "(7, '13800000000', 'p', 'resident', 1, false, false, 'none', 'none', 'available', :status, "
                            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"status": status})


async def indexes(engine, table: str) -> set[str]:
    """Return the names of ``table``'s indexes."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {ix["name"] for ix in inspect(c).get_indexes(table)})


async def tables(engine) -> set[str]:
    """Return the names of the database's tables."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))


def on_scratch_postgres(round_trip: Callable[[str], Awaitable[None]]) -> None:
    """Run ``round_trip(url)`` on a PostgreSQL database made for it and dropped after (skip or fail if unreachable)."""
    reason = asyncio.run(_pg_reachable())
    if reason:
        _unavailable("PostgreSQL", reason)
    name = f"mobilize_mig_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_engine(PG_URL)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(round_trip(PG_URL.rsplit("/", 1)[0] + f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
