"""Migration 0006 (the activation's cost policy) goes up and down on both backends, keeping the rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text

from mobilize.db import create_engine
from tests.integration.migration_support import insert_city_and_activation, migrate_to, on_scratch_postgres


async def _columns(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("activations")})


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate_to(engine, "0005")
        assert "policy" not in await _columns(engine)
        async with engine.begin() as conn:
            await insert_city_and_activation(conn)
        await migrate_to(engine, "head")
        assert "policy" in await _columns(engine)
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT policy FROM activations WHERE id = 1"))).scalar() is None
            await conn.execute(text("UPDATE activations SET policy = :p WHERE id = 1"), {"p": '{"borrowing": false}'})
        await migrate_to(engine, "0005", down=True)
        assert "policy" not in await _columns(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT hazard FROM activations WHERE id = 1"))).scalar() == "flood"
        await migrate_to(engine, "head")
        assert "policy" in await _columns(engine)
    finally:
        await engine.dispose()


def test_0006_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0006_up_and_down_on_postgres():
    on_scratch_postgres(_round_trip)
