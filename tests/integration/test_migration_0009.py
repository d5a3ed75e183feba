"""Migration 0009 (people lose the index on status) goes up and down on both backends, keeping the rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text

from mobilize.db import create_engine
from tests.integration.migration_support import insert_city_and_activation, migrate_to, on_scratch_postgres


async def _indexes(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {ix["name"] for ix in inspect(c).get_indexes("people")})


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate_to(engine, "0008")
        assert "ix_people_status" in await _indexes(engine)
        async with engine.begin() as conn:
            await insert_city_and_activation(conn)
            await conn.execute(text("INSERT INTO people (id, phone, name, kind, community_id, party_member, "
                                    "group_leader, peacetime_group, wartime_group, availability, status, created_at, "
                                    "updated_at) VALUES (7, '13800000000', 'p', 'resident', 1, false, false, 'none', "
                                    "'none', 'available', 'deployed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        await migrate_to(engine, "head")
        assert "ix_people_status" not in await _indexes(engine)
        assert {"ix_people_community_id", "ix_people_community_wartime_group"} <= await _indexes(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT status FROM people WHERE id = 7"))).scalar() == "deployed"
        await migrate_to(engine, "0008", down=True)
        assert "ix_people_status" in await _indexes(engine)
        await migrate_to(engine, "head")
        assert "ix_people_status" not in await _indexes(engine)
    finally:
        await engine.dispose()


def test_0009_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0009_up_and_down_on_postgres():
    on_scratch_postgres(_round_trip)
