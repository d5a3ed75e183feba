"""Driver-level statements for bulk writes (:class:`Rows`): plain tuples on the session's connection.

A city writes tens of thousands of rows in one transaction; SQLAlchemy's per-row bind processing
would cost more than the database. Each insert goes as one ``executemany``; on PostgreSQL a big one
by ``COPY``; on SQLite, rows sharing values (or that must run beside the solver) as one statement
over a JSON array (``INSERT … SELECT``), and updates by id as ``UPDATE … FROM json_each`` /
``FROM unnest``. :mod:`mobilize.activations.writes` builds the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from realtime.log import sqlite_timestamp

__all__ = ["Rows"]

_COPY_FROM = 1000  # rows from which PostgreSQL inserts go by COPY
_JSON_FROM = 100  # rows from which SQLite inserts with shared values go as one INSERT … SELECT over JSON


def _not_json(value):
    raise TypeError(f"{type(value).__name__} is not a JSON value: pass it in the driver's form (Rows.when for a time)")


def _json_rows(rows) -> str:
    """Return ``rows`` as a JSON array (text: SQLite 3.45+ would read a blob as JSONB). A datetime, a date or a
    dataclass is refused: orjson would write it in a form of its own, not the one the column is read back in."""
    return orjson.dumps(rows, default=_not_json,
                        option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS).decode()


class Rows:
    """Driver-level statements on the session's connection, in the session's transaction."""

    def __init__(self, connection: AsyncConnection):
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self._texts: dict[datetime, str] = {}

    @classmethod
    async def of(cls, session: AsyncSession) -> Rows:
        return cls(await session.connection())

    def when(self, at: datetime):
        """Return ``at`` as the driver stores it (SQLite: SQLAlchemy's text form, naive UTC)."""
        if not self.sqlite:
            return at
        text = self._texts.get(at)
        if text is None:
            text = self._texts[at] = sqlite_timestamp(at)
        return text

    def sql(self, statement: str) -> str:
        """Return ``statement`` (written with ``?``) in the driver's parameter style."""
        if self.sqlite:
            return statement
        parts = statement.split("?")
        return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))

    def table(self, table: Table) -> str:
        return self.connection.dialect.identifier_preparer.format_table(table)

    async def insert(self, table: Table, columns: Sequence[str], rows: list[tuple],
                     same: Mapping[str, Any] | None = None, one_statement: bool = False) -> None:
        """Insert ``rows`` (tuples in ``columns`` order): one executemany; on PostgreSQL, many rows by ``COPY``.

        asyncpg's executemany is a round trip per row (pipelined); ``COPY … FROM STDIN`` in binary is one
        stream, in the same transaction, with the same values (both use the binary codecs of the columns).

        ``same`` gives columns whose value every row shares. On SQLite many such rows go as one
        ``INSERT … SELECT`` over a JSON array of the rows, the shared values bound once: a third faster than
        an executemany binding every value of every row (a city's 30,000 orders: 130 ms against 200 ms).
        Rows are inserted in their order. Their values must be JSON's (numbers, text, booleans, null;
        floats come back exactly). ``one_statement`` takes that way on SQLite whatever the rows: slower
        than an executemany, but one call that leaves the GIL free throughout, to run beside the solver.
        """
        if not rows:
            return
        same = same or {}
        if self.sqlite and (one_statement or same and len(rows) >= _JSON_FROM):
            quote = self.connection.dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in (*same, *columns))
            picks = ", ".join(["?"] * len(same) + [f"json_extract(value, '$[{i}]')" for i in range(len(columns))])
            await self.connection.exec_driver_sql(
                f"INSERT INTO {self.table(table)} ({names}) SELECT {picks} FROM json_each(?) ORDER BY key",
                (*same.values(), _json_rows(rows)))
            return
        if same:
            head = tuple(same.values())
            columns, rows = (*same, *columns), [head + tuple(row) for row in rows]
        if not self.sqlite and len(rows) >= _COPY_FROM:
            raw = (await self.connection.get_raw_connection()).driver_connection
            await raw.copy_records_to_table(table.name, records=rows, columns=list(columns), schema_name=table.schema)
            return
        quote = self.connection.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        await self.connection.exec_driver_sql(self.sql(f"INSERT INTO {self.table(table)} ({names}) VALUES ({marks})"),
                                              rows)

    async def insert_returning_ids(self, table: Table, columns: Sequence[str], rows: list[tuple],
                                   same: Mapping[str, Any] | None = None, one_statement: bool = False) -> list[int]:
        """Insert ``rows`` as :meth:`insert` does and return their new ids, in ``rows`` order (no read-back).

        SQLite: one statement (an executemany, or an ``INSERT … SELECT`` in the rows' order) gives
        consecutive rowids after the table's largest (this transaction writes, so no other connection
        inserts meanwhile), ending at ``last_insert_rowid()``.
        PostgreSQL: the ids are drawn from the table's sequence first, in one statement, and inserted
        with the rows (concurrent sessions may draw between them: never the same id).
        """
        if not rows:
            return []
        if self.sqlite:
            await self.insert(table, columns, rows, same, one_statement)
            (last,), = await self.fetch("SELECT last_insert_rowid()")
            return list(range(last - len(rows) + 1, last + 1))
        ids = [i for (i,) in await self.fetch("SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)",
                                              (self.table(table), len(rows)))]
        await self.insert(table, ("id", *columns), [(i, *row) for i, row in zip(ids, rows, strict=True)], same)
        return ids

    async def update_ints(self, table: Table, columns: Sequence[str], values: Mapping[int, tuple[int, ...]],
                          also: Mapping[str, Any] | None = None) -> None:
        """Set integer ``columns`` of rows by id (id → values in ``columns`` order), and the ``also`` columns to
        the same value in each of them, in one statement: SQLite ``UPDATE … FROM json_each``, PostgreSQL
        ``UPDATE … FROM unnest`` of one array per column."""
        if not values:
            return
        also = also or {}
        name = self.table(table)
        quote = self.connection.dialect.identifier_preparer.quote
        sets = [f"{quote(c)} = ?" for c in also]
        if self.sqlite:
            sets += [f"{quote(c)} = json_extract(v.value, '$[{i}]')" for i, c in enumerate(columns, 1)]
            source, key = "json_each(?) AS v", "json_extract(v.value, '$[0]')"
            params = (*also.values(), _json_rows([(pid, *row) for pid, row in values.items()]))
        else:
            sets += [f"{quote(c)} = v.c{i}" for i, c in enumerate(columns, 1)]
            names = ", ".join(f"c{i}" for i in range(len(columns) + 1))
            source = f"unnest({', '.join(['?::bigint[]'] * (len(columns) + 1))}) AS v({names})"
            key = "v.c0"
            params = (*also.values(), list(values), *([row[i] for row in values.values()] for i in range(len(columns))))
        await self.execute(f"UPDATE {name} SET {', '.join(sets)} FROM {source} WHERE {name}.id = {key}", params)

    async def update_where_id_in(self, table: Table, assignments: str, params: tuple, ids: Sequence[int]) -> None:
        """``UPDATE table SET assignments WHERE id`` is one of ``ids``, in one statement (one array parameter)."""
        if not ids:
            return
        if self.sqlite:
            where, array = "id IN (SELECT value FROM json_each(?))", orjson.dumps([int(i) for i in ids]).decode()
        else:
            where, array = "id = ANY(?::int[])", list(ids)
        await self.execute(f"UPDATE {self.table(table)} SET {assignments} WHERE {where}", (*params, array))

    async def executemany(self, statement: str, rows: list[tuple]) -> None:
        if rows:
            await self.connection.exec_driver_sql(self.sql(statement), rows)

    async def execute(self, statement: str, params: tuple = ()) -> None:
        await self.connection.exec_driver_sql(self.sql(statement), params)

    async def fetch(self, statement: str, params: tuple = ()) -> list[tuple]:
        return list(await self.connection.exec_driver_sql(self.sql(statement), params))
