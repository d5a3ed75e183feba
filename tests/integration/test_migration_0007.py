"""Migration 0007 (phone links lose the index on person_id alone) goes up and down on both backends,
keeping the rows; lookups by person still use an index (the unique (person_id, activation_id) one)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from mobilize.db import create_engine
from tests.integration.migration_support import (
    indexes, insert_city_and_activation, insert_person, migrate_to, on_scratch_postgres,
)


async def _indexes(engine) -> set[str]:
    return await indexes(engine, "phone_links")


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate_to(engine, "0006")
        assert "ix_phone_links_person_id" in await _indexes(engine)
        async with engine.begin() as conn:
            await insert_city_and_activation(conn)
            await insert_person(conn)
            await conn.execute(text("INSERT INTO phone_links (token_hash, person_id, activation_id, created_at, "
                                    "expires_at) VALUES ('h', 7, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        await migrate_to(engine, "head")
        assert "ix_phone_links_person_id" not in await _indexes(engine)
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = " ".join(str(r[-1]) for r in await conn.execute(
                    text("EXPLAIN QUERY PLAN SELECT id FROM phone_links WHERE person_id = 7")))
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
            assert (await conn.execute(text("SELECT token_hash FROM phone_links WHERE person_id = 7"))).scalar() == "h"
        await migrate_to(engine, "0006", down=True)
        assert "ix_phone_links_person_id" in await _indexes(engine)
        await migrate_to(engine, "head")
        assert "ix_phone_links_person_id" not in await _indexes(engine)
    finally:
        await engine.dispose()


def test_0007_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0007_up_and_down_on_postgres():
    on_scratch_postgres(_round_trip)
