"""Shared fixtures: a fresh migrated database per test on each backend, the app, logged-in clients.

PostgreSQL tests run against ``MOBILIZE_TEST_POSTGRES_URL`` (default: the local server). Where the
server is unreachable they skip with the reason, except under ``CI=true`` or
``MOBILIZE_REQUIRE_SERVICES=1``, where an unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from mobilize.app import create_app
from mobilize.db import create_engine, create_sessionmaker, session_scope
from mobilize.migrate import upgrade
from mobilize.settings import Settings
from tests.support import seed_demo

PG_URL = os.environ.get("MOBILIZE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MOBILIZE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("CI") == "true" or os.environ.get("MOBILIZE_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (CI) but unreachable: {reason}")
    pytest.skip(f"{what} unreachable ({reason}); start it to run these tests")


async def _pg_reachable() -> str | None:
    engine = create_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated empty SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"

    async def make() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        async with engine.connect() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await engine.dispose()

    asyncio.run(make())
    return path


@pytest.fixture(scope="session")
def pg_database() -> str:
    """A PostgreSQL database of this test session, migrated once and dropped at the end."""
    reason = asyncio.run(_pg_reachable())
    if reason:
        _unavailable("PostgreSQL", reason)
    name = f"mobilize_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)

    async def create() -> str:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        return url

    url = asyncio.run(create())
    yield url

    async def drop() -> None:
        engine = create_engine(PG_URL)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    asyncio.run(drop())


async def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ))).scalars().all()
        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template) -> str:
    """The URL of an empty, migrated database on each backend (fresh for every test)."""
    if request.param == "sqlite":
        path = tmp_path / "mobilize.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    asyncio.run(_truncate_all(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """A fresh migrated SQLite database (for tests about one backend only)."""
    path = tmp_path / "mobilize.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(db_url) -> Settings:
    return Settings(database_url=db_url, secret_key="test-secret-key-0123456789abcdef0123456789")


@pytest.fixture
async def sessionmaker(settings):
    engine = create_engine(settings.database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def app(settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def demo(settings) -> dict[str, str]:
    """The small demo city with operators admin, street, cmd_a, cmd_b and planner."""
    return await seed_demo(settings)
