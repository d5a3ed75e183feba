"""Migration 0009 (people lose the index on status) goes up and down on both backends, keeping the rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from mobilize.db import create_engine
from tests.integration.migration_support import (
    indexes, insert_city_and_activation, insert_person, migrate_to, on_scratch_postgres,
)


async def _indexes(engine) -> set[str]:
    return await indexes(engine, "people")


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate_to(engine, "0008")
        assert "ix_people_status" in await _indexes(engine)
        async with engine.begin() as conn:
            await insert_city_and_activation(conn)
            await insert_person(conn, status="deployed")
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
