"""Migration 0008 (the notice fan-outs of large dispatches) goes up and down on both backends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from mobilize.db import create_engine
from tests.integration.migration_support import (
    insert_city_and_activation, migrate_to, on_scratch_postgres, tables as _tables,
)


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate_to(engine, "0007")
        assert "notice_fanouts" not in await _tables(engine)
        async with engine.begin() as conn:
            await insert_city_and_activation(conn)
        await migrate_to(engine, "head")
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notice_fanouts (activation_id, order_ids, done, created_at) "
                                    "VALUES (1, '[3, 5, 8]', 0, CURRENT_TIMESTAMP)"))
            assert (await conn.execute(text("SELECT count(*) FROM notice_fanouts WHERE finished_at IS NULL"))).scalar() == 1
        await migrate_to(engine, "0007", down=True)
        assert "notice_fanouts" not in await _tables(engine)
        assert "activations" in await _tables(engine)
        await migrate_to(engine, "head")
        assert "notice_fanouts" in await _tables(engine)
    finally:
        await engine.dispose()


def test_0008_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0008_up_and_down_on_postgres():
    on_scratch_postgres(_round_trip)
