"""SQLite's write-ahead log is copied into the database file by the app's background job, not by commits."""

from __future__ import annotations

from sqlalchemy import text

from mobilize.db import WAL_AUTOCHECKPOINT_PAGES, checkpoint, create_engine


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
