"""Migration 0006 (the activation's cost policy) goes up and down on both backends, keeping the rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import inspect, text

from mobilize.db import create_engine
from mobilize.migrate import alembic_config, upgrade
from tests.conftest import PG_URL, _pg_reachable, _unavailable


async def _to(engine, revision: str, down: bool = False) -> None:
    if not down:
        await upgrade(engine, revision)
        return

    def run(connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def _columns(engine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("activations")})


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        await _to(engine, "0005")
        assert "policy" not in await _columns(engine)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO org_units (id, code, name, level, path, phase, created_at, updated_at) "
                                    "VALUES (1, 'C', 'city', 'city', '/1/', 'peacetime', CURRENT_TIMESTAMP, "
                                    "CURRENT_TIMESTAMP)"))
            await conn.execute(text("INSERT INTO activations (id, scope_unit_id, hazard, level, is_drill, status, "
                                    "started_by, started_at, summary) VALUES (1, 1, 'flood', 'III', false, 'ended', "
                                    "'cli', CURRENT_TIMESTAMP, '{}')"))
        await _to(engine, "head")
        assert "policy" in await _columns(engine)
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT policy FROM activations WHERE id = 1"))).scalar() is None
            await conn.execute(text("UPDATE activations SET policy = :p WHERE id = 1"), {"p": '{"borrowing": false}'})
        await _to(engine, "0005", down=True)
        assert "policy" not in await _columns(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT hazard FROM activations WHERE id = 1"))).scalar() == "flood"
        await _to(engine, "head")
        assert "policy" in await _columns(engine)
    finally:
        await engine.dispose()


def test_0006_up_and_down_on_sqlite(tmp_path):
    asyncio.run(_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.postgres
def test_0006_up_and_down_on_postgres():
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
