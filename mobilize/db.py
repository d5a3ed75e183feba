"""The database: declarative base, engine and session factory, built from settings in the lifespan."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base", "aware", "begin_write", "checkpoint", "WAL_AUTOCHECKPOINT_PAGES", "insert_ignoring", "create_engine", "create_sessionmaker", "session_scope", "utcnow"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM model of mobilize and rosters (one metadata, one migration history)."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """Return ``value`` as aware UTC (SQLite hands timestamps back naive, in UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


#: WAL pages past which a committing connection copies the log back into the database itself. SQLite's
#: default, 1,000 pages, made the commit of a city's activation (tens of MB of log) wait for that copy; the
#: app copies in the background instead (:func:`checkpoint`, every few seconds), as SQLite's WAL notes
#: suggest, and this is only the backstop for processes that do not (~100 MB of log).
WAL_AUTOCHECKPOINT_PAGES = 25_000
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
#: Page cache (KiB) of a SQLite connection during a bulk transaction (:func:`bulk_cache`). SQLite's
#: default, 2 MB, is smaller than the random-keyed indexes a city's activation writes into (link token
#: hashes): their inserts spilled out of it. Every pooled connection keeping this much after one big
#: read would add up, so it is set for the transaction and given back after.
SQLITE_CACHE_KIB = 32 * 1024
SQLITE_DEFAULT_CACHE_KIB = 2000  # SQLite's own default (cache_size=-2000)


async def checkpoint(engine: AsyncEngine) -> None:
    """Copy a SQLite database's committed log back into its file without waiting on readers or writers.

    A passive checkpoint: it copies what no reader still needs and leaves the rest for the next one. A
    no-op on other databases.
    """
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        # On the driver's connection, outside any transaction (the pragma cannot run inside one).
        cursor = await raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        await cursor.close()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - exercised on every connect
    # We emit BEGIN ourselves (see _sqlite_begin), so the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    # A city's activation grows the log to tens of MB; once a checkpoint has copied it all, the file is cut
    # back to this size instead of keeping its peak for the life of the process.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # A writer must hold the write lock from its first statement: a deferred transaction that read
    # first cannot upgrade in WAL mode once another writer committed ("database is locked").
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@asynccontextmanager
async def bulk_cache(session: AsyncSession) -> AsyncIterator[None]:
    """Give the session's SQLite connection a page cache of ``SQLITE_CACHE_KIB`` while the block writes tens of
    thousands of rows (an activation, a level change, a switch-back); SQLite's default again after it.
    Elsewhere, nothing."""
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    await connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        try:
            await connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_DEFAULT_CACHE_KIB}")
        except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool anyway
            pass


async def begin_write(session: AsyncSession) -> None:
    """Start ``session``'s transaction as a writer (SQLite: ``BEGIN IMMEDIATE``; others: as is).

    Call it before the first statement of a transaction that will write after reading, so two
    such transactions serialize instead of one failing; a read-only transaction already open is
    committed first.
    """
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        if session.in_transaction():
            await session.commit()
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def insert_ignoring(session: AsyncSession, table, conflict_columns: list[str]):
    """Return an INSERT into ``table`` that skips rows whose ``conflict_columns`` already exist."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two backends we run on
        raise NotImplementedError(f"insert-or-ignore on {dialect}")
    return insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


#: the SQLite the bulk writes need: JSON functions (json_each) and UPDATE … FROM (3.33)
SQLITE_NEEDED = (3, 33, 0)


@functools.cache
def _sqlite_has_json() -> bool:
    with closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
        except sqlite3.OperationalError:
            return False
    return True


def check_sqlite(version: tuple[int, ...] = sqlite3.sqlite_version_info) -> None:
    """Raise a clear error when Python's SQLite library is too old or lacks JSON for the bulk writes."""
    problem = None
    if version < SQLITE_NEEDED:
        problem = f"SQLite {'.'.join(map(str, version))} is too old"
    elif not _sqlite_has_json():
        problem = "SQLite lacks its JSON functions"
    if problem:
        raise RuntimeError(f"需要 SQLite 3.33 或更新版本（含 JSON 函数），或改用 PostgreSQL / {problem}: mobilize needs "
                           "SQLite 3.33 or newer with its JSON functions (Python 3.11's usual builds have them), "
                           "or PostgreSQL (MOBILIZE_DATABASE_URL)")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Return an async engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs: dict = {"echo": echo}
    if url.startswith("sqlite"):
        check_sqlite()
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits on success and rolls back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
