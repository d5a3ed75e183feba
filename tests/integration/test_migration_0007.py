"""Migration 0007 (phone links lose the index on person_id alone) goes up and down on both backends,
keeping the rows; lookups by person still use an index (the unique (person_id, activation_id) one)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import inspect, text

from mobilize.db import create_engine
from tests.conftest import PG_URL, _pg_reachable, _unavailable
from tests.integration.test_migration_0006 import _to


async def _indexes(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {ix["name"] for ix in inspect(c).get_indexes("phone_links")})


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await _to(engine, "0006")
        assert "ix_phone_links_person_id" in await _indexes(engine)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO org_units (id, code, name, level, path, phase, created_at, updated_at) "
                                    "VALUES (1, 'C', 'city', 'city', '/1/', 'peacetime', CURRENT_TIMESTAMP, "
                                    "CURRENT_TIMESTAMP)"))
            await conn.execute(text("INSERT INTO people (id, phone, name, kind, community_id, party_member, "
                                    "group_leader, peacetime_group, wartime_group, availability, status, created_at, "
                                    "updated_at) VALUES (7, '13800000000', 'p', 'resident', 1, false, false, 'none', "
                                    "'none', 'available', 'available', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text("INSERT INTO activations (id, scope_unit_id, hazard, level, is_drill, status, "
                                    "started_by, started_at, summary) VALUES (1, 1, 'flood', 'III', false, 'ended', "
                                    "'cli', CURRENT_TIMESTAMP, '{}')"))
            await conn.execute(text("INSERT INTO phone_links (token_hash, person_id, activation_id, created_at, "
                                    "expires_at) VALUES ('h', 7, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        await _to(engine, "head")
        assert "ix_phone_links_person_id" not in await _indexes(engine)
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = " ".join(str(r[-1]) for r in await conn.execute(
                    text("EXPLAIN QUERY PLAN SELECT id FROM phone_links WHERE person_id = 7")))
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert (await conn.execute(text("SELECT token_hash FROM phone_links WHERE person_id = 7"))).scalar() == "h"
        await _to(engine, "0006", down=True)
        assert "ix_phone_links_person_id" in await _indexes(engine)
        await _to(engine, "head")
        assert "ix_phone_links_person_id" not in await _indexes(engine)
    finally:
        await engine.dispose()


def test_0007_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0007_up_and_down_on_postgres():
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
        asyncio.run(_round_trip(PG_URL.rsplit("/", 1)[0] + f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
