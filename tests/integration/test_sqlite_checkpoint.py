"""SQLite's write-ahead log is copied into the database file by the app's background job, not by commits;
bulk transactions get a bigger page cache for their duration."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mobilize.db import (
    SQLITE_CACHE_KIB, SQLITE_DEFAULT_CACHE_KIB, WAL_AUTOCHECKPOINT_PAGES, bulk_cache, checkpoint, create_engine,
    create_sessionmaker,
)


async def test_a_big_commit_leaves_its_log_and_the_checkpoint_copies_it_into_the_file(tmp_path):
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == WAL_AUTOCHECKPOINT_PAGES
            await conn.execute(text("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT)"))
        async with engine.begin() as conn:
            # ~6 MB: past SQLite's default of 1,000 pages, at which the commit would have copied it itself
            await conn.execute(text("INSERT INTO rows (body) VALUES (:b)"), [{"b": "x" * 500}] * 12_000)
        assert path.stat().st_size < 1_000_000  # committed into the log only
        await checkpoint(engine)
        assert path.stat().st_size > 6_000_000  # now in the database file
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM rows"))).scalar() == 12_000
    finally:
        await engine.dispose()


async def test_a_bulk_transaction_gets_a_big_page_cache_and_gives_it_back_even_when_it_fails(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    maker = create_sessionmaker(engine)

    async def cache_size(session) -> int:
        return (await session.execute(text("PRAGMA cache_size"))).scalar()

    try:
        async with maker() as session:
            assert await cache_size(session) == -SQLITE_DEFAULT_CACHE_KIB
            async with bulk_cache(session):
                assert await cache_size(session) == -SQLITE_CACHE_KIB
            assert await cache_size(session) == -SQLITE_DEFAULT_CACHE_KIB
            with pytest.raises(RuntimeError):
                async with bulk_cache(session):
                    raise RuntimeError("the activation failed")
            assert await cache_size(session) == -SQLITE_DEFAULT_CACHE_KIB
    finally:
        await engine.dispose()
